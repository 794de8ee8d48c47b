"""lossbook.ranking against PyTorch (on its own OpInfo/ModuleInfo samples too) and pytorch-metric-learning."""
from __future__ import annotations

import functools
import sys
import types
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.ranking import _batch_all_sums_dense, _batch_all_sums_sorted, _distance_matrix, _pair_masks
from lossbook.testing import assert_matches, silenced

pml = pytest.importorskip("pytorch_metric_learning")
from pytorch_metric_learning import distances, losses, miners, reducers  # noqa: E402

D = torch.float64
REDUCTIONS = ("none", "mean", "sum")
TORCH_FOUR = {
    "margin_ranking_loss": F.margin_ranking_loss,
    "cosine_embedding_loss": F.cosine_embedding_loss,
    "triplet_margin_loss": F.triplet_margin_loss,
    "triplet_margin_with_distance_loss": F.triplet_margin_with_distance_loss,
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, scale=1.0, dtype=D):
    return torch.randn(shape, generator=gen(seed), dtype=dtype) * scale


def signs(*shape, seed=0):
    return torch.where(torch.rand(shape, generator=gen(seed)) > 0.5, 1.0, -1.0).to(D)


def labels_of(n, classes, seed=0):
    return torch.randint(0, classes, (n,), generator=gen(seed))


# --------------------------------------------------------------------------------------------
# PyTorch's own samples (OpInfo and ModuleInfo) for the four torch-named losses


@functools.cache
def _torch_samples():
    """(op name, args, kwargs) from op_db and module_db, float64 and float32."""
    if "expecttest" not in sys.modules:  # only imported by torch's TestCase, which we do not use
        try:
            import expecttest  # noqa: F401
        except ImportError:
            stub = types.ModuleType("expecttest")
            stub.TestCase = type("TestCase", (), {})
            sys.modules["expecttest"] = stub
    from torch.testing._internal.common_methods_invocations import op_db
    from torch.testing._internal.common_modules import module_db

    out = []
    for dtype in (torch.float64, torch.float32):
        for op in op_db:
            name = op.name.removeprefix("nn.functional.")
            if name in TORCH_FOUR and op.name.startswith("nn.functional."):
                for s in op.sample_inputs("cpu", dtype, requires_grad=True):
                    out.append((name, (s.input, *s.args), dict(s.kwargs), dtype))
        classes = {"MarginRankingLoss": "margin_ranking_loss", "CosineEmbeddingLoss": "cosine_embedding_loss",
                   "TripletMarginLoss": "triplet_margin_loss",
                   "TripletMarginWithDistanceLoss": "triplet_margin_with_distance_loss"}
        for m in module_db:
            name = classes.get(m.module_cls.__name__)
            if name is None:
                continue
            for mi in m.module_inputs_func(m, device="cpu", dtype=dtype, requires_grad=True, training=True):
                kwargs = dict(mi.constructor_input.kwargs)
                if mi.constructor_input.args:
                    continue
                out.append((name, tuple(mi.forward_input.args), kwargs, dtype))
    return out


def test_the_torch_samples_cover_the_four_losses():
    names = {name for name, *_ in _torch_samples()}
    assert {"margin_ranking_loss", "cosine_embedding_loss", "triplet_margin_loss",
            "triplet_margin_with_distance_loss"} <= names
    assert len(_torch_samples()) > 60


def test_conformance_on_pytorchs_own_samples():
    """Value, dtype, inf/NaN pattern and gradient on every OpInfo/ModuleInfo sample; inputs unchanged."""
    for name, args, kwargs, dtype in _torch_samples():
        ours, ref = getattr(lossbook, name), TORCH_FOUR[name]
        before = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]
        tol = {"rtol": 1e-7, "atol": 1e-9} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
        try:
            assert_matches(ours, silenced(ref), args, kwargs, **tol)
        except AssertionError as e:
            shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
            raise AssertionError(f"{name}{shapes} {kwargs} {dtype}: {e}") from None
        for a, b in zip(args, before):
            if isinstance(a, torch.Tensor):
                assert torch.equal(a.detach(), b), f"{name} changed its input in place"


# --------------------------------------------------------------------------------------------
# the four, on random inputs and every option


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
@pytest.mark.parametrize("shapes", [((7,), (7,), (7,)), ((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (3, 4)), ((), (), ())])
def test_margin_ranking_loss_matches_torch(shapes, margin, reduction):
    a, b = randn(*shapes[0], seed=1), randn(*shapes[1], seed=2)
    y = signs(*shapes[2], seed=3)
    assert_matches(lossbook.margin_ranking_loss, F.margin_ranking_loss, (a, b, y),
                   {"margin": margin, "reduction": reduction})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [-0.3, 0.0, 0.5])
def test_cosine_embedding_loss_matches_torch(margin, reduction):
    a, b = randn(9, 5, seed=1), randn(9, 5, seed=2)
    y = signs(9, seed=3)
    y[0] = 0.0  # neither 1 nor -1: costs 0 in both
    assert_matches(lossbook.cosine_embedding_loss, F.cosine_embedding_loss, (a, b, y),
                   {"margin": margin, "reduction": reduction}, grad=(0, 1))
    assert_matches(lossbook.cosine_embedding_loss, F.cosine_embedding_loss, (a[0], b[0], y[1]),
                   {"margin": margin, "reduction": reduction}, grad=(0, 1))
    zero = torch.zeros(2, 5, dtype=D)  # a zero vector: the 1e-12 in each norm keeps it finite
    assert_matches(lossbook.cosine_embedding_loss, F.cosine_embedding_loss, (zero, b[:2], y[1:3]), grad=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p, eps, swap", [(2, 1e-6, False), (1, 1e-6, True), (3, 0.0, False), (2, 0.1, True)])
def test_triplet_margin_loss_matches_torch(p, eps, swap, reduction):
    a, pos, neg = randn(6, 4, seed=1), randn(6, 4, seed=2), randn(6, 4, seed=3)
    kw = {"margin": 0.7, "p": p, "eps": eps, "swap": swap, "reduction": reduction}
    assert_matches(lossbook.triplet_margin_loss, F.triplet_margin_loss, (a, pos, neg), kw)
    assert_matches(lossbook.triplet_margin_loss, F.triplet_margin_loss, (a[0], pos[0], neg[0]), kw)
    assert_matches(lossbook.triplet_margin_loss, F.triplet_margin_loss, (a, pos[:1], neg), kw)  # broadcast


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_loss_matches_torch(swap, reduction):
    a, pos, neg = randn(6, 4, seed=1), randn(6, 4, seed=2), randn(6, 4, seed=3)

    def cosine_distance(x, y):
        return 1 - (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1))

    for dist in (None, cosine_distance, lambda x, y: (x - y).abs().sum(-1)):
        kw = {"distance_function": dist, "margin": 0.3, "swap": swap, "reduction": reduction}
        assert_matches(lossbook.triplet_margin_with_distance_loss, F.triplet_margin_with_distance_loss,
                       (a, pos, neg), kw)
    # the default distance makes it triplet_margin_loss
    assert_matches(lossbook.triplet_margin_with_distance_loss, lossbook.triplet_margin_loss, (a, pos, neg),
                   {"swap": swap, "reduction": reduction})


def test_worked_triplet_example_squared_vs_unsquared():
    """a=(0,0), p=(1,0), n=(1.5,0), m=1: unsquared 1 - 1.5 + 1 = 0.5; squared 1 - 2.25 + 1 < 0, so 0."""
    a, p, n = torch.tensor([[0.0, 0.0]], dtype=D), torch.tensor([[1.0, 0.0]], dtype=D), torch.tensor([[1.5, 0.0]], dtype=D)
    assert lossbook.triplet_margin_loss(a, p, n, eps=0.0).item() == 0.5
    sq = lossbook.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y: (x - y).pow(2).sum(-1))
    assert sq.item() == 0.0
    assert abs(lossbook.triplet_margin_loss(a, p, n).item() - 0.5) < 1e-5  # the default eps moves it by ~1e-6
    x = torch.cat([a, p, n])
    assert lossbook.batch_all_triplet_loss(x, torch.tensor([0, 0, 1]), reduction="sum").item() == pytest.approx(0.5 + 1.5)
    # in squared units: (a,p,n) 1 - 2.25 + 1 < 0; (p,a,n) 1 - 0.25 + 1 = 1.75
    assert lossbook.batch_all_triplet_loss(x, torch.tensor([0, 0, 1]), squared=True, reduction="sum").item() == 1.75


# --------------------------------------------------------------------------------------------
# contrastive pairs


def ref_contrastive(x1, x2, y, margin=1.0, reduction="mean"):
    d = F.pairwise_distance(x1, x2)
    y = y.to(d.dtype)
    loss = y * d**2 + (1 - y) * F.relu(margin - d) ** 2
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_dtype", [torch.long, torch.bool, D])
def test_contrastive_loss_matches_its_formula(target_dtype, reduction):
    x1, x2 = randn(10, 3, seed=1, scale=0.5), randn(10, 3, seed=2, scale=0.5)
    y = (torch.rand(10, generator=gen(3)) > 0.5).to(target_dtype)
    assert_matches(lossbook.contrastive_loss, ref_contrastive, (x1, x2, y), {"margin": 1.2, "reduction": reduction},
                   grad=(0, 1))


def test_contrastive_worked_example():
    """D = [1.0, 0.5], labels [1, 0], m = 1: (1 + 0.25) / 2 = 0.625, minus pairwise_distance's eps."""
    x1 = torch.zeros(2, 2, dtype=D)
    x2 = torch.tensor([[1.0, 0.0], [0.5, 0.0]], dtype=D)
    got = lossbook.contrastive_loss(x1, x2, torch.tensor([1, 0])).item()
    eps = 1e-6  # added to x1 - x2 in both coordinates
    d1, d2 = ((1 - eps) ** 2 + eps**2) ** 0.5, ((0.5 - eps) ** 2 + eps**2) ** 0.5
    assert got == pytest.approx((d1**2 + (1 - d2) ** 2) / 2, rel=1e-12)
    assert 0.625 - 1e-6 < got < 0.625


def test_contrastive_margin_acts_on_dissimilar_pairs_only():
    x1 = torch.zeros(1, 2, dtype=D)
    far = torch.tensor([[5.0, 0.0]], dtype=D, requires_grad=True)
    lossbook.contrastive_loss(x1, far, torch.tensor([0])).backward()
    assert torch.equal(far.grad, torch.zeros_like(far))  # a dissimilar pair beyond the margin: no push
    far.grad = None
    lossbook.contrastive_loss(x1, far, torch.tensor([1])).backward()
    assert far.grad[0, 0] > 9  # a similar pair is pulled at any distance (2 D = 10)


# --------------------------------------------------------------------------------------------
# mining and batch losses against pytorch-metric-learning

LP = distances.LpDistance(normalize_embeddings=False)
LP2 = distances.LpDistance(normalize_embeddings=False, power=2)
BATCHES = {
    "random": (randn(24, 6, seed=1), labels_of(24, 4, seed=2)),
    "some anchors alone": (randn(10, 3, seed=3), torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 5, 5])),
    "two classes": (randn(9, 4, seed=4, scale=3), torch.tensor([7, 7, 7, 7, 3, 3, 3, 3, 3])),
}


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_batch_hard_triplets_match_pml(batch):
    x, y = BATCHES[batch]
    for squared, dist in ((False, LP), (True, LP2)):
        ref = miners.BatchHardMiner(distance=dist)(x, y)
        got = lossbook.batch_hard_triplets(x, y, squared=squared)
        for r, o in zip(ref, got):
            assert torch.equal(r, o)


def pml_batch_hard(x, y, *, margin=1.0, squared=False, soft=False):
    dist = LP2 if squared else LP
    triplets = miners.BatchHardMiner(distance=dist)(x, y)
    loss = losses.TripletMarginLoss(margin=0.0 if soft else margin, distance=dist, smooth_loss=soft,
                                    reducer=reducers.MeanReducer())
    return loss(x, y, triplets)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("kw", [{}, {"margin": 0.3}, {"squared": True, "margin": 2.0}, {"soft": True}], ids=str)
def test_batch_hard_triplet_loss_matches_pml(batch, kw):
    x, y = BATCHES[batch]
    assert_matches(lossbook.batch_hard_triplet_loss, pml_batch_hard, (x, y), kw, grad=(0,))


def pml_batch_all(x, y, *, margin=1.0, squared=False, reduction="mean_nonzero"):
    reducer = {"mean_nonzero": reducers.AvgNonZeroReducer(), "mean": reducers.MeanReducer(),
               "sum": reducers.SumReducer()}[reduction]
    return losses.TripletMarginLoss(margin=margin, distance=LP2 if squared else LP, reducer=reducer)(x, y)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("reduction", ["mean_nonzero", "mean", "sum"])
@pytest.mark.parametrize("kw", [{}, {"margin": 0.2}, {"squared": True, "margin": 3.0}], ids=str)
def test_batch_all_triplet_loss_matches_pml(batch, reduction, kw):
    x, y = BATCHES[batch]
    assert_matches(lossbook.batch_all_triplet_loss, pml_batch_all, (x, y), {**kw, "reduction": reduction}, grad=(0,))


def test_batch_all_none_lists_every_valid_triplet():
    x, y = BATCHES["some anchors alone"]
    per = lossbook.batch_all_triplet_loss(x, y, reduction="none")
    pos, neg = _pair_masks(y)
    assert per.shape == ((pos.unsqueeze(2) & neg.unsqueeze(1)).sum().item(),)
    assert torch.allclose(per.sum(), lossbook.batch_all_triplet_loss(x, y, reduction="sum"))
    assert torch.allclose(per[per > 0].mean(), lossbook.batch_all_triplet_loss(x, y))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 12), classes=st.integers(1, 4), margin=st.floats(0.0, 3.0), seed=st.integers(0, 999),
       squared=st.booleans())
def test_sorted_batch_all_sums_equal_the_dense_definition(n, classes, margin, seed, squared):
    x = randn(n, 3, seed=seed).requires_grad_(True)
    y = labels_of(n, classes, seed=seed + 1)
    d = _distance_matrix(x, squared)
    pos, neg = _pair_masks(y)
    dense, fast = _batch_all_sums_dense(d, pos, neg, margin), _batch_all_sums_sorted(d, pos, neg, margin)
    assert torch.allclose(dense[0], fast[0]) and int(dense[1]) == int(fast[1]) and int(dense[2]) == int(fast[2])
    (g_dense,) = torch.autograd.grad(dense[0], x, retain_graph=True)
    (g_fast,) = torch.autograd.grad(fast[0], x)
    assert torch.allclose(g_dense, g_fast)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_nt_xent_and_supcon_match_pml(batch, temperature):
    x, y = BATCHES[batch]
    assert_matches(lossbook.nt_xent_loss, lambda x, y, temperature: losses.NTXentLoss(temperature=temperature)(x, y),
                   (x, y), {"temperature": temperature}, grad=(0,))
    assert_matches(lossbook.supervised_contrastive_loss,
                   lambda x, y, temperature: losses.SupConLoss(temperature=temperature)(x, y),
                   (x, y), {"temperature": temperature}, grad=(0,))


def test_simclr_pairs():
    """Two views per image, labels = image id: NT-Xent's only positive of a row is its other view."""
    x, y = randn(8, 5, seed=9), torch.arange(4).repeat(2)
    assert_matches(lambda x, y: lossbook.nt_xent_loss(x, y, temperature=0.1),
                   lambda x, y: losses.NTXentLoss(temperature=0.1)(x, y), (x, y), grad=(0,))


def test_supcon_excludes_self_and_anchors_without_positives():
    x = randn(7, 3, seed=5)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 3])  # anchors 5 and 6 have no positive
    z = F.normalize(x, dim=1)
    s = z @ z.T / 0.1
    eye = torch.eye(7, dtype=torch.bool)
    log_prob = s - torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    pos = (y[:, None] == y[None]) & ~eye
    per = -(log_prob * pos).sum(1) / pos.sum(1).clamp_min(1)
    expected = per[:5].mean()
    assert torch.allclose(lossbook.supervised_contrastive_loss(x, y), expected)
    with_self = s - torch.logsumexp(s, dim=1, keepdim=True)  # the self-term kept: a different, larger number
    wrong = (-(with_self * pos).sum(1) / pos.sum(1).clamp_min(1))[:5].mean()
    assert wrong > expected + 0.1


def test_small_temperature_is_finite_and_warns():
    x, y = randn(6, 4, seed=1, dtype=torch.float32), torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.warns(lossbook.PitfallWarning, match="temperature"):
        loss = lossbook.supervised_contrastive_loss(x, y, temperature=0.005)
    assert torch.isfinite(loss)
    naive = torch.exp(F.normalize(x, dim=1) @ F.normalize(x, dim=1).T / 0.005)  # what an unshifted exp does
    assert torch.isinf(naive).any()


# --------------------------------------------------------------------------------------------
# InfoNCE


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_info_nce_is_cross_entropy_over_similarities(reduction):
    q, k, negs = randn(6, 4, seed=1), randn(6, 4, seed=2), randn(9, 4, seed=3)

    def ref(q, k, negative_keys=None, temperature=0.1, reduction="mean"):
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        if negative_keys is None:
            return F.cross_entropy(q @ k.T / temperature, torch.arange(len(q)), reduction=reduction)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ F.normalize(negative_keys, dim=1).T], 1) / temperature
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long), reduction=reduction)

    for kw in ({}, {"temperature": 0.5}):
        assert_matches(lossbook.info_nce_loss, ref, (q, k), {**kw, "reduction": reduction})
        assert_matches(lossbook.info_nce_loss, ref, (q, k, negs), {**kw, "reduction": reduction})


# --------------------------------------------------------------------------------------------
# edge cases: empty sets, devices, large norms


BATCH_LOSSES = {
    "batch_hard_triplet_loss": lossbook.batch_hard_triplet_loss,
    "batch_all_triplet_loss": lossbook.batch_all_triplet_loss,
    "nt_xent_loss": lossbook.nt_xent_loss,
    "supervised_contrastive_loss": lossbook.supervised_contrastive_loss,
}


@pytest.mark.parametrize("name", BATCH_LOSSES)
@pytest.mark.parametrize("labels", [torch.arange(5), torch.zeros(5, dtype=torch.long)], ids=["all distinct", "all same"])
def test_no_pairs_gives_a_connected_zero(name, labels):
    x = randn(5, 3, seed=1).requires_grad_(True)
    loss = BATCH_LOSSES[name](x, labels)
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))
    if name != "supervised_contrastive_loss":  # PML agrees
        ref = {"batch_hard_triplet_loss": pml_batch_hard, "batch_all_triplet_loss": pml_batch_all,
               "nt_xent_loss": lambda x, y: losses.NTXentLoss()(x, y)}[name]
        assert ref(x.detach(), labels).item() == 0.0


def test_empty_info_nce_is_a_connected_zero():
    q = torch.zeros(0, 4, dtype=D, requires_grad=True)
    loss = lossbook.info_nce_loss(q, q.detach().clone())
    loss.backward()
    assert loss.item() == 0.0 and q.grad is not None


@pytest.mark.parametrize("name", BATCH_LOSSES)
def test_meta_device_labels_never_meet_a_cpu_tensor(name):
    """The device bug of a per-anchor loop with a CPU arange: every helper tensor is made on the input's device."""
    x = torch.empty(6, 3, device="meta", requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2], device="meta")
    out = BATCH_LOSSES[name](x, y)
    assert out.device.type == "meta"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_norm_embeddings_keep_their_small_distances(dtype):
    """A true distance of 0.011 at norm 1000: cdist's matrix-product path returns 0 in float32."""
    g = gen(0)
    base = torch.randn(40, 16, generator=g, dtype=D)
    base = base / base.norm(dim=1, keepdim=True) * 1000
    step = torch.zeros(16, dtype=D)
    step[:4] = 0.011 / 2
    base[1] = base[0] + step
    x = base.to(dtype)
    true = (x[0].double() - x[1].double()).norm().item()
    assert abs(true - 0.011) < 1e-3
    if dtype == torch.float32:
        assert torch.cdist(x, x)[0, 1].item() == 0.0  # the trap
    assert _distance_matrix(x)[0, 1].item() == pytest.approx(true, rel=1e-4)
    y = torch.arange(40)
    y[1] = 0
    # anchor 0's only positive is row 1; the hardest positive distance is the small one
    a, p, n = lossbook.batch_hard_triplets(x, y)
    assert p[0].item() == 1
    per = lossbook.batch_all_triplet_loss(x, y, margin=1.0, reduction="none")
    assert torch.isfinite(per).all()
    xr = x.clone().requires_grad_(True)
    lossbook.batch_hard_triplet_loss(xr, y, margin=0.5).backward()
    assert torch.isfinite(xr.grad).all()


def test_identical_embeddings_have_finite_gradients():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [0.0, 0.0]], dtype=D, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    for fn in (lossbook.batch_hard_triplet_loss, lossbook.batch_all_triplet_loss):
        x.grad = None
        fn(x, y, margin=5.0).backward()
        assert torch.isfinite(x.grad).all()
    assert_matches(lossbook.batch_all_triplet_loss, pml_batch_all, (x.detach(), y), {"margin": 5.0}, grad=(0,))


# --------------------------------------------------------------------------------------------
# bad inputs


def test_bad_inputs_are_named():
    x, y = randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="labels has 3 entries but embeddings has 4 rows"):
        lossbook.batch_hard_triplet_loss(x, y[:3])
    with pytest.raises(TypeError, match="labels must hold integer class ids"):
        lossbook.nt_xent_loss(x, y.double())
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        lossbook.supervised_contrastive_loss(x, y, temperature=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        lossbook.info_nce_loss(x, x, temperature=-1.0)
    with pytest.raises(ValueError, match="embeddings has shape \\(3,\\)"):
        lossbook.batch_all_triplet_loss(x[0], y[:1])
    with pytest.raises(ValueError, match="reduction must be one of 'mean_nonzero'"):
        lossbook.batch_all_triplet_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="target must be 1 \\(similar\\) or 0 \\(dissimilar\\), got -1"):
        lossbook.contrastive_loss(x, x, torch.tensor([1, -1, 1, -1]))
    with pytest.raises(ValueError, match="do not match"):
        lossbook.contrastive_loss(x, x, y[:3])
    with pytest.raises(ValueError, match="positive_key has shape \\(3, 3\\) but query has shape \\(4, 3\\)"):
        lossbook.info_nce_loss(x, x[:3])
    with pytest.raises(ValueError, match="negative_keys has shape \\(5, 2\\)"):
        lossbook.info_nce_loss(x, x, randn(5, 2))
    with pytest.raises(ValueError, match="margin must be greater than 0, got -1"):
        lossbook.triplet_margin_loss(x, x, x, margin=-1.0)
    with pytest.raises(ValueError, match="same number of dimensions, but got: anchor 1D"):
        lossbook.triplet_margin_loss(x[0], x, x)
    with pytest.raises(ValueError, match="do not broadcast"):
        lossbook.triplet_margin_with_distance_loss(x, randn(4, 2), x)
    with pytest.raises(ValueError, match="same number of dimensions"):
        lossbook.margin_ranking_loss(x, x, y)
    with pytest.raises(ValueError, match="a 1-D target needs 2-D inputs"):
        lossbook.cosine_embedding_loss(x[0], x[1], y)
    with pytest.raises(ValueError, match="reduction must be one of"):
        lossbook.cosine_embedding_loss(x, x, y, reduction="abc")


# --------------------------------------------------------------------------------------------
# low precision, composability


SMALL = {
    "margin_ranking_loss": lambda: ((randn(5, seed=1), randn(5, seed=2), signs(5, seed=3)), {"margin": 0.2}),
    "cosine_embedding_loss": lambda: ((randn(5, 3, seed=1), randn(5, 3, seed=2), signs(5, seed=3)), {"margin": 0.1}),
    "triplet_margin_loss": lambda: ((randn(5, 3, seed=1), randn(5, 3, seed=2), randn(5, 3, seed=3)), {"swap": True}),
    "triplet_margin_with_distance_loss": lambda: ((randn(5, 3, seed=1), randn(5, 3, seed=2), randn(5, 3, seed=3)), {}),
    "contrastive_loss": lambda: ((randn(5, 3, seed=1), randn(5, 3, seed=2), torch.tensor([1, 0, 1, 0, 0])), {}),
    "batch_hard_triplet_loss": lambda: ((randn(8, 3, seed=1), labels_of(8, 3, seed=4)), {}),
    "batch_all_triplet_loss": lambda: ((randn(8, 3, seed=1), labels_of(8, 3, seed=4)), {"margin": 2.0}),
    "nt_xent_loss": lambda: ((randn(8, 3, seed=1), labels_of(8, 3, seed=4)), {"temperature": 0.5}),
    "supervised_contrastive_loss": lambda: ((randn(8, 3, seed=1), labels_of(8, 3, seed=4)), {"temperature": 0.5}),
    "info_nce_loss": lambda: ((randn(5, 3, seed=1), randn(5, 3, seed=2), randn(4, 3, seed=3)), {"temperature": 0.5}),
}


def _float_args(args, dtype):
    return tuple(a.to(dtype) if a.is_floating_point() else a for a in args)


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_low_precision_smoke(name, dtype):
    args, kw = SMALL[name]()
    args = _float_args(args, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = getattr(lossbook, name)(*args, **kw)
    assert out.dtype == dtype and torch.isfinite(out).all()
    ref = getattr(lossbook, name)(*_float_args(args, D), **kw)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    assert torch.allclose(out.double(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", SMALL)
def test_gradcheck_and_gradgradcheck(name):
    args, kw = SMALL[name]()
    args = list(args)
    n_float = [i for i, a in enumerate(args) if a.is_floating_point()]

    def fn(*floats):
        full = list(args)
        for i, f in zip(n_float, floats):
            full[i] = f
        return getattr(lossbook, name)(*full, **kw)

    inputs = tuple(args[i].clone().requires_grad_(True) for i in n_float)
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("name", SMALL)
def test_torch_func_grad_vmap_and_compile(name):
    args, kw = SMALL[name]()
    fn = getattr(lossbook, name)

    def first_arg_loss(x):
        return fn(x, *args[1:], **kw)

    g_func = torch.func.grad(first_arg_loss)(args[0])
    x = args[0].clone().requires_grad_(True)
    (g_auto,) = torch.autograd.grad(first_arg_loss(x), x)
    assert torch.allclose(g_func, g_auto)
    batched = torch.stack([args[0], 2 * args[0]])
    assert torch.allclose(torch.func.vmap(first_arg_loss)(batched)[1], first_arg_loss(2 * args[0]))
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    assert torch.allclose(compiled(*args, **kw), fn(*args, **kw))

