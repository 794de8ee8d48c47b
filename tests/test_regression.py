"""lossbook.regression against PyTorch (float64 value + gradient), worked numbers, extremes, errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.fast import regression as FR
from lossbook.testing import assert_matches, compare, silenced

D64 = torch.float64
REDUCTIONS = ("none", "mean", "sum")
SHAPES = [(), (7,), (4, 3), (2, 3, 5), (0,), (3, 0)]


def _data(shape, seed=0, scale=2.0, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * scale,
            torch.randn(shape, generator=g, dtype=dtype) * scale)


_torch_quiet = silenced  # lossbook.testing.silenced: warnings off for the reference calls


# --------------------------------------------------------------------------------------------
# equality with PyTorch in float64, every option combination


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["l1_loss", "mse_loss"])
def test_l1_mse_match_torch(name, reduction, weighted, shape):
    x, y = _data(shape)
    kwargs = {"reduction": reduction}
    if weighted:
        kwargs["weight"] = torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=D64)
    assert_matches(getattr(lossbook, name), getattr(F, name), (x, y), kwargs)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [0.1, 1.0, 2.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_huber_matches_torch(delta, reduction, weighted, shape):
    x, y = _data(shape)
    kwargs = {"reduction": reduction, "delta": delta}
    if weighted:
        kwargs["weight"] = torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=D64)
    assert_matches(lossbook.huber_loss, F.huber_loss, (x, y), kwargs)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.1, 1.0, 2.5])
def test_smooth_l1_matches_torch(beta, reduction, shape):
    x, y = _data(shape)
    assert_matches(lossbook.smooth_l1_loss, F.smooth_l1_loss, (x, y), {"reduction": reduction, "beta": beta})


def test_positional_arguments_follow_torch_order():
    x, y = _data((5,))
    assert_matches(lossbook.huber_loss, F.huber_loss, (x, y, "sum", 0.5), grad=False)
    assert_matches(lossbook.smooth_l1_loss, _torch_quiet(F.smooth_l1_loss), (x, y), {"reduction": "sum", "beta": 0.5})
    t = torch.poisson(torch.full((5,), 3.0, dtype=D64))
    assert_matches(lossbook.poisson_nll_loss, F.poisson_nll_loss, (x.abs(), t, False, True), grad=[0])
    v = torch.rand(5, dtype=D64)
    assert_matches(lossbook.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, v, True, 1e-3, "sum"))


def test_residuals_on_the_branch_boundaries_match_torch():
    # |d| exactly delta / beta, exactly 0 (subgradients), for value and gradient
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=D64)
    y = torch.zeros_like(x)
    for r in REDUCTIONS:
        assert_matches(lossbook.l1_loss, F.l1_loss, (x, y), {"reduction": r})
        for t in (0.5, 1.0, 2.0):
            assert_matches(lossbook.huber_loss, F.huber_loss, (x, y), {"reduction": r, "delta": t})
            assert_matches(lossbook.smooth_l1_loss, F.smooth_l1_loss, (x, y), {"reduction": r, "beta": t})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kwargs", [("l1_loss", {}), ("mse_loss", {}), ("huber_loss", {"delta": 0.5}),
                                         ("smooth_l1_loss", {"beta": 2.0})])
def test_large_inputs_take_the_blocked_path_and_still_match_torch(name, kwargs, reduction, monkeypatch):
    # more elements than one block, a partial last block, and a non-contiguous input (the block
    # size is made small so that the blocked forward and backward run on small tensors)
    monkeypatch.setattr(FR, "BLOCK", 256)
    monkeypatch.setattr(lossbook.fast._state, "mode", "always", raising=False)  # the fast path at any size
    n = 2 * FR.BLOCK + 123
    x, y = _data((n,), seed=11)
    assert_matches(getattr(lossbook, name), getattr(F, name), (x, y), {"reduction": reduction, **kwargs})
    xt, yt = _data((3, n // 3 + 1), seed=12)
    assert_matches(getattr(lossbook, name), getattr(F, name), (xt.t(), yt.t()), {"reduction": reduction, **kwargs})
    x32, y32 = x.float(), y.float()
    assert_matches(getattr(lossbook, name), getattr(F, name), (x32, y32), {"reduction": reduction, **kwargs},
                   rtol=1e-5, atol=1e-6)


def test_blocked_float16_mean_does_not_overflow(monkeypatch):
    monkeypatch.setattr(FR, "BLOCK", 256)
    monkeypatch.setattr(lossbook.fast._state, "mode", "always", raising=False)  # the fast path at any size
    x = torch.full((3000,), 30.0, dtype=torch.float16)  # squared error 900 each: the sum overflows float16
    y = torch.zeros_like(x)
    for name in ("mse_loss", "huber_loss", "l1_loss"):
        ours, ref = getattr(lossbook, name)(x, y), getattr(F, name)(x, y)
        assert ours.dtype == torch.float16 and torch.isfinite(ours) and torch.allclose(ours.float(), ref.float())


def test_log_cosh_blocked_reduction_equals_the_unreduced_sum(monkeypatch):
    monkeypatch.setattr(FR, "BLOCK", 256)
    monkeypatch.setattr(lossbook.fast._state, "mode", "always", raising=False)  # the fast path at any size
    x, y = _data((2 * FR.BLOCK + 7,), seed=13, scale=50.0)
    none = lossbook.log_cosh_loss(x, y, reduction="none")
    assert torch.allclose(lossbook.log_cosh_loss(x, y, reduction="sum"), none.sum(), rtol=1e-12)
    assert torch.allclose(lossbook.log_cosh_loss(x, y), none.mean(), rtol=1e-12)


# Gaussian NLL: every var layout PyTorch accepts
GAUSS_CASES = [
    ((6, 3), (6, 3)),       # heteroscedastic
    ((6, 3), (6,)),         # one fewer dimension: unsqueezed
    ((6, 3), (6, 1)),       # one dimension of size 1
    ((4, 3, 5), (4, 1, 5)),  # one size-1 dimension in the middle
    ((4, 3, 5), (4, 3)),
    ((7,), (7,)),
    ((7,), ()),             # unbatched input, scalar-tensor variance
    ((6, 3), "float"),
]


@pytest.mark.parametrize("shapes", GAUSS_CASES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("eps", [1e-6, 0.3])
def test_gaussian_nll_matches_torch(shapes, reduction, full, eps):
    in_shape, var_shape = shapes
    x, y = _data(in_shape)
    g = torch.Generator().manual_seed(2)
    var = 0.7 if var_shape == "float" else torch.rand(var_shape, generator=g, dtype=D64) * 2 + 0.01
    assert_matches(lossbook.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, var),
                   {"full": full, "eps": eps, "reduction": reduction})


def test_gaussian_nll_clamped_variance_keeps_torchs_gradient():
    # entries below eps are clamped in value, but the gradient flows as if unclamped (PyTorch)
    x, y = _data((5,))
    var = torch.tensor([0.0, 1e-9, 1e-3, 0.5, 2.0], dtype=D64)
    for r in REDUCTIONS:
        assert_matches(lossbook.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, var), {"eps": 1e-2, "reduction": r})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("eps", [1e-8, 0.1])
def test_poisson_nll_matches_torch(reduction, log_input, full, eps):
    g = torch.Generator().manual_seed(3)
    rate = torch.rand(4, 6, generator=g, dtype=D64) * 5 + 0.05
    target = torch.poisson(rate, generator=g)
    target[0, :3] = torch.tensor([0.0, 1.0, 2.0], dtype=D64)  # both sides of the Stirling cut-off
    x = rate.log() if log_input else rate
    kwargs = {"log_input": log_input, "full": full, "eps": eps, "reduction": reduction}
    assert_matches(lossbook.poisson_nll_loss, F.poisson_nll_loss, (x, target), kwargs)


# --------------------------------------------------------------------------------------------
# gradcheck (first and second order: the hand-written backward and its double backward)


@pytest.mark.parametrize("fn,kwargs", [
    (lossbook.l1_loss, {}), (lossbook.mse_loss, {}), (lossbook.huber_loss, {"delta": 0.7}),
    (lossbook.smooth_l1_loss, {"beta": 0.7}), (lossbook.log_cosh_loss, {}),
    (lossbook.quantile_loss, {"quantile": 0.3}), (lossbook.rmse_loss, {}),
    (lossbook.huber_loss, {"delta": 0.7, "weight": torch.rand(3, 4, dtype=D64)}),
], ids=lambda v: getattr(v, "__name__", ""))
def test_gradcheck(fn, kwargs):
    x, y = _data((3, 4), seed=5)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, **kwargs), (x, y))
    if fn is not lossbook.quantile_loss:
        assert torch.autograd.gradgradcheck(lambda a, b: fn(a, b, **kwargs), (x, y))
    if "reduction" in fn.__code__.co_varnames and fn is not lossbook.rmse_loss:
        assert torch.autograd.gradcheck(lambda a, b: fn(a, b, reduction="none", **kwargs), (x, y))


def test_gradcheck_nlls():
    x, y = _data((3, 4), seed=6)
    var = (torch.rand(3, 1, dtype=D64) + 0.2).requires_grad_(True)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, v: lossbook.gaussian_nll_loss(a, y, v, full=True), (x, var))
    t = torch.poisson(torch.full((3, 4), 2.0, dtype=D64))
    assert torch.autograd.gradcheck(lambda a: lossbook.poisson_nll_loss(a, t, full=True), (x,))


# --------------------------------------------------------------------------------------------
# the chapter's worked numbers (seeds, checked in ERRATA part B)


def test_worked_l1_numbers_b01_b03():
    p = torch.tensor([[1.0], [2.5], [3.3], [4.8]])
    y = torch.tensor([[1.2], [2.3], [4.0], [4.5]])
    assert lossbook.l1_loss(p, y).item() == pytest.approx(0.35, abs=1e-6)
    assert lossbook.l1_loss(p, y, reduction="sum").item() == pytest.approx(1.4, abs=1e-6)
    none = lossbook.l1_loss(p, y, reduction="none")
    assert none.shape == (4, 1)
    assert torch.allclose(none.flatten(), torch.tensor([0.2, 0.2, 0.7, 0.3]), atol=1e-6)


def test_worked_l1_gradient_b22_b23():
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6]], requires_grad=True)
    y = torch.tensor([[1.5, 2, 4.5], [3, 5, 8]])
    loss = lossbook.l1_loss(x, y)
    assert loss.item() == pytest.approx(5 / 6, abs=1e-6)
    loss.backward()
    expected = torch.tensor([[-1.0, 0, -1], [1, 0, -1]]) / 6
    assert torch.allclose(x.grad, expected, atol=1e-6)


def test_worked_huber_smooth_l1_b24_b27():
    x, z = torch.tensor([0.1, 5.0]), torch.zeros(2)
    assert lossbook.huber_loss(x, z).item() == pytest.approx(2.2525, abs=1e-6)
    assert torch.allclose(lossbook.huber_loss(x, z, reduction="none"), torch.tensor([0.005, 4.5]), atol=1e-6)
    assert lossbook.smooth_l1_loss(x, z).item() == pytest.approx(2.2525, abs=1e-6)
    assert lossbook.huber_loss(x, z, delta=2.0).item() == pytest.approx(4.0025, abs=1e-6)
    assert lossbook.smooth_l1_loss(x, z, beta=2.0).item() == pytest.approx(2.00125, abs=1e-6)
    # E56: the small-error branch is half the squared error
    assert lossbook.huber_loss(x[:1], z[:1]).item() == pytest.approx(0.005, abs=1e-9)
    assert lossbook.mse_loss(x[:1], z[:1]).item() == pytest.approx(0.01, abs=1e-9)
    # E23: large-error gradients are delta (Huber) and 1 (SmoothL1)
    e = torch.tensor([10.0], requires_grad=True)
    (gh,) = torch.autograd.grad(lossbook.huber_loss(e, torch.zeros(1), delta=2.0), e)
    (gs,) = torch.autograd.grad(lossbook.smooth_l1_loss(e, torch.zeros(1), beta=2.0), e)
    assert (gh.item(), gs.item()) == (2.0, 1.0)


def test_worked_quantile_and_log_cosh_s19_s20_b37():
    out = lossbook.quantile_loss(torch.tensor([8.0, 12.0]), torch.tensor([10.0, 10.0]), quantile=0.9,
                                 reduction="none")
    assert torch.allclose(out, torch.tensor([1.8, 0.2]), atol=1e-6)
    preds = torch.tensor([[1.0, 2, 3], [0, 1, 2]])
    for target in (torch.tensor([[2.5], [0.5]]), torch.tensor([2.5, 0.5])):
        assert lossbook.quantile_loss(preds, target, quantile=[0.1, 0.5, 0.9]).item() == pytest.approx(0.15, abs=1e-6)
    assert lossbook.log_cosh_loss(torch.tensor([0.1]), torch.zeros(1)).item() == pytest.approx(0.004992, abs=1e-6)


def test_mse_overflow_is_inf_with_finite_gradient_e55():
    x = torch.tensor([3e19, -3e19], requires_grad=True)
    loss = lossbook.mse_loss(x, torch.zeros(2))
    assert loss.item() == math.inf
    (g,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(g).all()
    assert compare(F.mse_loss(x, torch.zeros(2)), loss) is None


# --------------------------------------------------------------------------------------------
# extreme inputs: same finite / inf / NaN pattern as PyTorch, float16 included

EXTREME = torch.tensor([-1e4, -90.0, -12.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 12.0, 90.0, 1e4,
                        math.inf, -math.inf, math.nan])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("name,kwargs", [
    ("l1_loss", {}), ("mse_loss", {}), ("huber_loss", {"delta": 1.0}), ("smooth_l1_loss", {"beta": 1.0}),
    ("smooth_l1_loss", {"beta": 0.0}),
])
def test_extreme_inputs_same_pattern_as_torch(name, kwargs, dtype):
    x = EXTREME.to(dtype)
    y = torch.zeros_like(x)
    tol = {"rtol": 1e-3, "atol": 1e-3} if dtype == torch.float16 else {"rtol": 1e-6, "atol": 1e-8}
    for r in ("none", "sum"):
        assert_matches(getattr(lossbook, name), getattr(F, name), (x, y), {"reduction": r, **kwargs}, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_low_precision_smoke(dtype):
    x, y = _data((64,), dtype=dtype)
    for name in ("l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss", "gaussian_nll_loss", "poisson_nll_loss"):
        args = (x, y, torch.ones_like(x)) if name == "gaussian_nll_loss" else (x, y.abs().round())
        if name in ("l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss"):
            args = (x, y)
        ours, ref = getattr(lossbook, name)(*args), getattr(F, name)(*args)
        assert ours.dtype == dtype
        assert torch.allclose(ours.double(), ref.double(), rtol=2e-3, atol=2e-3), name


# --------------------------------------------------------------------------------------------
# log-cosh: stable everywhere, gradient tanh, versus the seed's versions (E14)


def test_log_cosh_matches_float64_reference():
    e = torch.cat([torch.logspace(-8, 2.8, 200, dtype=D64), -torch.logspace(-8, 2.8, 200, dtype=D64)])
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40  # an independent oracle: log(cosh) in 40-digit arithmetic
    ref = torch.tensor([float(mpmath.log(mpmath.cosh(mpmath.mpf(v)))) for v in e.tolist()], dtype=D64)
    got = lossbook.log_cosh_loss(e, torch.zeros_like(e), reduction="none")
    assert torch.allclose(got, ref, rtol=1e-12, atol=0)  # full relative precision, even for tiny e


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16], ids=str)
def test_log_cosh_is_finite_and_has_tanh_gradient(dtype):
    e64 = torch.tensor([-6e4, -1e4, -100.0, -89.5, -11.8, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 11.8, 12.0,
                        89.5, 100.0, 1e4, 6e4], dtype=D64)
    e = e64.to(dtype).requires_grad_(True)
    loss = lossbook.log_cosh_loss(e, torch.zeros_like(e), reduction="none")
    (g,) = torch.autograd.grad(loss.sum(), e)
    assert torch.isfinite(loss).all() and torch.isfinite(g).all()
    a = e64.abs()
    ref = a + torch.log1p(torch.exp(-2 * a)) - math.log(2)  # float64 reference, no overflow
    tol = {torch.float16: 2e-3, torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    assert torch.allclose(loss.double(), ref, rtol=tol, atol=tol)
    assert torch.allclose(g.double(), torch.tanh(e64), rtol=tol, atol=tol)


def test_seed_log_cosh_versions_fail_where_ours_does_not():
    # the seed's naive version: inf loss and NaN gradient at e=90 (float32) and at 11.8 (float16)
    for dtype, e0 in ((torch.float32, 90.0), (torch.float16, 11.8)):
        e = torch.tensor([e0], dtype=dtype, requires_grad=True)
        naive = torch.log(torch.cosh(e))
        assert torch.isinf(naive).all()
        (g,) = torch.autograd.grad(naive.sum(), e)
        assert torch.isnan(g).all()
    # the seed's thresholded version: correct forward at 90 in float32, but NaN gradient
    e = torch.tensor([90.0], requires_grad=True)
    thresholded = torch.where(e.abs() < 12, torch.log(torch.cosh(e)), e.abs() - 0.693147)
    (g,) = torch.autograd.grad(thresholded.sum(), e)
    assert torch.isfinite(thresholded).all() and torch.isnan(g).all()
    ours = lossbook.log_cosh_loss(e, torch.zeros(1))
    (g,) = torch.autograd.grad(ours, e)
    assert g.item() == 1.0


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_log_cosh_bounds(e):
    t = torch.tensor([e], dtype=D64)
    v = lossbook.log_cosh_loss(t, torch.zeros(1, dtype=D64)).item()
    a = abs(e)
    assert a - math.log(2) - 1e-12 <= v <= min(a * a / 2, a) + 1e-12


# --------------------------------------------------------------------------------------------
# RMSE


def test_rmse_nan_empty_and_bad_eps():
    """A NaN input or an empty one gives NaN (sqrt of torch's mse), not 0; eps=nan/inf is refused."""
    x, y = torch.tensor([1.0, float("nan")], dtype=D64), torch.zeros(2, dtype=D64)
    assert compare(F.mse_loss(x, y).sqrt(), lossbook.rmse_loss(x, y)) is None
    assert lossbook.rmse_loss(x, y).isnan()
    e = torch.zeros(0, dtype=D64)
    assert lossbook.rmse_loss(e, e).isnan() and F.mse_loss(e, e).sqrt().isnan()
    assert lossbook.rmse_loss(x, y, eps=1e-3).isnan()
    for bad, why in ((float("nan"), ">= 0"), (-1.0, ">= 0"), (float("inf"), "finite")):
        with pytest.raises(ValueError, match=rf"eps must be {why}, got {bad}"):
            lossbook.rmse_loss(y, y, eps=bad)


def test_rmse_value_and_perfect_fit_gradient_e20():
    x, y = _data((4, 3))
    assert torch.allclose(lossbook.rmse_loss(x, y), F.mse_loss(x, y).sqrt())
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    naive = F.mse_loss(p, p.detach()).sqrt()
    (gn,) = torch.autograd.grad(naive, p)
    assert torch.isnan(gn).all()  # the seed's version
    (g,) = torch.autograd.grad(lossbook.rmse_loss(p, p.detach()), p)
    assert torch.equal(g, torch.zeros(2))
    assert lossbook.rmse_loss(p, p.detach()).item() == 0.0
    (g,) = torch.autograd.grad(lossbook.rmse_loss(p, p.detach(), eps=1e-8), p)
    assert torch.equal(g, torch.zeros(2))
    assert lossbook.rmse_loss(p, p.detach(), eps=1e-8).item() == pytest.approx(1e-4)
    assert_matches(lambda a, b: lossbook.rmse_loss(a, b), lambda a, b: F.mse_loss(a, b).sqrt(), (x, y))


# --------------------------------------------------------------------------------------------
# quantile


def test_quantile_multi_equals_mean_of_single():
    g = torch.Generator().manual_seed(7)
    pred = torch.randn(5, 2, 3, generator=g, dtype=D64)
    target = torch.randn(5, 2, generator=g, dtype=D64)
    qs = [0.1, 0.5, 0.9]
    each = [lossbook.quantile_loss(pred[..., k], target, quantile=q, reduction="none") for k, q in enumerate(qs)]
    none = lossbook.quantile_loss(pred, target, quantile=torch.tensor(qs, dtype=D64), reduction="none")
    assert none.shape == (5, 2, 3)
    assert torch.allclose(none, torch.stack(each, -1))
    assert torch.allclose(lossbook.quantile_loss(pred, target.unsqueeze(-1), quantile=qs, reduction="sum"),
                          none.sum())


def test_quantile_minimiser_is_the_sample_quantile():
    g = torch.Generator().manual_seed(8)
    y = torch.randn(2001, generator=g, dtype=D64)
    grid = torch.linspace(-2.5, 2.5, 5001, dtype=D64)
    for q in (0.1, 0.5, 0.9):
        losses = lossbook.quantile_loss(grid[:, None].expand(-1, y.numel()), y.expand(grid.numel(), -1),
                                        quantile=q, reduction="none").mean(1)
        best = grid[losses.argmin()]
        assert abs(best - torch.quantile(y, q)) < 2e-3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=8))
def test_identities(values):
    x = torch.tensor(values, dtype=D64)
    y = torch.zeros_like(x)
    for delta in (0.5, 1.0, 2.0):
        assert torch.allclose(lossbook.huber_loss(x, y, reduction="none", delta=delta),
                              delta * lossbook.smooth_l1_loss(x, y, reduction="none", beta=delta))
    assert torch.equal(lossbook.smooth_l1_loss(x, y, beta=0.0, reduction="none"), lossbook.l1_loss(x, y, reduction="none"))
    assert torch.allclose(lossbook.quantile_loss(x, y, quantile=0.5, reduction="none"),
                          0.5 * lossbook.l1_loss(x, y, reduction="none"))


# --------------------------------------------------------------------------------------------
# bad inputs


def test_shape_mismatch_is_refused_not_broadcast():
    x, y = torch.zeros(4, 1), torch.zeros(4)
    for name in ("log_cosh_loss", "rmse_loss"):  # lossbook's own losses refuse the silent broadcast
        with pytest.raises(ValueError, match=r"target has shape \(4,\) but input has shape \(4, 1\)"):
            getattr(lossbook, name)(x, y)
    # PyTorch broadcasts this to (4, 4) with only a warning
    with pytest.warns(UserWarning, match="broadcasting"):
        assert F.mse_loss(x, y, reduction="none").shape == (4, 4)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss",
                                  "gaussian_nll_loss"])
def test_torch_named_losses_broadcast_like_torch_with_a_pitfall_warning(name):
    """A torch-named loss gives torch's broadcast result (a PitfallWarning says so), never a refusal."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 1, generator=g, dtype=D64), torch.randn(4, generator=g, dtype=D64).abs()
    for x, y in ((a, b), (b, a)):  # (4, 1) against (4,) and the other way round
        var = (torch.rand(x.shape, generator=g, dtype=D64) + 0.5,) if name == "gaussian_nll_loss" else ()
        for r in ("none", "mean", "sum"):
            with pytest.warns(lossbook.PitfallWarning, match=r"they broadcast to \(4, 4\)"):
                assert_matches(getattr(lossbook, name), silenced(getattr(F, name)), (x, y, *var), {"reduction": r})
    extra = (torch.ones(4, 1, 2, dtype=D64),) if name == "gaussian_nll_loss" else ()
    with pytest.raises(ValueError, match=r"target has shape \(3,\) but input has shape \(4, 1, 2\)"):
        getattr(lossbook, name)(torch.zeros(4, 1, 2, dtype=D64), torch.zeros(3, dtype=D64), *extra)
    with pytest.raises(RuntimeError):
        silenced(getattr(F, name))(torch.zeros(4, 1, 2, dtype=D64), torch.zeros(3, dtype=D64), *extra)  # torch too


def test_quantile_refuses_the_e21_broadcast():
    with pytest.raises(ValueError, match=r"target has shape \(2,\) but input has shape \(2, 1\)"):
        lossbook.quantile_loss(torch.zeros(2, 1), torch.zeros(2), quantile=0.9)
    with pytest.raises(ValueError, match=r"with 3 quantiles target must be \(2,\) or \(2, 1\)"):
        lossbook.quantile_loss(torch.zeros(2, 3), torch.zeros(3), quantile=[0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"input has shape \(2, 2\) but with 3 quantiles it must be \(\*, 3\)"):
        lossbook.quantile_loss(torch.zeros(2, 2), torch.zeros(2), quantile=[0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"quantile must be in \(0.0, 1.0\), got 1.5"):
        lossbook.quantile_loss(torch.zeros(2), torch.zeros(2), quantile=1.5)
    with pytest.raises(ValueError, match=r"every quantile must be in \(0, 1\)"):
        lossbook.quantile_loss(torch.zeros(2, 2), torch.zeros(2), quantile=[0.0, 0.5])


def test_bad_hyper_parameters_and_dtypes():
    x, y = torch.zeros(3), torch.zeros(3)
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        lossbook.huber_loss(x, y, delta=0)
    with pytest.raises(RuntimeError, match="non-positive values for delta"):
        F.huber_loss(x, y, delta=0)  # PyTorch refuses it too
    with pytest.raises(ValueError, match="beta must be >= 0, got -1"):
        lossbook.smooth_l1_loss(x, y, beta=-1)
    # NaN fails every comparison: refused (PyTorch refuses both too), not silently accepted
    with pytest.raises(ValueError, match="delta must be > 0, got nan"):
        lossbook.huber_loss(x, y, delta=float("nan"))
    with pytest.raises(ValueError, match="beta must be >= 0, got nan"):
        lossbook.smooth_l1_loss(x, y, beta=float("nan"))
    for fn, kw in ((F.huber_loss, {"delta": float("nan")}), (F.smooth_l1_loss, {"beta": float("nan")})):
        with pytest.raises(RuntimeError):
            fn(x, y, **kw)
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'; got 'avg'"):
        lossbook.mse_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of 'mean'"):
        lossbook.rmse_loss(x, y, reduction="none")
    with pytest.raises(TypeError, match="input must have a floating-point dtype, got torch.int64"):
        lossbook.l1_loss(torch.zeros(3, dtype=torch.long), y)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        lossbook.mse_loss([1.0, 2.0], y)
    with pytest.raises(ValueError, match=r"weight has shape \(1,\) but input has shape \(3,\)"):
        lossbook.l1_loss(x, y, weight=torch.ones(1))


def test_gaussian_var_errors():
    x, y = torch.zeros(4, 3), torch.zeros(4, 3)
    with pytest.raises(ValueError, match="var has negative entries"):
        lossbook.gaussian_nll_loss(x, y, -torch.ones(4, 3))
    with pytest.raises(ValueError, match="negative entry"):
        F.gaussian_nll_loss(x, y, -torch.ones(4, 3))  # PyTorch refuses it too
    with pytest.raises(ValueError, match="var must be non-negative, got -1.0"):
        lossbook.gaussian_nll_loss(x, y, -1.0)
    for bad in [(3,), (4, 2), (1, 1), (4, 3, 1)]:
        with pytest.raises(ValueError, match=rf"var has shape \({bad[0]},"):
            lossbook.gaussian_nll_loss(x, y, torch.ones(bad))
        with pytest.raises(ValueError):
            F.gaussian_nll_loss(x, y, torch.ones(bad))  # and PyTorch too
