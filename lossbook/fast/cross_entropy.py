r"""Fast path of ``lossbook.cross_entropy`` with class-index targets (definition: ``lossbook.cross_entropy``).

The forward needs only the log-sum-exp of each row, :math:`\ell_n = w_{y_n}(\mathrm{LSE}(z_n) -
z_{n,y_n})`: no ``(N, C)`` matrix of log-probabilities is formed. Computing the LSE produces the
exponentials ``e = exp(z - max)``; when a gradient will be needed they are kept (one tensor the
size of the logits, as PyTorch keeps its log-probabilities), and the backward turns them, in
place and block by block, into the famous gradient :math:`p - y` (softmax minus the smoothed,
weighted target), with :math:`p = e / \sum e`: one pass, no new tensor.

* the NLL part: :math:`\partial \ell_n/\partial z_n = w_{y_n}(p_n - e_{y_n})`
* the smoothing term :math:`-\sum_c w_c \log p_{nc}`: :math:`\partial/\partial z_n = p_n \sum_c w_c - w`
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import run
from .kernels import blocks
from .softmax import exp_sum

__all__ = ["cross_entropy_index"]


def _class_view(weight: Tensor, ndim: int) -> Tensor:
    return weight.view(1, -1, *([1] * (ndim - 2)))


class _CrossEntropyIndex:
    def __init__(self, ignore_index: int, reduction: str, label_smoothing: float):
        self.ignore_index, self.reduction, self.eps = ignore_index, reduction, label_smoothing

    def forward(self, state, x: Tensor, t: Tensor, weight: Tensor | None) -> Tensor:
        C, eps = x.shape[1], self.eps
        keep = t != self.ignore_index
        safe = t.masked_fill(~keep, 0)
        e, m, total = exp_sum(x, (1,), safe=False, keep=self.keep_e)  # e = exp(x - m), total = sum(e)
        # -log p_y = log(total) - (x_y - m), PyTorch's order: LSE(x) - x_y would cancel two large numbers
        # (float32 logits of 1e4 lose three digits). +inf, all -inf or NaN in a row: NaN, as the definition
        log_total, m1 = total.log().squeeze(1), m.squeeze(1)
        w_y = keep.to(x.dtype) if weight is None else torch.where(keep, weight[safe], 0)
        picked = x.gather(1, safe.unsqueeze(1)).squeeze(1)
        loss = torch.where(keep, (log_total - (picked - m1)) * w_y, 0)
        denom = w_y.sum() if self.reduction == "mean" else None
        loss = self._reduce(loss, denom)
        if eps > 0:
            if weight is None:
                smooth = log_total * C - (x - m).sum(1)
            else:  # sum_c w_c (-log p_c), term by term: an infinite weight gives inf, not inf - inf
                smooth = ((log_total.unsqueeze(1) - (x - m)) * _class_view(weight, x.dim())).sum(1)
            smooth = self._reduce(torch.where(keep, smooth, 0), denom)
            loss = (1 - eps) * loss + smooth * (eps / C)  # reduced separately, then mixed: PyTorch's order
        state.e, state.total, state.safe, state.keep, state.w_y, state.denom = e, total, safe, keep, w_y, denom
        return loss

    def _reduce(self, loss: Tensor, denom: Tensor | None) -> Tensor:
        if self.reduction == "none":
            return loss
        return loss.sum() / denom if self.reduction == "mean" else loss.sum()

    def backward(self, state, tensors, needs, grad: Tensor):
        x, _, weight = tensors
        C, eps = x.shape[1], self.eps
        g = grad / state.denom if self.reduction == "mean" else grad
        g = g.expand(state.keep.shape) if g.dim() == 0 else g
        # the NLL part: (1 - eps) g w_y (p - onehot);  the smoothing part: (eps / C) g (p sum_c w_c - w)
        a = torch.where(state.keep, g * (1 - eps) * state.w_y, 0)
        b = torch.where(state.keep, g * (eps / C), 0) if eps > 0 else None
        coef = a if b is None else a + b * (C if weight is None else weight.sum())
        e, state.e = state.e, None  # consumed in place; a second backward (retain_graph) recomputes it
        if e is None:
            e = exp_sum(x, (1,), safe=False, keep=True)[0]
        scale, y, minus_a = (coef.unsqueeze(1) / state.total), state.safe.unsqueeze(1), -a.unsqueeze(1)
        for i in blocks(e, (1,)):  # block by block, so the scatter finds its block in the cache
            e[i].mul_(scale[i]).scatter_add_(1, y[i], minus_a[i])  # p * coef = e * coef / sum(e), minus onehot
        if b is not None:
            b = b.unsqueeze(1)
            e.sub_(b if weight is None else b * _class_view(weight, x.dim()))
        return e, None, None


def cross_entropy_index(x: Tensor, t: Tensor, weight: Tensor | None, ignore_index: int, reduction: str,
                        label_smoothing: float) -> Tensor:
    """Batched ``(N, C, ...)`` logits ``x`` and ``(N, ...)`` class indices ``t``: the reduced loss."""
    from ..cross_entropy import cross_entropy as definition

    kernel = _CrossEntropyIndex(ignore_index, reduction, label_smoothing)
    kernel.keep_e = x.requires_grad and torch.is_grad_enabled()  # keep the exponentials for the backward
    return run(kernel, lambda x, t, w: definition(x, t, w, ignore_index, reduction, label_smoothing), x, t, weight)
