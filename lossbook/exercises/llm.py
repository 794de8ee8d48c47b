"""Exercises of the language-model chapter (ids ``llm-*``)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..llm import token_cross_entropy, z_loss
from ..softmax import logsumexp
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []


def _int(gen: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi, (1,), generator=gen))


def _labels(gen: torch.Generator, b: int, t: int, v: int, pad: int = 0) -> Tensor:
    y = torch.randint(0, v, (b, t), generator=gen)
    if pad:
        y[:, t - pad:] = -100
    return y


# ------------------------------------------------------------------ gradient accumulation (find the bug)


def micro_batch_loss_reference(logits: Tensor, labels: Tensor, num_items_in_batch: int) -> Tensor:
    """One micro-batch's share of the token mean of the whole optimizer step (lossbook's function)."""
    return token_cross_entropy(logits, labels, num_items_in_batch=num_items_in_batch)


def _accumulation_cases(gen: torch.Generator) -> list[Case]:
    b, t, v = _int(gen, 2, 4), _int(gen, 5, 9), _int(gen, 5, 12)
    full = _labels(gen, b, t, v)
    padded = _labels(gen, b, t, v, pad=t - 3)
    return [
        Case(f"no padding ({b}, {t}, {v}), 3 micro-batches in the step",
             (randn(gen, b, t, v, scale=2), full, 3 * b * (t - 1))),
        Case("heavy padding in this micro-batch", (randn(gen, b, t, v, scale=2), padded, 40)),
        Case("this micro-batch is the whole step", (randn(gen, b, t, v), full, b * (t - 1))),
        Case("one sequence", (randn(gen, 1, t, v), _labels(gen, 1, t, v, pad=2), 17)),
    ]


register(
    Exercise(
        id="llm-accumulation",
        title="Fix the gradient-accumulation loss so the micro-batches add up to the token mean",
        reference=micro_batch_loss_reference,
        cases=_accumulation_cases,
        style="find-the-bug",
        hint="a mean inside each micro-batch divides by that micro-batch's own token count; the step's "
        "token mean needs one divisor shared by every micro-batch",
    )
)


# ------------------------------------------------------------------ z-loss


def z_loss_reference(logits: Tensor) -> Tensor:
    """PaLM's z-loss of ``(N, V)`` or ``(B, T, V)`` logits, mean over positions (lossbook's function)."""
    return z_loss(logits)


def _z_cases(gen: torch.Generator) -> list[Case]:
    n, v = _int(gen, 3, 9), _int(gen, 4, 30)
    return [
        Case(f"random logits ({n}, {v})", (randn(gen, n, v, scale=2),)),
        Case("logits of a batch of sequences (2, 5, 7)", (randn(gen, 2, 5, 7),)),
        Case("huge logits (scale 1e3): exp overflows without the max shift", (randn(gen, n, v, scale=1e3),)),
        Case("all logits shifted by +20", (randn(gen, n, v) + 20,)),
    ]


register(
    Exercise(
        id="llm-z-loss",
        title="The z-loss: the squared log-partition function, averaged over positions",
        reference=z_loss_reference,
        cases=_z_cases,
        hint="log Z of each position is a log-sum-exp over the last dimension; use a stable one",
    )
)


# ------------------------------------------------------------------ the vocab-parallel log-sum-exp


def global_lse_reference(maxima: Tensor, sums: Tensor) -> Tensor:
    """``log sum_v exp(z_v)`` of every row from each rank's max ``m_r`` and shifted sum ``s_r``.

    ``maxima`` and ``sums`` are ``(R, N)``: rank ``r`` has ``s_r = sum_{v in r} exp(z_v - m_r)``.
    """
    return logsumexp(maxima + sums.log(), dim=0)


def _lse_cases(gen: torch.Generator) -> list[Case]:
    n = _int(gen, 3, 8)

    def parts(ranks, scale=2.0):
        return randn(gen, ranks, n, scale=scale), torch.rand(ranks, n, generator=gen, dtype=torch.float64) * 5 + 1

    return [
        Case(f"2 ranks, {n} rows", parts(2)),
        Case("4 ranks", parts(4)),
        Case("8 ranks with maxima near 1e3 (exp overflows unless shifted)", parts(8, scale=1e3)),
        Case("one rank (no parallelism)", parts(1)),
    ]


register(
    Exercise(
        id="llm-vocab-lse",
        title="The global log-sum-exp from every rank's shard maximum and shifted sum",
        reference=global_lse_reference,
        cases=_lse_cases,
        hint="each rank's sum is relative to its own max; bring every sum to one common reference "
        "before adding them",
    )
)


# ------------------------------------------------------------------ predict: the initial loss


_V = 32_000
register(
    ChoiceExercise(
        id="llm-initial-loss",
        title=f"Predict the first training loss of a freshly initialised LM with a {_V:,}-token vocabulary",
        options={
            "a": Option("about 0.69 (ln 2)", "ln 2 is the loss of a coin flip: a binary classifier's starting "
                        "point, not one that hesitates between 32,000 tokens."),
            "b": Option(f"about {math.log(_V):.1f} (ln V)", "Right: small random logits make the softmax nearly "
                        "uniform, p = 1/V for every token, and -ln(1/V) = ln V. A first loss far above it means "
                        "the initialisation is too large (confident and wrong)."),
            "c": Option("about 32,000 (V)", "V is the perplexity of the uniform guess, exp(loss); the loss "
                        "itself is its logarithm."),
            "d": Option("about 0, the model has not learned anything to be wrong about", "cross-entropy is 0 "
                        "only for a model that gives the right token probability 1; an untrained model spreads "
                        "its probability thinly over every token."),
        },
        answer="b",
        style="predict",
        hint="what does softmax give when every logit is about the same?",
    )
)


# ------------------------------------------------------------------ choice: smoothing across shards


register(
    ChoiceExercise(
        id="llm-smoothing-shards",
        title="Label smoothing with the vocabulary split over 4 ranks: which smoothing term is right?",
        options={
            "a": Option("each rank averages -log p over its own V/4 tokens and uses that",
                        "each shard holds different tokens, so the four ranks compute four different losses "
                        "from the same batch, and none of them is the single-device loss."),
            "b": Option("all-reduce the sum of the logits, divide by the global V, and use "
                        "LSE - sum(z) / V on every rank",
                        "Right: the uniform part of the smoothed target spreads over all V tokens, so its term "
                        "needs the sum over the whole vocabulary (one more all-reduce of N numbers)."),
            "c": Option("skip smoothing under vocabulary parallelism",
                        "that changes the objective being trained; the exact term costs only one all-reduce of "
                        "one number per token."),
            "d": Option("each rank averages over its own tokens, then the four averages are summed",
                        "the sum of four shard means is 4 times the global mean, so the smoothing term becomes "
                        "4 times too large (with unequal shards it is not even a multiple)."),
        },
        answer="b",
        hint="over how many tokens does the uniform part of a smoothed target spread?",
    )
)
