"""Exercises of the softmax chapter (book/softmax/)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..softmax import log_softmax, logsumexp, softmax
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

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


# ------------------------------------------------------------------ conceptual exercises


register(ChoiceExercise(
    id="softmax-shift-predict",
    title="Predict: what does adding 100 to every logit do to the softmax?",
    options={
        "a": Option("nothing: the probabilities are the same",
                    "right: softmax(z + c) = softmax(z) because the factor e^c cancels between numerator and "
                    "denominator; softmax only sees differences of logits, which is also why subtracting the "
                    "max is allowed"),
        "b": Option("the probabilities move towards uniform, since the logits are relatively closer",
                    "no: the differences between logits are unchanged, and they are all that softmax sees; "
                    "dividing the logits (a temperature), not shifting them, flattens the distribution"),
        "c": Option("the largest probability moves towards 1",
                    "no: that is what multiplying the logits by a factor above 1 does (a temperature below 1); "
                    "a shift leaves every ratio e^(z_i) / e^(z_j) as it was"),
        "d": Option("the result overflows to NaN, because e^102 is huge",
                    "no, not in a stable softmax: it subtracts the max first, so it never evaluates e^102; "
                    "only the naive formula would be in danger (in float16 already at logits above about 11)"),
    },
    answer="a",
    style="predict",
    hint="write both softmaxes as fractions and look for a common factor",
))


def class_probabilities(logits: Tensor) -> Tensor:
    """Per-sample class probabilities of ``(N, C)`` logits: the softmax over the class dimension."""
    return softmax(logits, dim=1)


def _class_prob_cases(gen: torch.Generator) -> list[Case]:
    n = int(torch.randint(2, 6, (1,), generator=gen))
    return [
        Case(f"a batch ({n}, 5)", (randn(gen, n, 5, scale=2.0),)),
        Case("a single sample (1, 4)", (randn(gen, 1, 4),)),
        Case("a square batch (4, 4): the shapes cannot tell the dimensions apart", (randn(gen, 4, 4, scale=3.0),)),
        Case("large logits (7, 3)", (randn(gen, 7, 3, scale=50.0),)),
    ]


register(Exercise(
    id="softmax-dim-bug",
    title="Find the bug: class probabilities that do not sum to one per sample",
    reference=class_probabilities,
    cases=_class_prob_cases,
    style="find-the-bug",
    hint="sum the output along each dimension in turn: which sums are 1, and which should be?",
))

register(ChoiceExercise(
    id="softmax-why-logits",
    title="Why do PyTorch's classification losses take logits rather than probabilities?",
    options={
        "a": Option("because log(softmax(z)) underflows to −inf once a probability is below the smallest float, "
                    "while log_softmax(z) = z − LSE(z) stays exact",
                    "right: taking the log of a probability that has already rounded to 0 loses it for good "
                    "(and gives NaN gradients); working in log space from the logits never forms that "
                    "probability, and the gradient p − e_y comes out exact"),
        "b": Option("only for speed: one fused operation instead of two",
                    "no: the fused call is a little faster, but the real reason is accuracy; log(softmax(z)) "
                    "returns −inf and NaN gradients for logit gaps of about 104 in float32 (17 in float16)"),
        "c": Option("because probabilities cannot be differentiated",
                    "no: softmax is smooth and autograd differentiates it fine; the problem is floating point, "
                    "where a tiny probability rounds to 0 and its log to −inf"),
    },
    answer="a",
    hint="compare the log of the softmax with the log-softmax of the logits [0, −200] in float32",
))
