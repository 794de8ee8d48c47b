"""Exercises of the cross-entropy chapter (ids ``ce-*``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..cross_entropy import cross_entropy, nll_loss
from ..softmax import log_softmax
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []

D = torch.float64


def _int(gen: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi, (1,), generator=gen))


# ------------------------------------------------------------------ NLL with weights and ignore_index


def nll_mean_reference(log_probs: Tensor, target: Tensor, weight: Tensor | None = None,
                       ignore_index: int = -100) -> Tensor:
    """The weighted mean NLL of ``(N, C)`` log-probabilities, lossbook's implementation."""
    return nll_loss(log_probs, target, weight=weight, ignore_index=ignore_index)


def _nll_cases(gen: torch.Generator) -> list[Case]:
    n, c = _int(gen, 4, 9), _int(gen, 3, 7)

    def lp(*shape):
        return log_softmax(randn(gen, *shape, scale=2), dim=1)

    t = torch.randint(0, c, (n,), generator=gen)
    w = torch.rand(c, generator=gen, dtype=D) * 3 + 0.1
    padded = t.clone()
    padded[::2] = -100
    t_class1 = t.clone()
    t_class1[0] = 1
    return [
        Case(f"no weight ({n}, {c})", (lp(n, c), t)),
        Case("class weights", (lp(n, c), t), {"weight": w}),
        Case("weights and padding (ignore_index=-100)", (lp(n, c), padded), {"weight": w}),
        Case("ignore_index=1 (a real class)", (lp(n, c), t_class1), {"weight": w, "ignore_index": 1}),
        Case("every target ignored: NaN", (lp(3, c), torch.full((3,), -100)), {"weight": w}),
    ]


register(
    Exercise(
        id="ce-nll-weighted",
        title="NLL with class weights and ignore_index (weighted mean)",
        reference=nll_mean_reference,
        cases=_nll_cases,
        forbidden=("torch.nn.functional.nll_loss", "torch.nn.functional.cross_entropy"),
        hint="look at what the mean divides by when some targets carry more weight than others, and some are ignored",
    )
)


# ------------------------------------------------------------------ CE from log_softmax


def ce_reference(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy of ``(N, C)`` or ``(N, C, d)`` logits, lossbook's implementation."""
    return cross_entropy(logits, target)


def _ce_cases(gen: torch.Generator) -> list[Case]:
    n, c = _int(gen, 3, 9), _int(gen, 2, 8)
    return [
        Case(f"random logits ({n}, {c})", (randn(gen, n, c, scale=2), torch.randint(0, c, (n,), generator=gen))),
        Case("huge logits (scale 1e3)", (randn(gen, n, c, scale=1e3), torch.randint(0, c, (n,), generator=gen))),
        Case(f"K-dimensional ({n}, {c}, 3)", (randn(gen, n, c, 3), torch.randint(0, c, (n, 3), generator=gen))),
    ]


register(
    Exercise(
        id="ce-from-log-softmax",
        title="Cross-entropy as NLL of log_softmax",
        reference=ce_reference,
        cases=_ce_cases,
        forbidden=("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss"),
        hint="you need one log-probability per sample: the one of its target class",
    )
)


# ------------------------------------------------------------------ a label-smoothed loss by hand


def _smoothed_value() -> float:
    logits = torch.tensor([1.0, 3.0, -1.0, 0.5], dtype=D)
    return cross_entropy(logits, torch.tensor(2), label_smoothing=0.2).item()


register(
    Exercise(
        id="ce-label-smoothing-value",
        title="A label-smoothed cross-entropy by hand",
        reference=_smoothed_value,
        hint="write down the smoothed target distribution first, then compare it with the model's",
    )
)


# ------------------------------------------------------------------ find the bug in a reshape


def next_token_loss_reference(logits: Tensor, tokens: Tensor) -> Tensor:
    """Next-token loss of a language model: logits ``(B, T, V)`` at t predict ``tokens[:, t + 1]``.

    Padding tokens are ``-100`` and are ignored.
    """
    v = logits.shape[-1]
    return cross_entropy(logits[:, :-1].reshape(-1, v), tokens[:, 1:].reshape(-1), ignore_index=-100)


def _lm_cases(gen: torch.Generator) -> list[Case]:
    b, t, v = _int(gen, 2, 5), _int(gen, 4, 8), _int(gen, 5, 12)
    tokens = torch.randint(0, v, (b, t), generator=gen)
    padded = tokens.clone()
    padded[0, -2:] = -100
    padded[-1, -1:] = -100
    square = _int(gen, 4, 7)  # T == V: a wrong transpose does not even change the shapes
    return [
        Case(f"(B, T, V) = ({b}, {t}, {v})", (randn(gen, b, t, v, scale=2), tokens)),
        Case("with padding (-100)", (randn(gen, b, t, v, scale=2), padded)),
        Case(f"T == V == {square}",
             (randn(gen, 2, square, square), torch.randint(0, square, (2, square), generator=gen))),
    ]


register(
    Exercise(
        id="ce-reshape-bug",
        title="Find the bug in a language-model loss",
        reference=next_token_loss_reference,
        cases=_lm_cases,
        style="find-the-bug",
        hint="check which position each logit predicts, and which dimension is the vocabulary after the reshape",
    )
)


# ------------------------------------------------------------------ conceptual exercises

register(
    ChoiceExercise(
        id="ce-gradient-predict",
        title="Predict: the gradient of one sample's cross-entropy with respect to its logits, summed over classes",
        options={
            "a": Option("0, whatever the logits",
                        "right: the gradient is softmax(z) − onehot(y); both vectors sum to 1, so their "
                        "difference sums to 0. Adding the same number to every logit changes nothing, so the "
                        "gradient can have no component along (1, …, 1)"),
            "b": Option("1",
                        "no: that is the sum of the softmax alone; the target's one-hot vector is subtracted "
                        "from it"),
            "c": Option("−1",
                        "no: that is the sum of −onehot(y) alone; the softmax part adds +1"),
            "d": Option("it depends on the logits",
                        "no: each entry depends on the logits, but their sum does not: p sums to 1 for any z"),
        },
        answer="a",
        style="predict",
        hint="what is the gradient of −log softmax(z)_y, and what does each of its two parts sum to?",
    )
)

register(
    ChoiceExercise(
        id="ce-double-softmax",
        title="Predict: the lowest cross-entropy a model can reach when its last layer already applies softmax "
              "(10 classes)",
        options={
            "a": Option("0, as for any model that predicts the right class with certainty",
                        "no: F.cross_entropy applies its own log-softmax, so the model's probabilities are "
                        "treated as logits; logits between 0 and 1 can never make one class certain"),
            "b": Option("log(1 + 9/e), well above 0, even for perfect one-hot outputs",
                        "right: the best the model can output is a one-hot vector, whose softmax is "
                        "e/(e + 9) on the true class, less than a quarter; the loss cannot go below "
                        "log(1 + 9/e), the gradients are small, and training crawls. Give cross_entropy the "
                        "logits"),
            "c": Option("log 10, the loss of a uniform guess",
                        "no: a one-hot input still favours the right class a little (e against 1), so the "
                        "loss is below log 10, but far above 0"),
        },
        answer="b",
        style="predict",
        hint="feed a one-hot vector to the cross-entropy as if it were logits: what is its softmax?",
    )
)

register(
    ChoiceExercise(
        id="ce-ignore-mean-predict",
        title="Predict: what does reduction='mean' divide by when some targets are ignore_index?",
        options={
            "a": Option("the number of target positions, padding included",
                        "no: then every padding token would dilute the loss, and the same sentence would get a "
                        "smaller loss in a batch with longer neighbours"),
            "b": Option("the number of targets that are not ignored (with class weights: their total weight)",
                        "right: ignored positions are removed from both the sum and the count, so the loss is "
                        "the mean over real tokens, whatever the padding"),
            "c": Option("the number of sequences in the batch",
                        "no: that is a per-sequence sum averaged over the batch, which grows with the sequence "
                        "length; cross_entropy's 'mean' averages over the individual targets"),
        },
        answer="b",
        style="predict",
        hint="compare the 'mean' with the 'sum' and count the targets",
    )
)
