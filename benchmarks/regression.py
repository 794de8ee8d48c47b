"""Benchmarks of the regression chapter: 1e7 float32 elements, forward + backward, target ≤ 1.3×.

Only the prediction (and, for the Gaussian NLL, the predicted variance) requires grad, as in
training. Losses without a PyTorch counterpart (rmse, log-cosh, quantile) are not timed.
"""
import torch

import lossbook

from ._harness import Bench, register

N = 10_000_000
SIZE = "1e7 f32"


def _pair(device):
    x = torch.randn(N, device=device).requires_grad_(True)
    y = torch.randn(N, device=device)
    return x, y


def _plain(**kwargs):
    def make(device):
        return _pair(device), dict(kwargs)

    return make


def _gaussian(device):
    x, y = _pair(device)
    var = (torch.rand(N, device=device) + 0.1).requires_grad_(True)
    return (x, y, var), {}


def _poisson(device):
    x = (torch.randn(N, device=device) * 0.5).requires_grad_(True)
    y = torch.poisson(torch.full((N,), 2.0, device=device))
    return (x, y), {"full": True}


_F = torch.nn.functional
for ours, ref, make in [
    (lossbook.l1_loss, _F.l1_loss, _plain()),
    (lossbook.mse_loss, _F.mse_loss, _plain()),
    (lossbook.huber_loss, _F.huber_loss, _plain(delta=1.0)),
    (lossbook.smooth_l1_loss, _F.smooth_l1_loss, _plain(beta=1.0)),
    (lossbook.gaussian_nll_loss, _F.gaussian_nll_loss, _gaussian),
    (lossbook.poisson_nll_loss, _F.poisson_nll_loss, _poisson),
]:
    register(Bench(ours.__name__, "regression", SIZE, make, ours, ref, target=1.3))
