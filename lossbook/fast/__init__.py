r"""The fast paths: the same losses as the chapters' definitions, rearranged for speed on large CPU inputs.

Every loss of the book is *defined* by its public function (``lossbook.cross_entropy`` ...):
argument checks, a few differentiable tensor operations that read like the formula, and one
``reduce``. That definition is the executable specification, and it is what the chapters show.

Some losses also have a *fast path* here, used only where it cannot change the result:
plain (not subclassed, not ``torch.func``-wrapped, not dual) strided CPU tensors of one
floating dtype (float32 or float64), at least :data:`MIN_NUMEL` elements (CTC's kernel, whose
gain is in its loop over time, runs at every size and on every device), outside
``torch.compile`` and autocast. Its techniques (taught in the appendix chapter "Making a loss
fast") are

* a hand-written, fused backward (:math:`p - y` written into the forward's exponentials);
* cache-sized blocks (:func:`lossbook.fast.kernels.blocks`), so that a chain of element-wise
  steps reads a large tensor from memory once instead of once per step;
* one reused block-sized scratch buffer instead of full-size temporaries;
* ``exp`` computed as ``exp2(x log2 e)`` (:func:`lossbook.fast.kernels.exp`).

Each fast path is a :class:`FastFunction` tied to its definition: the first backward is the
hand-written kernel, but when a graph of the backward is recorded (``create_graph=True``,
double backward, gradient penalties) the backward *differentiates the definition* on the saved
inputs, so every higher derivative is exactly the definition's. ``tests/test_fast.py`` checks
each fast path against its definition (value, gradient, dtype, inf/NaN pattern).

:func:`definition_only` turns every fast path off (the definition runs at every size);
:func:`always` turns them on at every size (how the tests compare the two on small inputs).
"""
from __future__ import annotations

import contextlib
import threading
import types
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.autograd import forward_ad

__all__ = ["MIN_NUMEL", "applies", "definition_only", "always", "FastFunction", "run"]

MIN_NUMEL = 1 << 16
"""Below this many elements the definition runs: the kernels' gain is in memory traffic, which
only matters once a tensor no longer fits in the cache, and their bookkeeping costs a few µs."""

_FAST_DTYPES = (torch.float32, torch.float64)
_state = threading.local()


@contextlib.contextmanager
def _mode(mode: str) -> Iterator[None]:
    old = getattr(_state, "mode", None)
    _state.mode = mode
    try:
        yield
    finally:
        _state.mode = old


def definition_only() -> contextlib.AbstractContextManager[None]:
    """Within the block, every loss runs its readable definition, at every size."""
    return _mode("off")


def always() -> contextlib.AbstractContextManager[None]:
    """Within the block, a fast path runs wherever it applies, even on tiny inputs (for the tests)."""
    return _mode("always")


def _plain(t: Tensor, cpu_only: bool = True) -> bool:
    return (
        type(t) is Tensor
        and (t.device.type == "cpu" or not cpu_only)
        and t.layout == torch.strided
        and not torch._C._functorch.is_functorch_wrapped_tensor(t)
        and forward_ad.unpack_dual(t).tangent is None
    )


def applies(x: Tensor, *others: Tensor | None, min_numel: int = MIN_NUMEL, cpu_only: bool = True) -> bool:
    """Whether a fast path may replace the definition for ``x`` (the large input) and ``others``.

    True only for plain CPU tensors (no subclass, no ``torch.func`` or forward-AD wrapper, no
    sparse layout; any device if not ``cpu_only``), ``x`` in float32 or float64 with at least
    ``min_numel`` elements, every
    floating tensor of ``others`` in ``x``'s dtype (mixed dtypes follow the definition's type
    promotion), and not while ``torch.compile`` traces or autocast is on.
    """
    mode = getattr(_state, "mode", None)
    if mode == "off" or torch.compiler.is_compiling() or torch.is_autocast_enabled("cpu"):
        return False
    if not _plain(x, cpu_only) or x.dtype not in _FAST_DTYPES or (mode != "always" and x.numel() < min_numel):
        return False
    return all(o is None or (_plain(o, cpu_only) and (o.dtype == x.dtype or not o.is_floating_point()))
               for o in others)


class FastFunction(torch.autograd.Function):
    """A fast kernel tied to its definition; subclass it through :func:`run`.

    ``run(kernel, definition, *tensors)`` calls ``kernel.forward(state, *tensors)`` and, in the
    backward, ``kernel.backward(state, tensors, needs, *grads)`` (the hand-written gradient, with
    ``needs[i]`` telling whether ``tensors[i]`` needs one), or, when a graph of the backward is
    being recorded, the gradient of ``definition(*tensors)`` computed by autograd with
    ``create_graph=True``.
    """

    @staticmethod
    def forward(ctx, kernel, definition: Callable, *tensors):
        state = types.SimpleNamespace()
        out = kernel.forward(state, *tensors)
        ctx.kernel, ctx.definition, ctx.state = kernel, definition, state
        ctx.save_for_backward(*tensors)
        return out

    @staticmethod
    def backward(ctx, *grads):
        tensors = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        if torch.is_grad_enabled():
            got = _grad_of_definition(ctx.definition, tensors, needs, grads)
        else:
            got = ctx.kernel.backward(ctx.state, tensors, needs, *grads)
        return (None, None, *got)


def _grad_of_definition(definition: Callable, tensors, needs, grads) -> tuple:
    """The vector-Jacobian product of ``definition`` at ``tensors``, itself differentiable."""
    from .._validation import PitfallWarning

    wrt = [t for t, n in zip(tensors, needs) if n]
    with torch.enable_grad(), definition_only(), warnings.catch_warnings():
        warnings.simplefilter("ignore", PitfallWarning)  # already said once, by the forward
        out = definition(*tensors)
    outs = out if isinstance(out, tuple) else (out,)
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
    got = iter(torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs],
                                   create_graph=True, allow_unused=True) if pairs and wrt else [None] * len(wrt))
    result = []
    for t, n in zip(tensors, needs):
        g = next(got) if n else None
        result.append(torch.zeros_like(t) if n and g is None else g)
    return tuple(result)


def run(kernel, definition: Callable, *tensors):
    """Run ``kernel`` on ``tensors``, its backward tied to ``definition`` (see :class:`FastFunction`)."""
    return FastFunction.apply(kernel, definition, *tensors)
