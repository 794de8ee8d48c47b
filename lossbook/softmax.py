r"""Softmax, log-softmax and log-sum-exp, written from scratch with the max-shift trick.

Each function is its formula in a few differentiable tensor operations: subtract the row's
max :math:`m` (so every exponential lies in :math:`[0, 1]`), exponentiate, sum. Autograd then
derives the softmax Jacobian, and every higher derivative, ``torch.func`` transform and
``torch.compile`` trace works as for any tensor code. The max is detached: the functions are
shift-invariant, so the shift needs no gradient.

Large CPU inputs run a fast path instead (``lossbook.fast.softmax``: cache-sized blocks,
``exp2``, hand-written backward), tested equal to these definitions; see the appendix chapter
"Making a loss fast".

Chapter: softmax
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import fast
from ._validation import check_tensor
from .fast import softmax as fast_softmax

__all__ = ["logsumexp", "softmax", "log_softmax"]


# --------------------------------------------------------------------------------------------
# argument handling shared by the three functions


def _normalize_dim(input: Tensor, dim, fn: str) -> int:
    if dim is None:
        raise ValueError(
            f"{fn}: dim is None, but the dimension to normalise over must be given explicitly "
            f"(PyTorch's implicit choice is deprecated and picks dim=1 for a 2-D input of shape "
            f"{tuple(input.shape)}); pass e.g. dim=-1 for the class dimension of (N, C) logits"
        )
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{fn}: dim must be an int, got {type(dim).__name__}")
    n = max(input.dim(), 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    if not -n <= dim < n:
        raise ValueError(
            f"{fn}: dim={dim} is out of range for input of shape {tuple(input.shape)} "
            f"({input.dim()}-D); dim must be in [{-n}, {n - 1}]"
        )
    return dim % n if input.dim() > 0 else 0


def _prepare(input: Tensor, dtype, fn: str) -> Tensor:
    check_tensor(input, "input")
    if dtype is not None:
        input = input.to(dtype)
    if not input.is_floating_point():
        raise TypeError(
            f"{fn}: input has dtype {input.dtype}, but {fn} needs floating-point values; "
            f"convert it first or pass dtype=torch.float32"
        )
    return input


def _row_max(x: Tensor, dims: tuple[int, ...], *, finite: bool) -> Tensor:
    """The max of ``x`` along ``dims`` (kept as size-1 dims), detached: the shift of the max-shift trick.

    With ``finite``, an infinite max is replaced by 0 (``inf - inf`` would be NaN), so that a row
    of all ``-inf`` or with a ``+inf`` entry follows IEEE arithmetic. An empty reduction has no
    max: the shift is 0 there.
    """
    if x.numel() == 0:
        return x.new_zeros([1 if d in dims else n for d, n in enumerate(x.shape)])
    m = x.detach().amax(dim=dims, keepdim=True)
    return m.masked_fill(m.isinf(), 0) if finite else m


# --------------------------------------------------------------------------------------------
# log-sum-exp


def logsumexp(input: Tensor, dim: int | Sequence[int], keepdim: bool = False) -> Tensor:
    r"""Numerically stable :math:`\log \sum_i \exp(x_i)` along ``dim``.

    .. math::
        \mathrm{LSE}(x) = m + \log \sum_i e^{x_i - m}, \qquad m = \max_i x_i

    Shifting by the max keeps every exponential in :math:`[0, 1]`, so nothing overflows, and
    the largest term is exactly 1, so the sum never underflows to 0.

    Shape:
        - input: ``(*)``, any shape (0-d included).
        - output: ``input`` with ``dim`` removed (kept as size 1 if ``keepdim``).

    Args:
        input: a floating-point tensor (integer inputs are promoted to the default float dtype,
            as ``torch.logsumexp`` does).
        dim: the dimension, or tuple of dimensions, to reduce.
        keepdim: keep the reduced dimensions with size 1.

    Example:
        >>> logsumexp(torch.tensor([2.0, 1.0, 0.1]), dim=0)
        tensor(2.4170)

    Same name, signature and semantics as ``torch.logsumexp``: a row of all ``-inf`` gives
    ``-inf``, a ``+inf`` entry gives ``+inf``, an empty reduction gives ``-inf``.

    Chapter: softmax
    """
    check_tensor(input, "input")
    if not input.is_floating_point():
        input = input.to(torch.get_default_dtype())
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        raise ValueError("logsumexp: dim is empty; give the dimension(s) to reduce, e.g. dim=-1")
    normalized = [_normalize_dim(input, d, "logsumexp") for d in dims]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"logsumexp: dim={tuple(dims)} names the same dimension more than once; "
                         f"each dimension may be reduced only once")
    dims = tuple(sorted(normalized)) if input.dim() else (0,)
    if input.dim() == 0:  # a 0-d tensor is its own log-sum-exp
        input = input.unsqueeze(0)
        keepdim = False
    if fast.applies(input):
        return fast_softmax.logsumexp(input, dims, keepdim)
    m = _row_max(input, dims, finite=True)
    out = m + (input - m).exp().sum(dim=dims, keepdim=True).log()
    return out if keepdim else out.squeeze(dims)


# --------------------------------------------------------------------------------------------
# softmax


def softmax(input: Tensor, dim: int | None = None, dtype: torch.dtype | None = None) -> Tensor:
    r"""Softmax along ``dim``: non-negative values that sum to 1.

    .. math::
        \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}} = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
        \qquad m = \max_j x_j

    Shape:
        - input: ``(*)``, any shape; output: same shape as ``input``.

    Args:
        input: logits (unnormalised scores).
        dim: the dimension to normalise over. Unlike PyTorch (which picks one with a
            deprecation warning), ``None`` is an error.
        dtype: if given, ``input`` is cast to it first; use ``dtype=torch.float32`` for
            float16/bfloat16 logits to compute in single precision.

    Example:
        >>> softmax(torch.tensor([2.0, 1.0, 0.1]), dim=0)
        tensor([0.6590, 0.2424, 0.0986])

    Same name, signature and semantics as ``torch.softmax``, including NaN for a row of
    all ``-inf`` or a row with a ``+inf`` entry.

    Chapter: softmax
    """
    x = _prepare(input, dtype, "softmax")
    d = _normalize_dim(x, dim, "softmax")
    if fast.applies(x):
        return fast_softmax.softmax(x, d)
    e = (x - _row_max(x, (d,), finite=False)).exp()  # unmasked max: +inf or all -inf gives NaN
    return e / e.sum(dim=d, keepdim=True)


# --------------------------------------------------------------------------------------------
# log-softmax


def log_softmax(input: Tensor, dim: int | None = None, dtype: torch.dtype | None = None) -> Tensor:
    r"""Log-softmax along ``dim``, computed without ever forming ``softmax``.

    .. math::
        \log \mathrm{softmax}(x)_i = x_i - \mathrm{LSE}(x) = (x_i - m) - \log \sum_j e^{x_j - m}

    ``torch.log(softmax(x))`` underflows to ``-inf`` as soon as a probability is below the
    smallest float (about ``1e-45`` in float32); this form stays finite and exact.

    Shape:
        - input: ``(*)``, any shape; output: same shape as ``input``.

    Args:
        input: logits.
        dim: the dimension to normalise over (``None`` is an error, see :func:`softmax`).
        dtype: if given, ``input`` is cast to it first.

    Example:
        >>> log_softmax(torch.tensor([2.0, 1.0, 0.1]), dim=0)
        tensor([-0.4170, -1.4170, -2.3170])

    Same name, signature and semantics as ``torch.log_softmax``.

    Chapter: softmax
    """
    x = _prepare(input, dtype, "log_softmax")
    d = _normalize_dim(x, dim, "log_softmax")
    if fast.applies(x):
        return fast_softmax.log_softmax(x, d)
    shifted = x - _row_max(x, (d,), finite=False)  # unmasked max: an infinite max gives NaN
    return shifted - shifted.exp().sum(dim=d, keepdim=True).log()
