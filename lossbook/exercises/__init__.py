"""Exercises and their checkers: ``lossbook.exercises.check("<id>", your_answer)``.

Each chapter's exercises live in a module of this package named after the chapter; they are
imported (and so registered) here.
"""
import importlib
import pkgutil

from ._core import Case, CheckResult, ChoiceExercise, Exercise, Option, check, get, randn, register, registry

__all__ = ["Case", "CheckResult", "ChoiceExercise", "Exercise", "Option", "check", "get", "randn", "register",
           "registry"]



def _load_chapter_exercises() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_chapter_exercises()
