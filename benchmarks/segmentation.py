"""Benchmarks of the segmentation chapter, forward + backward, float32 (run with 1 thread:
``OMP_NUM_THREADS=1 python -m benchmarks --filter segmentation``).

- ``dice_loss`` (softmax, one-hot target) and ``tversky_loss`` on (8, 4, 128, 128): target ≤ 1.0×
  MONAI's ``DiceLoss`` / ``TverskyLoss``.
- ``lovasz_softmax_loss`` on (4, 5, 64, 64) probabilities: target ≤ 1.0× a transcription of the
  authors' reference implementation (below; used by the tests as their Lovász oracle too).
"""
from __future__ import annotations

import torch

import lossbook

from ._harness import Bench, register

TARGET = 1.0


# --------------------------------------------------------------------------------------------
# A transcription of the authors' Lovász losses (Berman et al. 2018, github.com/bermanmaxim/
# LovaszSoftmax, pytorch/lovasz_losses.py, MIT licence): a loop over images and classes, one
# 1-D sort each. It is the oracle of tests/test_segmentation.py and the anchor of the ratio;
# lossbook never imports it.


def ref_lovasz_grad(gt_sorted, dtype=torch.float32):
    """Alg. 1; the authors compute in float32 (``.float()``): here float32 or the errors' wider dtype."""
    gt_sorted = gt_sorted.to(dtype)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def _acc(x):
    return torch.promote_types(x.dtype, torch.float32)


def _ref_mean(values):
    values = list(values)
    if not values:
        return 0  # the reference's mean(..., empty=0)
    acc = values[0]
    for v in values[1:]:
        acc = acc + v
    return acc / len(values)


def _ref_flatten_probas(probas, labels, ignore=None):
    C = probas.shape[1]
    probas = probas.movedim(1, -1).reshape(-1, C)
    labels = labels.reshape(-1)
    if ignore is None:
        return probas, labels
    valid = labels != ignore
    return probas[valid], labels[valid]


def _ref_lovasz_softmax_flat(probas, labels, classes="present"):
    if probas.numel() == 0:
        return probas.sum() * 0.0
    C = probas.shape[1]
    losses = []
    for c in (list(range(C)) if classes in ("all", "present") else classes):
        fg = (labels == c).to(probas.dtype)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probas[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        losses.append(torch.dot(errors_sorted, ref_lovasz_grad(fg[perm], _acc(probas)).to(probas.dtype)))
    return _ref_mean(losses)


def ref_lovasz_softmax(probas, labels, classes="present", per_image=False, ignore=None):
    """probas (B, C, *spatial) probabilities, labels (B, *spatial) class indices."""
    if per_image:
        return _ref_mean(_ref_lovasz_softmax_flat(*_ref_flatten_probas(p.unsqueeze(0), l.unsqueeze(0), ignore),
                                                  classes=classes) for p, l in zip(probas, labels))
    return _ref_lovasz_softmax_flat(*_ref_flatten_probas(probas, labels, ignore), classes=classes)


def _ref_lovasz_hinge_flat(logits, labels):
    if len(labels) == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels.to(logits.dtype) - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    grad = ref_lovasz_grad(labels[perm], _acc(logits)).to(logits.dtype)
    return torch.dot(torch.relu(errors_sorted), grad)


def _ref_flatten_binary(scores, labels, ignore=None):
    scores, labels = scores.reshape(-1), labels.reshape(-1)
    if ignore is None:
        return scores, labels
    valid = labels != ignore
    return scores[valid], labels[valid]


def ref_lovasz_hinge(logits, labels, per_image=True, ignore=None):
    """logits (B, *spatial), labels (B, *spatial) binary."""
    if per_image:
        return _ref_mean(_ref_lovasz_hinge_flat(*_ref_flatten_binary(lg.unsqueeze(0), lb.unsqueeze(0), ignore))
                         for lg, lb in zip(logits, labels))
    return _ref_lovasz_hinge_flat(*_ref_flatten_binary(logits, labels, ignore))


# --------------------------------------------------------------------------------------------
# the rows


def _dice_inputs(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, 128, 128, generator=g).to(device).requires_grad_(True)
    y = torch.randint(0, 4, (8, 1, 128, 128), generator=g)
    onehot = (y == torch.arange(4).view(1, 4, 1, 1)).float().to(device)
    return (x, onehot), {}


def _lovasz_inputs(device):
    g = torch.Generator().manual_seed(0)
    p = torch.randn(4, 5, 64, 64, generator=g).softmax(1).to(device).requires_grad_(True)
    y = torch.randint(0, 5, (4, 64, 64), generator=g).to(device)
    return (p, y), {}


def _monai(name, **kwargs):
    def call(input, target):
        import monai.losses

        return getattr(monai.losses, name)(**kwargs)(input, target)

    call.__name__ = f"monai_{name}"
    return call


def _ours(fn, **kwargs):
    return lambda input, target: fn(input, target, **kwargs)


register(Bench("dice_loss (softmax)", "segmentation", "(8, 4, 128, 128) f32", _dice_inputs,
               _ours(lossbook.segmentation.dice_loss, softmax=True), _monai("DiceLoss", softmax=True), TARGET))
register(Bench("tversky_loss (softmax)", "segmentation", "(8, 4, 128, 128) f32", _dice_inputs,
               _ours(lossbook.segmentation.tversky_loss, softmax=True, alpha=0.3, beta=0.7),
               _monai("TverskyLoss", softmax=True, alpha=0.3, beta=0.7), TARGET))
register(Bench("lovasz_softmax_loss", "segmentation", "(4, 5, 64, 64) f32", _lovasz_inputs,
               lossbook.segmentation.lovasz_softmax_loss, ref_lovasz_softmax, TARGET))
