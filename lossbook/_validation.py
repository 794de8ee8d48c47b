"""Input checks shared by every loss.

Every public loss starts with a few of these calls, so that a wrong shape, dtype or range
fails early with a message that names the argument, what was given and what was expected,
instead of a broadcasting surprise or a silent wrong number later on (CONVENTIONS §1).
"""
from __future__ import annotations

import functools
import math
import os
import sys
import warnings
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = [
    "PitfallWarning",
    "warn_pitfall",
    "format_shape",
    "check_tensor",
    "check_floating",
    "check_same_shape",
    "check_broadcastable",
    "broadcast_with_pitfall",
    "check_ndim",
    "check_class_indices",
    "check_probabilities",
    "looks_like_probabilities",
    "check_positive",
    "check_in_range",
    "check_choice",
]


class PitfallWarning(UserWarning):
    """A call that PyTorch accepts but that is almost certainly a mistake.

    Raised (as a warning) for silent traps that the source documents warn about, such as
    ``nll_loss`` fed raw logits or ``kl_div`` with ``reduction='mean'``. It never changes the
    result: filter it with ``warnings.simplefilter("ignore", lossbook.PitfallWarning)``.
    """


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_pitfall(message: str, *, stacklevel: int | None = None) -> None:
    """Emit a :class:`PitfallWarning` pointing at the learner's line that called lossbook.

    The warning's file and line are those of the first frame outside the ``lossbook`` package
    (however deep inside lossbook the check runs), so the message names the reader's own call.
    An explicit ``stacklevel`` overrides that.
    """
    if stacklevel is None:
        frame, stacklevel = sys._getframe(1), 2
        while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
            frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, PitfallWarning, stacklevel=stacklevel)


def format_shape(x: Tensor | torch.Size | Iterable[int]) -> str:
    """``(3, 5)`` for a tensor or a size; ``()`` for a scalar."""
    shape = tuple(x.shape) if isinstance(x, Tensor) else tuple(x)
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_tensor(x: object, name: str) -> None:
    """TypeError unless ``x`` is a tensor (lists and numpy arrays are not silently converted)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_floating(x: Tensor, name: str, *, hint: str = "") -> None:
    """TypeError unless ``x`` has a floating-point dtype."""
    check_tensor(x, name)
    if not x.is_floating_point():
        msg = f"{name} must have a floating-point dtype, got {x.dtype}"
        raise TypeError(msg + (f"; {hint}" if hint else ""))


def check_same_shape(
    input: Tensor, target: Tensor, *, names: tuple[str, str] = ("input", "target"), hint: str = ""
) -> None:
    """ValueError unless the two tensors have exactly the same shape (no broadcasting)."""
    if input.shape != target.shape:
        a, b = names
        msg = (
            f"{b} has shape {format_shape(target)} but {a} has shape {format_shape(input)}; "
            f"{b} must have the same shape as {a}"
        )
        raise ValueError(msg + (f" ({hint})" if hint else ""))


def check_broadcastable(x: Tensor, to: Tensor, *, names: tuple[str, str], hint: str = "") -> None:
    """ValueError unless ``x`` broadcasts to the shape of ``to`` without changing that shape."""
    try:
        shape = torch.broadcast_shapes(x.shape, to.shape)
    except RuntimeError:
        shape = None
    if shape != to.shape:
        a, b = names
        msg = (
            f"{a} has shape {format_shape(x)}, which does not broadcast to the shape "
            f"{format_shape(to)} of {b}"
        )
        raise ValueError(msg + (f"; {hint}" if hint else ""))


def broadcast_with_pitfall(input: Tensor, target: Tensor, *, names: tuple[str, str] = ("input", "target"),
                           hint: str = "") -> torch.Size:
    """The shape ``input`` and ``target`` broadcast to, as PyTorch's torch-named losses broadcast them.

    Different shapes are accepted (a torch-named loss never refuses what PyTorch accepts) but get a
    :class:`PitfallWarning`: an ``(N, 1)`` prediction against an ``(N,)`` target silently gives an
    ``(N, N)`` loss. Shapes that do not broadcast raise a ``ValueError`` (``hint`` says what the
    shapes should be, after "must have the same shape as ...").
    """
    if input.shape == target.shape:
        return input.shape
    a, b = names
    try:
        shape = torch.broadcast_shapes(input.shape, target.shape)
    except RuntimeError:
        raise ValueError(
            f"{b} has shape {format_shape(target)} but {a} has shape {format_shape(input)}; "
            f"{b} must have the same shape as {a}{f' ({hint})' if hint else ''}"
        ) from None
    warn_pitfall(
        f"{b} has shape {format_shape(target)} but {a} has shape {format_shape(input)}: they broadcast "
        f"to {format_shape(shape)}, which is rarely intended (an (N, 1) prediction against an (N,) {b} "
        f"gives an (N, N) loss); give both the same shape"
    )
    return shape


def check_ndim(x: Tensor, name: str, allowed: Iterable[int] | None = None, *, min_ndim: int | None = None,
               expected: str = "") -> None:
    """ValueError unless ``x.dim()`` is in ``allowed`` (or at least ``min_ndim``).

    ``expected`` describes the accepted layouts in words, e.g. ``"(N, C) or (C,)"``.
    """
    ok = True
    if allowed is not None:
        allowed = tuple(allowed)
        ok = x.dim() in allowed
    if min_ndim is not None:
        ok = ok and x.dim() >= min_ndim
    if not ok:
        if not expected:
            if allowed is not None:
                expected = " or ".join(f"{d}-D" for d in allowed)
            else:
                expected = f"at least {min_ndim}-D"
        raise ValueError(
            f"{name} has shape {format_shape(x)} ({x.dim()}-D) but must be {expected}"
        )


def values_visible(*tensors: object) -> bool:
    """Whether a check may look at the *values* of ``tensors``, not only at their shapes and dtypes.

    Not while ``torch.compile`` traces (reading a value would break the graph) and not for a
    tensor inside a ``torch.func`` transform (a vmapped tensor stands for many values): there,
    data-dependent validation and pitfall warnings are skipped, as PyTorch's own losses skip theirs.
    """
    if torch.compiler.is_compiling():
        return False
    return not any(isinstance(t, Tensor) and torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def float32_under_autocast(fn):
    """Decorator: under autocast, the loss runs in float32, as PyTorch's losses do ("fp32" cast policy).

    Half-precision floating tensor arguments are cast to float32 when autocast is enabled on their
    device; outside autocast the function is called unchanged.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        if not torch.is_autocast_enabled(device):
            return fn(*args, **kwargs)

        def up(a):
            return a.float() if isinstance(a, Tensor) and a.dtype in (torch.float16, torch.bfloat16) else a

        return fn(*map(up, args), **{k: up(v) for k, v in kwargs.items()})

    return wrapper


def check_class_indices(
    target: Tensor, num_classes: int, *, name: str = "target", ignore_index: int | None = None
) -> None:
    """Class-index targets: an integer dtype and every value in ``[0, num_classes)``.

    Values equal to ``ignore_index`` are exempt from the range check, as in PyTorch.
    """
    check_tensor(target, name)
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"{name} holds class indices and must have an integer dtype (e.g. torch.long), "
            f"got {target.dtype}"
        )
    if target.numel() == 0 or not values_visible(target):
        return
    lo, hi = torch.aminmax(target)
    if bool((lo >= 0) & (hi < num_classes)):  # one pass in the common case
        return
    valid = target if ignore_index is None else target[target != ignore_index]
    if valid.numel() == 0:
        return
    lo, hi = int(valid.min()), int(valid.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        extra = f" (or equal to ignore_index={ignore_index})" if ignore_index is not None else ""
        raise ValueError(
            f"{name} contains the class index {bad}, but class indices must be in "
            f"[0, {num_classes - 1}] for {num_classes} classes{extra}"
        )


def check_probabilities(x: Tensor, name: str, *, hint: str = "") -> None:
    """ValueError unless every value of ``x`` lies in ``[0, 1]`` (NaN is reported too)."""
    if x.numel() == 0 or not values_visible(x):
        return
    lo, hi = torch.aminmax(x.detach())
    if bool((lo >= 0) & (hi <= 1)):  # one pass in the common case; NaN fails both comparisons
        return
    bad = (x < 0) | (x > 1) | torch.isnan(x)
    if bool(bad.any()):
        value = x[bad].flatten()[0].item()
        msg = f"{name} must contain probabilities in [0, 1], but it contains {value:g}"
        raise ValueError(msg + (f"; {hint}" if hint else ""))


def looks_like_probabilities(x: Tensor, *, dim: int | None = None, atol: float = 1e-3) -> bool:
    """Whether ``x`` looks like the output of a sigmoid (every value in ``[0, 1]``) or, with ``dim``,
    of a softmax along ``dim`` (in ``[0, 1]`` and summing to 1 there, within ``atol``).

    What a loss that takes logits should never be fed: raw logits of a real model almost never all
    lie in ``[0, 1]``. A heuristic, so it only warns or reports; it is ``False`` for an empty or
    non-floating tensor and where values cannot be looked at (:func:`values_visible`).
    """
    if x.numel() == 0 or not x.is_floating_point() or not values_visible(x):
        return False
    x = x.detach()
    lo, hi = torch.aminmax(x)
    if not bool((lo >= 0) & (hi <= 1)):  # NaN fails both comparisons
        return False
    return dim is None or bool(((x.sum(dim) - 1).abs() <= atol).all())


def check_positive(value: float, name: str, *, strict: bool = True, finite: bool = False) -> None:
    """ValueError unless a scalar hyper-parameter is > 0 (or >= 0 with ``strict=False``).

    NaN is never accepted (it fails every comparison, so a plain ``value <= 0`` test lets it
    through); with ``finite=True`` neither is ``inf``.
    """
    if isinstance(value, Tensor):
        if not values_visible(value):
            return
        ok = bool((value > 0).all()) if strict else bool((value >= 0).all())
        inf = finite and not bool(value.isfinite().all())
    else:
        ok = value > 0 if strict else value >= 0
        inf = finite and math.isinf(value)
    if not ok:
        raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'}, got {value}")
    if inf:
        raise ValueError(f"{name} must be finite, got {value}")


def check_in_range(value: float, name: str, lo: float, hi: float, *, closed: bool = True) -> None:
    """ValueError unless ``lo <= value <= hi`` (``lo < value < hi`` with ``closed=False``)."""
    ok = lo <= value <= hi if closed else lo < value < hi
    if not ok:
        interval = f"[{lo}, {hi}]" if closed else f"({lo}, {hi})"
        raise ValueError(f"{name} must be in {interval}, got {value}")


def check_choice(value: object, name: str, choices: Iterable[object]) -> None:
    """ValueError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
