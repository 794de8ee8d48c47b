"""lossbook.segmentation against MONAI (Dice, Tversky, generalised Dice, Dice + CE) and a transcription of the
authors' Lovász code, in float64: values, gradients, every option, edge inputs, errors, composability."""
from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook

# the transcription of the authors' Lovász code lives with the benchmarks (never in lossbook); plain `pytest`
# does not put the repository root on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.segmentation import ref_lovasz_hinge, ref_lovasz_softmax  # noqa: E402
from lossbook.testing import assert_matches, compare

monai_losses = pytest.importorskip("monai.losses")

D = torch.float64
REDUCTIONS = ("none", "mean", "sum")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def logits(*shape, seed=0):
    return torch.randn(shape, generator=gen(seed), dtype=D) * 2


def probs(*shape, seed=0):
    return torch.rand(shape, generator=gen(seed), dtype=D)


def labels(n, c, *spatial, seed=1, ignore=None):
    y = torch.randint(0, c, (n, 1, *spatial), generator=gen(seed))
    if ignore is not None:
        y[torch.rand(y.shape, generator=gen(seed + 7)) < 0.2] = ignore
    return y


def onehot(y, c):
    return (y == torch.arange(c).view(1, c, *([1] * (y.dim() - 2)))).to(D)


def monai(cls, out_shape=None, **kwargs):
    """MONAI's loss as a function, warnings silenced, 'none' outputs reshaped to lossbook's (N, C) / (C,)."""

    def call(input, target, **_):  # assert_matches passes lossbook's keywords too: the ones given above count
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = getattr(monai_losses, cls)(**kwargs)(input, target)
        return out if out_shape is None else out.reshape(out_shape(input))

    return call


def none_shape(batch, per_class=True):
    if per_class:
        return (lambda x: (-1,)) if batch else (lambda x: (x.shape[0], -1))
    return (lambda x: ()) if batch else (lambda x: (x.shape[0],))


def case(act, target_kind, c=3, spatial=(4, 5), ignore=None, seed=0):
    """Input for the activation ('none' -> probabilities) and a target of the given kind."""
    x = probs(2, c, *spatial, seed=seed) if act == "none" else logits(2, c, *spatial, seed=seed)
    y = labels(2, c, *spatial, seed=seed + 1, ignore=ignore)
    if target_kind == "onehot":
        y = onehot(y, c)  # ignored pixels become all-zero rows (MONAI's sentinel rule)
    return x, y


ACT = {"none": {}, "sigmoid": {"sigmoid": True}, "softmax": {"softmax": True}}


# --------------------------------------------------------------------------------------------
# dice_loss, tversky_loss: every option against MONAI


@pytest.mark.parametrize("act,target_kind,include_background,batch,reduction",
                         itertools.product(ACT, ("onehot", "index"), (True, False), (False, True), REDUCTIONS))
def test_dice_matches_monai(act, target_kind, include_background, batch, reduction):
    x, y = case(act, target_kind)
    kw = dict(ACT[act], include_background=include_background, to_onehot_y=target_kind == "index", batch=batch,
              reduction=reduction)
    ref = monai("DiceLoss", none_shape(batch) if reduction == "none" else None, **kw)
    assert_matches(lossbook.dice_loss, ref, (x, y), kw, grad=(0,))


@pytest.mark.parametrize("squared_pred,jaccard", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("spatial", [(6,), (4, 5), (3, 4, 2)])
def test_dice_squared_jaccard_and_k_dims_match_monai(squared_pred, jaccard, spatial):
    x, y = case("softmax", "index", spatial=spatial)
    kw = dict(softmax=True, to_onehot_y=True, squared_pred=squared_pred, jaccard=jaccard, reduction="none")
    assert_matches(lossbook.dice_loss, monai("DiceLoss", none_shape(False), **kw), (x, y), kw, grad=(0,))


@pytest.mark.parametrize("smooth", [(0.0, 1e-6), (1.0, 1.0), (1e-5, 1e-5), (0.3, 2.0)])
@pytest.mark.parametrize("weight", [None, 2.0, [0.2, 1.0, 3.0], "tensor"])
def test_dice_smoothing_and_weight_match_monai(smooth, weight):
    x, y = case("softmax", "onehot", seed=3)
    if weight == "tensor":
        weight = torch.tensor([0.5, 0.0, 2.0], dtype=D)
    kw = dict(softmax=True, smooth_nr=smooth[0], smooth_dr=smooth[1], weight=weight)
    assert_matches(lossbook.dice_loss, monai("DiceLoss", **kw), (x, y), kw, grad=(0,))


@pytest.mark.parametrize("batch,include_background,reduction", [(True, True, "none"), (True, False, "sum"),
                                                                 (False, False, "none")])
def test_dice_weight_with_batch_and_background_matches_monai(batch, include_background, reduction):
    x, y = case("softmax", "index", c=4, seed=4)
    weight = [0.5, 2.0, 1.0] if not include_background else [0.1, 0.5, 2.0, 1.0]
    kw = dict(softmax=True, to_onehot_y=True, batch=batch, include_background=include_background,
              reduction=reduction, weight=weight, squared_pred=True)
    ref = monai("DiceLoss", none_shape(batch) if reduction == "none" else None, **kw)
    assert_matches(lossbook.dice_loss, ref, (x, y), kw, grad=(0,))


def test_dice_weight_is_ignored_when_one_class_remains():
    # MONAI applies no weight when a single class is left (here: two classes, background dropped)
    x, y = case("softmax", "index", c=2, seed=4)
    kw = dict(softmax=True, to_onehot_y=True, include_background=False, reduction="none")
    assert compare(lossbook.dice_loss(x, y, **kw), lossbook.dice_loss(x, y, weight=7.0, **kw)) is None
    assert compare(monai("DiceLoss", none_shape(False), weight=7.0, **kw)(x, y),
                   lossbook.dice_loss(x, y, weight=7.0, **kw)) is None


@pytest.mark.parametrize("fn,cls", [(lossbook.dice_loss, "DiceLoss"), (lossbook.tversky_loss, "TverskyLoss")])
@pytest.mark.parametrize("target_kind,ignore", [("index", 255), ("index", 1), ("index", -1), ("onehot", 255),
                                                ("onehot", 2)])
@pytest.mark.parametrize("include_background", [True, False])
def test_ignore_index_matches_monai(fn, cls, target_kind, ignore, include_background):
    x, y = case("softmax", "index", ignore=ignore, seed=5)
    if target_kind == "onehot":
        y = onehot(y, 3)
    kw = dict(softmax=True, to_onehot_y=target_kind == "index", ignore_index=ignore,
              include_background=include_background, reduction="none")
    assert_matches(fn, monai(cls, none_shape(False), **kw), (x, y), kw, grad=(0,))


def test_ignore_index_masks_out_instead_of_crashing():
    # a 255 "void" border: with ignore_index the loss equals the loss of the valid pixels alone
    x, y = case("softmax", "index", seed=6)
    y_void = y.clone()
    y_void[..., 0] = 255
    with pytest.raises(ValueError, match="class index 255"):
        lossbook.dice_loss(x, y_void, softmax=True, to_onehot_y=True)
    got = lossbook.dice_loss(x, y_void, softmax=True, to_onehot_y=True, ignore_index=255, reduction="none")
    p = lossbook.softmax(x, 1)[..., 1:]
    want = lossbook.dice_loss(p, y[..., 1:], to_onehot_y=True, reduction="none")
    assert compare(want, got) is None


@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.3, 0.7), (1.0, 1.0), (0.9, 0.1), (0.0, 1.0)])
@pytest.mark.parametrize("act,target_kind", [("none", "onehot"), ("softmax", "index"), ("sigmoid", "onehot")])
@pytest.mark.parametrize("batch,reduction,include_background", [(False, "none", True), (True, "none", False),
                                                                 (False, "mean", False), (True, "sum", True)])
def test_tversky_matches_monai(alpha, beta, act, target_kind, batch, reduction, include_background):
    x, y = case(act, target_kind, seed=8)
    kw = dict(ACT[act], to_onehot_y=target_kind == "index", alpha=alpha, beta=beta, batch=batch,
              reduction=reduction, smooth_nr=0.1, smooth_dr=0.2, include_background=include_background)
    assert_matches(lossbook.tversky_loss, monai("TverskyLoss", **kw), (x, y), kw, grad=(0,))


@pytest.mark.parametrize("include_background", [True, False])
def test_tversky_half_half_is_dice_and_one_one_is_jaccard(include_background):
    x, y = case("softmax", "index", seed=9)
    kw = dict(softmax=True, to_onehot_y=True, include_background=include_background, reduction="none")
    # Dice adds its smoothing to 2 TP, Tversky to TP: halve it to compare
    d = lossbook.dice_loss(x, y, smooth_nr=2e-5, smooth_dr=2e-5, **kw)
    assert compare(d, lossbook.tversky_loss(x, y, alpha=0.5, beta=0.5, smooth_nr=1e-5, smooth_dr=1e-5, **kw)) is None
    j = lossbook.dice_loss(x, y, jaccard=True, smooth_nr=0.0, smooth_dr=0.0, **kw)
    assert compare(j, lossbook.tversky_loss(x, y, alpha=1.0, beta=1.0, smooth_nr=0.0, smooth_dr=0.0, **kw)) is None


# --------------------------------------------------------------------------------------------
# generalized_dice_loss and dice_ce_loss


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("act,target_kind", [("none", "onehot"), ("softmax", "index"), ("sigmoid", "index")])
@pytest.mark.parametrize("batch,reduction", [(False, "none"), (True, "none"), (False, "mean"), (True, "sum")])
@pytest.mark.parametrize("include_background", [True, False])
def test_generalized_dice_matches_monai(w_type, act, target_kind, batch, reduction, include_background):
    x, y = case(act, target_kind, c=4, seed=10)
    y[0, :, :2] = 0 if target_kind == "index" else y[0, :, :2]  # a class missing from one sample
    kw = dict(ACT[act], to_onehot_y=target_kind == "index", w_type=w_type, batch=batch, reduction=reduction,
              include_background=include_background)
    shape = none_shape(batch, per_class=False) if reduction == "none" else None
    # MONAI computes the class weights in float32 even for float64 inputs: hence the tolerance
    assert_matches(lossbook.generalized_dice_loss, monai("GeneralizedDiceLoss", shape, **kw), (x, y), kw,
                   grad=(0,), rtol=1e-6, atol=1e-9)


def test_generalized_dice_empty_classes_take_the_largest_weight():
    x, y = case("none", "index", c=3, seed=11)
    y[0] = 0  # sample 0: only class 0 present; classes 1 and 2 take class 0's weight
    got = lossbook.generalized_dice_loss(x, y, to_onehot_y=True, reduction="none")
    yy = onehot(y, 3)
    tp, vol = (x * yy).flatten(2).sum(-1), yy.flatten(2).sum(-1)
    w = vol.clamp_min(1) ** -2
    w = torch.where(vol > 0, w, w.masked_fill(vol == 0, 0).amax(1, keepdim=True))
    den = (w * (x.flatten(2).sum(-1) + vol)).sum(1)
    want = 1 - (2 * (w * tp).sum(1) + 1e-5) / (den + 1e-5)
    assert compare(want, got) is None


def test_generalized_dice_ignore_index_is_dice_masking():
    x, y = case("softmax", "index", c=3, ignore=255, seed=12)
    got = lossbook.generalized_dice_loss(x, y, softmax=True, to_onehot_y=True, ignore_index=255, reduction="none")
    mask = (y != 255).to(D)
    p = lossbook.softmax(x, 1) * mask
    want = monai("GeneralizedDiceLoss", none_shape(False, per_class=False), reduction="none")(
        p, onehot(y.masked_fill(y == 255, 0), 3) * mask)
    assert compare(want, got, rtol=1e-6) is None


@pytest.mark.parametrize("target_kind", ["index", "onehot"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("weight", [None, [0.3, 1.0, 2.0]])
@pytest.mark.parametrize("reduction,lambdas,smoothing", [("mean", (1.0, 1.0), 0.0), ("sum", (0.3, 2.0), 0.1)])
def test_dice_ce_matches_monai(target_kind, include_background, weight, reduction, lambdas, smoothing):
    x, y = case("softmax", target_kind, seed=13)
    w = None if weight is None else torch.tensor(weight, dtype=D)
    kw = dict(softmax=True, to_onehot_y=target_kind == "index", include_background=include_background,
              weight=w, reduction=reduction, lambda_dice=lambdas[0], lambda_ce=lambdas[1],
              label_smoothing=smoothing)
    assert_matches(lossbook.dice_ce_loss, monai("DiceCELoss", **kw), (x, y), kw, grad=(0,))


def test_dice_ce_single_channel_uses_bce_and_jaccard_squared_options():
    x = logits(2, 1, 4, 5, seed=14)
    y = (probs(2, 1, 4, 5, seed=15) > 0.5).to(D)
    kw = dict(sigmoid=True, weight=torch.tensor([3.0], dtype=D))
    assert_matches(lossbook.dice_ce_loss, monai("DiceCELoss", **kw), (x, y), kw, grad=(0,))
    x, y = case("softmax", "index", seed=16)
    kw = dict(softmax=True, to_onehot_y=True, squared_pred=True, jaccard=True, batch=True)
    assert_matches(lossbook.dice_ce_loss, monai("DiceCELoss", **kw), (x, y), kw, grad=(0,))


def test_dice_ce_ignore_index_masks_both_terms():
    x, y = case("softmax", "index", ignore=255, seed=17)
    got = lossbook.dice_ce_loss(x, y, softmax=True, to_onehot_y=True, ignore_index=255)
    dice = lossbook.dice_loss(x, y, softmax=True, to_onehot_y=True, ignore_index=255)
    ce = F.cross_entropy(x, y.squeeze(1), ignore_index=255)
    assert compare(dice + ce, got) is None


# --------------------------------------------------------------------------------------------
# worked numbers, empty masks and the pitfalls of the chapter


def test_worked_numbers_half_overlap():
    p = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]], dtype=D)
    y = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]], dtype=D)
    # TP = FP = FN = 1: Dice = 2/4 (loss 0.5); with smoothing 1: (2 + 1)/(4 + 1) (loss 0.4)
    assert lossbook.dice_loss(p, y, smooth_nr=0.0, smooth_dr=0.0).item() == pytest.approx(1 - 2 / 4)
    assert lossbook.dice_loss(p, y, smooth_nr=1.0, smooth_dr=1.0).item() == pytest.approx(1 - 3 / 5)
    # IoU = 1/3
    assert lossbook.dice_loss(p, y, jaccard=True, smooth_nr=0.0, smooth_dr=0.0).item() == pytest.approx(2 / 3)


def test_empty_mask_conventions():
    empty = torch.zeros(1, 1, 16, dtype=D)
    one_pixel = empty.clone()
    one_pixel[..., 0] = 1
    full = torch.ones_like(empty)
    # MONAI's smoothing: both empty is a perfect score
    assert lossbook.dice_loss(empty, empty).item() == 0.0
    assert compare(monai("DiceLoss")(empty, empty), lossbook.dice_loss(empty, empty)) is None
    # no smoothing: 0 / 0
    assert torch.isnan(lossbook.dice_loss(empty, empty, smooth_nr=0.0, smooth_dr=0.0))
    # an epsilon in the denominator only: both empty is the worst score
    assert lossbook.dice_loss(empty, empty, smooth_nr=0.0, smooth_dr=1e-7).item() == 1.0
    # smoothing 1: half credit for predicting nothing on a 1-pixel object; 1 - 1/17 for all-ones on empty
    assert lossbook.dice_loss(empty, one_pixel, smooth_nr=1.0, smooth_dr=1.0).item() == pytest.approx(0.5)
    assert lossbook.dice_loss(full, empty, smooth_nr=1.0, smooth_dr=1.0).item() == pytest.approx(1 - 1 / 17)
    assert lossbook.tversky_loss(empty, empty).item() == 0.0
    assert lossbook.generalized_dice_loss(empty, empty).item() == 0.0


def test_logits_where_probabilities_are_expected_warn():
    x = torch.tensor([[[-3.0, 5.0]]], dtype=D)
    y = torch.tensor([[[0.0, 1.0]]], dtype=D)
    with pytest.warns(lossbook.PitfallWarning, match="outside \\[0, 1\\].*softmax=True"):
        bad = lossbook.dice_loss(x, y, smooth_nr=1.0, smooth_dr=1.0)
    assert bad.item() == pytest.approx(1 - (2 * 5 + 1) / (2 + 1 + 1))  # -1.75: a "loss" below zero
    good = lossbook.dice_loss(x, y, sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
    assert 0 <= good.item() <= 1
    with pytest.warns(lossbook.PitfallWarning, match="tversky_loss"):
        lossbook.tversky_loss(x, y)
    with pytest.warns(lossbook.PitfallWarning, match="probabilities"):
        lossbook.lovasz_softmax_loss(logits(1, 3, 4), torch.zeros(1, 4, dtype=torch.long))
    with pytest.warns(lossbook.PitfallWarning, match="single-channel"):
        lossbook.dice_loss(x, y, softmax=True)


def test_global_dice_differs_from_per_sample_dice():
    p = torch.tensor([[[1.0, 1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0, 1.0]]], dtype=D)
    y = torch.tensor([[[1.0, 1.0, 1.0, 1.0]], [[0.0, 0.0, 1.0, 0.0]]], dtype=D)
    per_sample = lossbook.dice_loss(p, y, smooth_nr=0.0, smooth_dr=1e-12)
    pooled = lossbook.dice_loss(p, y, batch=True, smooth_nr=0.0, smooth_dr=1e-12)
    assert per_sample.item() == pytest.approx((0 + 1) / 2)
    assert pooled.item() == pytest.approx(1 - 2 * 4 / (5 + 5))


# --------------------------------------------------------------------------------------------
# Lovász


def idx_labels(n, c, *spatial, seed=1, ignore=None):
    return labels(n, c, *spatial, seed=seed, ignore=ignore).squeeze(1)


@pytest.mark.parametrize("classes", ["present", "all", [0, 2]])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [None, 255])
@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 2)])
def test_lovasz_softmax_matches_reference(classes, per_image, ignore, spatial):
    p = lossbook.softmax(logits(3, 4, *spatial, seed=20), 1)
    y = idx_labels(3, 4, *spatial, seed=21, ignore=ignore)
    y[1] = y[1].clamp_max(1)  # image 1 lacks classes 2 and 3
    kw = dict(classes=classes, per_image=per_image, ignore_index=ignore)
    ref = lambda a, b, **k: ref_lovasz_softmax(a, b, classes=classes, per_image=per_image, ignore=ignore)  # noqa: E731
    assert_matches(lossbook.lovasz_softmax_loss, ref, (p, y), kw, grad=(0,))


@pytest.mark.parametrize("layout", ["index (N, 1, ...)", "one-hot"])
def test_lovasz_softmax_target_layouts_agree(layout):
    p = lossbook.softmax(logits(2, 3, 4, 4, seed=22), 1)
    y = idx_labels(2, 3, 4, 4, seed=23, ignore=255)
    want = lossbook.lovasz_softmax_loss(p, y, ignore_index=255)
    t = y.unsqueeze(1) if layout.startswith("index") else onehot(y.unsqueeze(1), 3)
    assert compare(want, lossbook.lovasz_softmax_loss(p, t, ignore_index=255)) is None


def test_lovasz_softmax_all_ignored_or_no_class_is_zero():
    p = lossbook.softmax(logits(2, 3, 4, seed=24), 1).requires_grad_()
    y = torch.full((2, 4), 255)
    loss = lossbook.lovasz_softmax_loss(p, y, ignore_index=255)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(p.grad, torch.zeros_like(p))
    y[0] = 1  # image 1 all ignored: it counts as 0 in the per-image mean
    both = lossbook.lovasz_softmax_loss(p, y, ignore_index=255, per_image=True)
    first = lossbook.lovasz_softmax_loss(p[:1], y[:1], ignore_index=255)
    assert compare(first / 2, both) is None


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(1, 3), st.integers(2, 30), st.integers(0, 10_000), st.booleans())
def test_lovasz_softmax_on_one_hot_predictions_is_one_minus_mean_iou(c, n, pixels, seed, per_image):
    g = gen(seed)
    y = torch.randint(0, c, (n, pixels), generator=g)
    pred = torch.where(torch.rand(n, pixels, generator=g) < 0.5, torch.randint(0, c, (n, pixels), generator=g), y)
    p = onehot(pred.unsqueeze(1), c).squeeze(-1) if False else onehot(pred.unsqueeze(1), c)
    loss = lossbook.lovasz_softmax_loss(p, y, per_image=per_image)

    def miou(pr, gt):
        present = [k for k in range(c) if (gt == k).any()]
        ious = [((pr == k) & (gt == k)).sum().item() / ((pr == k) | (gt == k)).sum().item() for k in present]
        return sum(ious) / len(ious)

    want = sum(1 - miou(pred[i], y[i]) for i in range(n)) / n if per_image else 1 - miou(pred, y)
    assert loss.item() == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("ignore", [None, 255])
@pytest.mark.parametrize("shape", [(3, 5, 6), (2, 1, 4, 4), (4, 7)])
def test_lovasz_hinge_matches_reference(per_image, ignore, shape):
    x = logits(*shape, seed=30)
    y = (probs(*shape, seed=31) > 0.6).long()
    if ignore is not None:
        y[probs(*shape, seed=32) < 0.2] = ignore
    y[0] = 0 if ignore is None else y[0]  # an image without foreground
    kw = dict(per_image=per_image, ignore_index=ignore)
    ref = lambda a, b, **k: ref_lovasz_hinge(a, b, per_image=per_image, ignore=ignore)  # noqa: E731
    assert_matches(lossbook.lovasz_hinge_loss, ref, (x, y), kw, grad=(0,))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(0, 10_000))
def test_lovasz_hinge_on_saturated_logits_is_the_jaccard_loss(pixels, seed):
    # logits ±1 predict a mask; the hinge errors are 0 or 2, so the loss is 2 (1 - IoU)
    g = gen(seed)
    y = torch.randint(0, 2, (1, pixels), generator=g)
    pred = torch.randint(0, 2, (1, pixels), generator=g)
    x = (2 * pred - 1).to(D)
    inter, union = (pred & y).sum().item(), (pred | y).sum().item()
    want = 2 * (1 - inter / union) if union else 0.0
    assert lossbook.lovasz_hinge_loss(x, y).item() == pytest.approx(want, abs=1e-12)


# --------------------------------------------------------------------------------------------
# bad inputs


def test_bad_inputs_raise_clear_errors():
    x, y = case("softmax", "index")
    with pytest.raises(ValueError, match="pass to_onehot_y=True"):
        lossbook.dice_loss(x, y, softmax=True)
    with pytest.raises(ValueError, match="use target.unsqueeze\\(1\\)"):
        lossbook.dice_loss(x, y.squeeze(1), softmax=True, to_onehot_y=True)
    with pytest.raises(ValueError, match="already one channel per class"):
        lossbook.tversky_loss(x, onehot(y, 3), softmax=True, to_onehot_y=True)
    with pytest.raises(ValueError, match="target has 2 channels but input has C=3"):
        lossbook.dice_loss(x, onehot(y, 3)[:, :2], softmax=True)
    with pytest.raises(ValueError, match="incompatible"):
        lossbook.dice_loss(x, y, softmax=True, sigmoid=True, to_onehot_y=True)
    with pytest.raises(ValueError, match="class index 7"):
        lossbook.dice_loss(x, y.masked_fill(y == 0, 7), softmax=True, to_onehot_y=True)
    with pytest.raises(ValueError, match="weight has shape \\(2,\\) but there are 3 classes"):
        lossbook.dice_loss(x, y, softmax=True, to_onehot_y=True, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="weight must be >= 0"):
        lossbook.dice_loss(x, y, softmax=True, to_onehot_y=True, weight=[1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="reduction must be one of"):
        lossbook.dice_loss(x, y, softmax=True, to_onehot_y=True, reduction="batchmean")
    with pytest.raises(ValueError, match="w_type must be one of"):
        lossbook.generalized_dice_loss(x, y, softmax=True, to_onehot_y=True, w_type="log")
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum'"):
        lossbook.dice_ce_loss(x, y, softmax=True, to_onehot_y=True, reduction="none")
    with pytest.raises(ValueError, match="lambda_dice and lambda_ce must be >= 0"):
        lossbook.dice_ce_loss(x, y, softmax=True, to_onehot_y=True, lambda_ce=-1.0)
    with pytest.raises(ValueError, match="ignore_index needs class-index targets"):
        lossbook.dice_ce_loss(x, onehot(y, 3), softmax=True, ignore_index=255)
    with pytest.raises(ValueError, match="at least 3-D"):
        lossbook.dice_loss(x[0, 0], y[0, 0])
    with pytest.raises(TypeError, match="floating-point"):
        lossbook.dice_loss(y, y)
    with pytest.raises(ValueError, match="C >= 2"):
        lossbook.lovasz_softmax_loss(probs(2, 1, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="class indices of shape \\(N, \\*spatial\\) = \\(2, 4\\)"):
        lossbook.lovasz_softmax_loss(probs(2, 3, 4), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="classes must be"):
        lossbook.lovasz_softmax_loss(probs(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), classes="some")
    with pytest.raises(ValueError, match="0/1 labels or ignore_index"):
        lossbook.lovasz_hinge_loss(logits(2, 4), torch.full((2, 4), 2), ignore_index=255)
    with pytest.raises(ValueError, match="one 0/1 label per logit"):
        lossbook.lovasz_hinge_loss(logits(2, 4), torch.zeros(2, 5))


# --------------------------------------------------------------------------------------------
# dtypes, devices, autograd and compilers


def _p(x):
    return torch.softmax(x, 1)  # the probabilities, from torch (see COMPOSED below for softmax=True)


ALL = [
    ("dice_loss", lambda x, y: lossbook.dice_loss(_p(x), y, to_onehot_y=True, squared_pred=True)),
    ("jaccard", lambda x, y: lossbook.dice_loss(_p(x), y, to_onehot_y=True, jaccard=True, batch=True)),
    ("tversky_loss", lambda x, y: lossbook.tversky_loss(_p(x), y, to_onehot_y=True, alpha=0.3, beta=0.7)),
    ("generalized_dice_loss", lambda x, y: lossbook.generalized_dice_loss(_p(x), y, to_onehot_y=True)),
    ("lovasz_softmax_loss", lambda x, y: lossbook.lovasz_softmax_loss(_p(x), y.squeeze(1))),
    ("lovasz_hinge_loss", lambda x, y: lossbook.lovasz_hinge_loss(x[:, 0], (y[:, 0] > 0).long())),
]
# the same losses through lossbook's own softmax / cross_entropy (their autograd Functions)
COMPOSED = [
    ("dice_loss(softmax=True)", lambda x, y: lossbook.dice_loss(x, y, softmax=True, to_onehot_y=True)),
    ("dice_ce_loss", lambda x, y: lossbook.dice_ce_loss(x, y, softmax=True, to_onehot_y=True)),
]


@pytest.mark.parametrize("name,fn", ALL, ids=[n for n, _ in ALL])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_low_precision_smoke(name, fn, dtype):
    x, y = case("softmax", "index", spatial=(8, 8), seed=40)
    want = fn(x, y)
    xl = x.to(dtype).requires_grad_()
    got = fn(xl, y)
    assert got.dtype == dtype and torch.isfinite(got)
    got.backward()
    assert torch.isfinite(xl.grad).all()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert abs(got.item() - want.item()) <= tol * max(1.0, abs(want.item()))


@pytest.mark.parametrize("name,fn", ALL + COMPOSED, ids=[n for n, _ in ALL + COMPOSED])
def test_gradcheck_and_gradgradcheck(name, fn):
    x, y = case("softmax", "index", spatial=(3, 2), seed=41)
    x, y = x[:1].requires_grad_(), y[:1]  # 18 logits: gradgradcheck is quadratic in the input size
    assert torch.autograd.gradcheck(lambda a: fn(a, y), (x,))
    assert torch.autograd.gradgradcheck(lambda a: fn(a, y), (x,))


def _func_vmap_compile(fn):
    x, y = case("softmax", "index", spatial=(3, 4), seed=42)
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    assert compare(fn(x, y), compiled(x, y)) is None
    g_func = torch.func.grad(lambda a: fn(a, y))(x)
    xg = x.clone().requires_grad_()
    (g_auto,) = torch.autograd.grad(fn(xg, y), xg)
    assert compare(g_auto, g_func) is None
    xs = torch.stack([x, 2 * x])
    assert compare(torch.stack([fn(x, y), fn(2 * x, y)]), torch.vmap(lambda a: fn(a, y))(xs)) is None


@pytest.mark.parametrize("name,fn", ALL, ids=[n for n, _ in ALL])
def test_torch_func_grad_vmap_and_compile(name, fn):
    _func_vmap_compile(fn)


@pytest.mark.parametrize("name,fn", COMPOSED, ids=[n for n, _ in COMPOSED])
def test_torch_func_through_lossbook_softmax(name, fn):
    _func_vmap_compile(fn)


def test_inductor_dice_loss():
    x, y = case("softmax", "onehot", spatial=(8, 8), seed=43)
    torch._dynamo.reset()
    compiled = torch.compile(lambda a, b: lossbook.dice_loss(a, b, softmax=True), fullgraph=True)
    assert compare(lossbook.dice_loss(x, y, softmax=True), compiled(x, y), rtol=1e-10) is None


@pytest.mark.parametrize("fn", [lossbook.dice_loss, lossbook.tversky_loss])
def test_non_contiguous_inputs(fn):
    x, y = case("softmax", "onehot", spatial=(4, 6), seed=44)
    xt, yt = x.transpose(2, 3), y.transpose(2, 3)
    assert not xt.is_contiguous()
    assert compare(fn(x, y, softmax=True), fn(xt, yt, softmax=True)) is None


def test_device_follows_the_input():
    device = lossbook.default_device()
    x, y = case("softmax", "index", seed=45)
    x, y = x.to(device), y.to(device)
    for _, fn in ALL:
        assert fn(x, y).device == x.device


def test_docstring_examples_run():
    import doctest

    import lossbook.segmentation as module

    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 12
