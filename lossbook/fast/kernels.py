r"""The building blocks of the fast paths: a faster ``exp`` and cache-sized blocks of a tensor.

Nothing here changes a result beyond floating-point rounding; it only changes how many times
a large tensor travels between memory and the CPU, and which elementwise kernel runs.

``exp(x)``
    On the CPU, PyTorch 2.13's ``torch.exp`` on float32 is about 3× slower than ``torch.exp2``
    (measured on an AVX-512 machine: 236 µs against 81 µs for 512 000 floats on 2 threads),
    so :func:`exp` computes :math:`e^x = 2^{x \log_2 e}`. The product :math:`x \log_2 e` is
    rounded once, which adds a relative error of at most :math:`|x \log_2 e| \cdot 2^{-24}` in
    float32 (:math:`2^{-53}` in float64) to the result: a few units in the last place for the
    arguments a loss uses (:math:`x \le 0` after a max-shift, and tiny terms for large
    :math:`|x|`). Half-precision inputs, whose product would be rounded to 11 bits, and other
    devices use ``torch.exp``.

``blocks(x, dims)``
    A memory-bound loss on a large tensor (e.g. ``(4096, 32000)`` logits, 524 MB in float32)
    that chains five elementwise steps reads and writes the whole tensor five times. Run
    block by block instead, on blocks of a few megabytes, the steps after the first find their
    block in the CPU's cache, and a scratch buffer the size of one block replaces full-size
    temporaries. Each block costs a few kernel launches (a few microseconds each), which is why
    blocks are not smaller.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["exp", "exp_", "blocks", "scratch", "fit", "reduce_elementwise", "reduction_grad"]

_LOG2E = 1.4426950408889634
_FAST_EXP_DTYPES = (torch.float32, torch.float64)


def _fast(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in _FAST_EXP_DTYPES


def exp(x: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.exp(x, out=out)``, computed as ``2 ** (x * log2(e))`` where that is faster.

    Not differentiable through ``out=``; used inside hand-written forward and backward passes.
    """
    if _fast(x):
        return torch.mul(x, _LOG2E, out=out).exp2_() if out is not None else torch.mul(x, _LOG2E).exp2_()
    return torch.exp(x, out=out) if out is not None else torch.exp(x)


def exp_(x: Tensor, scale: float = 1.0) -> Tensor:
    """In-place :func:`exp` of ``scale * x`` (``scale=-1`` gives ``exp(-x)`` in the same two passes)."""
    if _fast(x):
        return x.mul_(scale * _LOG2E).exp2_()
    return (x if scale == 1 else x.mul_(scale)).exp_()


BLOCK_BYTES = 4 << 20
"""Target size of one block: a few megabytes stay in the last-level cache between the steps."""


def blocks(x: Tensor, dims: tuple[int, ...]) -> list[tuple]:
    """Index tuples that split ``x`` into blocks of about ``BLOCK_BYTES`` along a dimension not in ``dims``.

    ``x[idx]`` is a view holding complete reductions (every dimension in ``dims`` is kept
    whole), so each block can be reduced on its own. Small inputs, inputs reduced over all
    their dimensions and inputs that are not on the CPU (where one kernel per step is the fast
    way) are a single block, ``(...,)``.
    """
    free = [d for d in range(x.dim()) if d not in dims and x.shape[d] > 1]
    nbytes = x.numel() * x.element_size()
    if x.device.type != "cpu" or nbytes <= 2 * BLOCK_BYTES or not free:
        return [(...,)]
    b = free[0]  # the outermost free dimension: contiguous blocks for the usual (N, C), dim=-1
    step = max(1, BLOCK_BYTES * x.shape[b] // nbytes)
    head = (slice(None),) * b
    return [head + (slice(s, s + step),) for s in range(0, x.shape[b], step)]


def scratch(x: Tensor, idx: list[tuple], dtype: torch.dtype | None = None) -> Tensor:
    """One contiguous buffer the size of the first (largest) block of ``x``, reused by every block."""
    return torch.empty_like(x[idx[0]], dtype=dtype, memory_format=torch.contiguous_format)


def fit(buf: Tensor, like: Tensor) -> Tensor:
    """The leading part of ``buf`` with the shape of ``like`` (the last block may be shorter)."""
    return buf if buf.shape == like.shape else buf[tuple(slice(0, n) for n in like.shape)]


def reduce_elementwise(fill: Callable[..., None], x: Tensor, others: Sequence[Tensor | None],
                       reduction: str) -> Tensor:
    """``reduce(loss, reduction)`` of an element-wise loss, computed block by block.

    ``fill(out, x_b, *others_b)`` writes the loss of one block into ``out``: ``x_b`` is a block
    of ``x`` (see :func:`blocks`) and each of ``others`` is broadcast to ``x`` and
    cut alike (``None`` stays ``None``). For ``'none'`` the blocks are those of the returned
    tensor; for ``'sum'`` and ``'mean'`` they go to one block-sized scratch buffer and only
    their sums are kept (in float32 at least, so float16 sums do not overflow early), so no
    tensor of the input's size is formed. Same edge cases as ``lossbook._reduction.reduce`` (the mean of an
    empty tensor is NaN).

    Shape:
        ``x`` ``(*)``, ``others`` broadcastable to it → ``(*)`` for ``'none'``, ``()`` otherwise.
    """
    parts = [None if o is None else o.expand_as(x) for o in others]
    idx = blocks(x, ())
    out = torch.empty_like(x) if reduction == "none" else scratch(x, idx)
    acc = torch.promote_types(x.dtype, torch.float32)
    total = torch.zeros((), dtype=acc, device=x.device)
    for i in idx:
        xb = x[i]
        ob = out[i] if reduction == "none" else fit(out, xb)
        fill(ob, xb, *[None if p is None else p[i] for p in parts])
        if reduction != "none":
            total += ob.sum(dtype=acc)
    if reduction == "none":
        return out
    return (total if reduction == "sum" else total / x.numel()).to(x.dtype)


def reduction_grad(grad: Tensor, reduction: str, numel: int) -> Tensor:
    """The gradient that each element of a loss receives through ``reduce(loss, reduction)``.

    ``grad`` is the gradient of the reduced loss: element-wise for ``'none'``, a 0-d tensor
    for ``'sum'`` (returned as it is) and ``'mean'`` (divided by the number of elements);
    either way the result broadcasts against the per-element loss.
    """
    return grad / numel if reduction == "mean" else grad
