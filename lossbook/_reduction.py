"""The one implementation of ``reduction='none' | 'mean' | 'sum'`` (and weighted means).

Every loss computes its per-element (or per-sample) values and hands them to :func:`reduce`.
The edge cases follow PyTorch exactly: the mean of an empty tensor is NaN and its sum is 0;
a weighted mean whose weights sum to zero (for example, every target ignored) is NaN.

(The fast paths fuse a reduction into their forward instead: ``lossbook.fast.kernels.reduce_elementwise``.)
"""
from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from ._validation import check_choice

__all__ = ["REDUCTIONS", "check_reduction", "reduce"]

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
