"""Exercises of the chapter "Choosing and diagnosing a loss" (ids ``choose-*``)."""
from __future__ import annotations

import torch
from torch import Tensor

import lossbook

from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

D = torch.float64


# ------------------------------------------------------------------ which loss and why


register(
    ChoiceExercise(
        id="choose-imbalanced-binary",
        title="A fraud detector: 50 legitimate transactions for every fraudulent one",
        options={
            "a": Option(
                "Apply a sigmoid to the model's output and train with binary_cross_entropy.",
                "The probability-input BCE saturates: once sigmoid rounds to 0 or 1 its log is clamped and "
                "its gradient vanishes, and nothing addresses the imbalance. Compute the loss from the logit.",
            ),
            "b": Option(
                "binary_cross_entropy_with_logits with pos_weight = 50.",
                "Right: pos_weight is #negatives / #positives, so the rare positives carry as much total "
                "weight as the negatives; the logit form is stable for any logit.",
            ),
            "c": Option(
                "binary_cross_entropy_with_logits with pos_weight = 1 / 50 = 0.02.",
                "That is the ratio upside down (#positives / #negatives): it makes each rare positive "
                "count fifty times less, and the detector learns to answer 'legitimate' always.",
            ),
            "d": Option(
                "mse_loss between the sigmoid of the output and the 0/1 label.",
                "The squared error of a sigmoid has a vanishing gradient for confident wrong answers, is not "
                "the Bernoulli likelihood, and ignores the imbalance.",
            ),
        },
        answer="b",
        hint="what does pos_weight multiply, and which class is rare?",
    )
)

register(
    ChoiceExercise(
        id="choose-compare-metric",
        title="Three runs, three final validation losses: which model is best?",
        options={
            "a": Option(
                "The Huber model: its final validation loss (2.5) is the lowest.",
                "The three numbers are on different scales: for the same error of 3, MSE is 9, L1 is 3 and "
                "Huber (delta = 1) is 2.5. A lower Huber loss says nothing about a better model.",
            ),
            "b": Option(
                "The L1 model: L1 is in the units of the target, so its number is the easiest to read.",
                "Being readable does not make it comparable: the other two runs report other quantities.",
            ),
            "c": Option(
                "None can be chosen from these numbers: evaluate each model on the task's metric (say, the "
                "mean absolute error on the validation set), over several seeds.",
                "Right: compare the models on one common metric, with the spread over seeds, never on "
                "their own training losses.",
            ),
            "d": Option(
                "The MSE model: 9.0 is the largest, so it has learned the most.",
                "A loss value is not an amount learned; and it is on yet another scale (squared units).",
            ),
        },
        answer="c",
        hint="would the three numbers be equal if the three models made exactly the same predictions?",
    )
)

register(
    ChoiceExercise(
        id="choose-diagnose-curve",
        title="Predict the diagnosis of the curve in the figure",
        style="predict",
        options={
            "a": Option(
                "Over-fitting: stop training earlier.",
                "Over-fitting shows as a validation loss that rises while the training loss falls; this is "
                "the training loss itself swinging from one step to the next.",
            ),
            "b": Option(
                "Oscillation: the learning rate is too high.",
                "Right: after the change the loss jumps up and down by a large fraction of its level at "
                "every step, the signature of steps that overshoot the minimum.",
            ),
            "c": Option(
                "A plateau: the learning rate is too low.",
                "A plateau is flat; this curve moves a lot, just not downwards.",
            ),
            "d": Option(
                "Nothing is wrong: mini-batch noise.",
                "Mini-batch noise is a few per cent of the loss; these swings are of the order of the loss "
                "itself, and they start at one step, when the learning rate was raised.",
            ),
        },
        answer="b",
        hint="look at how large the swings are compared with the loss, and whether they alternate",
    )
)


# ------------------------------------------------------------------ the imbalance rule, as code


def balanced_bce_reference(input: Tensor, target: Tensor) -> Tensor:
    """BCE-with-logits whose pos_weight is the batch's #negatives / #positives."""
    pos_weight = ((1 - target).sum() / target.sum()).detach()  # a constant of the loss, as in PyTorch
    return lossbook.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight)


def _balanced_cases(gen: torch.Generator) -> list[Case]:
    def labels(n, p):
        y = (torch.rand(n, generator=gen, dtype=D) < p).to(D)
        y[0], y[1] = 1.0, 0.0  # at least one of each
        return y

    n = int(torch.randint(20, 40, (1,), generator=gen))
    return [
        Case("balanced labels", (randn(gen, n, scale=2), labels(n, 0.5))),
        Case("rare positives (about 1 in 10)", (randn(gen, n, scale=2), labels(n, 0.1))),
        Case("positives are the majority", (randn(gen, n, scale=2), labels(n, 0.9))),
        Case("multi-label (N, C)", (randn(gen, 8, 3, scale=2), torch.tensor([[1.0, 0, 0], [0, 0, 1]] * 4, dtype=D))),
        Case("large logits", (randn(gen, 12, scale=40), labels(12, 0.3))),
    ]


register(
    Exercise(
        id="choose-balanced-bce",
        title="BCE with the pos_weight measured from the labels",
        reference=balanced_bce_reference,
        cases=_balanced_cases,
        hint="count the positives and the negatives of target (0/1 floats); pos_weight is their ratio, a "
        "constant of the loss (detach it), and the loss is computed from the logits",
    )
)
