r"""Fast paths of the residual losses of ``lossbook.regression`` (L1, MSE, Huber, SmoothL1, log-cosh).

Each of these losses is a function :math:`\rho` of the residual :math:`d = \hat y - y` alone,
with the derivative :math:`\psi(d) = \rho'(d)` (the "psi function" of robust statistics):

* L1: :math:`\psi(d) = \operatorname{sign}(d)`;  MSE: :math:`\psi(d) = 2d`;
* Huber: :math:`\psi(d) = \operatorname{clamp}(d, -\delta, \delta)`;  log-cosh: :math:`\psi(d) = \tanh d`.

The kernel evaluates :math:`\rho` in place on a fresh residual and the backward multiplies the
upstream gradient by :math:`\psi`, recomputing :math:`d` from the saved input and target
(cheaper than keeping a full-size tensor alive). For ``'mean'``/``'sum'`` of a large input it
works through the flattened residuals in cache-sized blocks (:data:`BLOCK`) and keeps only one
partial sum per block, so no full-size temporary is ever written.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from . import run

__all__ = ["BLOCK", "pointwise", "l1", "mse", "huber", "log_cosh"]

BLOCK = 1 << 18
"""Elements per block of the reduced passes: 1 MiB of float32, which stays in the L2 cache. Measured
on an idle 2-core CPU at 1e7 elements (forward + backward): 2^15-element blocks spent most of their
time in per-block Python overhead (1.4x PyTorch's Huber), 2^18-2^20 ran at 0.6-0.8x, and 2^24 (no
blocking to speak of) at 1.7x. On an oversubscribed CPU smaller blocks fare better."""

_LN2 = math.log(2.0)


class _Pointwise:
    def __init__(self, rho: Callable, psi: Callable, reduction: str):
        self.rho, self.psi, self.reduction = rho, psi, reduction

    def forward(self, state, input: Tensor, target: Tensor) -> Tensor:
        n, reduction, rho = input.numel(), self.reduction, self.rho
        if reduction == "none" or n <= BLOCK:
            loss = rho(input - target)
            return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())
        x, y = input.reshape(-1), target.reshape(-1)
        buf = torch.empty(BLOCK, dtype=input.dtype, device=input.device)
        partial = torch.stack([
            rho(torch.sub(x[i:i + BLOCK], y[i:i + BLOCK], out=buf[: min(BLOCK, n - i)])).sum()
            for i in range(0, n, BLOCK)
        ])
        total = partial.sum()
        return total / n if reduction == "mean" else total

    def backward(self, state, tensors, needs, grad: Tensor):
        input, target = tensors
        n = input.numel()
        if self.reduction == "mean":
            grad = grad / n  # d mean / d loss_i = 1 / numel, on a scalar
        if self.reduction == "none" or n <= BLOCK:
            g_input = self.psi(input - target, grad)
        else:  # a scalar upstream gradient: fill the result block by block, each block in cache
            g_input = torch.empty(n, dtype=input.dtype, device=input.device)
            x, y = input.reshape(-1), target.reshape(-1)
            for i in range(0, n, BLOCK):
                self.psi(torch.sub(x[i:i + BLOCK], y[i:i + BLOCK], out=g_input[i:i + BLOCK]), grad)
            g_input = g_input.view(input.shape)
        return (g_input if needs[0] else None), (-g_input if needs[1] else None)


def pointwise(rho_psi: tuple[Callable, Callable], definition: Callable, input: Tensor, target: Tensor,
              reduction: str) -> Tensor:
    """The reduced ``rho(input - target)``, tied to ``definition(input, target)`` (the same loss)."""
    rho, psi = rho_psi
    return run(_Pointwise(rho, psi, reduction), definition, input, target)


# rho (the loss) and psi (its derivative, times the upstream gradient g), both in place on d


def l1():
    return (lambda d: d.abs_()), (lambda d, g: d.sign_().mul_(g))  # sign(0) = 0, PyTorch's subgradient


def mse():
    return (lambda d: d.square_()), (lambda d, g: d.mul_(2 * g))


def huber(delta: float, scale: float = 1.0):
    def rho(d):
        c = d.clamp(-delta, delta)  # c (d - c/2): d^2/2 inside [-delta, delta], delta (|d| - delta/2) beyond
        loss = d.sub_(c, alpha=0.5).mul_(c)
        return loss.mul_(scale) if scale != 1.0 else loss

    def psi(d, g):
        return d.clamp_(-delta, delta).mul_(g * scale if scale != 1.0 else g)

    return rho, psi


def log_cosh():
    def rho(d):
        a = d.abs_()
        small = (a * 0.5).sinh_().square_().mul_(2).log1p_()  # log1p(2 sinh^2(a/2)) for a < 1
        large = (a * -2).exp_().log1p_().add_(a).sub_(_LN2)  # a + log1p(e^{-2a}) - ln 2
        return torch.where(a < 1, small, large)

    return rho, (lambda d, g: d.tanh_().mul_(g))

