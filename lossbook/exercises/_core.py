"""The checker framework behind every exercise (CONVENTIONS §4).

An :class:`Exercise` is either a *function* exercise (the reader writes a function; it is run
on hidden cases — random shapes, options, edge cases — and compared with lossbook's reference
in value, shape, dtype, NaN/inf pattern and gradient) or a *value* exercise (the reader
computes a number; it is compared with the value lossbook computes). A function exercise whose
starter code is a short loss with a planted mistake has ``style="find-the-bug"``.

A :class:`ChoiceExercise` asks the reader to pick one option — *which loss and why*, or
*predict, then run* (``style="predict"``: the reader commits to a prediction before a cell
reveals it). Every option carries its own explanation, so a wrong pick is told why it is wrong.

:func:`check` never raises because of the reader's answer: exceptions, wrong shapes, NaNs,
detached outputs and missing gradients are all reported in a short text, and the returned
:class:`CheckResult` is truthy only if every case passed.
"""
from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..testing import compare

__all__ = ["Case", "Exercise", "Option", "ChoiceExercise", "CheckResult", "register", "check", "get", "registry",
           "randn"]


@dataclass
class Case:
    """One hidden test case: the arguments the reader's function is called with.

    ``grad=True`` also compares the gradient with respect to every floating-point tensor in
    ``args`` (backpropagating the same random upstream gradient through both outputs).
    """

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad: bool = True


@dataclass
class Exercise:
    """An exercise and how to check it.

    Args:
        id: the name readers pass to :func:`check`, ``"<chapter>-<topic>"``.
        title: one line, shown in reports.
        reference: for a function exercise, lossbook's function the answer must match; for a
            value exercise, a zero-argument callable that computes the expected value (never a
            number typed in by hand).
        cases: for a function exercise, ``cases(generator) -> list[Case]``; ``None`` for a value
            exercise.
        hint: shown with the first failure.
        rtol, atol: tolerances of the comparison (float64 cases by default).
    """

    id: str
    title: str
    reference: Callable[..., Any]
    cases: Callable[[torch.Generator], Sequence[Case]] | None = None
    hint: str = ""
    rtol: float = 1e-6
    atol: float = 1e-8
    seed: int = 1234
    style: str = "implement"  # or "find-the-bug": the starter is a loss with a planted mistake to fix

    @property
    def kind(self) -> str:
        return "value" if self.cases is None else "function"


@dataclass
class Option:
    """One answer of a :class:`ChoiceExercise` and why it is right or wrong (shown when picked)."""

    text: str
    why: str


@dataclass
class ChoiceExercise:
    """A multiple-choice exercise: *which loss and why*, or *predict, then run*.

    Args:
        id: the name readers pass to :func:`check`.
        title: one line, shown in reports.
        options: ``{"a": Option(text, why), "b": ...}``; every option, right or wrong, explains itself.
        answer: the key of the right option.
        hint: shown with a wrong pick, before the explanation of why it is wrong.
        style: ``"choice"`` (which loss and why) or ``"predict"`` (commit to a prediction, then run).

    The reader answers with the option's key: ``check("rank-which-loss", "b")``.
    """

    id: str
    title: str
    options: dict[str, Option]
    answer: str
    hint: str = ""
    style: str = "choice"

    kind = "choice"

    def __post_init__(self) -> None:
        if self.answer not in self.options:
            raise ValueError(f"{self.id}: the answer {self.answer!r} is not one of the options {sorted(self.options)}")
        if len(self.options) < 2:
            raise ValueError(f"{self.id}: a choice exercise needs at least two options")
        if self.style not in ("choice", "predict"):
            raise ValueError(f"{self.id}: style must be 'choice' or 'predict', got {self.style!r}")


_REGISTRY: dict[str, Exercise | ChoiceExercise] = {}


def register(exercise: Exercise | ChoiceExercise) -> Exercise | ChoiceExercise:
    """Add an exercise to the registry (ids are unique)."""
    if exercise.id in _REGISTRY:
        raise ValueError(f"an exercise with id {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def registry() -> dict[str, Exercise]:
    """A copy of the registry: ``{id: Exercise}``."""
    return dict(_REGISTRY)


def get(exercise_id: str) -> Exercise:
    """The registered exercise (``KeyError`` listing the known ids otherwise)."""
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"no exercise {exercise_id!r}; known exercises: {known}") from None


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0, dtype=torch.float64) -> Tensor:
    """Random normal test data from the exercise's own generator (float64 by default)."""
    return torch.randn(shape, generator=gen, dtype=dtype) * scale  # randn(gen) is 0-d


@dataclass
class CheckResult:
    """What :func:`check` found. Truthy only if every case passed."""

    exercise_id: str
    passed: int
    total: int
    report: str
    failures: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def __repr__(self) -> str:
        status = "all passed" if self else "not passed"
        return f"<CheckResult {self.exercise_id!r}: {self.passed}/{self.total} cases, {status}>"


# --------------------------------------------------------------------------------------------
# formatting


def _fmt(x: Any, limit: int = 8) -> str:
    if isinstance(x, Tensor):
        t = x.detach()
        head = f"tensor of shape {tuple(t.shape)}, {str(t.dtype).replace('torch.', '')}"
        if t.numel() == 0:
            return head + " (empty)"
        if t.numel() <= limit:
            vals = ", ".join(_num(v) for v in t.flatten().tolist())
            return f"{head}: [{vals}]"
        return head
    if isinstance(x, float):
        return _num(x)
    if isinstance(x, (list, tuple)) and len(x) <= limit:
        return type(x)(_fmt(v) for v in x).__repr__().replace("'", "")
    text = repr(x)
    return text if len(text) < 80 else text[:77] + "..."


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.6g}"
    return str(v)


def _describe_case(case: Case) -> str:
    parts = [_fmt(a) for a in case.args]
    parts += [f"{k}={_fmt(v)}" for k, v in case.kwargs.items()]
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# comparison


def _compare(expected: Any, got: Any, rtol: float, atol: float, what: str) -> str | None:
    """None if ``got`` matches ``expected``, otherwise a one-line reason (see lossbook.testing)."""
    return compare(expected, got, rtol=rtol, atol=atol, what=what)


def _prepare_args(case: Case) -> tuple[list[Any], list[int]]:
    """Fresh leaf copies of the case's tensors; floating ones require grad if the case does."""
    args, grad_idx = [], []
    for i, a in enumerate(case.args):
        if isinstance(a, Tensor):
            a = a.detach().clone()
            if case.grad and a.is_floating_point():
                a.requires_grad_(True)
                grad_idx.append(i)
        args.append(a)
    return args, grad_idx


def _run_case(ex: Exercise, fn: Callable, case: Case, gen: torch.Generator) -> str | None:
    ref_args, grad_idx = _prepare_args(case)
    expected = ex.reference(*ref_args, **case.kwargs)
    args, _ = _prepare_args(case)
    try:
        got = fn(*args, **case.kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # the reader's code failed: report it, never propagate it
        tb = traceback.extract_tb(exc.__traceback__)
        line = f" (line {tb[-1].lineno})" if tb else ""
        return f"your function raised {type(exc).__name__}: {exc}{line}"
    problem = _compare(expected, got, ex.rtol, ex.atol, "the result")
    if problem:
        return problem
    if not grad_idx or not isinstance(expected, Tensor) or not expected.requires_grad:
        return None
    if not got.requires_grad:
        return ("the result has no gradient (requires_grad is False): it was detached, or computed "
                "through .item(), .numpy(), Python floats or an in-place copy")
    upstream = torch.randn(expected.shape, generator=gen, dtype=expected.dtype)
    ref_inputs = [ref_args[i] for i in grad_idx]
    inputs = [args[i] for i in grad_idx]
    ref_grads = torch.autograd.grad(expected, ref_inputs, upstream, allow_unused=True)
    try:
        grads = torch.autograd.grad(got, inputs, upstream.to(got.device), allow_unused=True)
    except Exception as exc:
        return f"backpropagating through your result failed: {type(exc).__name__}: {exc}"
    for i, rg, g in zip(grad_idx, ref_grads, grads):
        if rg is None:
            continue
        if g is None:
            return f"no gradient reaches argument {i + 1} of your function"
        what = f"the gradient with respect to argument {i + 1}"
        problem = _compare(rg, g, max(ex.rtol, 1e-5), max(ex.atol, 1e-7), what)
        if problem:
            return problem
    return None


def _check_choice(ex: ChoiceExercise, answer: Any) -> tuple[str | None, str | None]:
    """``(problem, explanation)``: problem is None for the right key; explanation is the picked option's."""
    keys = ", ".join(repr(k) for k in ex.options)
    if answer is None or answer is Ellipsis:
        return f"not answered yet: replace the placeholder with one of {keys}", None
    if not isinstance(answer, str):
        return f"answer with the key of an option as a string, one of {keys}; got {_fmt(answer)}", None
    key = answer.strip().strip("()").strip().lower()
    if key not in ex.options:
        return f"{answer!r} is not an option; answer with one of {keys}", None
    why = ex.options[key].why
    if key != ex.answer:
        return f"({key}) is not right: {why}", why
    return None, why


# --------------------------------------------------------------------------------------------
# the public entry point


def check(exercise_id: str, answer: Any, *, quiet: bool = False) -> CheckResult:
    """Check a reader's answer and print a short report.

    Args:
        exercise_id: the id shown in the exercise, e.g. ``"softmax-logsumexp"``.
        answer: a function (function exercises), a number / list / tensor (value exercises), or
            the key of an option, e.g. ``"b"`` (choice exercises).
        quiet: do not print the report (it is still in ``result.report``).

    Returns:
        A :class:`CheckResult`; ``bool(result)`` is True only if every case passed.
    """
    lines: list[str] = []
    failures: list[str] = []
    try:
        ex = _REGISTRY[exercise_id]
    except (KeyError, TypeError):
        close = [k for k in _REGISTRY if str(exercise_id).split("-")[0] in k]
        msg = f"✘ There is no exercise called {exercise_id!r}." + (
            f" Did you mean one of: {', '.join(sorted(close))}?" if close else ""
        )
        result = CheckResult(str(exercise_id), 0, 0, msg, [msg])
        if not quiet:
            print(msg)
        return result

    lines.append(f"{ex.title} [{ex.id}]")
    if ex.kind == "choice":
        total = 1
        problem, explanation = _check_choice(ex, answer)
        passed = 0 if problem else 1
        if problem:
            failures.append(problem)
            lines.append(f"  ✘ {problem}")
            if explanation is not None and ex.hint:
                lines.append(f"  hint: {ex.hint}")
        else:
            lines.append(f"  ✔ ({ex.answer}) is right: {explanation}")
    elif ex.kind == "value":
        total = 1
        expected = ex.reference()
        if answer is None or answer is Ellipsis:
            problem = "not answered yet: replace the placeholder with your value"
        else:
            problem = _compare(expected, answer, ex.rtol, ex.atol, "your answer")
        passed = 0 if problem else 1
        if problem:
            failures.append(problem)
            lines.append(f"  ✘ {problem}")
            if ex.hint:
                lines.append(f"  hint: {ex.hint}")
        else:
            lines.append("  ✔ correct")
    else:
        gen = torch.Generator().manual_seed(ex.seed)
        cases = list(ex.cases(gen))
        total, passed = len(cases), 0
        if not callable(answer):
            problem = f"expected a function, got {_fmt(answer)}"
            failures.append(problem)
            lines.append(f"  ✘ {problem}")
        else:
            for case in cases:
                try:
                    problem = _run_case(ex, answer, case, gen)
                except NotImplementedError:
                    problem = "not implemented yet: replace `raise NotImplementedError` with your code"
                    failures.append(problem)
                    lines.append(f"  ✘ {problem}")
                    break
                if problem is None:
                    passed += 1
                    continue
                failures.append(problem)
                lines.append(f"  ✘ case '{case.name}' failed: {problem}")
                lines.append(f"    input: {_describe_case(case)}")
                try:
                    ref_args, _ = _prepare_args(Case(case.name, case.args, case.kwargs, grad=False))
                    lines.append(f"    expected: {_fmt(ex.reference(*ref_args, **case.kwargs))}")
                except Exception:  # pragma: no cover - the reference itself is tested
                    pass
                if ex.hint:
                    lines.append(f"    hint: {ex.hint}")
                break  # the first failure is the useful one
        if not failures:
            lines.append(f"  ✔ all {total} cases passed (values, shapes, dtypes and gradients)")
        else:
            lines.append(f"  {passed}/{total} cases passed before the first failure")
    report = "\n".join(lines)
    result = CheckResult(ex.id, passed, total, report, failures)
    if not quiet:
        print(report)
    return result
