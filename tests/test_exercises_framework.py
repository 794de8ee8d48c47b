"""The checker framework itself, and every registered exercise against mutants of its reference."""
from __future__ import annotations

import pytest
import torch

from lossbook.exercises import Case, Exercise, _core, check, randn, registry


@pytest.fixture
def square_exercise():
    ex = Exercise(
        id="test-square",
        title="Square every element",
        reference=lambda x: x * x,
        cases=lambda g: [Case("small", (randn(g, 3),)), Case("matrix", (randn(g, 2, 4),))],
        hint="multiply x by itself",
    )
    _core._REGISTRY[ex.id] = ex
    value = Exercise(id="test-value", title="What is 2 + 2?", reference=lambda: 4.0, hint="count")
    _core._REGISTRY[value.id] = value
    yield ex
    del _core._REGISTRY[ex.id]
    del _core._REGISTRY[value.id]


def test_correct_answer_passes(square_exercise, capsys):
    result = check("test-square", lambda x: x**2)
    assert result and result.passed == result.total == 2
    assert "all 2 cases passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda x: x * x + 1e-3, "differs from the reference"),
        (lambda x: (x * x).sum(), "has shape ()"),
        (lambda x: (x * x).float(), "dtype"),
        (lambda x: x * x * float("nan"), "NaN"),
        (lambda x: 1 / 0, "your function raised ZeroDivisionError"),
        (lambda x: (x * x).detach(), "no gradient"),
        (lambda x: torch.tensor((x * x).tolist(), dtype=x.dtype), "no gradient"),
        (lambda x: [v * v for v in x.tolist()], "should be a tensor"),
        (3, "expected a function"),
    ],
)
def test_wrong_answers_are_reported_not_raised(square_exercise, answer, message, capsys):
    result = check("test-square", answer)
    assert not result
    out = capsys.readouterr().out
    assert message in out, out
    if callable(answer):
        assert "hint: multiply x by itself" in out


def test_wrong_gradient_is_reported(square_exercise, capsys):
    class Bad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g

    assert not check("test-square", Bad.apply)
    assert "gradient with respect to argument 1" in capsys.readouterr().out


def test_not_implemented(square_exercise, capsys):
    def answer(x):
        raise NotImplementedError

    result = check("test-square", answer)
    assert not result and "not implemented yet" in capsys.readouterr().out


def test_value_exercise(square_exercise, capsys):
    assert check("test-value", 4)
    assert check("test-value", torch.tensor(4.0))
    assert not check("test-value", 5)
    assert "hint: count" in capsys.readouterr().out
    assert not check("test-value", ...)
    assert not check("test-value", "four")


def test_unknown_id_is_reported(capsys):
    assert not check("no-such-exercise", 1)
    assert "There is no exercise called" in capsys.readouterr().out


def test_quiet_keeps_the_report(square_exercise, capsys):
    r = check("test-square", lambda x: x * x, quiet=True)
    assert capsys.readouterr().out == "" and "passed" in r.report


# ------------------------------------------------------------------ every registered exercise

EXERCISES = sorted(registry().values(), key=lambda e: e.id)
FUNCTION_EXERCISES = [e for e in EXERCISES if e.kind == "function"]
VALUE_EXERCISES = [e for e in EXERCISES if e.kind == "value"]


@pytest.mark.parametrize("ex", FUNCTION_EXERCISES, ids=lambda e: e.id)
def test_reference_passes_and_mutants_fail(ex):
    assert check(ex.id, ex.reference, quiet=True), "the reference must pass its own checker"
    assert not check(ex.id, lambda *a, **k: ex.reference(*a, **k) * 1.01 + 0.01, quiet=True)
    assert not check(ex.id, lambda *a, **k: ex.reference(*a, **k).detach(), quiet=True)

    def unfinished(*a, **k):
        raise NotImplementedError

    r = check(ex.id, unfinished, quiet=True)
    assert not r and "not implemented yet" in r.report
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    assert len(cases) >= 3, "an exercise needs several hidden cases (shapes, options, edge cases)"
    assert any(c.grad for c in cases), "at least one case must compare gradients"


@pytest.mark.parametrize("ex", VALUE_EXERCISES, ids=lambda e: e.id)
def test_value_exercise_accepts_its_value_only(ex):
    value = ex.reference()
    assert check(ex.id, value, quiet=True)
    wrong = torch.as_tensor(value, dtype=torch.float64) * 1.1 + 0.1
    assert not check(ex.id, wrong.tolist() if wrong.dim() else wrong.item(), quiet=True)


# ------------------------------------------------------------------ choice exercises

CHOICE_EXERCISES = [e for e in EXERCISES if e.kind == "choice"]


@pytest.fixture
def choice_exercise():
    from lossbook.exercises import ChoiceExercise, Option, register
    from lossbook.exercises._core import _REGISTRY

    ex = register(ChoiceExercise(
        id="test-choice", title="Which is larger?",
        options={"a": Option("MSE", "right: the square of 3 is 9"), "b": Option("L1", "no: |3| = 3 < 9")},
        answer="a", hint="square the error"))
    yield ex
    del _REGISTRY["test-choice"]


def test_choice_right_answer_explains(choice_exercise, capsys):
    r = check("test-choice", " (A) ")
    assert r and r.passed == r.total == 1
    assert "the square of 3 is 9" in capsys.readouterr().out


def test_choice_wrong_answer_gets_its_own_explanation(choice_exercise):
    r = check("test-choice", "b", quiet=True)
    assert not r and "|3| = 3 < 9" in r.report and "hint: square the error" in r.report


@pytest.mark.parametrize("bad", [None, ..., "z", 1, ["a"]])
def test_choice_bad_answers_are_reported_not_raised(choice_exercise, bad):
    r = check("test-choice", bad, quiet=True)
    assert not r and "'a', 'b'" in r.report


def test_choice_exercise_must_name_a_real_answer():
    from lossbook.exercises import ChoiceExercise, Option

    with pytest.raises(ValueError, match="not one of the options"):
        ChoiceExercise(id="x", title="x", options={"a": Option("A", "."), "b": Option("B", ".")}, answer="c")


@pytest.mark.parametrize("ex", CHOICE_EXERCISES, ids=lambda e: e.id)
def test_registered_choice_exercise_accepts_only_its_answer(ex):
    assert check(ex.id, ex.answer, quiet=True)
    for key, option in ex.options.items():
        assert option.why.strip(), f"{ex.id}: option {key} needs an explanation"
        if key != ex.answer:
            r = check(ex.id, key, quiet=True)
            assert not r and option.why in r.report
