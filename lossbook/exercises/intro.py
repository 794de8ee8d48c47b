"""Exercises of the introduction (chapter ``introduction``)."""
from __future__ import annotations

import torch
from torch import Tensor

from .._reduction import reduce
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []


# ------------------------------------------------------------------ the MLE of a coin


def _coin_tosses() -> Tensor:
    """7 heads (1) and 3 tails (0) in 10 tosses, in the order the exercise states them."""
    return torch.tensor([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=torch.float64)


def _coin_mle() -> float:
    # The MLE of a Bernoulli parameter is the fraction of heads (derived in the chapter by
    # setting the derivative of the NLL to zero); computed from the data, never typed in.
    return _coin_tosses().mean().item()


register(
    Exercise(
        id="intro-coin-mle",
        title="The maximum-likelihood estimate of θ for 7 heads in 10 tosses",
        reference=_coin_mle,
        hint="which θ makes the observed tosses most probable? Compare the NLL at a few values of θ",
        # a grid search with step 1e-4 or a few hundred gradient steps is an honest answer
        rtol=1e-4,
        atol=1e-6,
    )
)


# ------------------------------------------------------------------ the reductions


def reduce_reference(loss: Tensor, reduction: str) -> Tensor:
    """``'none'`` | ``'mean'`` | ``'sum'`` of a tensor of per-element losses (lossbook's own)."""
    return reduce(loss, reduction)


def _reduce_cases(gen: torch.Generator) -> list[Case]:
    shape = tuple(int(s) for s in torch.randint(1, 6, (3,), generator=gen))
    cases = [
        Case(f"{reduction} of a {len(shape)}-D tensor {shape}", (randn(gen, *shape).abs(), reduction))
        for reduction in ("none", "mean", "sum")
    ]
    n = int(torch.randint(2, 9, (1,), generator=gen))
    cases += [
        Case("mean of a 1-D tensor", (randn(gen, n).abs(), "mean")),
        Case("sum of a scalar (0-d) loss", (randn(gen, 1).abs().reshape(()), "sum")),
        Case("mean of an empty batch (NaN, as in PyTorch)", (torch.empty(0, dtype=torch.float64), "mean")),
        Case("sum of an empty batch (0)", (torch.empty(0, 3, dtype=torch.float64), "sum")),
        Case("float32 input keeps its dtype", (randn(gen, n, dtype=torch.float32).abs(), "mean")),
    ]
    return cases


register(
    Exercise(
        id="intro-reduce",
        title="Implement the reductions 'none', 'mean' and 'sum'",
        reference=reduce_reference,
        cases=_reduce_cases,
        hint="think about what each reduction must return for an empty tensor, and which dtype it keeps",
    )
)


# ------------------------------------------------------------------ a weighted mean by hand


def weighted_mean_data() -> tuple[Tensor, Tensor, Tensor]:
    """The logits, targets and class weights of the exercise (shown to the reader in the book)."""
    logits = torch.tensor([[0.5, -1.0, 2.0], [1.0, 1.0, 0.0], [0.0, 3.0, -1.0]], dtype=torch.float64)
    target = torch.tensor([2, 0, 1])
    weight = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    return logits, target, weight


def _weighted_mean_nll() -> float:
    # lossbook's nll_loss (the cross-entropy chapter) on lossbook's log-softmax (the softmax chapter)
    from ..cross_entropy import nll_loss
    from ..softmax import log_softmax

    logits, target, weight = weighted_mean_data()
    return nll_loss(log_softmax(logits, dim=1), target, weight=weight).item()


register(
    Exercise(
        id="intro-weighted-mean",
        title="The class-weighted mean NLL of a small batch",
        reference=_weighted_mean_nll,
        hint="a weighted mean divides by the total weight, not by the number of samples",
        rtol=1e-5,
        atol=1e-7,
    )
)


# ------------------------------------------------------------------ conceptual: reductions and likelihoods


def _squared_error_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for reduction in ("none", "mean", "sum"):
        shape = tuple(int(s) for s in torch.randint(1, 6, (2,), generator=gen))
        cases.append(Case(f"reduction={reduction!r}, shape {shape}", (randn(gen, *shape), randn(gen, *shape)),
                          {"reduction": reduction}))
    cases.append(Case("reduction='none' of a 1-D batch", (randn(gen, 4), randn(gen, 4)), {"reduction": "none"}))
    return cases


def squared_error_reference(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """The squared error with PyTorch's three reductions (lossbook's ``mse_loss``)."""
    from ..regression import mse_loss

    return mse_loss(input, target, reduction=reduction)


register(
    Exercise(
        id="intro-reduction-bug",
        title="Find the bug: a hand-written loss and its reduction argument",
        reference=squared_error_reference,
        cases=_squared_error_cases,
        style="find-the-bug",
        hint="call it with each of the three reductions and look at the shape of what comes back",
    )
)

register(
    ChoiceExercise(
        id="intro-nll-predict",
        title="Predict: how much more does a confident mistake cost than a confident hit?",
        options={
            "a": Option("about the same: both predictions are confident",
                        "no: the NLL is −log p of the true class, and −log 0.001 ≈ 6.9 while −log 0.9 ≈ 0.11; "
                        "confidence in the wrong class is what the loss punishes"),
            "b": Option("the mistake costs about 65 times more",
                        "right: −log 0.001 / −log 0.9 ≈ 6.91 / 0.105 ≈ 65.6. The logarithm turns a probability "
                        "900 times smaller into a loss that is only tens of times larger, never infinite while p > 0"),
            "c": Option("the mistake costs about 900 times more (the ratio of the probabilities)",
                        "no: the loss is the log of the probability, not the probability; the log compresses "
                        "the ratio 0.9 / 0.001 = 900 into a difference of log 900 ≈ 6.8"),
        },
        answer="b",
        style="predict",
        hint="the loss of a sample is −log of the probability of its true class",
    )
)

register(
    ChoiceExercise(
        id="intro-which-likelihood",
        title="Which noise model makes mean absolute error the negative log-likelihood?",
        options={
            "a": Option("Gaussian noise",
                        "no: the Gaussian's log-density is quadratic in the residual, which gives the mean "
                        "squared error"),
            "b": Option("Laplace noise, with density ∝ exp(−|y − f(x)| / b)",
                        "right: −log of exp(−|e| / b) is |e| / b plus a constant, so with a fixed scale b the "
                        "NLL is the absolute error; its minimiser is the median, not the mean"),
            "c": Option("Bernoulli noise",
                        "no: a Bernoulli model is for 0/1 targets and gives the binary cross-entropy"),
        },
        answer="b",
        hint="take −log of each density and keep the term that depends on the residual",
    )
)

register(
    ChoiceExercise(
        id="intro-drop-in",
        title="Which call is a drop-in replacement for F.cross_entropy(logits, labels, label_smoothing=0.1)?",
        options={
            "a": Option("lossbook.cross_entropy(logits, labels, label_smoothing=0.1)",
                        "right: a lossbook loss that PyTorch has keeps its name, its positional order, its "
                        "keywords and its semantics, so the same call gives the same value and gradient"),
            "b": Option("lossbook.cross_entropy(logits.softmax(1), labels, label_smoothing=0.1)",
                        "no: cross_entropy takes logits, as PyTorch's does; feeding it probabilities applies "
                        "a second softmax (lossbook warns about it) and changes both value and gradient"),
            "c": Option("lossbook.nll_loss(logits, labels, label_smoothing=0.1)",
                        "no: nll_loss expects log-probabilities and, like PyTorch's, has no label_smoothing "
                        "argument; the call raises a TypeError"),
        },
        answer="a",
        style="predict",
        hint="look at what each call feeds the loss, and at the coverage table of this section",
    )
)
