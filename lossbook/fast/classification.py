r"""Fast paths of ``binary_cross_entropy_with_logits`` and ``soft_margin_loss`` (``lossbook.classification``).

* BCE-with-logits is fused with its reduction: computed block by block
  (:func:`lossbook.fast.kernels.reduce_elementwise`), so no loss tensor of the input's size is
  formed for ``'mean'`` and ``'sum'``, with the hand-derived backward
  :math:`\partial\ell/\partial x = w\,[(1 - y) - l_w\,\sigma(-x)]`, :math:`l_w = 1 + (p_w - 1)\,y`,
  scaled by :func:`lossbook.fast.kernels.reduction_grad` as PyTorch's own kernel does.
* soft-margin: :math:`\mathrm{softplus}(-yx)` with ``exp2`` and in-place steps, and the backward
  :math:`g\,y\,(\sigma(yx) - 1)`.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import run
from .kernels import exp_, reduce_elementwise, reduction_grad

__all__ = ["binary_cross_entropy_with_logits", "soft_margin", "softplus"]


def _softplus_(x: Tensor) -> Tensor:
    """log(1 + e^x) without overflow, on a fresh tensor: max(x, 0) + log1p(exp(-|x|))."""
    return x.clamp_min(0).add_(exp_(x.abs(), -1).log1p_())


class _BCEWithLogits:
    def __init__(self, reduction: str):
        self.reduction = reduction

    def forward(self, state, x: Tensor, y: Tensor, weight: Tensor | None, pos_weight: Tensor | None) -> Tensor:
        def fill(out, xb, yb, wb, pwb):  # the loss of one block of a few megabytes, into out
            # softplus(-x) = log(1 + e^{-|x|}) - min(x, 0), never overflowing
            exp_(torch.abs(xb, out=out), -1).log1p_().sub_(xb.clamp_max(0))
            if pwb is not None:
                out.mul_(torch.mul(yb, pwb).sub_(yb).add_(1))  # l_w = 1 + (p_w - 1) y
            out.addcmul_(1 - yb, xb)  # + (1 - y) x, as one product: x = +inf, y < 1 gives +inf, not NaN
            if wb is not None:
                out.mul_(wb)

        return reduce_elementwise(fill, x, (y, weight, pos_weight), self.reduction)

    def backward(self, state, tensors, needs, grad: Tensor):
        x, y, weight, pos_weight = tensors
        grad = reduction_grad(grad, self.reduction, x.numel())
        if weight is not None:
            grad = grad * weight
        gx = gy = None
        if needs[0]:
            s = torch.sigmoid(x)
            if pos_weight is None:  # (1 - y) - sigma(-x) = sigma(x) - y
                gx = s.sub_(y)
            else:  # (1 - y) - l_w sigma(-x) = sigma(x) - y (p_w - (p_w - 1) sigma(x))
                gx = s - (s * (1 - pos_weight)).add_(pos_weight).mul_(y)
            gx = gx.mul_(grad)
        if needs[1]:
            gy = -x
            if pos_weight is not None:
                gy = gy + (pos_weight - 1) * _softplus_(-x)
            gy = gy * grad
        return gx, gy, None, None


class _SoftMargin:
    def forward(self, state, x: Tensor, y: Tensor) -> Tensor:
        z = x * y
        state.z = z
        return _softplus_(-z)

    def backward(self, state, tensors, needs, grad: Tensor):
        _, y = tensors
        gx = gy = None
        s = torch.sigmoid(state.z).sub_(1).mul_(grad)  # d/dz softplus(-z) = sigma(z) - 1
        if needs[1]:
            gy = s * tensors[0]
        if needs[0]:
            gx = s.mul_(y)
        return gx, gy


class _Softplus:
    def forward(self, state, x: Tensor) -> Tensor:
        return _softplus_(x)

    def backward(self, state, tensors, needs, grad: Tensor):
        return (torch.sigmoid(tensors[0]).mul_(grad),)


def softplus(x: Tensor) -> Tensor:
    """softplus(x) with exp2 and in-place steps, and the backward g sigma(x)."""
    from ..classification import _softplus as definition

    return run(_Softplus(), definition, x)


def binary_cross_entropy_with_logits(x, y, weight, pos_weight, reduction):
    from ..classification import binary_cross_entropy_with_logits as definition

    return run(_BCEWithLogits(reduction), lambda x, y, w, pw: definition(x, y, w, reduction, pw),
               x, y, weight, pos_weight)


def soft_margin(x: Tensor, y: Tensor) -> Tensor:
    """The unreduced ``softplus(-y x)``."""
    from ..classification import soft_margin_loss as definition

    return run(_SoftMargin(), lambda x, y: definition(x, y, "none"), x, y)
