"""lossbook: the loss functions of deep learning, written from scratch and tested against PyTorch.

Every loss of the book is re-exported here, e.g. ``lossbook.log_softmax``. Each chapter lives in
its own module (``lossbook.softmax``, ``lossbook.regression``, ...); each module lists its public
functions in ``__all__`` and they are collected below.
"""
from __future__ import annotations

import importlib
import importlib.util

from . import exercises, plotting
from ._validation import PitfallWarning
from .utils import default_device, loss_and_grad, seed_everything, show_source

__version__ = "0.1.0"

# One module per chapter, in the book's order. A chapter's module is added here when it lands.
CHAPTER_MODULES = (
    "softmax",
    "regression",
    "cross_entropy",
    "classification",
    "divergence",
    "ctc",
    "ranking",
    "segmentation",
    "detection",
    "generation",
    "llm",
    "selection",
    "diagnostics",
)

__all__ = [
    "PitfallWarning",
    "default_device",
    "seed_everything",
    "show_source",
    "loss_and_grad",
    "exercises",
    "plotting",
]


def _collect(names: tuple[str, ...]) -> None:
    for name in names:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            continue  # a chapter whose module has not landed yet
        module = importlib.import_module(f"{__name__}.{name}")
        for public in module.__all__:
            globals()[public] = getattr(module, public)
            __all__.append(public)


_collect(CHAPTER_MODULES)
