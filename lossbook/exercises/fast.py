"""Exercises of the appendix "Making a loss fast" (book/fast/)."""
from __future__ import annotations

from ._core import ChoiceExercise, Exercise, Option, register

TRAFFIC_ELEMENTS = 10**7
FLOAT32_BYTES = 4


def _traffic() -> int:
    """Bytes moved by ``(input - target).abs().mean()`` as three unfused kernels on float32 tensors."""
    passes = {"sub": 2 + 1, "abs": 1 + 1, "mean": 1}  # reads + writes of full-size tensors
    return sum(passes.values()) * TRAFFIC_ELEMENTS * FLOAT32_BYTES


register(Exercise(
    id="fast-traffic",
    title="Bytes of an unfused chain of three kernels",
    reference=_traffic,
    hint="count, for each kernel, the full-size tensors it reads and the one it writes; the mean writes "
         "a single number",
    rtol=1e-4,
))

register(ChoiceExercise(
    id="fast-once",
    title="What once_differentiable does to a gradient penalty",
    options={
        "a": Option("an error at the second backward",
                    "it raises only when the incoming gradient of the first backward requires grad; in "
                    "autograd.grad(loss, z, create_graph=True) that gradient is a constant 1, so nothing is raised"),
        "b": Option("a second derivative that silently misses the terms through the saved tensors",
                    "the decorated backward runs without a graph, so its output is a constant for "
                    "the second backward, and only the terms outside the Function (e.g. through tanh) remain"),
        "c": Option("the correct second derivative",
                    "autograd cannot see inside a backward that ran under no_grad: the dependence of p - y on "
                    "z is lost, which is why lossbook's recorded backward differentiates the definition instead"),
    },
    answer="b",
    hint="which gradient has to require grad for the decorator to raise?",
))
