"""lossbook.classification against PyTorch (and torchvision's focal-loss formula) in float64."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.testing import assert_matches, compare, finite_pattern, torchvision_sigmoid_focal_loss

D = torch.float64
REDUCTIONS = ("none", "mean", "sum")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, scale=1.0, dtype=D):
    return torch.randn(shape, generator=gen(seed), dtype=dtype) * scale


def rand(*shape, seed=0, dtype=D):
    return torch.rand(shape, generator=gen(seed), dtype=dtype)


tv_sigmoid_focal_loss = torchvision_sigmoid_focal_loss  # the transcribed oracle, shared with the tests


def ref_focal_loss(input, target, *, gamma=2.0, alpha=None, weight=None, ignore_index=-100, reduction="mean"):
    """The RetinaNet softmax focal loss from torch primitives; the mean divides by Σ w_y like cross_entropy."""
    logp = F.log_softmax(input, dim=1 if input.dim() > 1 else 0)
    valid = target != ignore_index
    t = torch.where(valid, target, torch.zeros_like(target))
    logpt = logp.gather(1 if input.dim() > 1 else 0, t.unsqueeze(1 if input.dim() > 1 else 0))
    logpt = logpt.squeeze(1 if input.dim() > 1 else 0)
    loss = -((1 - logpt.exp()) ** gamma) * logpt
    w = torch.ones(input.shape[1 if input.dim() > 1 else 0], dtype=input.dtype) if weight is None else weight
    a = torch.ones_like(w) if alpha is None else alpha
    loss = torch.where(valid, loss * a[t] * w[t], torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / torch.where(valid, w[t], torch.zeros_like(loss)).sum()


# --------------------------------------------------------------------------------------------
# binary_cross_entropy


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (6,), (4, 6), (4, 1)])
def test_bce_matches_torch(reduction, weight_shape):
    p = rand(4, 6, seed=1).clamp(0.01, 0.99)
    y = rand(4, 6, seed=2)
    y[0] = (y[0] > 0.5).to(D)  # hard labels and soft targets
    w = None if weight_shape is None else rand(*weight_shape, seed=3) + 0.5
    args = (p, y) if w is None else (p, y, w)
    assert_matches(lossbook.binary_cross_entropy, F.binary_cross_entropy, args, {"reduction": reduction},
                   grad=(0, 1))


def test_bce_gradcheck():
    p = rand(3, 2, seed=4).clamp(0.1, 0.9).requires_grad_()
    y = rand(3, 2, seed=5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: lossbook.binary_cross_entropy(a, b, reduction="none"), (p, y))


def test_bce_clamp_at_minus_100_and_saturated_gradient():
    # values and gradients at 0, 1 and next to them, including PyTorch's 1e-12 floor of p(1 - p)
    p = torch.tensor([0.0, 1e-9, 1e-30, 1.0, 1 - 1e-12, 0.5, 0.0, 1.0], dtype=D)
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.5, 0.3, 0.0, 1.0], dtype=D)
    for red in REDUCTIONS:
        assert_matches(lossbook.binary_cross_entropy, F.binary_cross_entropy, (p, y), {"reduction": red})
    # ERRATA E58/B31: BCELoss(0, 1) = 100 exactly
    assert lossbook.binary_cross_entropy(torch.tensor([0.0]), torch.tensor([1.0])).item() == 100.0


def test_bce_e18_numbers():
    """ERRATA E18: the seed's clamp(1e-7) caps the loss at 16.118 and zeroes the gradient; torch does not."""
    p = torch.tensor([1e-9], dtype=torch.float32, requires_grad=True)
    y = torch.tensor([1.0])
    ours = lossbook.binary_cross_entropy(p, y)
    (g,) = torch.autograd.grad(ours, p)
    assert ours.item() == pytest.approx(20.723, abs=1e-3)
    assert g.item() == pytest.approx(-1e9, rel=1e-3)
    q = p.clamp(1e-7, 1 - 1e-7)
    seed = -(y * q.log() + (1 - y) * (1 - q).log()).mean()
    (gs,) = torch.autograd.grad(seed, p)
    assert seed.item() == pytest.approx(16.118, abs=1e-3) and gs.item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_bce_low_precision_pattern(dtype):
    p = torch.tensor([0.0, 1e-4, 0.5, 0.999, 1.0], dtype=dtype)
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=dtype)
    assert_matches(lossbook.binary_cross_entropy, F.binary_cross_entropy, (p, y), {"reduction": "none"},
                   rtol=2e-3, atol=1e-3)


def test_bce_empty_is_nan_like_torch():
    e = torch.zeros(0, dtype=D)
    for red in REDUCTIONS:
        assert compare(F.binary_cross_entropy(e, e, reduction=red), lossbook.binary_cross_entropy(e, e, reduction=red)) is None


def test_bce_bad_inputs():
    p, y = torch.tensor([0.2, 0.7]), torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match=r"input must contain probabilities in \[0, 1\], but it contains 1.5"):
        lossbook.binary_cross_entropy(torch.tensor([1.5, 0.2]), y)
    with pytest.raises(ValueError, match="input must contain probabilities.*nan"):
        lossbook.binary_cross_entropy(torch.tensor([float("nan"), 0.2]), y)
    with pytest.raises(ValueError, match="target must contain probabilities"):
        lossbook.binary_cross_entropy(p, torch.tensor([0.0, 2.0]))
    with pytest.raises(TypeError, match="target must have a floating-point dtype, got torch.int64"):
        lossbook.binary_cross_entropy(p, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="target has dtype torch.float64 but input has dtype torch.float32"):
        lossbook.binary_cross_entropy(p, y.double())
    with pytest.raises(ValueError, match=r"target has shape \(2,\) but input has shape \(2, 1\).*squeeze"):
        lossbook.binary_cross_entropy(p.unsqueeze(1), y)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), which does not broadcast"):
        lossbook.binary_cross_entropy(p, y, torch.ones(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        lossbook.binary_cross_entropy(p, y, reduction="avg")
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        lossbook.binary_cross_entropy([0.5], y)


# --------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits


WEIGHT_SHAPES = [None, (), (5,), (3, 5), (3, 1)]
POS_SHAPES = [None, (), (5,), (1, 5), (3, 5)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ws,ps", list(itertools.product(WEIGHT_SHAPES, POS_SHAPES)))
def test_bce_logits_matches_torch(reduction, ws, ps):
    x = randn(3, 5, seed=1, scale=3)
    y = rand(3, 5, seed=2)
    y[1] = (y[1] > 0.5).to(D)
    kw = {"reduction": reduction}
    if ws is not None:
        kw["weight"] = rand(*ws, seed=3) + 0.5
    if ps is not None:
        kw["pos_weight"] = rand(*ps, seed=4) * 4
    assert_matches(lossbook.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, (x, y), kw)


def test_bce_logits_gradcheck():
    x = randn(3, 4, seed=5).requires_grad_()
    y = rand(3, 4, seed=6).requires_grad_()
    pw, w = rand(4, seed=7) * 3, rand(3, 1, seed=8)
    assert torch.autograd.gradcheck(
        lambda a, b: lossbook.binary_cross_entropy_with_logits(a, b, w, reduction="none", pos_weight=pw), (x, y))
    assert torch.autograd.gradgradcheck(lambda a: lossbook.binary_cross_entropy_with_logits(a, y.detach()), (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_logits_gradcheck_fused_reductions(reduction):
    """The reduction is fused into the Function: the target's gradient goes through it too."""
    x = randn(3, 4, seed=5).requires_grad_()
    y = rand(3, 4, seed=6).requires_grad_()
    pw, w = rand(4, seed=7) * 3, rand(3, 1, seed=8)
    for kw in ({}, {"weight": w, "pos_weight": pw}):
        assert torch.autograd.gradcheck(
            lambda a, b, kw=kw: lossbook.binary_cross_entropy_with_logits(a, b, reduction=reduction, **kw), (x, y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_logits_blocked_path(monkeypatch, reduction):
    """Large inputs are computed block by block; force blocks of about 10 values (ragged last one)."""
    from lossbook.fast import kernels as _kernels

    monkeypatch.setattr(_kernels, "BLOCK_BYTES", 8 * 10)
    monkeypatch.setattr(lossbook.fast._state, "mode", "always", raising=False)  # the fast path at any size
    x = randn(13, 5, seed=1, scale=3)
    y = (rand(13, 5, seed=2) > 0.7).to(D)
    assert len(_kernels.blocks(x, ())) > 1
    for kw in ({}, {"weight": rand(5, seed=3)}, {"pos_weight": rand(1, 5, seed=4) * 4, "weight": rand(13, 1, seed=5)}):
        assert_matches(lossbook.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, (x, y),
                       {"reduction": reduction, **kw})


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-7), (torch.float32, 1e-5), (torch.float16, 2e-3)])
def test_bce_logits_extreme_logits(dtype, tol):
    x = torch.tensor([-1e4, -200.0, -100.0, -17.0, 0.0, 17.0, 30.0, 100.0, 1e4], dtype=dtype)
    if dtype == torch.float16:
        x = x.clamp(-6e4, 6e4)
    for y in (1.0, 0.0, 0.3):
        t = torch.full_like(x, y)
        for pw in (None, torch.tensor(3.0, dtype=dtype)):
            assert_matches(lossbook.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, (x, t),
                           {"reduction": "none", "pos_weight": pw}, rtol=tol, atol=tol)


def test_bce_logits_seed_numbers():
    # ERRATA S14: pos_weight semantics; E58/B32: BCEWithLogits(-200, 1) = 200
    x, y = torch.tensor([0.3, -1.2, 2.0], dtype=D), torch.tensor([1.0, 0.0, 1.0], dtype=D)
    assert lossbook.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor(3.0)).item() == pytest.approx(
        0.769044, abs=1e-6)
    assert lossbook.binary_cross_entropy_with_logits(torch.tensor([-200.0]), torch.tensor([1.0])).item() == 200.0
    # and the probability route saturates at 100 (torch agrees)
    assert lossbook.binary_cross_entropy(torch.sigmoid(torch.tensor([-200.0])), torch.tensor([1.0])).item() == 100.0
    # ERRATA S15 / E59: 2-class cross-entropy on [0, 1.5] is BCE-with-logits on the difference 1.5
    ce = lossbook.cross_entropy(torch.tensor([[0.0, 1.5]], dtype=D), torch.tensor([1]))
    bce = lossbook.binary_cross_entropy_with_logits(torch.tensor([1.5], dtype=D), torch.tensor([1.0], dtype=D))
    assert ce.item() == pytest.approx(0.201413, abs=1e-6) and ce.item() == pytest.approx(bce.item(), rel=1e-12)


def test_bce_logits_pos_weight_gradient_identity():
    """dℓ/dx = p_w·y·(σ(x) − 1) + (1 − y)·σ(x): pos_weight multiplies the positives' pull only."""
    x = randn(50, seed=9, scale=3).requires_grad_()
    y = (rand(50, seed=10) > 0.5).to(D)
    pw = 4.0
    loss = lossbook.binary_cross_entropy_with_logits(x, y, reduction="sum", pos_weight=torch.tensor(pw, dtype=D))
    (g,) = torch.autograd.grad(loss, x)
    s = torch.sigmoid(x.detach())
    assert torch.allclose(g, pw * y * (s - 1) + (1 - y) * s, rtol=1e-12, atol=1e-15)


def test_bce_logits_bad_inputs_and_pitfall():
    x = torch.zeros(12, 1)
    with pytest.raises(ValueError, match=r"target has shape \(12,\) but input has shape \(12, 1\).*unsqueeze"):
        lossbook.binary_cross_entropy_with_logits(x, torch.zeros(12))
    with pytest.raises(TypeError, match="target must have a floating-point dtype, got torch.int64.*target.float"):
        lossbook.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"pos_weight has shape \(3,\), which does not broadcast to the shape \(3, 4\)"):
        lossbook.binary_cross_entropy_with_logits(torch.zeros(3, 4), torch.zeros(3, 4), pos_weight=torch.ones(3))
    with pytest.raises(ValueError, match="weight requires grad"):
        lossbook.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3), torch.ones(3, requires_grad=True))
    with pytest.raises(TypeError, match="input must have a floating-point dtype"):
        lossbook.binary_cross_entropy_with_logits(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.warns(lossbook.PitfallWarning, match="outside \\[0, 1\\]"):
        lossbook.binary_cross_entropy_with_logits(torch.zeros(3), torch.tensor([-1.0, 1.0, 1.0]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-15, 15), min_size=1, max_size=8), st.floats(0.1, 10))
def test_property_bce_logits_equals_bce_of_sigmoid_and_soft_margin(xs, pw):
    x = torch.tensor(xs, dtype=D)
    y = (torch.arange(len(xs)) % 2).to(D)
    a = lossbook.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert torch.allclose(a, lossbook.binary_cross_entropy(torch.sigmoid(x), y, reduction="none"), rtol=1e-6, atol=1e-9)
    assert torch.allclose(a, lossbook.soft_margin_loss(x, 2 * y - 1, reduction="none"), rtol=1e-12, atol=1e-14)
    # pos_weight = 1 is no pos_weight; pos_weight scales exactly the positive terms
    b = lossbook.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=torch.tensor(pw, dtype=D))
    assert torch.allclose(torch.where(y == 1, a * pw, a), b, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------
# soft margin and multi-label soft margin


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margin_matches_torch(reduction):
    x = randn(4, 3, seed=11, scale=3)
    y = torch.where(rand(4, 3, seed=12) > 0.5, 1.0, -1.0).to(D)
    assert_matches(lossbook.soft_margin_loss, F.soft_margin_loss, (x, y), {"reduction": reduction}, grad=(0,))
    assert torch.autograd.gradcheck(lambda a: lossbook.soft_margin_loss(a, y[:2], reduction=reduction),
                                    (x[:2].clone().requires_grad_(),))


def test_soft_margin_is_stable_where_torch_overflows():
    # torch evaluates log1p(exp(-y x)): inf (and a NaN gradient) at -y x = 100 in float32; ours is exact
    x = torch.tensor([-100.0, -1e4, 0.0, 100.0], requires_grad=True)
    y = torch.ones(4)
    t = F.soft_margin_loss(x, y, reduction="none")
    assert torch.isinf(t[:2]).all()
    ours = lossbook.soft_margin_loss(x, y, reduction="none")
    (g,) = torch.autograd.grad(ours.sum(), x)
    exact = torch.tensor([100.0, 1e4, math.log(2), 0.0])
    assert torch.allclose(ours, exact, rtol=1e-6, atol=1e-30)
    assert torch.allclose(g, torch.tensor([-1.0, -1.0, -0.5, 0.0]), atol=1e-30)
    # where torch is finite it agrees, in float16 too
    for dtype in (torch.float16, torch.float32):
        xs = torch.tensor([-10.0, -1.0, 0.0, 1.0, 10.0, 100.0], dtype=dtype)
        assert_matches(lossbook.soft_margin_loss, F.soft_margin_loss, (xs, torch.ones_like(xs)),
                       {"reduction": "none"}, rtol=2e-3, atol=1e-3, grad=(0,))


def test_soft_margin_pitfall_and_errors():
    with pytest.warns(lossbook.PitfallWarning, match="expects -1/\\+1 labels"):
        lossbook.soft_margin_loss(torch.zeros(2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target has shape \(3,\), which does not broadcast to the shape \(3, 1\)"):
        lossbook.soft_margin_loss(torch.zeros(3, 1), torch.ones(3))
    with pytest.raises(RuntimeError):
        F.soft_margin_loss(torch.zeros(3, 1), torch.ones(3))  # PyTorch refuses it too


def test_soft_margin_broadcasts_target_like_torch():
    x, y = randn(3, 4, seed=60), torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=D)
    for r in REDUCTIONS:
        with pytest.warns(lossbook.PitfallWarning, match=r"they broadcast to \(3, 4\)"):
            assert_matches(lossbook.soft_margin_loss, F.soft_margin_loss, (x, y), {"reduction": r}, grad=(0,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weight_shape", [((4, 6), None), ((4, 6), (6,)), ((4, 6), (4, 6)), ((6,), None),
                                                ((6,), (6,))])
def test_multilabel_soft_margin_matches_torch(reduction, weight_shape, shape):
    x = randn(*shape, seed=13, scale=3)
    y = (rand(*shape, seed=14) > 0.5).to(D)
    kw = {"reduction": reduction}
    if weight_shape:
        kw["weight"] = rand(*weight_shape, seed=15)
    assert_matches(lossbook.multilabel_soft_margin_loss, F.multilabel_soft_margin_loss, (x, y), kw, grad=(0, 1))


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8], ids=str)
def test_multilabel_soft_margin_takes_integer_targets_like_torch(dtype):
    x, y = randn(4, 6, seed=61), (rand(4, 6, seed=62) > 0.5).to(dtype)
    for r in REDUCTIONS:
        assert_matches(lossbook.multilabel_soft_margin_loss, F.multilabel_soft_margin_loss, (x, y),
                       {"reduction": r, "weight": rand(6, seed=63)})
    with pytest.raises(TypeError, match="target must hold 0/1 labels as numbers"):
        lossbook.multilabel_soft_margin_loss(x, y.bool())


def test_multilabel_soft_margin_at_infinite_logits_like_torch():
    """y = 1 at x = −inf is +inf (and y = 0 at x = +inf): the (1 − y) x + softplus(−x) form gave NaN."""
    inf = float("inf")
    x = torch.tensor([[-inf, inf, 2.0], [inf, -inf, -1.0], [inf, inf, 0.0]], dtype=D)
    y = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.5, 1.0, 0.0]], dtype=D)
    for r in REDUCTIONS:
        assert_matches(lossbook.multilabel_soft_margin_loss, F.multilabel_soft_margin_loss, (x, y),
                       {"reduction": r}, grad=(0,))
    assert lossbook.multilabel_soft_margin_loss(x[:1], y[:1], reduction="none").item() == inf


def test_multilabel_soft_margin_is_bce_mean_s10():
    x, y = randn(4, 6, seed=16), (rand(4, 6, seed=17) > 0.5).to(D)
    a = lossbook.multilabel_soft_margin_loss(x, y)
    assert a.item() == pytest.approx(lossbook.binary_cross_entropy_with_logits(x, y).item(), rel=1e-12)
    assert lossbook.multilabel_soft_margin_loss(x, y, reduction="none").shape == (4,)
    big = torch.tensor([[1e4, -1e4, 0.0]])
    assert_matches(lossbook.multilabel_soft_margin_loss, F.multilabel_soft_margin_loss,
                   (big, torch.tensor([[0.0, 1.0, 1.0]])), {"reduction": "none"})


# --------------------------------------------------------------------------------------------
# margin losses


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("use_weight", [False, True])
def test_multi_margin_matches_torch(reduction, p, margin, use_weight):
    x = randn(6, 5, seed=18)
    t = torch.randint(0, 5, (6,), generator=gen(19))
    kw = {"p": p, "margin": margin, "reduction": reduction}
    if use_weight:
        kw["weight"] = rand(5, seed=20) + 0.1
    assert_matches(lossbook.multi_margin_loss, F.multi_margin_loss, (x, t), kw, grad=(0,))
    # unbatched: (C,) with () and with (1,) targets
    for tt in (t[0], t[:1]):
        assert_matches(lossbook.multi_margin_loss, F.multi_margin_loss, (x[0], tt), kw, grad=(0,))


def test_multi_margin_gradcheck_and_errors():
    x = randn(3, 4, seed=21).requires_grad_()
    t = torch.tensor([0, 3, 1])
    assert torch.autograd.gradcheck(lambda a: lossbook.multi_margin_loss(a, t, p=2, reduction="none"), (x,))
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        lossbook.multi_margin_loss(x, t, p=3)
    with pytest.raises(ValueError, match=r"class index 4, but class indices must be in \[0, 3\]"):
        lossbook.multi_margin_loss(x, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\) but input has 4 classes"):
        lossbook.multi_margin_loss(x, t, weight=torch.ones(3))
    with pytest.raises(ValueError, match=r"target has shape \(3, 1\).*shape \(3,\)"):
        lossbook.multi_margin_loss(x, t.unsqueeze(1))
    with pytest.raises(TypeError, match="integer dtype"):
        lossbook.multi_margin_loss(x, t.float())


def test_multilabel_margin_doc_example_e60():
    x = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
    y = torch.tensor([[3, 0, -1, 1]])
    assert lossbook.multilabel_margin_loss(x, y).item() == pytest.approx(0.85, abs=1e-6)
    assert_matches(lossbook.multilabel_margin_loss, F.multilabel_margin_loss, (x, y), {})


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_matches_torch(reduction):
    N, Cn = 7, 6
    x = randn(N, Cn, seed=22)
    g = gen(23)
    rows = []
    for n in range(N):  # building test targets row by row is fine; the loss itself is vectorised
        k = n % (Cn + 1)
        perm = torch.randperm(Cn, generator=g)[:k].tolist()
        if n == 3:
            perm = [2, 2]  # a duplicate counts twice, as in torch
        junk = torch.randint(0, Cn, (Cn,), generator=g).tolist()
        row = perm + ([-1] if len(perm) < Cn else []) + junk
        rows.append(row[:Cn])
    y = torch.tensor(rows)
    assert_matches(lossbook.multilabel_margin_loss, F.multilabel_margin_loss, (x, y), {"reduction": reduction})
    assert_matches(lossbook.multilabel_margin_loss, F.multilabel_margin_loss, (x[1], y[1]), {"reduction": reduction})
    assert torch.autograd.gradcheck(lambda a: lossbook.multilabel_margin_loss(a, y, reduction="none"),
                                    (x.clone().requires_grad_(),))


def test_multilabel_margin_warns_on_multi_hot_targets():
    x = randn(2, 4, seed=41)
    multi_hot = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 0]])
    with pytest.warns(lossbook.PitfallWarning, match="looks like a multi-hot vector"):
        got = lossbook.multilabel_margin_loss(x, multi_hot)
    assert torch.allclose(got, F.multilabel_margin_loss(x, multi_hot))  # the warning never changes the result


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_losses_take_0d_scores_like_torch(reduction):
    """A 0-D score is one sample with one class (PyTorch's own samples use it): the loss is 0."""
    for fn, t in ((lossbook.multi_margin_loss, 0), (lossbook.multilabel_margin_loss, 0),
                  (lossbook.multilabel_margin_loss, -1)):
        ref = getattr(F, fn.__name__)
        assert_matches(fn, ref, (torch.tensor(0.3, dtype=D), torch.tensor(t)), {"reduction": reduction}, grad=(0,))
    assert_matches(lossbook.multi_margin_loss, F.multi_margin_loss, (torch.tensor(0.3, dtype=D), torch.tensor(0)),
                   {"p": 2, "margin": 0.5, "weight": torch.tensor([2.0], dtype=D), "reduction": reduction}, grad=(0,))
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 0\] for 1 classes"):
        lossbook.multi_margin_loss(torch.tensor(0.3), torch.tensor(1))


def test_multilabel_margin_at_infinite_scores_like_torch():
    """inf − inf inside a hinge counts 0 (PyTorch's kernel skips it); it gave NaN before."""
    inf = float("inf")
    x = torch.tensor([[inf, 1.0, -inf, 0.5], [-inf, 1.0, inf, 0.5], [inf, inf, 0.0, 0.5], [-inf, -inf, 2.0, inf]],
                     dtype=D)
    y = torch.tensor([[0, -1, 1, 2], [0, -1, 1, 2], [0, 2, -1, 1], [1, 0, 3, -1]])
    for r in REDUCTIONS:
        assert_matches(lossbook.multilabel_margin_loss, F.multilabel_margin_loss, (x, y), {"reduction": r}, grad=(0,))


def test_multilabel_margin_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(TypeError, match="not a multi-hot vector but a -1-terminated list"):
        lossbook.multilabel_margin_loss(x, torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"target contains 3, but its values must be class indices in \[0, 2\] or -1"):
        lossbook.multilabel_margin_loss(x, torch.tensor([[3, -1, 0], [0, -1, 0]]))
    with pytest.raises(ValueError, match=r"input has shape \(2, 3, 1\) \(3-D\) but must be \(N, C\) or \(C,\)"):
        lossbook.multilabel_margin_loss(torch.zeros(2, 3, 1), torch.zeros(2, 3, 1, dtype=torch.long))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 2.5])
def test_hinge_embedding_matches_torch(reduction, margin):
    x = randn(5, 4, seed=24, scale=2).abs()
    y = torch.where(rand(5, 4, seed=25) > 0.5, 1.0, -1.0).to(D)
    y[0, 0] = 0.0  # not ±1: both terms, as in torch
    assert_matches(lossbook.hinge_embedding_loss, F.hinge_embedding_loss, (x, y),
                   {"margin": margin, "reduction": reduction}, grad=(0,))
    assert torch.autograd.gradcheck(lambda a: lossbook.hinge_embedding_loss(a, y, margin, reduction),
                                    (x.clone().requires_grad_(),))
    with pytest.warns(lossbook.PitfallWarning, match=r"they broadcast to \(5, 4\)"):  # as torch does
        assert_matches(lossbook.hinge_embedding_loss, F.hinge_embedding_loss, (x, y[0]),
                       {"margin": margin, "reduction": reduction}, grad=(0,))
    with pytest.warns(lossbook.PitfallWarning, match=r"they broadcast to \(5, 4\)"):
        assert_matches(lossbook.hinge_embedding_loss, F.hinge_embedding_loss, (x[:1], y),
                       {"margin": margin, "reduction": reduction}, grad=(0,))
    with pytest.raises(ValueError, match=r"target has shape \(3,\) but input has shape \(5, 4\)"):
        lossbook.hinge_embedding_loss(x, y[0, :3])


# --------------------------------------------------------------------------------------------
# sigmoid focal loss (torchvision)


def test_sigmoid_focal_e10_numbers():
    x = torch.tensor([2.0, -1.0, 0.5, -3.0], dtype=D)
    y = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=D)
    ours = lossbook.sigmoid_focal_loss(x, y, reduction="mean")
    assert ours.item() == pytest.approx(0.114765, abs=1e-6)
    assert tv_sigmoid_focal_loss(x, y, reduction="mean").item() == pytest.approx(0.114765, abs=1e-6)
    # the seed's global α: α · (1 - p_t)^γ · BCE for every sample
    p_t = torch.where(y == 1, torch.sigmoid(x), 1 - torch.sigmoid(x))
    seed = (0.25 * (1 - p_t) ** 2 * F.binary_cross_entropy_with_logits(x, y, reduction="none")).mean()
    assert seed.item() == pytest.approx(0.067575, abs=1e-6)
    ratio = lossbook.sigmoid_focal_loss(x, y) / (0.25 * (1 - p_t) ** 2 * F.binary_cross_entropy_with_logits(
        x, y, reduction="none"))
    assert torch.allclose(ratio, torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=D))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2), (-1, 2), (0.5, 0), (0.9, 1.5), (0.0, 3)])
def test_sigmoid_focal_matches_torchvision_formula(reduction, alpha, gamma):
    x = randn(4, 5, seed=26, scale=3)
    y = (rand(4, 5, seed=27) > 0.7).to(D)
    kw = {"alpha": alpha, "gamma": gamma, "reduction": reduction}
    assert_matches(lossbook.sigmoid_focal_loss, tv_sigmoid_focal_loss, (x, y), kw)


def test_sigmoid_focal_gamma0_is_bce_and_extremes():
    x, y = randn(10, seed=28, scale=4), (rand(10, seed=29) > 0.5).to(D)
    a = lossbook.sigmoid_focal_loss(x, y, alpha=-1, gamma=0)
    assert torch.allclose(a, lossbook.binary_cross_entropy_with_logits(x, y, reduction="none"), rtol=1e-14)
    for dtype, tol in ((torch.float64, 1e-7), (torch.float32, 1e-5), (torch.float16, 2e-3)):
        xs = torch.tensor([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=dtype)
        for v in (0.0, 1.0):
            assert_matches(lossbook.sigmoid_focal_loss, tv_sigmoid_focal_loss, (xs, torch.full_like(xs, v)),
                           {"reduction": "none"}, rtol=tol, atol=tol)
    torch.autograd.gradcheck(lambda a: lossbook.sigmoid_focal_loss(a, y), (x.clone().requires_grad_(),))
    with pytest.raises(ValueError, match="reduction must be one of"):
        lossbook.sigmoid_focal_loss(x, y, reduction="batchmean")
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        lossbook.sigmoid_focal_loss(x, y, gamma=-1)


@pytest.mark.parametrize("use_pos_weight", [False, True])
def test_bce_with_logits_at_infinite_logits_like_torch(use_pos_weight):
    """(+inf, 0) is +inf, as torch's (1 - y) x + softplus(-x); x - x y gave inf - NaN = NaN."""
    inf = float("inf")
    x = torch.tensor([inf, -inf, inf, -inf, inf, 1e4, -1e4, 0.0], dtype=D)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 0.0, 1.0, 1.0], dtype=D)
    kw = {"pos_weight": torch.tensor(2.5, dtype=D)} if use_pos_weight else {}
    for r in REDUCTIONS:
        assert_matches(lossbook.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, (x, y),
                       {"reduction": r, **kw}, grad=(0,))
    assert lossbook.binary_cross_entropy_with_logits(x[:1], y[:1], reduction="none", **kw).item() == inf


def test_sigmoid_focal_at_infinite_logits_like_torchvision():
    inf = float("inf")
    x, y = torch.tensor([inf, -inf, 3.0], dtype=D), torch.tensor([0.0, 1.0, 0.0], dtype=D)
    assert_matches(lossbook.sigmoid_focal_loss, tv_sigmoid_focal_loss, (x, y), {"reduction": "none"}, grad=False)
    assert lossbook.sigmoid_focal_loss(x, y)[0].item() == inf  # (-inf, 1) is NaN, for torch too


def test_focal_hyper_parameters_nan_and_negative_alpha_are_refused():
    x, y = randn(4, seed=64), (rand(4, seed=65) > 0.5).to(D)
    nan = float("nan")
    with pytest.raises(ValueError, match="gamma must be >= 0, got nan"):
        lossbook.sigmoid_focal_loss(x, y, gamma=nan)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\] \(or negative to disable it\), got nan"):
        lossbook.sigmoid_focal_loss(x, y, alpha=nan)
    z, t = randn(4, 3, seed=66), torch.tensor([0, 2, 1, 1])
    with pytest.raises(ValueError, match="gamma must be >= 0, got nan"):
        lossbook.focal_loss(z, t, gamma=nan)
    for bad in (-0.5, nan):
        with pytest.raises(ValueError, match=rf"alpha must hold non-negative per-class factors, but it contains {bad}"):
            lossbook.focal_loss(z, t, alpha=torch.tensor([0.5, bad, 1.0], dtype=D))


def test_focal_uint8_indices_and_infinite_weight_of_ignored_targets():
    z, t = randn(6, 3, seed=67), torch.tensor([1, 2, -100, 1, -100, 2])
    ref = lossbook.focal_loss(z, t.masked_fill(t < 0, 0).to(torch.uint8), reduction="none")
    assert torch.equal(ref, lossbook.focal_loss(z, t.masked_fill(t < 0, 0), reduction="none"))
    w = torch.tensor([float("inf"), 1.0, 2.0], dtype=D)  # class 0 is only ever an ignored target
    for r in REDUCTIONS:
        got = lossbook.focal_loss(z, t, weight=w, alpha=w, reduction=r)
        assert torch.isfinite(got).all(), r
        assert torch.allclose(got, ref_focal_loss(z, t, weight=w.nan_to_num(posinf=0), alpha=w.nan_to_num(posinf=0),
                                                  reduction=r))


def test_global_alpha_is_a_loss_scale_that_adam_ignores():
    """E10 consequence: under Adam, scaling the loss by a global α barely moves the trajectory."""
    X = randn(64, 5, seed=30)
    y = (X[:, 0] + 0.3 * randn(64, seed=31) > 1).to(D)

    def train(alpha, opt_cls=torch.optim.Adam, lr=0.05):
        w = torch.zeros(5, dtype=D, requires_grad=True)
        opt = opt_cls([w], lr=lr)
        for _ in range(60):
            opt.zero_grad()
            loss = alpha * lossbook.sigmoid_focal_loss(X @ w, y, alpha=-1, reduction="mean")
            loss.backward()
            opt.step()
        return w.detach()

    assert (train(0.25) - train(1.0)).abs().max().item() < 1e-4  # only Adam's eps sees the scale
    # plain SGD is not scale invariant: the same α moves it a lot
    assert (train(0.25, torch.optim.SGD, 1.0) - train(1.0, torch.optim.SGD, 1.0)).abs().max().item() > 1e-2


# --------------------------------------------------------------------------------------------
# multi-class focal loss


FOCAL_OPTS = [
    {},
    {"gamma": 0.0},
    {"gamma": 1.5, "alpha": "a"},
    {"gamma": 2.0, "weight": "w"},
    {"gamma": 2.0, "alpha": "a", "weight": "w", "ignore_index": 1},
    {"gamma": 0.5, "ignore_index": 2},
]


def _materialise(opts, Cn):
    out = dict(opts)
    if out.get("alpha") == "a":
        out["alpha"] = rand(Cn, seed=32) + 0.1
    if out.get("weight") == "w":
        out["weight"] = rand(Cn, seed=33) + 0.1
    return out


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", FOCAL_OPTS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2, 2), (4,)])
def test_focal_matches_reference(reduction, opts, shape):
    x = randn(*shape, seed=34, scale=2)
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = torch.randint(0, 4, tshape, generator=gen(35))
    kw = _materialise(opts, 4) | {"reduction": reduction}
    assert_matches(lossbook.focal_loss, ref_focal_loss, (x, t), kw, grad=(0,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("use_weight", [False, True])
def test_focal_gamma0_equals_cross_entropy(reduction, use_weight):
    x = randn(8, 5, 3, seed=36, scale=2)
    t = torch.randint(0, 5, (8, 3), generator=gen(37))
    t[0, 0] = -100
    w = rand(5, seed=38) + 0.1 if use_weight else None
    assert_matches(lossbook.focal_loss, F.cross_entropy, (x, t), {"gamma": 0.0, "weight": w, "reduction": reduction},
                   ref_kwargs={"weight": w, "reduction": reduction}, grad=(0,))
    assert_matches(lossbook.focal_loss, lossbook.cross_entropy, (x, t),
                   {"gamma": 0.0, "weight": w, "reduction": reduction},
                   ref_kwargs={"weight": w, "reduction": reduction}, grad=(0,))


def test_focal_alpha_and_ignore_semantics():
    x = randn(6, 3, seed=39)
    t = torch.tensor([0, 1, 2, 0, 1, 2])
    alpha = torch.tensor([0.2, 0.5, 1.0], dtype=D)
    none = lossbook.focal_loss(x, t, alpha=alpha, reduction="none")
    plain = lossbook.focal_loss(x, t, reduction="none")
    assert torch.allclose(none, plain * alpha[t])
    # α is not in the denominator: a constant α is a plain loss scale
    assert lossbook.focal_loss(x, t, alpha=torch.full((3,), 0.25, dtype=D)).item() == pytest.approx(
        0.25 * lossbook.focal_loss(x, t).item(), rel=1e-12)
    # every target ignored: NaN mean, 0 sum (cross_entropy's convention)
    ign = torch.full((6,), -100)
    assert math.isnan(lossbook.focal_loss(x, ign).item()) and lossbook.focal_loss(x, ign, reduction="sum").item() == 0
    assert math.isnan(F.cross_entropy(x, ign).item())


def test_focal_extremes_gradcheck_and_errors():
    x = torch.tensor([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], dtype=D)
    t = torch.tensor([2, 1])
    for dtype in (torch.float64, torch.float32, torch.float16):
        out = lossbook.focal_loss(x.to(dtype), t, gamma=0.0, reduction="none")
        ref = F.cross_entropy(x.to(dtype).float(), t, reduction="none")
        assert torch.equal(finite_pattern(out), finite_pattern(ref))
        assert torch.allclose(out.double(), ref.double(), rtol=1e-3)
        assert torch.isfinite(lossbook.focal_loss(x.to(dtype), t)).all()
    small = randn(3, 4, seed=40).requires_grad_()
    tt = torch.tensor([0, 3, 1])
    assert torch.autograd.gradcheck(lambda a: lossbook.focal_loss(a, tt, gamma=2.0, reduction="none"), (small,))
    with pytest.raises(ValueError, match=r"target has shape \(3, 1\) but input has shape \(3, 4\)"):
        lossbook.focal_loss(small, tt.unsqueeze(1))
    with pytest.raises(TypeError, match="integer dtype"):
        lossbook.focal_loss(small, tt.float())
    with pytest.raises(ValueError, match=r"class index 7"):
        lossbook.focal_loss(small, torch.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match=r"alpha has shape \(3,\) but input has 4 classes"):
        lossbook.focal_loss(small, tt, alpha=torch.ones(3))
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        lossbook.focal_loss(small, tt, gamma=-0.5)


def test_focal_saturated_prediction_has_finite_gradient_for_small_gamma():
    # p_t == 1 exactly: (1 - p_t)^γ has an infinite derivative for γ < 1; the loss (0) and gradient stay finite
    x = torch.tensor([[100.0, -100.0, -100.0], [0.5, 0.0, -0.5]], dtype=D, requires_grad=True)
    t = torch.tensor([0, 2])
    for gamma in (0.25, 0.5, 1.0, 2.0):
        loss = lossbook.focal_loss(x, t, gamma=gamma, reduction="sum")
        (gx,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(gx).all() and torch.isfinite(loss)
        assert torch.allclose(gx[1], torch.autograd.grad(ref_focal_loss(x[1:], t[1:], gamma=gamma, reduction="sum"),
                                                         x)[0][1])


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(2, 5), st.floats(0.0, 4.0))
def test_property_focal_le_cross_entropy(n, c, gamma):
    g = gen(n * 31 + c)
    x = torch.randn(n, c, generator=g, dtype=D) * 3
    t = torch.randint(0, c, (n,), generator=g)
    fl = lossbook.focal_loss(x, t, gamma=gamma, reduction="none")
    ce = lossbook.cross_entropy(x, t, reduction="none")
    assert (fl <= ce + 1e-12).all() and (fl >= 0).all()
