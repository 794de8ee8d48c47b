"""lossbook.softmax: logsumexp, softmax and log_softmax against PyTorch (values, gradients, edge cases)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.fast import kernels as K
from lossbook.testing import assert_matches, compare, finite_pattern

inf, nan = math.inf, math.nan

PAIRS = [(lossbook.softmax, torch.softmax), (lossbook.log_softmax, torch.log_softmax)]
PAIR_IDS = ["softmax", "log_softmax"]
SHAPES = [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 5), (1, 7)]


def _x(*shape, scale=3.0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).mul(scale).to(dtype)


# ------------------------------------------------------------------ float64: every shape and dim


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ours, ref", PAIRS, ids=PAIR_IDS)
def test_matches_torch_every_dim(ours, ref, shape):
    x = _x(*shape)
    for dim in range(-x.dim(), x.dim()):
        assert_matches(ours, ref, (x,), {"dim": dim})


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_logsumexp_every_dim_and_keepdim(shape):
    x = _x(*shape)
    for dim, keepdim in itertools.product(range(-x.dim(), x.dim()), (False, True)):
        assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": dim, "keepdim": keepdim})


@pytest.mark.parametrize("dims", [(0, 1), (1, -1), (0, 2, 3), (-4, -3, -2, -1), [2, 0]], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp_tuple_dims(dims, keepdim):
    x = _x(2, 3, 4, 5)
    assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": dims, "keepdim": keepdim})


@pytest.mark.parametrize("ours, ref", PAIRS, ids=PAIR_IDS)
def test_non_contiguous_input(ours, ref):
    x = _x(4, 6, 5).transpose(0, 2)[:, ::2]
    assert not x.is_contiguous()
    for dim in range(3):
        assert_matches(ours, ref, (x,), {"dim": dim})
        assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": dim})


def test_inputs_are_not_modified():
    x = _x(3, 5)
    before = x.clone()
    for fn in (lossbook.softmax, lossbook.log_softmax, lossbook.logsumexp):
        y = x.clone().requires_grad_()
        fn(y, dim=1).backward(torch.ones_like(fn(x, dim=1)))
        assert torch.equal(y.detach(), before)
    assert torch.equal(x, before)


# ------------------------------------------------------------------ blocked (cache-sized) path


def _tiny_blocks(monkeypatch, elems):
    """Blocks of about ``elems`` float64 elements instead of megabytes."""
    monkeypatch.setattr(K, "BLOCK_BYTES", 8 * elems)
    monkeypatch.setattr(lossbook.fast._state, "mode", "always", raising=False)  # the fast path at any size


@pytest.mark.parametrize("block", [1, 5, 13])
@pytest.mark.parametrize("shape", [(11, 3), (3, 5, 4), (2, 3, 4, 5)], ids=str)
def test_blocked_path_matches_torch(monkeypatch, block, shape):
    """Large inputs are reduced in blocks of rows; force tiny blocks (ragged last block included)."""
    _tiny_blocks(monkeypatch, block)
    x = _x(*shape)
    assert len(K.blocks(x, (x.dim() - 1,))) > 1
    for xx in (x, x.transpose(0, -1)):
        for dim in range(xx.dim()):
            for ours, ref in PAIRS:
                assert_matches(ours, ref, (xx,), {"dim": dim})
            assert_matches(lossbook.logsumexp, torch.logsumexp, (xx,), {"dim": dim, "keepdim": True})
    assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": (0, -1)})


def test_blocked_path_special_values(monkeypatch):
    _tiny_blocks(monkeypatch, 2)
    x = _x(6, 3)
    x[1] = -inf
    x[2, 0] = inf
    x[3, 1] = nan
    x[4, 2] = -inf
    for ours, ref in PAIRS:
        assert_matches(ours, ref, (x,), {"dim": 1})
    assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": 1})


# ------------------------------------------------------------------ 0-d and empty inputs


@pytest.mark.parametrize("dim", [0, -1])
def test_zero_dim_input(dim):
    x = torch.tensor(2.5, dtype=torch.float64)
    for ours, ref in PAIRS:
        assert_matches(ours, ref, (x,), {"dim": dim})
    for keepdim in (False, True):
        assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": dim, "keepdim": keepdim})


@pytest.mark.parametrize("shape, dim", [((0,), 0), ((0, 3), 0), ((0, 3), 1), ((3, 0), 1), ((3, 0), 0),
                                        ((2, 0, 4), -1)], ids=str)
def test_empty_input(shape, dim):
    x = torch.empty(shape, dtype=torch.float64)
    for ours, ref in PAIRS:
        assert_matches(ours, ref, (x,), {"dim": dim})
    for keepdim in (False, True):
        assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": dim, "keepdim": keepdim})


def test_empty_reduction_is_minus_inf():
    out = lossbook.logsumexp(torch.empty(3, 0), dim=1)
    assert out.shape == (3,) and bool((out == -inf).all())


# ------------------------------------------------------------------ infinities, NaN, huge logits

SPECIAL_ROWS = {
    "all -inf": [-inf, -inf, -inf],
    "one -inf": [-inf, 1.0, 2.0],
    "+inf": [inf, 1.0, 2.0],
    "+inf and -inf": [inf, -inf, 0.0],
    "two +inf": [inf, inf, 0.0],
    "nan": [nan, 1.0, 2.0],
    "+-1e4": [1e4, -1e4, 0.0],
    "1e4 ties": [1e4, 1e4, -1e4],
    "-1e4 row": [-1e4, -1e4 + 1, -1e4 + 2],
}


@pytest.mark.parametrize("row", SPECIAL_ROWS.values(), ids=SPECIAL_ROWS.keys())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_special_values_same_pattern_as_torch(row, dtype):
    """Same values, gradients and NaN/inf pattern as PyTorch (e.g. NaN for a row of all -inf)."""
    x = torch.tensor([row, [0.5, -1.0, 2.0]], dtype=dtype)
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {}
    for ours, ref in PAIRS:
        assert_matches(ours, ref, (x,), {"dim": 1}, **tol)
        assert_matches(ours, ref, (x.T.contiguous(),), {"dim": 0}, **tol)
    # torch's LSE gradient is exp(x - LSE(x)), whose float32 rounding of LSE (|x| ~ 1e4) is off by
    # ~1e-4; lossbook's, softmax(x) from the max-shifted exponentials, is exact: compare it with float64
    grad_tol = {"grad_atol": 5e-4} if dtype == torch.float32 else {}
    for keepdim in (False, True):
        assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": 1, "keepdim": keepdim}, **tol, **grad_tol)
    if torch.isfinite(x).all():
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(lossbook.logsumexp(xg, dim=1).sum(), xg)
        torch.testing.assert_close(g.double(), torch.softmax(x.double(), dim=1), rtol=1e-6, atol=1e-6)


def test_documented_special_values():
    """The docstrings promise these; the pattern test above checks them against torch too."""
    assert lossbook.logsumexp(torch.tensor([-inf, -inf]), dim=0).item() == -inf
    assert lossbook.logsumexp(torch.tensor([inf, 0.0]), dim=0).item() == inf
    assert torch.isnan(lossbook.softmax(torch.tensor([-inf, -inf]), dim=0)).all()
    assert torch.isnan(lossbook.softmax(torch.tensor([inf, 0.0]), dim=0)).all()
    # +-1e4 logits: the stable forms stay finite where exp overflows
    x = torch.tensor([1e4, 0.0, -1e4])
    assert torch.isnan(x.exp() / x.exp().sum()).any()
    assert torch.equal(lossbook.softmax(x, dim=0), torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(lossbook.log_softmax(x, dim=0), torch.tensor([0.0, -1e4, -2e4]))
    assert lossbook.logsumexp(x, dim=0).item() == 1e4


# ------------------------------------------------------------------ half precision and dtype=

HALF = {torch.float16: {"rtol": 5e-3, "atol": 1e-3}, torch.bfloat16: {"rtol": 3e-2, "atol": 1e-2}}


def _half_inputs(dtype):
    x = _x(6, 9, scale=4.0, dtype=dtype)
    x[0, :3] = torch.tensor([60000.0, -60000.0, 3.0]) if dtype == torch.float16 else torch.tensor([1e30, -1e30, 3])
    x[1, 0] = -inf
    x[2] = -inf
    x[3, 4] = inf
    return x


@pytest.mark.parametrize("dtype", list(HALF), ids=str)
@pytest.mark.parametrize("ours, ref", PAIRS, ids=PAIR_IDS)
def test_half_precision_same_pattern(ours, ref, dtype):
    x = _half_inputs(dtype)
    tol = HALF[dtype]
    assert_matches(ours, ref, (x,), {"dim": 1}, rtol=tol["rtol"], atol=tol["atol"],
                   grad_rtol=tol["rtol"] * 4, grad_atol=tol["atol"] * 4)


@pytest.mark.parametrize("dtype", list(HALF), ids=str)
def test_half_precision_logsumexp(dtype):
    x = _half_inputs(dtype)
    tol = HALF[dtype]
    assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": 1}, rtol=tol["rtol"], atol=tol["atol"],
                   grad_rtol=tol["rtol"] * 4, grad_atol=tol["atol"] * 4)


@pytest.mark.parametrize("dtype", list(HALF), ids=str)
@pytest.mark.parametrize("ours, ref", PAIRS, ids=PAIR_IDS)
def test_half_input_with_dtype_float32(ours, ref, dtype):
    """dtype=torch.float32 computes in single precision; the gradient comes back in the input's dtype."""
    x = _half_inputs(dtype)
    assert_matches(ours, ref, (x,), {"dim": 1, "dtype": torch.float32}, rtol=1e-5, atol=1e-6,
                   grad_rtol=HALF[dtype]["rtol"], grad_atol=HALF[dtype]["atol"])
    out = ours(x, dim=1, dtype=torch.float32)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("ours, ref", PAIRS, ids=PAIR_IDS)
def test_dtype_argument_promotes_float32_to_float64(ours, ref):
    x = _x(3, 4, dtype=torch.float32)
    assert_matches(ours, ref, (x,), {"dim": -1, "dtype": torch.float64}, rtol=1e-6, atol=1e-7)
    assert ours(x, dim=-1, dtype=torch.float64).dtype == torch.float64


def test_float16_naive_formula_overflows_but_stable_one_does_not():
    x = torch.tensor([12.0, 10.0, 0.0], dtype=torch.float16)  # exp(12) > 65504, the float16 maximum
    naive = x.exp() / x.exp().sum()
    assert torch.isnan(naive).any()
    ours = lossbook.softmax(x, dim=0)
    assert torch.isfinite(ours).all()
    assert compare(torch.softmax(x.double(), 0).half(), ours, rtol=2e-3, atol=1e-4) is None


# ------------------------------------------------------------------ integer inputs


@pytest.mark.parametrize("ours, ref", PAIRS, ids=PAIR_IDS)
def test_integer_input_needs_dtype(ours, ref):
    x = torch.tensor([[1, 2, 3], [0, 0, 5]])
    with pytest.raises(TypeError, match=rf"{ours.__name__}: input has dtype torch.int64, but .* floating-point"):
        ours(x, dim=1)
    with pytest.raises((RuntimeError, NotImplementedError)):
        ref(x, dim=1)  # PyTorch has no integer kernel either
    assert_matches(ours, ref, (x,), {"dim": 1, "dtype": torch.float64})


@pytest.mark.parametrize("x", [torch.tensor([[1, 2, 3], [0, 0, 5]]), torch.tensor([True, False])], ids=["int", "bool"])
def test_logsumexp_promotes_integers_like_torch(x):
    out = lossbook.logsumexp(x, dim=-1)
    assert out.dtype == torch.get_default_dtype()
    assert compare(torch.logsumexp(x, dim=-1), out) is None


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize("fn", [lossbook.softmax, lossbook.log_softmax], ids=["softmax", "log_softmax"])
def test_dim_none_is_an_error(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: dim is None.*shape \(2, 3\).*dim=-1"):
        fn(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="dim is None"):
        fn(torch.zeros(2, 3), dim=None)


@pytest.mark.parametrize("fn", [lossbook.softmax, lossbook.log_softmax, lossbook.logsumexp],
                         ids=["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("dim", [2, -3, 5])
def test_dim_out_of_range(fn, dim):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: dim={dim} is out of range for input of shape "
                                         r"\(2, 3\) \(2-D\); dim must be in \[-2, 1\]"):
        fn(torch.zeros(2, 3), dim=dim)


def test_dim_out_of_range_zero_dim():
    with pytest.raises(ValueError, match=r"dim=1 is out of range for input of shape \(\) \(0-D\); dim must be in \[-1, 0\]"):
        lossbook.softmax(torch.tensor(1.0), dim=1)


@pytest.mark.parametrize("dim", [1.0, "1", True])
def test_dim_must_be_an_int(dim):
    with pytest.raises(TypeError, match="dim must be an int"):
        lossbook.softmax(torch.zeros(2, 3), dim=dim)


def test_logsumexp_bad_dims():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="logsumexp: dim is empty"):
        lossbook.logsumexp(x, dim=())
    with pytest.raises(ValueError, match=r"dim=\(1, -1\) names the same dimension more than once"):
        lossbook.logsumexp(x, dim=(1, -1))
    with pytest.raises(RuntimeError):
        torch.logsumexp(x, dim=(1, -1))  # PyTorch refuses it too


@pytest.mark.parametrize("fn", [lossbook.softmax, lossbook.log_softmax, lossbook.logsumexp],
                         ids=["softmax", "log_softmax", "logsumexp"])
def test_input_must_be_a_tensor(fn):
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        fn([1.0, 2.0], dim=0)


# ------------------------------------------------------------------ the hand-written backward


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gradcheck_and_gradgradcheck(dim):
    x = _x(3, 4, 2, scale=1.5).requires_grad_()
    for fn in (lossbook.softmax, lossbook.log_softmax):
        assert torch.autograd.gradcheck(lambda t, fn=fn: fn(t, dim=dim), (x,))
        assert torch.autograd.gradgradcheck(lambda t, fn=fn: fn(t, dim=dim), (x,))
    for dims, keepdim in [(dim, False), (dim, True), ((0, 2), False)]:
        f = lambda t, d=dims, k=keepdim: lossbook.logsumexp(t, dim=d, keepdim=k)  # noqa: E731
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))


def test_gradcheck_zero_dim():
    x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    for fn in (lossbook.softmax, lossbook.log_softmax, lossbook.logsumexp):
        assert torch.autograd.gradcheck(lambda t, fn=fn: fn(t, dim=0), (x,))


@pytest.mark.parametrize("ours, ref", PAIRS + [(lossbook.logsumexp, torch.logsumexp)],
                         ids=PAIR_IDS + ["logsumexp"])
def test_second_derivatives_match_torch(ours, ref):
    """Double backward (e.g. a gradient penalty) gives PyTorch's Hessian-vector products."""
    x0 = _x(3, 5)
    v = _x(3, 5, seed=1)
    results = []
    for fn in (ours, ref):
        x = x0.clone().requires_grad_()
        out = fn(x, dim=1)
        (g,) = torch.autograd.grad((out * out).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad((g * v).sum(), x)
        results.append(h)
    assert compare(results[1], results[0], rtol=1e-9, atol=1e-12) is None


def test_jacobian_is_diag_p_minus_p_pT():
    x = _x(5)
    p = lossbook.softmax(x, dim=0)
    jac = torch.autograd.functional.jacobian(lambda t: lossbook.softmax(t, dim=0), x)
    assert torch.allclose(jac, torch.diag(p) - torch.outer(p, p), rtol=0, atol=1e-15)
    jac_log = torch.autograd.functional.jacobian(lambda t: lossbook.log_softmax(t, dim=0), x)
    assert torch.allclose(jac_log, torch.eye(5, dtype=x.dtype) - p.expand(5, 5), rtol=0, atol=1e-15)


# ------------------------------------------------------------------ the book's worked numbers (ERRATA)


def test_errata_E06_values_for_2_1_01():
    z = torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64)
    p, lp, lse = lossbook.softmax(z, dim=0), lossbook.log_softmax(z, dim=0), lossbook.logsumexp(z, dim=0)
    assert torch.allclose(p, torch.tensor([0.659001, 0.242433, 0.098566], dtype=torch.float64), atol=5e-7)
    assert torch.allclose(lp, torch.tensor([-0.417030, -1.417030, -2.317030], dtype=torch.float64), atol=5e-7)
    assert abs(lse.item() - 2.417030) < 5e-7
    # log-softmax differences equal logit differences; the seed's printed values violate it
    assert torch.allclose(lp.diff(), z.diff())
    seed = torch.tensor([-0.4325, -1.4171, -2.3125], dtype=torch.float64)
    assert not torch.allclose(seed.diff(), z.diff(), atol=1e-3)
    assert abs(seed.exp().sum().item() - 1) > 5e-3


def test_errata_E42_naive_overflow_vs_shift():
    z = torch.tensor([1000.0, 1001.0, 1002.0])
    assert torch.isnan(z.exp() / z.exp().sum()).all()
    assert torch.allclose(lossbook.softmax(z, dim=0), torch.tensor([0.090031, 0.244728, 0.665241]), atol=5e-7)


def test_errata_E52_float32_saturates():
    z = torch.tensor([0.0, 200.0])
    assert torch.equal(lossbook.softmax(z, dim=0), torch.tensor([0.0, 1.0]))
    assert torch.equal(lossbook.log_softmax(z, dim=0), torch.tensor([-200.0, 0.0]))
    assert torch.log(lossbook.softmax(z, dim=0))[0].item() == -inf  # why log(softmax) is not log_softmax


# ------------------------------------------------------------------ properties (hypothesis)

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
rows = st.lists(finite, min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows, st.floats(min_value=-1e3, max_value=1e3))
def test_shift_invariance(row, c):
    x = torch.tensor(row, dtype=torch.float64)
    assert torch.allclose(lossbook.softmax(x + c, dim=0), lossbook.softmax(x, dim=0), rtol=1e-9, atol=1e-12)
    assert torch.allclose(lossbook.logsumexp(x + c, dim=0), lossbook.logsumexp(x, dim=0) + c, rtol=1e-12,
                          atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_softmax_is_a_distribution(row):
    p = lossbook.softmax(torch.tensor(row, dtype=torch.float64), dim=0)
    assert bool((p >= 0).all()) and bool((p <= 1).all())
    assert abs(p.sum().item() - 1) < 1e-12


@settings(max_examples=60, deadline=None)
@given(rows)
def test_log_softmax_identities(row):
    x = torch.tensor(row, dtype=torch.float64)
    lp = lossbook.log_softmax(x, dim=0)
    lse = lossbook.logsumexp(x, dim=0, keepdim=True)
    assert torch.allclose(lp, x - lse, rtol=1e-12, atol=1e-9)
    assert torch.allclose(lossbook.softmax(x, dim=0), lp.exp(), rtol=1e-9, atol=1e-15)
    # a smooth maximum: max <= LSE <= max + log n
    assert x.max() <= lse.squeeze() <= x.max() + math.log(len(row)) + 1e-9


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.data())
def test_matches_torch_on_random_matrices(n, c, data):
    vals = data.draw(st.lists(finite, min_size=n * c, max_size=n * c))
    x = torch.tensor(vals, dtype=torch.float64).reshape(n, c)
    for ours, ref in PAIRS:
        assert_matches(ours, ref, (x,), {"dim": 1}, rtol=1e-9, atol=1e-12)
    assert_matches(lossbook.logsumexp, torch.logsumexp, (x,), {"dim": 1}, rtol=1e-9, atol=1e-12)


def test_finite_pattern_helper_sees_the_nan_rows():
    """Guard for the tests above: a NaN row is a pattern difference, not a silent pass."""
    x = torch.tensor([[-inf, -inf], [0.0, 1.0]])
    assert finite_pattern(lossbook.softmax(x, dim=1))[0].tolist() == [1, 1]
    assert compare(torch.zeros(2), torch.tensor([0.0, nan])) is not None
