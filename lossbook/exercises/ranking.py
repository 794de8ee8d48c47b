"""Exercises of the ranking and metric-learning chapter (ids ``rank-*``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..ranking import batch_hard_triplet_loss, margin_ranking_loss, supervised_contrastive_loss
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []

D = torch.float64


def _labels(gen: torch.Generator, n: int, classes: int) -> Tensor:
    return torch.randint(0, classes, (n,), generator=gen)


# ------------------------------------------------------------------ a margin ranking loss by hand


def margin_ranking_example() -> tuple[Tensor, Tensor, Tensor, float]:
    """The scores, preferences and margin of the exercise (stated in the notebook)."""
    s1 = torch.tensor([2.0, 0.5, 1.0], dtype=D)
    s2 = torch.tensor([1.5, 1.0, 1.0], dtype=D)
    y = torch.tensor([1.0, 1.0, -1.0], dtype=D)
    return s1, s2, y, 1.0


def _margin_ranking_value() -> list[float]:
    s1, s2, y, margin = margin_ranking_example()
    return margin_ranking_loss(s1, s2, y, margin=margin, reduction="none").tolist()


register(
    Exercise(
        id="rank-margin-by-hand",
        title="The margin ranking loss of three pairs, by hand",
        reference=_margin_ranking_value,
        hint="for y = 1 the first score must beat the second by the margin; the loss is how far short it falls",
    )
)


# ------------------------------------------------------------------ predict: squared vs unsquared


register(
    ChoiceExercise(
        id="rank-predict-squared",
        title="a = (0, 0), p = (1, 0), n = (1.5, 0), margin 1: unsquared vs squared triplet loss",
        options={
            "a": Option("0.5 unsquared, 0.5 squared",
                        "squaring changes the distances: 1 and 1.5 become 1 and 2.25, so the gap is no longer 0.5"),
            "b": Option("0.5 unsquared, 0 squared",
                        "unsquared, 1 - 1.5 + 1 = 0.5; squared, 1 - 2.25 + 1 = -0.25 < 0, so the hinge gives 0: "
                        "the same margin is a different requirement in squared units"),
            "c": Option("0 unsquared, 0.25 squared",
                        "it is the other way round: in squared units the negative is farther (2.25 vs 1.5), "
                        "so the squared loss is the smaller one"),
            "d": Option("0.5 unsquared, 0.25 squared",
                        "0.25 would be 1 - 2.25 + 1 without the hinge's sign flipped; the hinge max(0, -0.25) is 0"),
        },
        answer="b",
        hint="compute d(a, p) - d(a, n) + 1 with d = 1 and 1.5, then with d^2 = 1 and 2.25",
        style="predict",
    )
)


# ------------------------------------------------------------------ batch-hard triplet loss


def batch_hard_reference(embeddings: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """lossbook's batch-hard triplet loss (unsquared, hinge), the mean over anchors with a positive and a negative."""
    return batch_hard_triplet_loss(embeddings, labels, margin=margin)


def _batch_hard_cases(gen: torch.Generator) -> list[Case]:
    n = int(torch.randint(10, 17, (1,), generator=gen))
    return [
        Case(f"random ({n}, 4), 3 classes", (randn(gen, n, 4), _labels(gen, n, 3))),
        Case("margin 0.2, 5 classes", (randn(gen, 12, 3), _labels(gen, 12, 5)), {"margin": 0.2}),
        Case("some anchors without a positive", (randn(gen, 7, 2), torch.tensor([0, 0, 0, 1, 1, 2, 3]))),
        Case("wide margin, every anchor active", (randn(gen, 9, 3, scale=0.3), _labels(gen, 9, 2)), {"margin": 5.0}),
        Case("all labels distinct: no triplet, a connected 0", (randn(gen, 5, 3), torch.arange(5))),
    ]


register(
    Exercise(
        id="rank-batch-hard",
        title="Batch-hard triplet loss, vectorised, with masks",
        reference=batch_hard_reference,
        cases=_batch_hard_cases,
        hint="build the (N, N) distance matrix and two masks (same label but not self; different label); "
        "fill the entries a mask excludes with -inf before a max, +inf before a min; average only over anchors "
        "that have both, and keep the empty case connected to the graph",
    )
)


# ------------------------------------------------------------------ find the bug: SupCon


def supcon_reference(embeddings: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    """lossbook's supervised contrastive loss."""
    return supervised_contrastive_loss(embeddings, labels, temperature=temperature)


def _supcon_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case("random (12, 5), 3 classes", (randn(gen, 12, 5), _labels(gen, 12, 3))),
        Case("temperature 0.5", (randn(gen, 10, 4), _labels(gen, 10, 2)), {"temperature": 0.5}),
        Case("anchors without a positive", (randn(gen, 8, 3), torch.tensor([0, 0, 0, 1, 1, 2, 3, 4]))),
        Case("temperature 0.05", (randn(gen, 10, 4), _labels(gen, 10, 3)), {"temperature": 0.05}),
    ]


register(
    Exercise(
        id="rank-supcon-bug",
        title="Find the bugs: a supervised contrastive loss with its self-term and lonely anchors",
        reference=supcon_reference,
        cases=_supcon_cases,
        style="find-the-bug",
        hint="which entries of each row belong in the softmax's denominator? and which anchors have "
        "anything to average?",
    )
)


# ------------------------------------------------------------------ which loss and why


register(
    ChoiceExercise(
        id="rank-which-loss",
        title="A face-verification model: millions of identities, a few photos each, batches of 512",
        options={
            "a": Option("cross-entropy over the identities, then use the logits",
                        "a softmax over millions of classes is expensive and the identities at test time are new "
                        "people, so the logits are useless; what must generalise is the embedding's distances"),
            "b": Option("a triplet loss with batch-hard mining (or SupCon) on P identities x K photos per batch",
                        "the task is a distance between embeddings of unseen identities; a P x K batch gives every "
                        "anchor positives and negatives, and mining or a softmax over the batch focuses the "
                        "gradient on the hard pairs instead of the many easy ones"),
            "c": Option("a triplet loss on random triplets, averaged over all of them",
                        "almost all random triplets already satisfy the margin and give zero loss and zero gradient: "
                        "the mean is diluted and training stalls; this is what mining is for"),
            "d": Option("margin_ranking_loss on the cosine similarities",
                        "it compares two scores per example, but each photo needs a margin against many others; "
                        "without a batch of positives and negatives it learns little about the embedding's geometry"),
        },
        answer="b",
        hint="the people at test time were never seen in training: what has to carry over?",
    )
)
