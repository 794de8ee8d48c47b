"""lossbook.divergence: kl_div against PyTorch, and js_divergence, gaussian_kl, distillation_loss."""
from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Independent, Normal, kl_divergence

import lossbook
from lossbook import PitfallWarning
from lossbook.divergence import distillation_loss, gaussian_kl, js_divergence, kl_div
from lossbook.testing import assert_matches, compare, silenced

F64 = torch.float64
INF = float("inf")
NAN = float("nan")
REDUCTIONS = ["mean", "batchmean", "sum", "none"]


quiet = silenced  # lossbook.testing.silenced: warnings off for the reference calls


def log_probs(gen, *shape, zeros=0.0):
    """Random log-probabilities along the last dim; a fraction ``zeros`` of them set to -inf."""
    x = torch.randn(*shape, generator=gen, dtype=F64) * 2
    if zeros:
        mask = torch.rand(*shape, generator=gen, dtype=F64) < zeros
        mask[..., 0] = False  # keep every row a distribution
        x = x.masked_fill(mask, -INF)
    return torch.log_softmax(x, dim=-1)


# ------------------------------------------------------------------------------------- kl_div


@pytest.mark.parametrize("reduction,log_target", itertools.product(REDUCTIONS, [False, True]))
@pytest.mark.parametrize("shape", [(4, 7), (3, 5, 6), (9,)])
def test_kl_div_matches_torch_value_and_gradient(reduction, log_target, shape):
    gen = torch.Generator().manual_seed(hash((reduction, log_target, shape)) % 2**31)
    x = log_probs(gen, *shape)
    lt = log_probs(gen, *shape, zeros=0.3)  # targets with exact zeros (-inf in log space)
    t = lt if log_target else lt.exp()
    if log_target:  # torch gives NaN for log-target -inf (0 · -inf); keep those rows finite here
        t = log_probs(gen, *shape)
    assert_matches(quiet(kl_div), quiet(F.kl_div), (x, t), {"reduction": reduction, "log_target": log_target})


def test_kl_div_zero_target_contributes_zero():
    x = torch.tensor([[-1.0, -0.5, -2.0]], dtype=F64)
    t = torch.tensor([[0.0, 1.0, 0.0]], dtype=F64)
    assert kl_div(x, t, reduction="sum").item() == pytest.approx(0.5)  # 1 · (log 1 − (−0.5))
    assert_matches(kl_div, F.kl_div, (x, t), {"reduction": "sum"})


def test_kl_div_inf_nan_edge_cases_like_torch():
    """0·log 0 = 0, −inf input where target = 0 → NaN (E54), target mass where input has none → inf (S6),
    negative targets → NaN; gradients with the same NaN/inf pattern, for both arguments."""
    x = torch.tensor([-INF, -INF, -0.5, -1.0, -1.0, -1.0, -1.0, -2.0], dtype=F64)
    t = torch.tensor([0.0, 0.5, 0.0, -0.5, INF, NAN, 0.3, 1.0], dtype=F64)
    for reduction in ["none", "sum"]:
        assert_matches(quiet(kl_div), F.kl_div, (x, t), {"reduction": reduction})
    out = quiet(kl_div)(x, t, reduction="none")
    assert math.isnan(out[0]) and out[1] == INF and out[2] == 0 and math.isnan(out[3])
    lt = torch.tensor([-INF, -0.7, INF, -1.0, 0.0, -3.0, 0.0, -1e4], dtype=F64)
    xl = torch.tensor([-INF, -INF, -1.0, -1.0, -2.0, -1e4, -INF, -1.0], dtype=F64)
    assert_matches(quiet(kl_div), F.kl_div, (xl, lt), {"reduction": "none", "log_target": True})


def test_kl_div_support_gives_inf():
    """ERRATA S6: q = 0 where p > 0 gives an infinite divergence."""
    out = kl_div(torch.tensor([-INF, 0.0]), torch.tensor([0.5, 0.5]), reduction="sum")
    assert out.item() == INF == F.kl_div(torch.tensor([-INF, 0.0]), torch.tensor([0.5, 0.5]), reduction="sum").item()


def test_kl_div_broadcasting_scalar_and_empty_like_torch():
    gen = torch.Generator().manual_seed(1)
    x = log_probs(gen, 2, 3, 4)
    t = log_probs(gen, 3, 4).exp()
    for reduction in REDUCTIONS:
        assert_matches(quiet(kl_div), quiet(F.kl_div), (x, t), {"reduction": reduction})
        assert_matches(quiet(kl_div), quiet(F.kl_div), (t.log(), x.exp()), {"reduction": reduction})
    s = (torch.tensor(-0.7, dtype=F64), torch.tensor(0.4, dtype=F64))
    e = (torch.zeros(0, 3, dtype=F64), torch.zeros(0, 3, dtype=F64))
    for reduction in REDUCTIONS:
        assert_matches(quiet(kl_div), quiet(F.kl_div), s, {"reduction": reduction})
        assert_matches(quiet(kl_div), quiet(F.kl_div), e, {"reduction": reduction})


def test_kl_div_dtype_promotion_and_float16_like_torch():
    gen = torch.Generator().manual_seed(2)
    x = log_probs(gen, 8, 11).half()
    t = log_probs(gen, 8, 11, zeros=0.3).exp().half()
    for reduction, lt in itertools.product(REDUCTIONS, [False, True]):
        tt = t.float().log().half() if lt else t
        ours, ref = quiet(kl_div)(x, tt, reduction, lt), quiet(F.kl_div)(x, tt, reduction=reduction, log_target=lt)
        assert ours.dtype == ref.dtype == torch.float16
        assert compare(ref, ours, rtol=2e-3, atol=2e-3) is None
    mixed = quiet(kl_div)(x, t.double(), "sum")
    assert mixed.dtype == F64 and compare(quiet(F.kl_div)(x, t.double(), reduction="sum"), mixed) is None
    assert quiet(kl_div)(x.float(), t.float(), "batchmean").dtype == torch.float32


def test_kl_div_extreme_logits_like_torch():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=F64)
    x = torch.log_softmax(logits, -1)
    t = torch.softmax(torch.tensor([[0.0, 1e4, 0.0], [1.0, 2.0, 3.0]], dtype=F64), -1)
    for reduction in REDUCTIONS:
        assert_matches(quiet(kl_div), quiet(F.kl_div), (x, t), {"reduction": reduction})
        assert_matches(quiet(kl_div), quiet(F.kl_div), (x.float(), t.float()), {"reduction": reduction},
                       rtol=1e-5, atol=1e-5)


def test_kl_div_gradcheck():
    gen = torch.Generator().manual_seed(3)
    x = log_probs(gen, 3, 4).requires_grad_(True)
    t = log_probs(gen, 3, 4).exp().requires_grad_(True)
    for reduction, lt in itertools.product(["batchmean", "none"], [False, True]):
        tt = t.log().detach().requires_grad_(True) if lt else t
        assert torch.autograd.gradcheck(lambda a, b, r=reduction, lt=lt: kl_div(a, b, r, lt), (x, tt))
        assert torch.autograd.gradgradcheck(lambda a, b, r=reduction, lt=lt: kl_div(a, b, r, lt), (x, tt))


def test_book_asymmetry_e01_and_cross_entropy_identity_e03():
    """ERRATA E01/E03/B06: KL(P‖Q)=0.344618 ≠ KL(Q‖P)=0.352653; H(P,Q)=H(P)+KL(P‖Q); CE gradient."""
    P = torch.tensor([[0.7, 0.2, 0.1]], dtype=F64)
    Q = torch.tensor([[0.3, 0.4, 0.3]], dtype=F64)
    kl_pq = kl_div(Q.log(), P, reduction="batchmean")
    kl_qp = kl_div(P.log(), Q, reduction="batchmean")
    assert kl_pq.item() == pytest.approx(0.344618, abs=1e-6)
    assert kl_qp.item() == pytest.approx(0.352653, abs=1e-6)
    h_pq = -(P * Q.log()).sum()
    h_p = -(P * P.log()).sum()
    assert h_pq.item() == pytest.approx(1.146436, abs=1e-6) and h_p.item() == pytest.approx(0.801819, abs=1e-6)
    assert torch.allclose(h_pq, h_p + kl_pq)
    with pytest.warns(PitfallWarning, match="not the KL divergence; use reduction='batchmean'"):
        mean = kl_div(Q.log(), P)
    assert mean.item() == pytest.approx(0.114873, abs=1e-6) and torch.allclose(mean * 3, kl_pq)
    # the gradient with respect to the logits equals cross-entropy's (the entropy term is constant)
    z = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    target = torch.softmax(torch.randn(5, 3, dtype=F64), -1)
    (g_kl,) = torch.autograd.grad(kl_div(torch.log_softmax(z, -1), target, reduction="batchmean"), z)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(z, target), z)
    assert torch.allclose(g_kl, g_ce)


def test_book_mean_is_batchmean_over_c_e02():
    gen = torch.Generator().manual_seed(5)
    N, C = 3, 5
    x, t = log_probs(gen, N, C), log_probs(gen, N, C).exp()
    with pytest.warns(PitfallWarning):
        mean = kl_div(x, t, reduction="mean")
    batchmean, total = kl_div(x, t, reduction="batchmean"), kl_div(x, t, reduction="sum")
    assert torch.allclose(batchmean / mean, torch.tensor(C, dtype=F64))
    assert torch.allclose(total / batchmean, torch.tensor(N, dtype=F64))


def test_kl_div_warnings_never_change_the_result():
    gen = torch.Generator().manual_seed(6)
    x, t = log_probs(gen, 4, 5), log_probs(gen, 4, 5).exp()
    with pytest.warns(PitfallWarning, match="not the KL divergence"):
        a = kl_div(x, t)
    assert torch.equal(a, quiet(F.kl_div)(x, t))
    with pytest.warns(PitfallWarning, match="the arguments look swapped"):
        kl_div(t, x, reduction="batchmean")
    with pytest.warns(PitfallWarning, match="not probabilities or logits"):
        kl_div(t, t, reduction="batchmean")
    with pytest.warns(PitfallWarning, match="pass log_target=True"):
        kl_div(x, x, reduction="batchmean")
    with pytest.warns(PitfallWarning, match=r"broadcast to \(4, 5\)"):
        kl_div(x, t[0], reduction="batchmean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kl_div(x, t, reduction="batchmean")  # the right call is silent
        kl_div(x, t.log(), reduction="sum", log_target=True)


def test_kl_div_bad_inputs():
    x = torch.zeros(2, 3)
    with pytest.raises(TypeError, match="input must have a floating-point dtype, got torch.int64"):
        kl_div(torch.zeros(2, 3, dtype=torch.long), x)
    with pytest.raises(TypeError, match="target must have a floating-point dtype, got torch.int64"):
        kl_div(x, torch.ones(2, 3, dtype=torch.long), reduction="sum")
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'batchmean', 'sum', 'mean'; got 'avg'"):
        kl_div(x, x, reduction="avg")
    with pytest.raises(ValueError, match=r"target has shape \(2, 4\) but input has shape \(2, 3\)"):
        kl_div(x, torch.zeros(2, 4), reduction="sum")
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        kl_div([0.0], x, reduction="sum")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(2, 6), st.integers(0, 2**31 - 1), st.booleans())
def test_kl_div_is_nonnegative_and_zero_on_itself(n, c, seed, log_target):
    gen = torch.Generator().manual_seed(seed)
    x = log_probs(gen, n, c)
    t = log_probs(gen, n, c) if log_target else log_probs(gen, n, c, zeros=0.3).exp()
    assert kl_div(x, t, reduction="sum", log_target=log_target).item() >= -1e-12
    lp = log_probs(gen, n, c)  # KL(P‖P) = 0 (with zeros in P, log P = −inf meets 0 and gives NaN: E54)
    self_kl = kl_div(lp, lp if log_target else lp.exp(), reduction="sum", log_target=log_target)
    assert abs(self_kl.item()) < 1e-12


# -------------------------------------------------------------------------------- js_divergence


def js_reference(p_log, q_log, dim):
    """½ KL(P‖M) + ½ KL(Q‖M) with torch's own kl_div (no zeros in the inputs)."""
    m_log = (0.5 * (p_log.exp() + q_log.exp())).log()
    kl = lambda a: F.kl_div(m_log, a, reduction="none", log_target=True).sum(dim)  # noqa: E731
    return 0.5 * (kl(p_log) + kl(q_log))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape,dim", [((5, 4), -1), ((3, 6, 2), 1), ((7,), 0)])
def test_js_matches_reference(reduction, shape, dim):
    gen = torch.Generator().manual_seed(7)
    p = torch.log_softmax(torch.randn(*shape, generator=gen, dtype=F64), dim)
    q = torch.log_softmax(torch.randn(*shape, generator=gen, dtype=F64) * 3, dim)
    from lossbook._reduction import reduce

    ref = lambda a, b: reduce(js_reference(a, b, dim), reduction)  # noqa: E731
    assert_matches(js_divergence, ref, (p, q), {"dim": dim, "reduction": reduction}, ref_kwargs={})


def test_js_matches_scipy_and_handles_zeros():
    spatial = pytest.importorskip("scipy.spatial")
    P = torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25]], dtype=F64)
    Q = torch.tensor([[0.3, 0.4, 0.3, 0.0], [0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=F64)
    p_log, q_log = P.log().requires_grad_(True), Q.log().requires_grad_(True)
    js = js_divergence(p_log, q_log, reduction="none")
    expected = torch.tensor([spatial.distance.jensenshannon(a, b) ** 2 for a, b in zip(P.cpu().numpy(), Q.cpu().numpy())])
    assert torch.allclose(js.detach(), expected, atol=1e-12)
    assert js[1].item() == pytest.approx(math.log(2))  # disjoint supports: the upper bound
    js.sum().backward()
    assert torch.isfinite(p_log.grad).all() and torch.isfinite(q_log.grad).all()


def test_js_gradcheck_and_bad_inputs():
    gen = torch.Generator().manual_seed(8)
    p = torch.log_softmax(torch.randn(3, 4, generator=gen, dtype=F64), -1).requires_grad_(True)
    q = torch.log_softmax(torch.randn(3, 4, generator=gen, dtype=F64), -1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: js_divergence(a, b, reduction="none"), (p, q))
    with pytest.raises(ValueError, match=r"q_log has shape \(3, 5\) but p_log has shape \(3, 4\)"):
        js_divergence(p, torch.zeros(3, 5, dtype=F64))
    with pytest.raises(ValueError, match=r"dim=2 is out of range for p_log of shape \(3, 4\)"):
        js_divergence(p, q, dim=2)
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'; got 'batchmean'"):
        js_divergence(p, q, reduction="batchmean")
    with pytest.raises(TypeError, match="p_log must have a floating-point dtype"):
        js_divergence(torch.zeros(3, 4, dtype=torch.long), q)
    with pytest.warns(PitfallWarning, match="not log-probabilities"):
        js_divergence(p.exp(), q.exp())


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.integers(2, 7), st.integers(0, 2**31 - 1), st.floats(0.0, 0.6))
def test_js_is_symmetric_and_bounded(n, c, seed, zeros):
    gen = torch.Generator().manual_seed(seed)
    p, q = log_probs(gen, n, c, zeros=zeros), log_probs(gen, n, c, zeros=zeros) * 3
    q = torch.log_softmax(q.nan_to_num(neginf=-INF), -1)
    a, b = js_divergence(p, q, reduction="none"), js_divergence(q, p, reduction="none")
    assert torch.allclose(a, b, atol=1e-12)
    assert (a >= -1e-12).all() and (a <= math.log(2) + 1e-12).all()
    assert js_divergence(p, p, reduction="sum").abs().item() < 1e-12


# ------------------------------------------------------------------------------- gaussian_kl


def torch_gaussian_kl(mu_q, logvar_q, mu_p=None, logvar_p=None, reduction="mean"):
    mu_p = torch.zeros_like(mu_q) if mu_p is None else mu_p
    logvar_p = torch.zeros_like(mu_q) if logvar_p is None else logvar_p
    q = Independent(Normal(mu_q, (0.5 * logvar_q).exp()), 1)
    p = Independent(Normal(mu_p.expand_as(mu_q), (0.5 * logvar_p).expand_as(mu_q).exp()), 1)
    kl = kl_divergence(q, p)
    return {"none": kl, "mean": kl.mean(), "sum": kl.sum()}[reduction]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("prior", ["standard", "full", "broadcast", "mu_only"])
def test_gaussian_kl_matches_torch_distributions(reduction, prior):
    gen = torch.Generator().manual_seed(9)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=F64)  # noqa: E731
    mu, lv = r(6, 4), r(6, 4)
    args = {"standard": (mu, lv), "full": (mu, lv, r(6, 4), r(6, 4)), "broadcast": (mu, lv, r(4), r(1, 4)),
            "mu_only": (mu, lv, r(6, 4))}[prior]
    assert_matches(gaussian_kl, torch_gaussian_kl, args, {"reduction": reduction})


def test_gaussian_kl_vae_number_e04_and_sign():
    mu, var = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([1.0, 4.0], dtype=F64)
    kl = gaussian_kl(mu, var.log())
    assert kl.item() == pytest.approx(1.306853, abs=1e-6)
    assert kl.item() == pytest.approx(torch_gaussian_kl(mu, var.log()).item())
    wrong = 0.5 * torch.sum(1 + var.log() - mu**2 - var)  # the seed comment's sign
    assert wrong.item() == pytest.approx(-1.306853, abs=1e-6)
    gen = torch.Generator().manual_seed(10)
    mu, lv = torch.randn(4, 10, generator=gen, dtype=F64), torch.randn(4, 10, generator=gen, dtype=F64)
    assert torch.allclose(gaussian_kl(mu, lv, reduction="sum"), -0.5 * torch.sum(1 + lv - mu**2 - lv.exp()))
    assert torch.allclose(gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2), reduction="sum"), torch.tensor(0.0))


def test_gaussian_kl_gradcheck_float32_and_bad_inputs():
    gen = torch.Generator().manual_seed(11)
    a = [torch.randn(3, 2, generator=gen, dtype=F64).requires_grad_(True) for _ in range(4)]
    assert torch.autograd.gradcheck(lambda *t: gaussian_kl(*t, reduction="none"), tuple(a))
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).dtype == torch.float32
    with pytest.raises(ValueError, match=r"logvar_q has shape \(2, 4\) but mu_q has shape \(2, 3\)"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"mu_p has shape \(5,\), which does not broadcast to the shape \(2, 3\)"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(5))
    with pytest.raises(ValueError, match="mu_q has shape \\(\\) \\(0-D\\) but must be at least 1-D"):
        gaussian_kl(torch.tensor(0.0), torch.tensor(0.0))
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'; got 'batchmean'"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), reduction="batchmean")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_gaussian_kl_is_nonnegative_and_zero_at_the_prior(n, d, seed):
    gen = torch.Generator().manual_seed(seed)
    mu, lv, mp, lp = (torch.randn(n, d, generator=gen, dtype=F64) * 2 for _ in range(4))
    assert (gaussian_kl(mu, lv, mp, lp, reduction="none") >= -1e-12).all()
    assert gaussian_kl(mu, lv, mu, lv, reduction="sum").abs().item() < 1e-10


# --------------------------------------------------------------------------- distillation_loss


def kd_reference(s, t, target=None, *, temperature, alpha=None, reduction="mean"):
    T = temperature
    kd = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="none").sum(1) * T**2
    if target is not None:
        kd = alpha * kd + (1 - alpha) * F.cross_entropy(s, target, reduction="none")
    return {"none": kd, "mean": kd.mean(), "sum": kd.sum()}[reduction]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_distillation_without_labels_matches_reference(reduction, temperature):
    gen = torch.Generator().manual_seed(12)
    s, t = torch.randn(6, 5, generator=gen, dtype=F64) * 3, torch.randn(6, 5, generator=gen, dtype=F64) * 3
    kw = {"temperature": temperature, "reduction": reduction}
    assert_matches(distillation_loss, kd_reference, (s, t), kw, grad=[0])
    batchmean = temperature**2 * F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1),
                                          reduction="batchmean")
    assert torch.allclose(distillation_loss(s, t, temperature=temperature), batchmean)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_distillation_with_labels_matches_reference(alpha):
    pytest.importorskip("lossbook.cross_entropy")
    gen = torch.Generator().manual_seed(13)
    s, t = torch.randn(6, 5, generator=gen, dtype=F64), torch.randn(6, 5, generator=gen, dtype=F64)
    y = torch.randint(0, 5, (6,), generator=gen)
    for reduction in ["none", "mean", "sum"]:
        assert_matches(distillation_loss, kd_reference, (s, t, y),
                       {"temperature": 3.0, "alpha": alpha, "reduction": reduction}, grad=[0])


def test_distillation_t_squared_keeps_the_gradient_scale():
    """Without T² the gradient shrinks like 1/T²; with it, it tends to a constant (Hinton et al., §2.1)."""
    gen = torch.Generator().manual_seed(14)
    s = (torch.randn(64, 10, generator=gen, dtype=F64) * 0.5).requires_grad_(True)
    t = torch.randn(64, 10, generator=gen, dtype=F64) * 0.5
    norms = {}
    for T in [5.0, 10.0, 20.0, 40.0]:
        (g,) = torch.autograd.grad(distillation_loss(s, t, temperature=T), s)
        norms[T] = g.norm().item()
    assert max(norms.values()) / min(norms.values()) < 1.05
    assert norms[40.0] / 40.0**2 < norms[5.0] / 5.0**2 / 50  # the unscaled KL's gradient collapses


def test_distillation_extreme_and_masked_logits():
    s = torch.tensor([[1e4, -1e4, 0.0], [0.0, -INF, 1.0]], dtype=F64, requires_grad=True)
    t = torch.tensor([[-1e4, 1e4, 0.0], [2.0, -INF, 0.0]], dtype=F64)
    out = distillation_loss(s, t, temperature=2.0, reduction="none")
    assert torch.isfinite(out).all()
    ref = kd_reference(s.detach()[:1], t[:1], temperature=2.0, reduction="none")
    assert torch.allclose(out[:1], ref)
    out.sum().backward()
    assert torch.isfinite(s.grad).all()


def test_distillation_bad_inputs():
    s, t = torch.zeros(4, 3), torch.zeros(4, 3)
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="alpha=0.5 weights the distillation term .* but target is None"):
        distillation_loss(s, t, temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match=r"target is given, so alpha .* is needed"):
        distillation_loss(s, t, y, temperature=2.0)
    with pytest.raises(ValueError, match="alpha must be in \\[0.0, 1.0\\], got 1.5"):
        distillation_loss(s, t, y, temperature=2.0, alpha=1.5)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        distillation_loss(s, t, temperature=0)
    with pytest.raises(ValueError, match="temperature must be > 0, got nan"):
        distillation_loss(s, t, temperature=float("nan"))
    with pytest.raises(ValueError, match="temperature must be finite, got inf"):
        distillation_loss(s, t, temperature=float("inf"))
    with pytest.raises(ValueError, match=r"teacher_logits has shape \(4, 5\) but student_logits has shape \(4, 3\)"):
        distillation_loss(s, torch.zeros(4, 5), temperature=1.0)
    with pytest.raises(ValueError, match=r"student_logits has shape \(3,\) \(1-D\) but must be 2-D \(N, C\)"):
        distillation_loss(torch.zeros(3), torch.zeros(3), temperature=1.0)
    with pytest.raises(TypeError, match="temperature"):
        distillation_loss(s, t)
    with pytest.warns(PitfallWarning, match="teacher_logits requires grad"):
        distillation_loss(s, t.requires_grad_(True), temperature=2.0)


def test_public_api():
    assert set(lossbook.divergence.__all__) == {"kl_div", "js_divergence", "gaussian_kl", "distillation_loss"}
    assert lossbook.kl_div is kl_div
