r"""Fast paths of ``binary_cross_entropy_with_logits`` and ``soft_margin_loss`` (``lossbook.classification``).

* BCE-with-logits is fused with its reduction: computed block by block
  (:func:`lossbook.fast.kernels.reduce_elementwise`), so no loss tensor of the input's size is
  formed for ``'mean'`` and ``'sum'``, with the hand-derived backward
  :math:`\partial\ell/\partial x = w\,[(1 - y) - l_w\,\sigma(-x)]`, :math:`l_w = 1 + (p_w - 1)\,y`,
  scaled by :func:`lossbook.fast.kernels.reduction_grad` as PyTorch's own kernel does.
* soft-margin: :math:`\mathrm{softplus}(-yx)` with ``exp2``, fused with its reduction in the same
  blocks, and the backward :math:`-g\,y\,\sigma(-yx)`.
* multilabel soft-margin: the per-element logistic loss in the same blocks (complete rows per
  block for ``'none'``), the backward :math:`g\,w\,(\sigma(x) - y) / C`.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import run
from .kernels import blocks, exp_, fit, reduce_elementwise, reduction_grad, scratch

__all__ = ["binary_cross_entropy_with_logits", "soft_margin_loss", "multilabel_soft_margin_loss", "softplus"]


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
    def __init__(self, reduction: str):
        self.reduction = reduction

    def forward(self, state, x: Tensor, y: Tensor) -> Tensor:
        def fill(out, xb, yb):  # softplus(-yx) = max(-yx, 0) + log(1 + e^{-|yx|}), block by block
            torch.mul(xb, yb, out=out)
            tail = exp_(out.abs(), -1).log1p_()
            out.neg_().clamp_min_(0).add_(tail)

        return reduce_elementwise(fill, x, (y,), self.reduction)

    def backward(self, state, tensors, needs, grad: Tensor):
        x, y = tensors
        grad = reduction_grad(grad, self.reduction, x.numel())
        # d/dz softplus(-z) = -sigma(-z), z = yx
        s = torch.mul(x, y).neg_().sigmoid_().mul_(grad).neg_()
        gx = gy = None
        if needs[1]:
            gy = s * x
        if needs[0]:
            gx = s.mul_(y)
        return gx, gy


class _MultilabelSoftMargin:
    """y softplus(-x) + (1 - y) softplus(x) = L + y relu(-x) + (1 - y) relu(x), L = log(1 + e^{-|x|}):
    the definition's products, so 0 * inf gives NaN exactly where it does."""

    def __init__(self, reduction: str):
        self.reduction = reduction

    @staticmethod
    def fill(out, xb, yb, wb):
        exp_(torch.abs(xb, out=out), -1).log1p_()
        out.addcmul_(yb, xb.clamp_max(0), value=-1).addcmul_(1 - yb, xb.clamp_min(0))
        if wb is not None:
            out.mul_(wb)

    def forward(self, state, x: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
        c = x.shape[-1]
        if self.reduction != "none":
            total = reduce_elementwise(self.fill, x, (y, w), self.reduction)
            return total if self.reduction == "mean" else total / c  # the mean of the rows' means
        parts = [y.expand_as(x), None if w is None else w.expand_as(x)]
        idx = blocks(x, (x.dim() - 1,))
        buf = scratch(x, idx)
        rows = x.new_empty(x.shape[:-1])
        for i in idx:
            xb = x[i]
            ob = fit(buf, xb)
            self.fill(ob, xb, *[None if q is None else q[i] for q in parts])
            torch.sum(ob, dim=-1, out=rows[i]).div_(c)
        return rows

    def backward(self, state, tensors, needs, grad: Tensor):
        x, y, w = tensors
        c = x.shape[-1]
        if self.reduction == "none":
            grad = grad.unsqueeze(-1) / c
        else:
            grad = grad / (x.numel() if self.reduction == "mean" else c)
        if w is not None:
            grad = grad * w
        gx = gy = None
        if needs[0]:  # sigma(x) - y
            gx = torch.sigmoid(x).sub_(y).mul_(grad)
        if needs[1]:  # relu(-x) - relu(x) = -x
            gy = x.neg().mul_(grad)
        return gx, gy, None


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


def soft_margin_loss(x: Tensor, y: Tensor, reduction: str) -> Tensor:
    """``softplus(-y x)``, fused with its reduction."""
    from ..classification import soft_margin_loss as definition

    return run(_SoftMargin(reduction), lambda x, y: definition(x, y, reduction), x, y)


def multilabel_soft_margin_loss(x: Tensor, y: Tensor, weight: Tensor | None, reduction: str) -> Tensor:
    """The per-row mean of the logistic losses, fused with its reduction."""
    from ..classification import multilabel_soft_margin_loss as definition

    return run(_MultilabelSoftMargin(reduction), lambda x, y, w: definition(x, y, w, reduction), x, y, weight)
