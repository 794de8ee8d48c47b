"""Exercises of the introduction (chapter ``introduction``)."""
from __future__ import annotations

import torch
from torch import Tensor

from .._reduction import reduce
from ._core import Case, Exercise, randn, register

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
