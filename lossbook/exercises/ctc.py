"""Exercises of the CTC chapter (chapter ``ctc``)."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .._validation import PitfallWarning
from ..ctc import _extend, ctc_alpha_step, ctc_collapse, ctc_loss
from ..softmax import log_softmax
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []

F64 = torch.float64
NEG_INF = float("-inf")

# ------------------------------------------------------------------ the collapse function

COLLAPSE_PATH = [0, 3, 3, 0, 3, 1, 1, 0, 0, 2, 2, 2, 0, 1, 0]
"""A path with every trap: repeats to merge, a repeat kept apart by a blank, leading/trailing blanks."""


def _collapsed() -> list[int]:
    return ctc_collapse(torch.tensor(COLLAPSE_PATH)).tolist()


register(
    Exercise(
        id="ctc-collapse",
        title=f"The collapse function B applied to the path {COLLAPSE_PATH} (blank = 0)",
        reference=_collapsed,
        hint="the order of the two steps matters: what happens to two equal labels separated by a blank?",
    )
)


# ------------------------------------------------------------------ p(y|x) by enumeration


def ctc_probability(logits: Tensor, target: Tensor) -> Tensor:
    """p(target | x) for logits ``(T, C)``, blank 0: exp(-ctc_loss) of the log-softmax."""
    T = logits.shape[0]
    with warnings.catch_warnings():  # infeasible cases are part of the exercise: p = 0
        warnings.simplefilter("ignore", PitfallWarning)
        nll = ctc_loss(log_softmax(logits, dim=-1), target, (T,), (target.numel(),), reduction="sum")
    return (-nll).exp()


def _probability_cases(gen: torch.Generator) -> list[Case]:
    def target(*labels):
        return torch.tensor(labels, dtype=torch.long)

    cases = [
        Case("T=1, C=2, target [1]", (randn(gen, 1, 2), target(1))),
        Case("T=2, C=2, target [1]", (randn(gen, 2, 2), target(1))),
        Case("T=3, C=3, target [1, 2]", (randn(gen, 3, 3, scale=2.0), target(1, 2))),
        Case("T=4, C=3, repeated label [2, 2]", (randn(gen, 4, 3), target(2, 2))),
        Case("T=3, C=4, empty target", (randn(gen, 3, 4), target())),
    ]
    T = int(torch.randint(3, 6, (1,), generator=gen))
    labels = torch.randint(1, 3, (2,), generator=gen).tolist()
    cases.append(Case(f"T={T}, C=3, target {labels}", (randn(gen, T, 3), target(*labels))))
    # [1, 1] needs 3 frames: with 2 there is no path at all (compared by value only)
    cases.append(Case("T=2, C=2, infeasible [1, 1]", (randn(gen, 2, 2), target(1, 1)), grad=False))
    return cases


register(
    Exercise(
        id="ctc-enumerate",
        title="p(y|x) by summing over every path of length T that collapses to y",
        reference=ctc_probability,
        cases=_probability_cases,
        forbidden=("torch.nn.functional.ctc_loss", "torch.ctc_loss"),
        hint="T and C are tiny: every path can be listed explicitly",
    )
)


# ------------------------------------------------------------------ one step of the α recursion


def _step_case(gen: torch.Generator, targets: list[list[int]], name: str, *, with_inf: bool = False) -> Case:
    t = torch.tensor(targets, dtype=torch.long)
    _, skip = _extend(t, 0)
    Sx = skip.shape[1]
    alpha = randn(gen, len(targets), Sx, scale=2.0) - 3.0
    if with_inf:  # early frames: the states far from the start are unreachable
        alpha[:, Sx // 2:] = NEG_INF
    emit = randn(gen, len(targets), Sx).clamp(max=0) - 0.5
    if len(targets) == 1:
        alpha, emit, skip = alpha[0], emit[0], skip[0]
    return Case(name, (alpha, emit, skip), grad=not with_inf)


def _alpha_step_cases(gen: torch.Generator) -> list[Case]:
    return [
        _step_case(gen, [[1, 2]], "target [1, 2]: the skip into state 3 is allowed"),
        _step_case(gen, [[2, 2]], "target [2, 2]: no skip between the repeated labels"),
        _step_case(gen, [[1, 2, 1, 3], [3, 3, 1, 1]], "a batch of two targets of length 4"),
        _step_case(gen, [[4]], "a single label"),
        _step_case(gen, [[1, 2, 2]], "unreachable states (-inf) stay -inf", with_inf=True),
    ]


register(
    Exercise(
        id="ctc-alpha-step",
        title="One step of the forward (α) recursion in log space",
        reference=ctc_alpha_step,
        cases=_alpha_step_cases,
        hint="from which previous states can each state be reached, and when is the two-state jump allowed?",
    )
)


# ------------------------------------------------------------------ conceptual exercises

register(
    ChoiceExercise(
        id="ctc-min-frames-predict",
        title="Predict: the fewest input frames T for which the CTC loss of the target [1, 1, 2] is finite",
        options={
            "a": Option("3, one frame per label",
                        "no: with 3 frames the only candidate path is 1 1 2, which collapses to [1, 2]: the two "
                        "equal labels merge. There is no path, p(y|x) = 0 and the loss is inf"),
            "b": Option("4: a blank must separate the repeated 1s",
                        "right: 1 ∅ 1 2 is the shortest path that collapses to [1, 1, 2]; in general CTC needs "
                        "L frames plus one for each pair of equal neighbours (ctc_min_input_length)"),
            "c": Option("6, two frames per label",
                        "no: CTC does not need a blank after every label, only between equal neighbours; "
                        "6 frames are enough but not necessary"),
        },
        answer="b",
        style="predict",
        hint="write down the shortest frame sequence that collapses to [1, 1, 2]",
    )
)

register(
    ChoiceExercise(
        id="ctc-blank-predict",
        title="Predict: after training, what does the most likely class of each frame look like?",
        options={
            "a": Option("blank on most frames, each digit in one or a few frames (spikes)",
                        "right: a path is cheapest when the network is sure, and blank is the one class that "
                        "fits anywhere, so CTC-trained networks emit blank most of the time and each label in a "
                        "short spike; that is why greedy decoding works and why CTC gives no precise timing"),
            "b": Option("each digit held for the whole stretch of signal it occupies",
                        "no: nothing in CTC rewards repeating a label over its whole duration; the sum over "
                        "paths lets the network put a label anywhere inside its stretch, and it learns to use "
                        "the blank between spikes"),
            "c": Option("close to uniform: CTC sums over all paths, so no frame needs to decide",
                        "no: training makes the few paths that collapse to the target very probable, and those "
                        "paths are confident frame by frame; the per-frame distributions are sharp, not flat"),
        },
        answer="a",
        style="predict",
        hint="which class can a path use at any frame without changing what it collapses to?",
    )
)


def raw_logits_fix_reference(logits: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """The CTC loss of ``(T, N, C)`` raw logits: log-probabilities first, then ``ctc_loss`` ('mean')."""
    return ctc_loss(log_softmax(logits, dim=-1), targets, input_lengths, target_lengths)


def _raw_logits_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for T, N, C, S in [(8, 2, 4, 3), (12, 3, 6, 4), (6, 1, 3, 2)]:
        targets = torch.randint(1, C, (N, S), generator=gen)
        lengths = torch.full((N,), T, dtype=torch.long)
        t_lengths = torch.randint(1, S + 1, (N,), generator=gen)
        cases.append(Case(f"T={T}, N={N}, C={C}", (randn(gen, T, N, C, scale=2.0), targets, lengths, t_lengths)))
    return cases


register(
    Exercise(
        id="ctc-raw-logits-bug",
        title="Find the bug: a CTC loss that goes negative",
        reference=raw_logits_fix_reference,
        cases=_raw_logits_cases,
        style="find-the-bug",
        hint="a loss that is −log of a probability cannot be negative: what kind of numbers does ctc_loss expect?",
    )
)
