"""Exercises of the detection chapter (ids ``det-*``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..detection import distance_box_iou_loss, generalized_box_iou_loss, iou_loss
from ._core import Case, ChoiceExercise, Exercise, Option, register

__all__: list[str] = []

D = torch.float64


def _boxes(gen: torch.Generator, n: int, *, lo: float = 0.0, hi: float = 4.0) -> Tensor:
    xy = lo + torch.rand(n, 2, generator=gen, dtype=D) * (hi - lo)
    return torch.cat([xy, xy + 0.2 + torch.rand(n, 2, generator=gen, dtype=D) * 2], dim=1)


# ------------------------------------------------------------------ fix a GIoU loss (find the bug)


def giou_reference(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Per-pair GIoU loss (``reduction='none'``, ``eps=1e-7``), lossbook's implementation."""
    return generalized_box_iou_loss(boxes1, boxes2)


def _giou_cases(gen: torch.Generator) -> list[Case]:
    n = int(torch.randint(3, 8, (1,), generator=gen))
    a = _boxes(gen, n)
    near = a + 0.3 * torch.rand(n, 1, generator=gen, dtype=D)
    far = _boxes(gen, n, lo=10.0, hi=14.0)
    inside = torch.cat([a[:, :2] + 0.05, a[:, 2:] - 0.05], dim=1)
    points = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0]], dtype=D)
    return [
        Case(f"{n} overlapping pairs, batched", (a, near)),
        Case(f"{n} disjoint pairs, far apart", (a, far)),
        Case(f"{n} boxes inside their targets", (inside, a)),
        Case("one pair (a batch of one)", (a[:1], far[:1])),
        Case("identical zero-area boxes (a point, a line)", (points, points.clone()), grad=False),
    ]


register(
    Exercise(
        id="det-giou-fix",
        title="Fix a GIoU loss: per pair, with the enclosing box, finite for zero-area boxes",
        reference=giou_reference,
        cases=_giou_cases,
        style="find-the-bug",
        hint="every pair needs its own IoU (no reduction before the end), and both divisions need eps: "
        "two identical points have union 0 and enclosing area 0",
    )
)


# ------------------------------------------------------------------ DIoU's penalty (value)


def diou_example() -> tuple[Tensor, Tensor]:
    """The two boxes of the exercise (stated in the notebook): disjoint, not squares."""
    return torch.tensor([0.0, 0.0, 2.0, 2.0], dtype=D), torch.tensor([3.0, 1.0, 5.0, 2.0], dtype=D)


def _diou_penalty() -> float:
    a, b = diou_example()
    return (distance_box_iou_loss(a, b, eps=0.0) - iou_loss(a, b, eps=0.0)).item()


register(
    Exercise(
        id="det-diou-penalty",
        title="DIoU's penalty for two disjoint boxes: squared centre distance over squared enclosing diagonal",
        reference=_diou_penalty,
        hint="find both centres and the smallest box that contains both boxes; the penalty is ρ² / c², a "
        "number in [0, 1)",
    )
)


# ------------------------------------------------------------------ disjoint boxes (predict, then run)

register(
    ChoiceExercise(
        id="det-disjoint-predict",
        title="Predict the gradients of the IoU and GIoU losses for a prediction that misses its target",
        style="predict",
        options={
            "a": Option(
                "Both gradients are non-zero and point the prediction towards the target.",
                "The IoU loss is 1 − I/U, and I = 0 for every position near a disjoint box: the loss is "
                "flat there, so its gradient is exactly zero. Only GIoU's enclosing-box term moves.",
            ),
            "b": Option(
                "The IoU loss's gradient is exactly zero; the GIoU loss's is not.",
                "Right: the intersection is 0 in a whole neighbourhood, so 1 − IoU = 1 is flat; GIoU adds "
                "(|C| − U) / |C|, which shrinks as the boxes approach, so its gradient pulls them together.",
            ),
            "c": Option(
                "Both gradients are exactly zero: neither loss can see a box it does not overlap.",
                "GIoU was designed for this case: its enclosing box C grows with the gap between the "
                "boxes, so (|C| − U) / |C| changes when the prediction moves and the gradient is non-zero.",
            ),
            "d": Option(
                "The IoU loss's gradient is non-zero; the GIoU loss's is zero, because its loss is "
                "already at its maximum of 2.",
                "It is the other way round: the IoU loss is stuck at 1 for all disjoint pairs; the GIoU "
                "loss of two disjoint boxes lies between 1 and 2 and changes with their distance.",
            ),
        },
        answer="b",
        hint="write the intersection area for a small shift of the prediction: does it change?",
    )
)


# ------------------------------------------------------------------ which loss and why

register(
    ChoiceExercise(
        id="det-which-loss",
        title="Which box loss for predictions that start far from their targets, with the wrong aspect ratio?",
        options={
            "a": Option(
                "The IoU loss: it is the metric the detector is evaluated with.",
                "The metric is right, the gradient is not: every prediction that does not overlap its "
                "target gets loss 1 and gradient 0, so it never starts to move.",
            ),
            "b": Option(
                "Smooth L1 on the four coordinates: it is robust and always has a gradient.",
                "It always has a gradient, but it is not scale-invariant: a 5-pixel error costs the same "
                "on a tiny box as on a huge one, and it does not measure overlap, the metric itself.",
            ),
            "c": Option(
                "The CIoU loss: overlap, a normalised centre distance and an aspect-ratio term.",
                "Right: the centre-distance term gives a gradient for disjoint boxes that pulls the "
                "centres together directly (faster than GIoU, which first grows the box), and v corrects "
                "the aspect ratio once the boxes overlap; like IoU it is scale-invariant.",
            ),
            "d": Option(
                "The GIoU loss, because it is the only IoU loss with a gradient for disjoint boxes.",
                "GIoU does have a gradient there, but it is not the only one: DIoU and CIoU have one too, "
                "and point the centres at each other instead of first enlarging the prediction.",
            ),
        },
        answer="c",
        hint="ask of each loss: does it have a gradient when boxes are disjoint, is it scale-invariant, "
        "and does anything in it look at the aspect ratio?",
    )
)
