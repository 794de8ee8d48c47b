"""lossbook.cross_entropy: nll_loss and cross_entropy against torch.nn.functional."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.testing import assert_matches

C = 5
SHAPES = [(C,), (7, C), (3, C, 4, 2)]  # unbatched, batched, K-dimensional (K = 2)


def _class_dim(shape):
    return 0 if len(shape) == 1 else 1


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 2
    tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = torch.randint(0, C, tshape, generator=g)
    if t.numel() > 1:
        t.view(-1)[::3] = 2  # class 2 appears often, so ignore_index=2 really ignores something
    probs = torch.rand(*shape, generator=g, dtype=torch.float64).softmax(_class_dim(shape))
    w = torch.rand(C, generator=g, dtype=torch.float64) + 0.1
    return x, t, probs, w


OPTIONS = list(itertools.product(["none", "mean", "sum"], [None, "w"], [-100, 2, 9]))


# --------------------------------------------------------------------------------------------
# equality with torch (float64, value and gradient)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction,weight,ignore_index", OPTIONS)
def test_nll_loss_matches_torch(shape, reduction, weight, ignore_index):
    x, t, _, w = _data(shape)
    log_probs = torch.log_softmax(x, _class_dim(shape))
    kw = dict(weight=w if weight else None, ignore_index=ignore_index, reduction=reduction)
    assert_matches(lossbook.nll_loss, F.nll_loss, (log_probs, t), kw)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("reduction,weight,ignore_index", OPTIONS)
def test_cross_entropy_index_targets_match_torch(shape, label_smoothing, reduction, weight, ignore_index):
    x, t, _, w = _data(shape)
    kw = dict(weight=w if weight else None, ignore_index=ignore_index, reduction=reduction,
              label_smoothing=label_smoothing)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, t), kw)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_probability_targets_match_torch(shape, label_smoothing, reduction):
    """Value and gradient with respect to input, target AND weight (torch differentiates all three)."""
    x, _, probs, w = _data(shape, seed=1)

    def ours(a, b, c):
        return lossbook.cross_entropy(a, b, c, reduction=reduction, label_smoothing=label_smoothing)

    def ref(a, b, c):
        return F.cross_entropy(a, b, c, reduction=reduction, label_smoothing=label_smoothing)

    assert_matches(ours, ref, (x, probs, w))
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, probs), kw)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_all_targets_ignored(label_smoothing, weight, reduction):
    x, _, _, w = _data((4, C))
    t = torch.full((4,), -100)
    kw = dict(weight=w if weight else None, reduction=reduction, label_smoothing=label_smoothing)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, t), kw)
    if reduction == "mean":
        assert torch.isnan(lossbook.cross_entropy(x, t, **kw))


@pytest.mark.parametrize("shape", [(0, C), (0, C, 3)], ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("label_smoothing,weight", [(0.0, False), (0.1, True)])
def test_empty_batches(shape, reduction, label_smoothing, weight):
    x = torch.randn(*shape, dtype=torch.float64)
    t = torch.zeros((0, *shape[2:]), dtype=torch.long)
    w = torch.rand(C, dtype=torch.float64) if weight else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=label_smoothing)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, t), kw)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, torch.rand(*shape, dtype=torch.float64)),
                   dict(reduction=reduction, label_smoothing=label_smoothing))
    assert_matches(lossbook.nll_loss, F.nll_loss, (x, t), dict(weight=w, reduction=reduction))


def test_gradcheck_custom_functions():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0, 1], [3, -100], [2, 2]])
    p = torch.rand(3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    w = (torch.rand(4, generator=g, dtype=torch.float64) + 0.1).requires_grad_()
    for red in ["none", "mean", "sum"]:
        assert torch.autograd.gradcheck(
            lambda a, red=red: lossbook.cross_entropy(a, t, w.detach(), reduction=red, label_smoothing=0.3), (x,))
        assert torch.autograd.gradcheck(
            lambda a, red=red: lossbook.cross_entropy(a, t, reduction=red), (x,))
        assert torch.autograd.gradcheck(
            lambda a, b, c, red=red: lossbook.cross_entropy(a, b, c, reduction=red, label_smoothing=0.3), (x, p, w))


def test_gradient_is_softmax_minus_onehot():
    x = torch.randn(6, C, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, C, (6,))
    lossbook.cross_entropy(x, t, reduction="sum").backward()
    expected = torch.softmax(x.detach(), 1) - F.one_hot(t, C).double()
    torch.testing.assert_close(x.grad, expected)


# --------------------------------------------------------------------------------------------
# the book's worked numbers (the references are torch, or closed forms; never our own output)


def test_weighted_mean_errata_e05():
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    ours = lossbook.cross_entropy(x, y, weight=w)
    assert ours.item() == pytest.approx(0.479286, abs=1e-6)
    assert ours.item() == pytest.approx(F.cross_entropy(x, y, weight=w).item(), rel=1e-12)
    # the seed's formula counts the weights twice: sum(w_y * l_n) / sum(w_y) with l_n = w_y * nll
    l_n = lossbook.cross_entropy(x, y, weight=w, reduction="none")
    assert ((w[y] * l_n).sum() / w[y].sum()).item() == pytest.approx(0.734055, abs=1e-6)


def test_label_smoothing_errata_e07():
    x = torch.tensor([[2.0, 1.0, 0.1]], dtype=torch.float64)
    y = torch.tensor([0])
    assert lossbook.cross_entropy(x, y).item() == pytest.approx(0.417030, abs=1e-6)
    assert lossbook.cross_entropy(x, y, label_smoothing=0.1).item() == pytest.approx(0.513697, abs=1e-6)
    # the seed's code: 1 - eps on the true class, eps / (C - 1) on every other class
    eps, c = 0.1, 3
    q = torch.full((1, c), eps / (c - 1), dtype=torch.float64)
    q[0, 0] = 1 - eps
    assert lossbook.cross_entropy(x, q).item() == pytest.approx(0.562030, abs=1e-6)


@pytest.mark.parametrize("c", [2, 5, 10, 1000])
def test_label_smoothing_reparametrisation(c):
    """Seed code with eps' = eps (C - 1) / C equals torch's label_smoothing=eps."""
    g = torch.Generator().manual_seed(c)
    x = torch.randn(8, c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (8,), generator=g)
    eps = 0.1
    eps2 = eps * (c - 1) / c
    q = torch.full((8, c), eps2 / (c - 1), dtype=torch.float64)
    q[torch.arange(8), y] = 1 - eps2
    torch.testing.assert_close(lossbook.cross_entropy(x, q), F.cross_entropy(x, y, label_smoothing=eps))


def test_stability_errata_e36():
    x = torch.tensor([[0.0, -200.0]], dtype=torch.float32)
    assert lossbook.cross_entropy(x, torch.tensor([1])).item() == pytest.approx(200.0)
    x = torch.tensor([[1000.0, 0.0]], requires_grad=True)
    loss = lossbook.cross_entropy(x, torch.tensor([1]))
    loss.backward()
    assert loss.item() == pytest.approx(1000.0)
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, -1.0]]))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weight", [None, "w"])
def test_float32_precision_at_large_logits(label_smoothing, weight):
    """float32 logits of ±1e4: -log p_y = log Σ exp(z - max) - (z_y - max), PyTorch's order, keeps
    the digits; LSE(z) - z_y cancelled two numbers of 1e4 and was off by ~1e-3."""
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(64, C, generator=g) * 1e4).float()
    x[:, 1] = x[:, 0] + 0.25  # near-ties with a large max: the loss is O(1), its error visible
    t = torch.randint(0, C, (64,), generator=g)
    w = None if weight is None else torch.rand(C, generator=g) + 0.1
    kw = {"reduction": "none", "label_smoothing": label_smoothing, "weight": w}
    truth = F.cross_entropy(x.double(), t, **{**kw, "weight": None if w is None else w.double()})
    ours, theirs = lossbook.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=1.3e-6, atol=1e-5)
    assert (ours.double() - truth).abs().max() <= (theirs.double() - truth).abs().max() + 1e-5


def test_two_class_ce_is_bce_with_logits_s15():
    ce = lossbook.cross_entropy(torch.tensor([0.0, 1.5], dtype=torch.float64), torch.tensor(1))
    bce = F.binary_cross_entropy_with_logits(torch.tensor(1.5, dtype=torch.float64), torch.tensor(1.0,
                                             dtype=torch.float64))
    assert ce.item() == pytest.approx(0.201413, abs=1e-6)
    assert ce.item() == pytest.approx(bce.item(), rel=1e-12)


def test_probability_target_none_shape_e38():
    x = torch.randn(4, 3)
    assert lossbook.cross_entropy(x, torch.rand(4, 3).softmax(1), reduction="none").shape == (4,)


def test_language_model_layouts_e64():
    g = torch.Generator().manual_seed(0)
    B, T, V = 2, 5, 11
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (B, T), generator=g)
    flat = lossbook.cross_entropy(logits.reshape(B * T, V), y.reshape(B * T))
    moved = lossbook.cross_entropy(logits.transpose(1, 2), y)
    torch.testing.assert_close(flat, moved)
    torch.testing.assert_close(flat, F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)))


def test_random_logits_give_about_log_v():
    g = torch.Generator().manual_seed(0)
    V = 1000
    logits = torch.randn(512, V, generator=g, dtype=torch.float64) * 0.01
    y = torch.randint(0, V, (512,), generator=g)
    assert lossbook.cross_entropy(logits, y).item() == pytest.approx(math.log(V), abs=1e-3)


# --------------------------------------------------------------------------------------------
# extreme inputs: the same finite/inf/nan pattern as torch


def _extreme(dtype):
    x = torch.tensor([[1e4, -1e4, 0], [-1e4, 1e4, 0], [0, 0, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    probs = torch.tensor([[0.5, 0.5, 0], [0, 0, 1], [0.2, 0.3, 0.5], [1, 0, 0]], dtype=dtype)
    return x, probs


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("reduction,label_smoothing,weight", list(
    itertools.product(["none", "mean", "sum"], [0.0, 0.1], [False, True])))
def test_extreme_logits_pattern(dtype, sign, reduction, label_smoothing, weight):
    x, probs = _extreme(dtype)
    x = x * sign
    t = torch.tensor([1, 0, 2, 2])
    w = torch.tensor([1.0, 2.0, 0.5], dtype=dtype) if weight else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=label_smoothing)
    tol = dict(rtol=1e-2, atol=1e-2)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, t), kw, **tol)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, probs), kw, **tol)
    log_probs = torch.log_softmax(x.float(), 1).to(dtype)
    assert_matches(lossbook.nll_loss, F.nll_loss, (log_probs, t), dict(weight=w, reduction=reduction), **tol)


def test_float16_sum_overflow_like_torch():
    # six log-normalised rows, each with loss 2e4: the float16 sum (1.2e5) overflows in torch too
    log_probs = torch.tensor([[0.0, -2e4, -2e4]] * 6, dtype=torch.float16)
    t = torch.ones(6, dtype=torch.long)
    assert_matches(lossbook.nll_loss, F.nll_loss, (log_probs, t), {})


def test_smoke_float32_and_float16():
    for dtype in (torch.float32, torch.float16):
        x = torch.randn(16, 10, dtype=dtype, requires_grad=True)
        loss = lossbook.cross_entropy(x, torch.randint(0, 10, (16,)), label_smoothing=0.1)
        loss.backward()
        assert loss.dtype == dtype and x.grad.dtype == dtype and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(C,), (7, C)], ids=str)
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_uint8_class_indices_like_torch(name, shape):
    """torch accepts uint8 class indices (for (C,) and (N, C) inputs); they failed inside gather before."""
    x, t, _, w = _data(shape, seed=8)
    x = x.log_softmax(_class_dim(shape)) if name == "nll_loss" else x
    for kw in ({"reduction": "none"}, {"weight": w}, {"ignore_index": 2, "reduction": "sum"}):
        assert_matches(getattr(lossbook, name), getattr(F, name), (x, t.to(torch.uint8)), kw, grad=(0,))
    # other integer dtypes, which torch refuses, are read as the same indices
    assert torch.equal(getattr(lossbook, name)(x, t.int()), getattr(lossbook, name)(x, t))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_infinite_weight_of_an_ignored_target_is_not_nan(name, label_smoothing):
    """An ignored target indexes class 0 internally: with weight[0] = inf, inf * 0 gave NaN."""
    x, _, _, w = _data((6, C), seed=9)
    x = x.log_softmax(1) if name == "nll_loss" else x
    w[0] = float("inf")
    t = torch.tensor([1, -100, 2, 3, -100, 4])
    kw = {"label_smoothing": label_smoothing} if name == "cross_entropy" else {}
    for r in ("none", "mean", "sum"):
        assert_matches(getattr(lossbook, name), getattr(F, name), (x, t), {"weight": w, "reduction": r, **kw},
                       grad=(0,))
        if not label_smoothing:  # smoothing sums every class's weight: inf for torch too
            assert torch.isfinite(getattr(lossbook, name)(x, t, weight=w, reduction=r, **kw)).all()


# --------------------------------------------------------------------------------------------
# bad inputs


def test_target_shape_mismatch():
    with pytest.raises(ValueError, match=r"target has shape \(3, 2\) but input has shape \(4, 3\); "
                                         r"class-index targets must have shape \(4,\)"):
        lossbook.cross_entropy(torch.randn(4, 3), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target has shape \(4,\).*must have shape \(4, 2\)"):
        lossbook.nll_loss(torch.randn(4, 3, 2).log_softmax(1), torch.zeros(4, dtype=torch.long))


def test_class_index_out_of_range():
    with pytest.raises(ValueError, match=r"class index 3, but class indices must be in \[0, 2\]"):
        lossbook.cross_entropy(torch.randn(4, 3), torch.tensor([0, 1, 3, 1]))
    with pytest.raises(ValueError, match=r"class index -1"):
        lossbook.nll_loss(torch.randn(2, 3).log_softmax(1), torch.tensor([0, -1]))


def test_float_target_with_wrong_shape():
    with pytest.raises(TypeError, match=r"target has dtype torch.float32 and shape \(4,\).*target.long\(\)"):
        lossbook.cross_entropy(torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 1.0]))


def test_integer_target_with_input_shape():
    with pytest.raises(TypeError, match=r"read as class probabilities, which need a floating dtype"):
        lossbook.cross_entropy(torch.randn(4, 3), torch.zeros(4, 3, dtype=torch.long))


def test_weight_of_wrong_length():
    with pytest.raises(ValueError, match=r"weight has shape \(4,\) but input has 3 classes"):
        lossbook.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), weight=torch.ones(4))
    with pytest.raises(ValueError, match=r"weight has shape \(1, 3\)"):
        lossbook.nll_loss(torch.randn(2, 3).log_softmax(1), torch.tensor([0, 1]), weight=torch.ones(1, 3))


def test_other_bad_arguments():
    x, t = torch.randn(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0.0, 1.0\], got 1.5"):
        lossbook.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"reduction must be one of 'none', 'mean', 'sum'; got 'avg'"):
        lossbook.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match=r"ignore_index=0 was given with probability targets"):
        lossbook.cross_entropy(x, torch.rand(2, 3).softmax(1), ignore_index=0)
    with pytest.raises(TypeError, match=r"input must have a floating-point dtype"):
        lossbook.cross_entropy(torch.zeros(2, 3, dtype=torch.long), t)
    with pytest.raises(ValueError, match=r"input has shape \(\) \(0-D\)"):
        lossbook.nll_loss(torch.tensor(1.0), torch.tensor(0))


# --------------------------------------------------------------------------------------------
# pitfall warnings (they never change the result)


def test_nll_fed_raw_logits_warns():
    x, t = torch.randn(8, 5) * 3, torch.randint(0, 5, (8,))
    with pytest.warns(lossbook.PitfallWarning, match="looks like raw logits"):
        got = lossbook.nll_loss(x, t)
    torch.testing.assert_close(got, F.nll_loss(x, t))
    with pytest.warns(lossbook.PitfallWarning, match="not log-normalised"):
        lossbook.nll_loss(-x.abs() - 5, t)


def test_cross_entropy_fed_probabilities_warns():
    x, t = torch.randn(8, 5).softmax(1), torch.randint(0, 5, (8,))
    with pytest.warns(lossbook.PitfallWarning, match="looks like probabilities"):
        got = lossbook.cross_entropy(x, t)
    torch.testing.assert_close(got, F.cross_entropy(x, t))
    with pytest.warns(lossbook.PitfallWarning, match="looks like probabilities"):
        lossbook.cross_entropy(torch.randn(2, 5, 3, 3).softmax(1), torch.randint(0, 5, (2, 3, 3)))


def test_float_target_that_looks_like_indices_warns():
    x = torch.randn(4, 3)
    t = torch.tensor([[2.0, 0, 1], [1, 2, 0], [0, 1, 2], [2, 2, 2]])
    with pytest.warns(lossbook.PitfallWarning, match="whole numbers up to 2"):
        got = lossbook.cross_entropy(x, t)
    torch.testing.assert_close(got, F.cross_entropy(x, t))


def test_no_warning_for_one_hot_targets_and_log_probs():
    x = torch.randn(6, 4)
    t = F.one_hot(torch.randint(0, 4, (6,)), 4).float()
    lossbook.cross_entropy(x, t)  # pytest turns a PitfallWarning into an error
    lossbook.nll_loss(torch.log_softmax(x, 1), t.argmax(1))


# --------------------------------------------------------------------------------------------
# properties


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), c=st.integers(2, 7), k=st.integers(0, 2), scale=st.floats(0.1, 30),
       seed=st.integers(0, 2**16), weighted=st.booleans(), ls=st.floats(0, 1))
def test_cross_entropy_is_nll_of_log_softmax(n, c, k, scale, seed, weighted, ls):
    g = torch.Generator().manual_seed(seed)
    shape = (n, c, *([3] * k))
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
    t = torch.randint(0, c, (n, *([3] * k)), generator=g)
    w = torch.rand(c, generator=g, dtype=torch.float64) + 0.1 if weighted else None
    ce = lossbook.cross_entropy(x, t, w, reduction="none")
    nll = lossbook.nll_loss(lossbook.log_softmax(x, dim=1), t, w, reduction="none")
    torch.testing.assert_close(ce, nll)
    # smoothing = a convex mix of the index loss and the loss against the uniform distribution
    uniform = torch.full_like(x, 1.0 / c)
    mixed = (1 - ls) * ce + ls / c * lossbook.cross_entropy(x, uniform * c, w, reduction="none") \
        if w is None else None
    if mixed is not None:
        torch.testing.assert_close(lossbook.cross_entropy(x, t, reduction="none", label_smoothing=ls), mixed)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), c=st.integers(2, 7), seed=st.integers(0, 2**16), shift=st.floats(-50, 50))
def test_shift_invariance_and_non_negativity(n, c, seed, shift):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64)
    t = torch.randint(0, c, (n,), generator=g)
    a = lossbook.cross_entropy(x, t, reduction="none")
    torch.testing.assert_close(a, lossbook.cross_entropy(x + shift, t, reduction="none"))
    assert (a >= 0).all()


@pytest.mark.parametrize("path", ["definition", "fast"])
def test_double_backward_matches_torch(path):
    """The gradient-penalty pattern: the incoming gradient does not require grad, the logits do."""
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mode = lossbook.fast.always if path == "fast" else lossbook.fast.definition_only
    for target in (torch.tensor([0, 3, 1]), torch.rand(3, 4, dtype=torch.float64).softmax(1)):
        penalties = []
        for fn in (lossbook.cross_entropy, F.cross_entropy):
            with mode():
                (g,) = torch.autograd.grad(fn(2 * torch.tanh(z), target), z, create_graph=True)
            penalties.append(torch.autograd.grad((g**2).sum(), z)[0])
        torch.testing.assert_close(penalties[0], penalties[1])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_infinite_and_nan_logits_pattern(label_smoothing, reduction):
    inf = float("inf")
    x = torch.tensor([[inf, 0, 1], [-inf, -inf, -inf], [-inf, 0, 1], [float("nan"), 0, 0], [1, 2, 3]],
                     dtype=torch.float64)
    t = torch.tensor([1, 0, 2, 1, 0])
    kw = dict(label_smoothing=label_smoothing, reduction=reduction)
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, t), kw)


def test_weight_requiring_grad_with_index_targets_is_refused_like_torch():
    x, t = torch.randn(3, 4), torch.tensor([0, 1, 2])
    w = torch.rand(4, requires_grad=True)
    with pytest.raises(RuntimeError):
        F.cross_entropy(x, t, weight=w)
    with pytest.raises(ValueError, match=r"weight requires grad.*pass weight.detach\(\)"):
        lossbook.cross_entropy(x, t, weight=w)
    lossbook.cross_entropy(x, t, weight=w.detach())


# --------------------------------------------------------------------------------------------
# the backward consumes the forward's exponentials in place


@pytest.fixture
def fast_path_everywhere():
    """The fast path at every size, so that small inputs exercise it."""
    with lossbook.fast.always():
        yield


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_second_backward_with_retain_graph_gives_the_same_gradient(label_smoothing, fast_path_everywhere):
    x, t, _, w = _data((3, C, 4, 2))
    t[0, 0, 0] = 9  # ignored
    xs = [x.clone().requires_grad_() for _ in range(2)]
    ours = lossbook.cross_entropy(xs[0], t, weight=w, ignore_index=9, label_smoothing=label_smoothing)
    ref = F.cross_entropy(xs[1], t, weight=w, ignore_index=9, label_smoothing=label_smoothing)
    for _ in range(3):  # the first backward uses the kept exponentials, the next ones recompute them
        ours.backward(retain_graph=True)
        ref.backward(retain_graph=True)
        torch.testing.assert_close(xs[0].grad, xs[1].grad)


def test_forward_without_gradient_keeps_no_logit_sized_tensor(monkeypatch, fast_path_everywhere):
    x, t, _, _ = _data((7, C))
    from lossbook.fast.cross_entropy import _CrossEntropyIndex

    seen = []
    forward = _CrossEntropyIndex.forward

    def spy(self, state, *args):
        out = forward(self, state, *args)
        seen.append(state.e)
        return out

    monkeypatch.setattr(_CrossEntropyIndex, "forward", spy)
    with torch.no_grad():
        lossbook.cross_entropy(x.clone().requires_grad_(), t)
    lossbook.cross_entropy(x, t)  # x does not require grad
    lossbook.cross_entropy(x.clone().requires_grad_(), t)
    assert seen[0] is None and seen[1] is None
    assert seen[2] is not None and seen[2].shape == x.shape


@pytest.mark.parametrize("shape", [(11, C), (4, C, 3, 2)], ids=str)
def test_blocked_path_matches_torch(monkeypatch, shape, fast_path_everywhere):
    from lossbook.fast import kernels as _kernels

    monkeypatch.setattr(_kernels, "BLOCK_BYTES", 8 * 7)  # blocks of about 7 float64 values
    x, t, _, w = _data(shape)
    assert len(_kernels.blocks(x, (1,))) > 1
    for kw in ({}, {"weight": w, "label_smoothing": 0.1, "ignore_index": 2}):
        assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, t), kw)
    x[1] = float("inf")
    x[2, 0] = -float("inf")
    assert_matches(lossbook.cross_entropy, F.cross_entropy, (x, t), {"reduction": "none"})
