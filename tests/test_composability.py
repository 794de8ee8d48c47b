"""Gradients that compose, for every public loss: double backward, torch.func, torch.compile, dtypes.

Every case is a tiny float64 input (so each check costs milliseconds) for one option of one
loss. The checks:

* ``gradgradcheck`` (second derivatives against finite differences) for every option, through
  the readable definition and, where the loss has one, through its fast path (``fast.always``),
  whose backward must then differentiate the definition instead of dropping terms;
* ``torch.func.grad``, ``vmap`` and ``jvp`` give torch's result wherever torch's own loss supports
  the transform (and otherwise the result autograd gives);
* ``torch.compile(fullgraph=True, backend="eager")`` traces every loss (one inductor compile per
  module, as those take seconds);
* a float16 input against a float32 target, and autocast, give torch's dtype and value both
  below and above the fast-path threshold;
* the bug reports of issue 12: second derivatives in the gradient-penalty pattern (the incoming
  gradient does not require grad), which ``once_differentiable`` got silently wrong.
"""
from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import lossbook
from lossbook import fast
from lossbook.testing import compare, torchvision_sigmoid_focal_loss

D = torch.float64


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, scale=1.0):
    return torch.randn(shape, generator=_g(seed), dtype=D) * scale


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=_g(seed), dtype=D)


def quiet(fn: Callable) -> Callable:
    """``fn`` with lossbook's PitfallWarnings silenced (e.g. ``kl_div(reduction='mean')``)."""

    def wrapped(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lossbook.PitfallWarning)
            return fn(*args, **kwargs)

    return wrapped


@dataclasses.dataclass
class Case:
    """``ours(*diff, *rest, **kwargs)``; ``ref`` is torch's function with the same call, or None."""

    name: str
    ours: Callable
    ref: Callable | None
    diff: tuple  # the differentiable inputs
    rest: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    has_fast: bool = False  # the loss has a fast path (lossbook.fast) for these inputs
    vmap_dims: tuple | None = None  # in_dims of the differentiable inputs for vmap (None: all 0)

    def call(self, fn, *diff):
        return fn(*diff, *self.rest, **self.kwargs)

    @property
    def id(self):
        opts = ",".join(f"{k}={v if not isinstance(v, torch.Tensor) else 'T'}" for k, v in self.kwargs.items())
        return f"{self.name}({opts})"


def _cases() -> list[Case]:
    cases = []
    add = cases.append
    x34, x234 = randn(3, 4, seed=1, scale=2), randn(2, 3, 4, seed=2, scale=2)
    # ---------------------------------------------------------------- softmax
    for dim in (0, -1):
        add(Case("logsumexp", lossbook.logsumexp, torch.logsumexp, (x234,), kwargs={"dim": dim}, has_fast=True))
        add(Case("softmax", lossbook.softmax, torch.softmax, (x234,), kwargs={"dim": dim}, has_fast=True))
        add(Case("log_softmax", lossbook.log_softmax, torch.log_softmax, (x234,), kwargs={"dim": dim}, has_fast=True))
    add(Case("logsumexp", lossbook.logsumexp, torch.logsumexp, (x234,), kwargs={"dim": (0, 2), "keepdim": True},
             has_fast=True))
    # ---------------------------------------------------------------- regression
    y34 = randn(3, 4, seed=3, scale=2)
    for red in ("none", "mean", "sum"):
        kw = {"reduction": red}
        add(Case("l1_loss", lossbook.l1_loss, F.l1_loss, (x34, y34), kwargs=kw, has_fast=True))
        add(Case("mse_loss", lossbook.mse_loss, F.mse_loss, (x34, y34), kwargs=kw, has_fast=True))
        add(Case("huber_loss", lossbook.huber_loss, F.huber_loss, (x34, y34), kwargs={**kw, "delta": 0.7},
                 has_fast=True))
        add(Case("smooth_l1_loss", lossbook.smooth_l1_loss, F.smooth_l1_loss, (x34, y34),
                 kwargs={**kw, "beta": 0.7}, has_fast=True))
        add(Case("log_cosh_loss", lossbook.log_cosh_loss, None, (x34, y34), kwargs=kw, has_fast=True))
        add(Case("quantile_loss", lossbook.quantile_loss, None, (x34, y34), kwargs={**kw, "quantile": 0.3}))
        add(Case("poisson_nll_loss", lossbook.poisson_nll_loss, F.poisson_nll_loss, (x34,), (rand(3, 4, seed=4) * 3,),
                 kwargs={**kw, "full": True}))
        add(Case("gaussian_nll_loss", lossbook.gaussian_nll_loss, F.gaussian_nll_loss,
                 (x34, y34, rand(3, 4, seed=5) + 0.5), kwargs=kw))
    add(Case("smooth_l1_loss", lossbook.smooth_l1_loss, F.smooth_l1_loss, (x34, y34), kwargs={"beta": 0.0},
             has_fast=True))
    add(Case("l1_loss", lossbook.l1_loss, None, (x34, y34), kwargs={"weight": rand(3, 4, seed=6)}))
    add(Case("mse_loss", lossbook.mse_loss, None, (x34, y34), kwargs={"weight": rand(3, 4, seed=6)}))
    add(Case("huber_loss", lossbook.huber_loss, None, (x34, y34), kwargs={"weight": rand(3, 4, seed=6)}))
    add(Case("rmse_loss", lossbook.rmse_loss, None, (x34, y34)))
    add(Case("rmse_loss", lossbook.rmse_loss, None, (x34, y34), kwargs={"eps": 1e-3}))
    add(Case("quantile_loss", lossbook.quantile_loss, None, (randn(4, 3, seed=7), randn(4, seed=8)),
             kwargs={"quantile": [0.1, 0.5, 0.9]}))
    add(Case("poisson_nll_loss", lossbook.poisson_nll_loss, F.poisson_nll_loss, (rand(3, 4, seed=9) + 0.5,),
             (rand(3, 4, seed=4) * 3,), kwargs={"log_input": False}))
    add(Case("gaussian_nll_loss", lossbook.gaussian_nll_loss, F.gaussian_nll_loss,
             (x34, y34, rand(3, 1, seed=5) + 0.5), kwargs={"full": True}))
    # ---------------------------------------------------------------- cross-entropy
    t3, tc = torch.tensor([0, 3, 1]), torch.tensor([[0, 3], [1, 1]])
    w4 = rand(4, seed=10) + 0.5
    for red in ("none", "mean", "sum"):
        for opts in ({}, {"weight": w4}, {"ignore_index": 1}, {"label_smoothing": 0.2},
                     {"weight": w4, "ignore_index": 3, "label_smoothing": 0.1}):
            add(Case("cross_entropy", lossbook.cross_entropy, F.cross_entropy, (x34,), (t3,),
                     {"reduction": red, **opts}, has_fast=True))
        for opts in ({}, {"weight": w4}):
            add(Case("nll_loss", lossbook.nll_loss, F.nll_loss, (x34.log_softmax(1),), (t3,), {"reduction": red, **opts}))
        soft = rand(3, 4, seed=11).softmax(1)
        for opts in ({}, {"weight": w4}, {"label_smoothing": 0.2}):
            add(Case("cross_entropy(probs)", lossbook.cross_entropy, F.cross_entropy, (x34, soft), (),
                     {"reduction": red, **opts}))
    add(Case("cross_entropy(2-d)", lossbook.cross_entropy, F.cross_entropy, (randn(2, 4, 2, seed=12),), (tc,),
             {"label_smoothing": 0.1, "weight": w4}, has_fast=True))
    # ---------------------------------------------------------------- classification
    p34, yb = rand(3, 4, seed=13) * 0.8 + 0.1, (rand(3, 4, seed=14) > 0.5).to(D)
    pm = yb * 2 - 1
    pw = rand(4, seed=15) * 3 + 0.5
    for red in ("none", "mean", "sum"):
        kw = {"reduction": red}
        add(Case("binary_cross_entropy", lossbook.binary_cross_entropy, F.binary_cross_entropy,
                 (p34, rand(3, 4, seed=16)), kwargs=kw))
        add(Case("binary_cross_entropy", lossbook.binary_cross_entropy, F.binary_cross_entropy,
                 (p34,), (yb,), kwargs={**kw, "weight": rand(4, seed=17)}))
        for opts in ({}, {"weight": rand(4, seed=17)}, {"pos_weight": pw}, {"weight": rand(3, 1, seed=18), "pos_weight": pw}):
            add(Case("binary_cross_entropy_with_logits", lossbook.binary_cross_entropy_with_logits,
                     F.binary_cross_entropy_with_logits, (x34, rand(3, 4, seed=16)), kwargs={**kw, **opts},
                     has_fast=True))
        add(Case("soft_margin_loss", lossbook.soft_margin_loss, F.soft_margin_loss, (x34,), (pm,), kw, has_fast=True))
        add(Case("multilabel_soft_margin_loss", lossbook.multilabel_soft_margin_loss, F.multilabel_soft_margin_loss,
                 (x34,), (yb,), {**kw, "weight": rand(4, seed=17)}))
        add(Case("multilabel_margin_loss", lossbook.multilabel_margin_loss, F.multilabel_margin_loss, (x34,),
                 (torch.tensor([[3, 0, -1, 1], [1, -1, 0, 0], [0, 1, 2, 3]]),), kw))
        for p in (1, 2):
            add(Case("multi_margin_loss", lossbook.multi_margin_loss, F.multi_margin_loss, (x34,), (t3,),
                     {**kw, "p": p, "margin": 0.9, "weight": w4 if p == 2 else None}))
        add(Case("hinge_embedding_loss", lossbook.hinge_embedding_loss, F.hinge_embedding_loss, (x34.abs() + 0.1,),
                 (pm,), {**kw, "margin": 1.7}))
        add(Case("sigmoid_focal_loss", lossbook.sigmoid_focal_loss, torchvision_sigmoid_focal_loss, (x34,), (yb,),
                 {**kw, "alpha": 0.25, "gamma": 2}))
        for opts in ({}, {"gamma": 0.5, "alpha": w4}, {"weight": w4, "ignore_index": 1}):
            add(Case("focal_loss", lossbook.focal_loss, None, (x34,), (t3,), {**kw, **opts}))
    add(Case("sigmoid_focal_loss", lossbook.sigmoid_focal_loss, torchvision_sigmoid_focal_loss, (x34,), (yb,),
             {"alpha": -1, "gamma": 0.5}))
    # ---------------------------------------------------------------- divergence
    lq, pt = x34.log_softmax(1), rand(3, 4, seed=19).softmax(1)
    for red in ("none", "batchmean", "sum", "mean"):
        for log_target in (False, True):
            add(Case("kl_div", quiet(lossbook.kl_div) if red == "mean" else lossbook.kl_div, F.kl_div, (lq, pt.log() if log_target else pt), (),
                     {"reduction": red, "log_target": log_target}))
    for red in ("none", "mean", "sum"):
        add(Case("js_divergence", lossbook.js_divergence, None, (lq, pt.log()), (), {"reduction": red}))
        add(Case("gaussian_kl", lossbook.gaussian_kl, None, (x34, y34), (), {"reduction": red}))
        add(Case("gaussian_kl", lossbook.gaussian_kl, None, (x34, y34, randn(4, seed=20), randn(4, seed=21)), (),
                 {"reduction": red}))
        add(Case("distillation_loss", lossbook.distillation_loss, None, (x34,), (y34,),
                 {"temperature": 2.0, "reduction": red}))
        add(Case("distillation_loss", lossbook.distillation_loss, None, (x34,), (y34, t3),
                 {"temperature": 3.0, "alpha": 0.7, "reduction": red}))
    # ---------------------------------------------------------------- ctc
    lp = randn(6, 2, 4, seed=22).log_softmax(-1)
    ctc_rest = (torch.tensor([[1, 2, 2], [3, 1, 0]]), torch.tensor([6, 5]), torch.tensor([3, 2]))
    for red in ("none", "mean", "sum"):
        for zero_infinity in (False, True):
            add(Case("ctc_loss", lossbook.ctc_loss, F.ctc_loss, (lp,), ctc_rest,
                     {"reduction": red, "zero_infinity": zero_infinity}, has_fast=True, vmap_dims=(1,)))
    return cases


CASES = _cases()
IDS = [c.id for c in CASES]
FAST = [c for c in CASES if c.has_fast]


def _inputs(case: Case) -> tuple:
    return tuple(t.detach().clone().requires_grad_(True) for t in case.diff)


# ------------------------------------------------------------------------------------ double backward


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradgradcheck_definition(case):
    with fast.definition_only():
        assert torch.autograd.gradgradcheck(lambda *d: case.call(case.ours, *d), _inputs(case))


@pytest.mark.parametrize("case", FAST, ids=[c.id for c in FAST])
def test_fast_path_gradcheck_and_gradgradcheck(case):
    """The fast path's own backward (gradcheck) and its tie to the definition (gradgradcheck).

    (ctc_loss's gradient is PyTorch's convention, that of the logits of a log_softmax, not the
    derivative of its value: tests/test_fast.py compares it with the definition's instead.)
    """
    with fast.always():
        if case.name != "ctc_loss":
            assert torch.autograd.gradcheck(lambda *d: case.call(case.ours, *d), _inputs(case))
        assert torch.autograd.gradgradcheck(lambda *d: case.call(case.ours, *d), _inputs(case))


# ------------------------------------------------------------------------------------ the issue's reports


def _penalty_grad(fn: Callable, z: torch.Tensor, rest: tuple, kwargs: dict) -> torch.Tensor:
    """d/dz |d loss(2 tanh z) / dz|^2, with an incoming gradient that does not require grad."""
    z = z.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(2 * torch.tanh(z), *rest, **kwargs), z, create_graph=True)
    return torch.autograd.grad((g**2).sum(), z)[0]


def _fd_penalty_grad(fn: Callable, z: torch.Tensor, rest: tuple, kwargs: dict, h: float = 1e-6) -> torch.Tensor:
    """The same by central finite differences of the penalty (first derivatives only)."""

    def penalty(zz):
        zz = zz.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(2 * torch.tanh(zz), *rest, **kwargs), zz)
        return float((g**2).sum())

    out = torch.zeros_like(z)
    flat = out.view(-1)
    for i in range(z.numel()):
        e = torch.zeros_like(z).view(-1)
        e[i] = h
        flat[i] = (penalty(z + e.view_as(z)) - penalty(z - e.view_as(z))) / (2 * h)
    return out


ISSUE_REPORTS = {
    "cross_entropy(index)": (lossbook.cross_entropy, F.cross_entropy, randn(3, 4, seed=30),
                             (torch.tensor([0, 3, 1]),), {}),
    "cross_entropy(probs)": (lossbook.cross_entropy, F.cross_entropy, randn(3, 4, seed=31),
                             (rand(3, 4, seed=32).softmax(1),), {}),
    "cross_entropy(smoothing)": (lossbook.cross_entropy, F.cross_entropy, randn(3, 4, seed=30),
                                 (torch.tensor([0, 3, 1]),), {"label_smoothing": 0.2, "weight": rand(4, seed=1) + 0.5}),
    "soft_margin_loss": (lossbook.soft_margin_loss, F.soft_margin_loss, randn(3, 4, seed=33),
                         ((rand(3, 4, seed=34) > 0.5).to(D) * 2 - 1,), {}),
    "multi_margin_loss": (lossbook.multi_margin_loss, None, randn(3, 4, seed=35), (torch.tensor([0, 3, 1]),),
                          {"p": 2}),
    "ctc_loss": (lambda z, *r: lossbook.ctc_loss(lossbook.log_softmax(z, dim=-1), *r), None, randn(6, 2, 4, seed=36),
                 (torch.tensor([[1, 2, 2], [3, 1, 0]]), torch.tensor([6, 5]), torch.tensor([3, 2])), {}),
    "focal_loss": (lossbook.focal_loss, None, randn(3, 4, seed=37), (torch.tensor([0, 3, 1]),), {"gamma": 2.0}),
    "distillation_loss": (lossbook.distillation_loss, None, randn(3, 4, seed=38),
                          (randn(3, 4, seed=39), torch.tensor([0, 3, 1])), {"temperature": 2.0, "alpha": 0.5}),
}


@pytest.mark.parametrize("path", ["default", "fast"])
@pytest.mark.parametrize("name", ISSUE_REPORTS)
def test_gradient_penalty_second_derivatives_are_right(name, path):
    """Issue 12's reports: a gradient penalty through these losses was silently wrong."""
    ours, ref, z, rest, kwargs = ISSUE_REPORTS[name]
    with fast.always() if path == "fast" else contextlib.nullcontext():
        got = _penalty_grad(ours, z, rest, kwargs)
    if ref is not None:  # torch has the second derivative: compare with it
        expected = _penalty_grad(ref, z, rest, kwargs)
    else:  # torch has none (multi_margin_loss, ctc_loss) or no such loss: finite differences
        expected = _fd_penalty_grad(ours, z, rest, kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------ torch.func


def _scalar(case: Case, fn: Callable) -> Callable:
    return lambda *d: case.call(fn, *d).sum()


def _works(thunk: Callable):
    """``(True, value)`` if ``thunk()`` runs, ``(False, None)`` if it raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return True, thunk()
    except Exception:
        return False, None


def _assert_same(expected, got):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for e, g in zip(expected, got):
            _assert_same(e, g)
        return
    problem = compare(expected, got, rtol=1e-7, atol=1e-9)
    assert problem is None, problem


FUNC_CASES = [c for c in CASES if c.kwargs.get("reduction", "mean") in ("mean", "batchmean") or c.name.startswith(
    ("logsumexp", "softmax", "log_softmax"))]


@pytest.mark.parametrize("case", FUNC_CASES, ids=[c.id for c in FUNC_CASES])
def test_torch_func_grad_vmap_jvp(case):
    x = tuple(t.detach() for t in case.diff)
    argnums = tuple(range(len(x)))
    # grad: torch's answer where torch's loss supports it, else plain autograd's
    ok, expected = _works(lambda: torch.func.grad(_scalar(case, case.ref), argnums=argnums)(*x)) if case.ref else (
        False, None)
    if not ok:
        xs = _inputs(case)
        expected = torch.autograd.grad(case.call(case.ours, *xs).sum(), xs, allow_unused=True, materialize_grads=True)
    _assert_same(expected, torch.func.grad(_scalar(case, case.ours), argnums=argnums)(*x))
    # vmap over a batch of two copies of the differentiable inputs
    dims = case.vmap_dims or (0,) * len(x)
    batched = tuple(torch.stack([t, t.flip(-1)], dim=d) for t, d in zip(x, dims))  # stays in the domain
    vm = torch.func.vmap(lambda *d: case.call(case.ours, *d), in_dims=dims)
    ok, expected = _works(lambda: torch.func.vmap(lambda *d: case.call(case.ref, *d), in_dims=dims)(*batched)) \
        if case.ref else (False, None)
    if not ok:
        expected = torch.stack([case.call(case.ours, *(t.select(d, i) for t, d in zip(batched, dims)))
                                for i in range(2)])
    _assert_same(expected, vm(*batched))
    # jvp along a fixed direction
    v = tuple(randn(*t.shape, seed=99) for t in x)
    ok, expected = _works(lambda: torch.func.jvp(lambda *d: case.call(case.ref, *d), x, v)) if case.ref else (
        False, None)
    got = torch.func.jvp(lambda *d: case.call(case.ours, *d), x, v)
    if not ok:  # autograd's directional derivative: <grad of sum(out * u), v> = u . (J v)
        xs = _inputs(case)
        out = case.call(case.ours, *xs)
        u = randn(*out.shape, seed=98)
        gs = torch.autograd.grad(out, xs, u, allow_unused=True, materialize_grads=True)
        torch.testing.assert_close(sum((g * vi).sum() for g, vi in zip(gs, v)), (got[1] * u).sum())
        expected = (out.detach(), got[1])
    _assert_same(expected, got)


# ------------------------------------------------------------------------------------ torch.compile

_first: dict[str, Case] = {}
for _c in CASES:  # one case per loss: its mean (kl_div: batchmean, the KL divergence)
    if _c.kwargs.get("reduction", "mean") == ("batchmean" if _c.name == "kl_div" else "mean"):
        _first.setdefault(_c.name, _c)
COMPILE_CASES = list(_first.values())


@pytest.mark.parametrize("case", COMPILE_CASES, ids=[c.name for c in COMPILE_CASES])
def test_compile_fullgraph_eager(case):
    x = _inputs(case)
    expected = case.call(case.ours, *x)
    if case.name == "ctc_loss":  # neither torch's nor ours: the number of frames sets the loop length
        ok, _ = _works(lambda: torch.compile(lambda *d: case.call(case.ref, *d), fullgraph=True,
                                             backend="eager")(*x))
        assert not ok
        return
    torch._dynamo.reset()
    compiled = torch.compile(lambda *d: case.call(case.ours, *d), fullgraph=True, backend="eager")
    got = compiled(*x)
    _assert_same(expected.detach(), got.detach())
    (g_expected,) = torch.autograd.grad(expected.sum(), x[0])
    (g_got,) = torch.autograd.grad(got.sum(), x[0])
    _assert_same(g_expected, g_got)


INDUCTOR = {  # one per module
    "softmax": lambda x: lossbook.log_softmax(x, dim=1),
    "regression": lambda x: lossbook.huber_loss(x, x.flip(0), delta=0.5),
    "cross_entropy": lambda x: lossbook.cross_entropy(x, torch.tensor([0, 3, 1]), label_smoothing=0.1),
    "classification": lambda x: lossbook.binary_cross_entropy_with_logits(x, x.sigmoid().detach()),
    "divergence": lambda x: lossbook.kl_div(x.log_softmax(1), x.softmax(0).detach(), reduction="batchmean"),
}


@pytest.mark.parametrize("module", INDUCTOR)
def test_compile_inductor(module):
    fn = INDUCTOR[module]
    x = randn(3, 4, seed=40)
    torch.testing.assert_close(torch.compile(fn, fullgraph=True)(x), fn(x))


# ------------------------------------------------------------------------------------ dtypes and autocast

MIXED = {
    "l1_loss": (lossbook.l1_loss, F.l1_loss),
    "mse_loss": (lossbook.mse_loss, F.mse_loss),
    "huber_loss": (lossbook.huber_loss, F.huber_loss),
    "smooth_l1_loss": (lossbook.smooth_l1_loss, F.smooth_l1_loss),
    "binary_cross_entropy_with_logits": (lossbook.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
    "soft_margin_loss": (lossbook.soft_margin_loss, F.soft_margin_loss),
    "kl_div": (lossbook.kl_div, F.kl_div),
}


@pytest.mark.parametrize("n", [64, 2 * fast.MIN_NUMEL], ids=["small", "above-threshold"])
@pytest.mark.parametrize("name", MIXED)
def test_mixed_dtypes_follow_torch(name, n):
    """float16 input, float32 target: torch's result dtype and value, below and above the fast path's size."""
    ours, ref = MIXED[name]
    x = torch.randn(n, generator=_g(41)).to(torch.float16)
    y = torch.randn(n, generator=_g(42))
    if name == "soft_margin_loss":
        y = y.sign()
    elif name == "binary_cross_entropy_with_logits":
        y = y.sigmoid()
    elif name == "kl_div":
        x, y = x.float().log_softmax(0).half(), y.softmax(0)
    kw = {"reduction": "batchmean"} if name == "kl_div" else {}
    ok, expected = _works(lambda: ref(x, y, **kw))
    if not ok:  # torch refuses the mix: so may we (any error), but never a silent other answer
        _works(lambda: ours(x, y, **kw))
        return
    got = ours(x, y, **kw)
    assert got.dtype == expected.dtype
    torch.testing.assert_close(got.double(), expected.double(), rtol=2e-3, atol=1e-4)


AUTOCAST = {
    "cross_entropy": (lambda x: lossbook.cross_entropy(x, torch.arange(x.shape[0]) % x.shape[1]),
                      lambda x: F.cross_entropy(x, torch.arange(x.shape[0]) % x.shape[1])),
    "log_softmax": (lambda x: lossbook.log_softmax(x, dim=1), lambda x: torch.log_softmax(x, dim=1)),
    "mse_loss": (lambda x: lossbook.mse_loss(x, x.flip(0).detach()), lambda x: F.mse_loss(x, x.flip(0).detach())),
}


@pytest.mark.parametrize("rows", [4, 2 * fast.MIN_NUMEL // 32], ids=["small", "above-threshold"])
@pytest.mark.parametrize("name", AUTOCAST)
def test_autocast_follows_torch(name, rows):
    ours, ref = AUTOCAST[name]
    lin = torch.nn.Linear(16, 32)
    x = torch.randn(rows, 16, generator=_g(43))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = ref(lin(x)), ours(lin(x))
    assert got.dtype == expected.dtype
    torch.testing.assert_close(got.float(), expected.float(), rtol=2e-2, atol=2e-2)
