"""lossbook.fast: every fast path equals its readable definition (value, gradient, dtype, inf/NaN pattern).

The definitions are the specification (their own tests compare them with PyTorch); here each
fast kernel is run at a small size (``fast.always``) and compared with the definition on the
same inputs, including infinite and NaN entries and ragged cache blocks.
"""
from __future__ import annotations

import math

import pytest
import torch

import lossbook
from lossbook import fast
from lossbook.fast import kernels
from lossbook.testing import compare

inf, nan = math.inf, math.nan


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _special(x: torch.Tensor) -> torch.Tensor:
    """``x`` with a few rows holding +inf, -inf, NaN and large values."""
    x = x.clone()
    x[0, 0] = inf
    x[1] = -inf
    x[2, 1] = nan
    x[3, 2] = -inf
    x[4] *= 1e4
    return x


def _logits(dtype, special=False, rows=9, cols=5):
    x = torch.randn(rows, cols, generator=_g(0), dtype=torch.float64).mul(3).to(dtype)
    return _special(x) if special else x


def _cases(dtype, special):
    x = _logits(dtype, special)
    t = torch.randint(0, 5, (9,), generator=_g(1))
    t[5] = 2
    y = torch.randn(9, 5, generator=_g(2), dtype=dtype)
    p = torch.rand(9, 5, generator=_g(3), dtype=dtype)
    w = torch.rand(5, generator=_g(4), dtype=dtype) + 0.5
    pm = (p > 0.5).to(dtype) * 2 - 1
    lp = torch.randn(7, 2, 5, generator=_g(5), dtype=dtype).log_softmax(-1)
    seg_x = torch.randn(3, 4, 5, 6, generator=_g(6), dtype=torch.float64).mul(3).to(dtype)
    if special:
        seg_x[0, :, 0, 0] = 1e4
    seg_i = torch.randint(0, 4, (3, 1, 5, 6), generator=_g(8))
    seg_y = (seg_i == torch.arange(4).view(1, 4, 1, 1)).to(dtype)
    cases = [
        ("logsumexp", lambda a: lossbook.logsumexp(a, dim=1), (x,)),
        ("logsumexp(keepdim, dim 0)", lambda a: lossbook.logsumexp(a, dim=0, keepdim=True), (x,)),
        ("softmax", lambda a: lossbook.softmax(a, dim=1), (x,)),
        ("log_softmax", lambda a: lossbook.log_softmax(a, dim=1), (x,)),
        ("log_softmax(dim 0)", lambda a: lossbook.log_softmax(a, dim=0), (x,)),
    ]
    for red in ("none", "mean", "sum"):
        cases += [
            (f"cross_entropy {red}", lambda a, r=red: lossbook.cross_entropy(a, t, reduction=r), (x,)),
            (f"cross_entropy smoothed weighted {red}",
             lambda a, r=red: lossbook.cross_entropy(a, t, w, ignore_index=2, reduction=r, label_smoothing=0.1), (x,)),
            (f"bce_with_logits {red}", lambda a, b, r=red: lossbook.binary_cross_entropy_with_logits(a, b, reduction=r),
             (x, p)),
            (f"bce_with_logits weighted {red}",
             lambda a, r=red: lossbook.binary_cross_entropy_with_logits(a, p, w, reduction=r, pos_weight=w * 2), (x,)),
            (f"soft_margin_loss {red}", lambda a, r=red: lossbook.soft_margin_loss(a, pm, reduction=r), (x,)),
            (f"soft_margin_loss, both differentiable {red}",
             lambda a, b, r=red: lossbook.soft_margin_loss(a, b, reduction=r), (x, pm)),
            (f"multilabel_soft_margin_loss {red}",
             lambda a, b, r=red: lossbook.multilabel_soft_margin_loss(a, b, reduction=r), (x, p)),
            (f"multilabel_soft_margin_loss weighted, 0/1 {red}",
             lambda a, r=red: lossbook.multilabel_soft_margin_loss(a, (p > 0.5).to(a.dtype), w, reduction=r), (x,)),
            (f"multilabel_soft_margin_loss integer target {red}",
             lambda a, r=red: lossbook.multilabel_soft_margin_loss(a, (p > 0.5).long(), reduction=r), (x,)),
            (f"multilabel_soft_margin_loss unbatched {red}",
             lambda a, b, r=red: lossbook.multilabel_soft_margin_loss(a[0], b[0], reduction=r), (x, p)),
            (f"l1_loss {red}", lambda a, b, r=red: lossbook.l1_loss(a, b, reduction=r), (x, y)),
            (f"mse_loss {red}", lambda a, b, r=red: lossbook.mse_loss(a, b, reduction=r), (x, y)),
            (f"huber_loss {red}", lambda a, b, r=red: lossbook.huber_loss(a, b, reduction=r, delta=0.5), (x, y)),
            (f"smooth_l1_loss {red}", lambda a, b, r=red: lossbook.smooth_l1_loss(a, b, reduction=r, beta=2.0), (x, y)),
            (f"log_cosh_loss {red}", lambda a, b, r=red: lossbook.log_cosh_loss(a, b, reduction=r), (x, y)),
            (f"dice_loss softmax {red}", lambda a, r=red: lossbook.dice_loss(a, seg_y, softmax=True, reduction=r), (seg_x,)),
            (f"dice_loss softmax, class indices, no background, batch {red}",
             lambda a, r=red: lossbook.dice_loss(a, seg_i, softmax=True, to_onehot_y=True, include_background=False,
                                                 batch=True, reduction=r, jaccard=True), (seg_x,)),
            (f"tversky_loss softmax, soft target {red}",
             lambda a, b, r=red: lossbook.tversky_loss(a, b, softmax=True, alpha=0.3, beta=0.7, reduction=r),
             (seg_x, seg_y.mul(0.8).add(0.05))),
        ]
        if not special:  # the α-β sweep against autograd through the forward algorithm
            for zi in (False, True):
                cases.append((f"ctc_loss {red} zero_infinity={zi}",
                              lambda a, r=red, z=zi: lossbook.ctc_loss(a, torch.tensor([[1, 2, 2], [3, 4, 0]]), (7, 2),
                                                                        (3, 2), reduction=r, zero_infinity=z), (lp,)))
    return cases


def _run(fn, inputs, mode):
    xs = [a.detach().clone().requires_grad_(True) for a in inputs]
    with mode():
        out = fn(*xs)
        grads = torch.autograd.grad(out, xs, torch.ones_like(out), allow_unused=True, materialize_grads=True)
    return out.detach(), grads


@pytest.mark.parametrize("special", [False, True], ids=["finite", "inf-nan"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_fast_path_equals_definition(dtype, special, monkeypatch):
    monkeypatch.setattr(kernels, "BLOCK_BYTES", 3 * 5 * 8)  # several ragged blocks of rows
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    for name, fn, inputs in _cases(dtype, special):
        spec, spec_grads = _run(fn, inputs, fast.definition_only)
        got, got_grads = _run(fn, inputs, fast.always)
        problem = compare(spec, got, what=f"{name}: the value", **tol)
        assert problem is None, problem
        if "ctc" in name and special:
            continue
        for i, (a, b) in enumerate(zip(spec_grads, got_grads)):
            problem = compare(a, b, what=f"{name}: the gradient of input {i}", rtol=tol["rtol"] * 10,
                              atol=tol["atol"] * 10)
            assert problem is None, problem


def test_fast_path_is_really_taken(monkeypatch):
    """The comparison above is not vacuous: fast.always reaches the kernels, definition_only does not."""
    calls = []
    real = fast.FastFunction.forward

    def spy(ctx, kernel, definition, *tensors):
        calls.append(type(kernel).__name__)
        return real(ctx, kernel, definition, *tensors)

    monkeypatch.setattr(fast.FastFunction, "forward", staticmethod(spy))
    x = _logits(torch.float64)
    with fast.definition_only():
        lossbook.cross_entropy(x, torch.zeros(9, dtype=torch.long))
    assert calls == []
    with fast.always():
        lossbook.cross_entropy(x, torch.zeros(9, dtype=torch.long))
        lossbook.log_softmax(x, dim=1)
        lossbook.mse_loss(x, x.flip(0))
        lossbook.soft_margin_loss(x, x.sign())
        lossbook.multilabel_soft_margin_loss(x, (x > 0).long(), torch.ones(5, dtype=x.dtype))
        lossbook.dice_loss(x.view(1, 9, 5, 1), (x > 0).to(x.dtype).view(1, 9, 5, 1), softmax=True)
    assert calls == ["_CrossEntropyIndex", "_LogSoftmax", "_Pointwise", "_SoftMargin", "_MultilabelSoftMargin",
                     "_SoftmaxCounts"]


def test_applies_only_to_plain_large_cpu_tensors():
    big = torch.zeros(fast.MIN_NUMEL)
    assert fast.applies(big) and fast.applies(big.double(), big.double())
    assert not fast.applies(big[:-1])  # below the threshold
    assert not fast.applies(big.half())  # float16: the definition (float32 inside where PyTorch does so)
    assert not fast.applies(big, big.double())  # mixed dtypes follow the definition's promotion
    assert fast.applies(big, torch.zeros(3, dtype=torch.long))  # an integer target does not count
    assert not fast.applies(big.to_sparse())

    class Sub(torch.Tensor):
        pass

    assert not fast.applies(big.as_subclass(Sub))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fast.applies(big)
    with fast.definition_only():
        assert not fast.applies(big)
    with fast.always():
        assert fast.applies(big[:3])
    seen = []
    torch.func.vmap(lambda r: seen.append(fast.applies(r)) or r)(big.view(2, -1))
    torch.func.grad(lambda r: seen.append(fast.applies(r)) or r.sum())(big)
    with torch.autograd.forward_ad.dual_level():
        seen.append(fast.applies(torch.autograd.forward_ad.make_dual(big, big)))
    torch.compile(lambda r: seen.append(fast.applies(r)) or r, backend="eager")(big)
    assert seen == [False, False, False, False]


def test_double_backward_through_the_fast_path_differentiates_the_definition():
    """create_graph=True: the kernel's first gradient is replaced by the definition's, itself differentiable."""
    z = torch.randn(4, 6, generator=_g(7), dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 5, 2, 2])
    hessians = []
    for mode in (fast.always, fast.definition_only):
        with mode():
            (g,) = torch.autograd.grad(lossbook.cross_entropy(z, t, label_smoothing=0.1), z, create_graph=True)
            hessians.append(torch.autograd.grad(g[0, 0], z)[0])
    torch.testing.assert_close(hessians[0], hessians[1], rtol=0, atol=1e-15)
    assert hessians[0].abs().sum() > 0


def test_a_second_backward_of_the_same_graph_gets_the_same_gradient():
    """The softmax-counts kernel turns a buffer of its forward into the gradient in place; a second
    backward through the retained graph must not find it spent."""
    x = torch.randn(2, 3, 4, 5, generator=_g(9), dtype=torch.float64, requires_grad=True)
    y = (torch.randint(0, 3, (2, 1, 4, 5), generator=_g(10)) == torch.arange(3).view(1, 3, 1, 1)).double()
    with fast.definition_only():
        (want,) = torch.autograd.grad(lossbook.dice_loss(x, y, softmax=True), x)
    with fast.always():
        loss = lossbook.dice_loss(x, y, softmax=True)
        (first,) = torch.autograd.grad(loss, x, retain_graph=True)
        (second,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(first, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(second, want, rtol=1e-12, atol=1e-14)
