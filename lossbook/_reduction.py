"""The one implementation of ``reduction='none' | 'mean' | 'sum'`` (and weighted means).

Every loss computes its per-element (or per-sample) values and hands them to :func:`reduce`.
The edge cases follow PyTorch exactly: the mean of an empty tensor is NaN and its sum is 0;
a weighted mean whose weights sum to zero (for example, every target ignored) is NaN.

A large element-wise loss with a hand-written backward can instead fuse the reduction into
its forward with :func:`reduce_elementwise` (no loss tensor of the input's size is ever
formed) and scale its gradient with :func:`reduction_grad`, as PyTorch's fused kernels do.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

from ._kernels import blocks, fit, scratch
from ._validation import check_choice

__all__ = ["REDUCTIONS", "check_reduction", "reduce", "reduce_elementwise", "reduction_grad"]

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str, allowed: Iterable[str] = REDUCTIONS) -> None:
    """ValueError naming the accepted values if ``reduction`` is not one of them."""
    check_choice(reduction, "reduction", tuple(allowed))


def reduce(
    loss: Tensor,
    reduction: str,
    *,
    weight: Tensor | None = None,
    batch_size: int | None = None,
    allowed: Iterable[str] = REDUCTIONS,
) -> Tensor:
    """Reduce a tensor of per-element losses.

    Args:
        loss: the unreduced losses, any shape.
        reduction: ``'none'`` returns ``loss`` unchanged; ``'sum'`` sums it; ``'mean'`` averages
            it, or, when ``weight`` is given, returns ``loss.sum() / weight.sum()`` (the weighted
            mean of PyTorch's ``cross_entropy``/``nll_loss``: ``loss`` already contains the
            weights, ``weight`` holds the weight of every element that counts); ``'batchmean'``
            (only if listed in ``allowed``) divides the sum by ``batch_size``.
        weight: the denominators of a weighted mean, broadcastable to ``loss``.
        batch_size: the divisor of ``'batchmean'``.
        allowed: the reductions the calling loss accepts.

    Shape:
        loss ``(*)`` → output ``(*)`` for ``'none'``, ``()`` otherwise.
    """
    check_reduction(reduction, allowed)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        if weight is None:
            return loss.mean()
        return loss.sum() / weight.sum()
    # 'batchmean'
    if batch_size is None:
        raise ValueError("reduction='batchmean' needs the batch size")
    return loss.sum() / batch_size


def reduce_elementwise(fill: Callable[..., None], x: Tensor, others: Sequence[Tensor | None],
                       reduction: str) -> Tensor:
    """``reduce(loss, reduction)`` of an element-wise loss, computed block by block.

    ``fill(out, x_b, *others_b)`` writes the loss of one block into ``out``: ``x_b`` is a block
    of ``x`` (see ``lossbook._kernels.blocks``) and each of ``others`` is broadcast to ``x`` and
    cut alike (``None`` stays ``None``). For ``'none'`` the blocks are those of the returned
    tensor; for ``'sum'`` and ``'mean'`` they go to one block-sized scratch buffer and only
    their sums are kept (in float32 at least, so float16 sums do not overflow early), so no
    tensor of the input's size is formed. Same edge cases as :func:`reduce` (the mean of an
    empty tensor is NaN).

    Shape:
        ``x`` ``(*)``, ``others`` broadcastable to it → ``(*)`` for ``'none'``, ``()`` otherwise.
    """
    check_reduction(reduction)
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
