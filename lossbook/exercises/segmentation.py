"""Exercises of the segmentation chapter (ids ``seg-*``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..segmentation import _lovasz_grad, dice_loss, tversky_loss
from ._core import Case, ChoiceExercise, Exercise, Option, register

__all__: list[str] = []

D = torch.float64


def _masks(gen: torch.Generator, n: int, c: int, *spatial: int) -> tuple[Tensor, Tensor]:
    """Softmax probabilities and a one-hot target, (n, c, *spatial)."""
    p = torch.randn(n, c, *spatial, generator=gen, dtype=D).mul(2).softmax(1)
    y = torch.randint(0, c, (n, 1, *spatial), generator=gen)
    return p, (y == torch.arange(c).view(1, c, *([1] * len(spatial)))).to(D)


def _overlap_cases(gen: torch.Generator, tversky: bool) -> list[Case]:
    n, c = (int(v) for v in torch.randint(2, 4, (2,), generator=gen))
    p, y = _masks(gen, n, c, 5, 6)
    p3, y3 = _masks(gen, 1, 2, 3, 4, 2)
    empty = torch.zeros(1, 1, 8, dtype=D)
    kw = [{}] * 3
    if tversky:
        kw = [{"alpha": 0.3, "beta": 0.7}, {"alpha": 0.5, "beta": 0.5}, {"alpha": 1.0, "beta": 1.0}]
    cases = [
        Case(f"random masks ({n}, {c}, 5, 6)", (p, y), kw[0]),
        Case("a 3-D volume (1, 2, 3, 4, 2)", (p3, y3), kw[1]),
        Case("prediction and target both empty", (empty, empty), kw[2]),
        Case("perfect prediction", (y.clone(), y.clone()), kw[0]),
    ]
    if tversky:
        cases.append(Case("recall-heavy alpha=0.1, beta=0.9", (p, y), {"alpha": 0.1, "beta": 0.9}))
    return cases


# ------------------------------------------------------------------ soft Dice from tp, fp, fn


def soft_dice_reference(probs: Tensor, target: Tensor) -> Tensor:
    """Per-(sample, class) soft Dice loss with MONAI's default smoothing 1e-5, lossbook's implementation."""
    return dice_loss(probs, target, reduction="none")


register(
    Exercise(
        id="seg-soft-dice",
        title="Soft Dice loss from soft true positives, false positives and false negatives",
        reference=soft_dice_reference,
        cases=lambda gen: _overlap_cases(gen, tversky=False),
        hint="sum over the spatial axes only (dims 2, 3, ...), so each sample and class gets its own score; "
        "the smoothing 1e-5 goes into both the numerator and the denominator",
    )
)


# ------------------------------------------------------------------ Tversky generalises Dice


def tversky_reference(probs: Tensor, target: Tensor, alpha: float = 0.5, beta: float = 0.5) -> Tensor:
    """Per-(sample, class) Tversky loss with MONAI's default smoothing, lossbook's implementation."""
    return tversky_loss(probs, target, alpha=alpha, beta=beta, reduction="none")


register(
    Exercise(
        id="seg-tversky",
        title="The Tversky loss: separate weights for false positives and false negatives",
        reference=tversky_reference,
        cases=lambda gen: _overlap_cases(gen, tversky=True),
        hint="start from your Dice: which weight multiplies FP and which FN? Here the smoothing is added to "
        "TP itself, not to 2 TP",
    )
)


# ------------------------------------------------------------------ find the bug: a Dice loss on logits


def binary_dice_reference(logits: Tensor, target: Tensor) -> Tensor:
    """Binary Dice on logits, one score per image, smoothing 1 (lossbook's ``dice_loss``)."""
    return dice_loss(logits, target, sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)


def _binary_cases(gen: torch.Generator) -> list[Case]:
    x = torch.randn(3, 1, 6, 6, generator=gen, dtype=D) * 3
    y = (torch.rand(3, 1, 6, 6, generator=gen) < 0.3).to(D)
    y_small = torch.zeros(2, 1, 8, 8, dtype=D)
    y_small[0, 0, 2:4, 2:4] = 1
    y_small[1, 0, :, :6] = 1  # one small and one large object: pooling the batch hides the small one
    return [
        Case("random logits (3, 1, 6, 6)", (x, y)),
        Case("a small and a large object", (torch.randn(2, 1, 8, 8, generator=gen, dtype=D) * 2, y_small)),
        Case("confident logits", (torch.randn(2, 1, 5, 5, generator=gen, dtype=D) * 20,
                                  (torch.rand(2, 1, 5, 5, generator=gen) < 0.5).to(D))),
    ]


register(
    Exercise(
        id="seg-dice-bug",
        title="Find the bug: a binary Dice loss that can go negative and hides small objects",
        reference=binary_dice_reference,
        cases=_binary_cases,
        style="find-the-bug",
        hint="what range do the model's outputs have, and what range does Dice assume? And does one large "
        "image in the batch drown a small object in another?",
    )
)


# ------------------------------------------------------------------ the Lovász gradient


def lovasz_grad_reference(fg_sorted: Tensor) -> Tensor:
    """The Jaccard-loss increments along pixels sorted by decreasing error (lossbook's helper)."""
    return _lovasz_grad(fg_sorted)


def _lovasz_cases(gen: torch.Generator) -> list[Case]:
    def fg(*shape):
        return (torch.rand(*shape, generator=gen) < 0.4).to(D)

    return [
        Case("one class, 12 pixels", (fg(12),)),
        Case("a batch of 3 classes, 20 pixels", (fg(3, 20),)),
        Case("a class absent from the image", (torch.zeros(9, dtype=D),), grad=False),
        Case("every pixel of the class", (torch.ones(7, dtype=D),), grad=False),
        Case("a single pixel", (torch.ones(1, dtype=D),), grad=False),
    ]


register(
    Exercise(
        id="seg-lovasz-grad",
        title="The Lovász gradient: the Jaccard loss gained by each pixel, in order of decreasing error",
        reference=lovasz_grad_reference,
        cases=_lovasz_cases,
        hint="after the first k sorted pixels are declared wrong, the intersection is (#fg - fg pixels among "
        "them) and the union (#fg + background pixels among them); take differences along the last axis",
    )
)


# ------------------------------------------------------------------ choices


register(
    ChoiceExercise(
        id="seg-empty-mask",
        title="An image with no tumour, and a model that predicts none: what does the Dice loss say?",
        options={
            "a": Option(
                "0 with MONAI's default smoothing (1e-5 on top and bottom), NaN with no smoothing at all",
                "Right: (0 + s)/(0 + s) = 1 is a perfect Dice score, and 0/0 is NaN. With an epsilon only in "
                "the denominator (a common habit) the same image scores 0/ε = 0, a loss of 1, the worst.",
            ),
            "b": Option(
                "1 in every library, because there is no overlap",
                "There is no overlap, but also nothing to overlap: what the loss says here is a convention, "
                "set by where the smoothing goes. Only an epsilon in the denominator alone gives 1.",
            ),
            "c": Option(
                "0 in every library, because the prediction is right",
                "That is what you would want, but without smoothing Dice is 0/0 = NaN, and a denominator-only "
                "epsilon gives a loss of 1; some libraries (segmentation_models_pytorch) zero the loss of "
                "empty-target channels instead, whatever the prediction.",
            ),
            "d": Option(
                "It cannot be computed: Dice raises an error on empty masks",
                "No library raises: the sums are simply zero, and the result is 0, 1 or NaN depending on the "
                "smoothing constants.",
            ),
        },
        answer="a",
        hint="write Dice as (2 TP + s_n) / (2 TP + FP + FN + s_d) and set TP = FP = FN = 0",
    )
)

register(
    ChoiceExercise(
        id="seg-small-object-grad",
        title="Predict, then run: which loss pushes harder on the pixels of a tiny object?",
        options={
            "a": Option(
                "Per-pixel cross-entropy: it sees every pixel, so it pushes every pixel hardest",
                "Cross-entropy's mean divides by all P pixels of the image: each object pixel gets about "
                "(p - 1)/P, so a 9-pixel object in a 64 x 64 image gets a tiny share of the update.",
            ),
            "b": Option(
                "Dice: its gradient on an object pixel scales like one over the object's size, not the image's",
                "Right: Dice is a ratio of sums over the object, so shrinking the object raises the push on "
                "each of its pixels; for small objects it is orders of magnitude above cross-entropy's.",
            ),
            "c": Option(
                "They push the same: both are minimised by the same perfect mask",
                "Having the same minimiser says nothing about the size of the gradient on the way there, "
                "which is what the optimiser feels.",
            ),
        },
        answer="b",
        style="predict",
        hint="cross-entropy's 'mean' divides by the number of pixels; what does Dice divide by?",
    )
)
