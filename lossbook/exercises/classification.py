"""Exercises of the classification chapter (ids ``cls-*``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..classification import binary_cross_entropy_with_logits, sigmoid_focal_loss
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []

D = torch.float64


def _labels(gen: torch.Generator, *shape: int) -> Tensor:
    return (torch.rand(*shape, generator=gen, dtype=D) > 0.5).to(D)


# ------------------------------------------------------------------ stable BCE with logits


def bce_with_logits_reference(input: Tensor, target: Tensor, pos_weight: Tensor | None = None) -> Tensor:
    """Per-element BCE-with-logits (``reduction='none'``), lossbook's implementation."""
    return binary_cross_entropy_with_logits(input, target, reduction="none", pos_weight=pos_weight)


def _bce_cases(gen: torch.Generator) -> list[Case]:
    n, c = (int(v) for v in torch.randint(2, 7, (2,), generator=gen))
    extreme = torch.tensor([-1e4, -200.0, -100.0, -30.0, 0.0, 30.0, 100.0, 200.0, 1e4], dtype=D)
    return [
        Case(f"random logits ({n},)", (randn(gen, n, scale=3), _labels(gen, n))),
        Case(f"soft targets ({n}, {c})", (randn(gen, n, c, scale=3), torch.rand(n, c, generator=gen, dtype=D))),
        Case("extreme logits, label 1", (extreme, torch.ones_like(extreme))),
        Case("extreme logits, label 0", (extreme, torch.zeros_like(extreme))),
        Case(f"pos_weight per label ({c},)", (randn(gen, n, c, scale=3), _labels(gen, n, c)),
             {"pos_weight": torch.rand(c, generator=gen, dtype=D) * 5}),
        Case("pos_weight 50 with extreme logits", (extreme, _labels(gen, extreme.numel())),
             {"pos_weight": torch.tensor(50.0, dtype=D)}),
    ]


register(
    Exercise(
        id="cls-bce-logits",
        title="Binary cross-entropy with logits, stable for any logit",
        reference=bce_with_logits_reference,
        cases=_bce_cases,
        forbidden=("torch.nn.functional.binary_cross_entropy_with_logits", "torch.nn.functional.binary_cross_entropy"),
        hint="look for a formulation in which exp only ever sees a non-positive number; then check the "
        "gradient at a logit of exactly zero",
    )
)


# ------------------------------------------------------------------ focal loss from BCE


def _focal_cases(gen: torch.Generator) -> list[Case]:
    n = int(torch.randint(3, 9, (1,), generator=gen))
    x = randn(gen, n, 4, scale=3)
    y = _labels(gen, n, 4)
    extreme = torch.tensor([-100.0, -20.0, 0.0, 20.0, 100.0], dtype=D)
    return [
        Case("defaults (alpha=0.25, gamma=2)", (x, y)),
        Case("alpha disabled (alpha=-1)", (x, y), {"alpha": -1.0, "gamma": 2.0}),
        Case("gamma=0 is alpha-weighted BCE", (x, y), {"alpha": 0.75, "gamma": 0.0}),
        Case("gamma=0.5, alpha=0.5", (randn(gen, n, scale=2), _labels(gen, n)), {"alpha": 0.5, "gamma": 0.5}),
        Case("extreme logits, positives", (extreme, torch.ones_like(extreme)), {"alpha": 0.25, "gamma": 2.0}),
        Case("extreme logits, negatives", (extreme, torch.zeros_like(extreme)), {"alpha": 0.25, "gamma": 3.0}),
    ]


def focal_reference(inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Per-element sigmoid focal loss (torchvision's convention), lossbook's implementation."""
    return sigmoid_focal_loss(inputs, targets, alpha=alpha, gamma=gamma, reduction="none")


register(
    Exercise(
        id="cls-focal-from-bce",
        title="The sigmoid focal loss, built on BCE-with-logits",
        reference=focal_reference,
        cases=_focal_cases,
        forbidden=("torchvision.ops.sigmoid_focal_loss", "torchvision.ops.focal_loss.sigmoid_focal_loss"),
        hint="the focal loss is BCE multiplied by factors: which ones, and where does alpha apply?",
    )
)


# ------------------------------------------------------------------ the pos_weight gradient


def pos_weight_example() -> tuple[Tensor, Tensor, float]:
    """The logits, labels and pos_weight of the exercise (stated in the notebook)."""
    x = torch.tensor([-1.0, 0.5, 2.0, -3.0], dtype=D)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=D)
    return x, y, 4.0


def _pos_weight_grad() -> list[float]:
    x, y, pw = pos_weight_example()
    x = x.clone().requires_grad_(True)
    loss = binary_cross_entropy_with_logits(x, y, reduction="sum", pos_weight=torch.tensor(pw, dtype=D))
    (g,) = torch.autograd.grad(loss, x)
    return g.tolist()


register(
    Exercise(
        id="cls-pos-weight-grad",
        title="The gradient of BCE-with-logits with pos_weight, at four logits",
        reference=_pos_weight_grad,
        hint="pos_weight scales the positive term only: which samples does it affect?",
    )
)


# ------------------------------------------------------------------ reading a precision-recall curve


def pr_example() -> tuple[Tensor, Tensor]:
    """Ten scores and their labels (stated in the notebook), already sorted by score."""
    scores = torch.tensor([0.95, 0.9, 0.8, 0.7, 0.65, 0.6, 0.4, 0.3, 0.2, 0.1], dtype=D)
    labels = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0, 0, 0], dtype=D)
    return scores, labels


def precision_recall_ap(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Precision and recall at every cut-off of the ranking, and the average precision.

    AP = Σ_k (R_k − R_{k−1}) P_k, the area under the step-wise PR curve (scikit-learn's
    definition, without interpolation). Scores are assumed distinct.
    """
    order = scores.argsort(descending=True)
    y = labels[order]
    tp = y.cumsum(0)
    precision = tp / torch.arange(1, len(y) + 1, dtype=tp.dtype, device=tp.device)
    recall = tp / y.sum()
    ap = (precision * y).sum() / y.sum()
    return precision, recall, ap


def _read_pr() -> list[float]:
    scores, labels = pr_example()
    precision, recall, ap = precision_recall_ap(scores, labels)
    k = int((scores >= 0.5).sum())  # the cut-off of threshold 0.5
    return [precision[k - 1].item(), recall[k - 1].item(), ap.item()]


register(
    Exercise(
        id="cls-read-pr",
        title="Precision and recall at threshold 0.5, and the average precision, of a small ranking",
        reference=_read_pr,
        hint="walk down the ranking one item at a time and count hits",
    )
)


# ------------------------------------------------------------------ conceptual exercises

register(
    ChoiceExercise(
        id="cls-multilabel-which",
        title="A photo can be tagged with any subset of {beach, dog, sunset, people}: which loss?",
        options={
            "a": Option("softmax cross-entropy over the four tags",
                        "no: a softmax makes the four probabilities sum to 1, so the tags compete; a photo of a "
                        "dog on a beach at sunset cannot get a high probability for all three"),
            "b": Option("a sigmoid and a binary cross-entropy per tag (BCE with logits on the 0/1 tag vector)",
                        "right: each tag is its own yes/no question with its own probability; any subset, "
                        "including none or all four, can be predicted, and pos_weight can rebalance rare tags"),
            "c": Option("the mean squared error between sigmoid outputs and the 0/1 tags",
                        "no: it is not the likelihood of a yes/no label, and through the sigmoid its gradient "
                        "vanishes exactly when the model is confidently wrong (p near 0 for a true tag)"),
        },
        answer="b",
        hint="must the predicted probabilities of the four tags add up to anything?",
    )
)

register(
    ChoiceExercise(
        id="cls-hinge-predict",
        title="Predict: the gradient of the hinge loss max(0, 1 − y·f) for a sample with margin y·f = 3",
        options={
            "a": Option("zero",
                        "right: beyond the margin (y·f > 1) the hinge is flat, so a well-classified sample stops "
                        "contributing; only samples inside the margin or misclassified ones move the model (the "
                        "support vectors)"),
            "b": Option("small but not zero, as for the logistic loss",
                        "no: that is the logistic loss log(1 + e^(−m)), whose gradient −σ(−m) never reaches 0; "
                        "the hinge reaches exactly 0 at margin 1 and stays there"),
            "c": Option("−y, as for any misclassified sample",
                        "no: a margin of 3 is a correct classification with room to spare; the slope −y applies "
                        "only where y·f < 1"),
        },
        answer="a",
        style="predict",
        hint="sketch max(0, 1 − m) as a function of the margin m",
    )
)

register(
    ChoiceExercise(
        id="cls-pos-weight-calibration",
        title="You trained a BCE-with-logits model with pos_weight = 4 and now need calibrated probabilities",
        options={
            "a": Option("use sigmoid(logit) as it is: the loss is still a log-likelihood",
                        "no: weighting the positives by 4 moves the loss's minimiser to odds 4 times the true "
                        "odds, so sigmoid(logit) is systematically too high for the positive class"),
            "b": Option("subtract log 4 from the logit before the sigmoid",
                        "right: the weighted loss is minimised at logit = log(4 · p / (1 − p)), i.e. the true "
                        "log-odds plus log 4; subtracting log(pos_weight) undoes the shift (then check it on "
                        "held-out data, e.g. with temperature scaling)"),
            "c": Option("divide the predicted probability by 4",
                        "no: it is the odds p / (1 − p), not the probability, that are multiplied by 4; dividing "
                        "p by 4 is wrong at every p except very small ones"),
        },
        answer="b",
        hint="find the logit that minimises p·4·softplus(−x) + (1 − p)·softplus(x)",
    )
)
