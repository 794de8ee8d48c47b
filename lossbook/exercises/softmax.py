"""Exercises of the softmax chapter (book/softmax/)."""
from __future__ import annotations

import torch

from ..softmax import log_softmax, logsumexp, softmax
from ._core import Case, Exercise, randn, register

TEMPERATURE_LOGITS = (2.0, 1.0, 0.1)
TEMPERATURE_TARGET = 0.5


def _stable_cases(gen: torch.Generator) -> list[Case]:
    """Shapes, dims and the logits that break a naive formula (huge values, -inf entries)."""
    n = int(torch.randint(2, 6, (1,), generator=gen))
    c = int(torch.randint(3, 9, (1,), generator=gen))
    big = randn(gen, n, c, scale=1.0) + 1000.0  # exp(1000) overflows even in float64
    masked = randn(gen, n, c)
    masked[:, 0] = float("-inf")  # a masked-out class (as in attention masks)
    return [
        Case("a small matrix, last dim", (randn(gen, n, c),), {"dim": -1}),
        Case("a 3-D tensor, middle dim", (randn(gen, 2, c, 3, scale=2.0),), {"dim": 1}),
        Case("a vector", (randn(gen, c),), {"dim": 0}),
        Case("logits near 1000 (the naive formula overflows)", (big,), {"dim": 1}),
        Case("logits near -1000 (the naive formula underflows)", (big - 2000.0,), {"dim": 0}),
        Case("a class masked with -inf", (masked,), {"dim": 1}),
    ]


def _temperature_answer() -> float:
    """The temperature at which the top probability of TEMPERATURE_LOGITS equals 0.5 (bisection)."""
    z = torch.tensor(TEMPERATURE_LOGITS, dtype=torch.float64)

    def top(t: float) -> float:
        return softmax(z / t, dim=0).max().item()  # decreases from 1 (t -> 0) to 1/C (t -> inf)

    lo, hi = 1e-3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if top(mid) > TEMPERATURE_TARGET else (lo, mid)
    return (lo + hi) / 2


register(Exercise(
    id="softmax-logsumexp",
    title="A stable log-sum-exp along a dimension",
    reference=logsumexp,
    cases=_stable_cases,
    forbidden=("torch.logsumexp", "torch.Tensor.logsumexp", "torch.special.logsumexp"),
    hint="what happens to exp(x) when x is 1000? Find a way to never exponentiate a large positive number",
))

register(Exercise(
    id="softmax-log-softmax",
    title="log_softmax from log-sum-exp",
    reference=log_softmax,
    cases=_stable_cases,
    forbidden=(
        "torch.log_softmax",
        "torch.Tensor.log_softmax",
        "torch.nn.functional.log_softmax",
        "torch.special.log_softmax",
    ),
    hint="log_softmax and log-sum-exp are closely related: which one can you express with the other?",
))

register(Exercise(
    id="softmax-temperature",
    title="The temperature that brings the top probability of [2.0, 1.0, 0.1] down to 0.5",
    reference=_temperature_answer,
    hint="the top probability changes monotonically with T: search for the T where it crosses 0.5",
    rtol=1e-5,
    atol=1e-6,
))
