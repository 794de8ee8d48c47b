"""Benchmarks of the KL-divergence chapter: (8192, 32000) float32, target ≤ 1.3×.

The row is the distillation-shaped call: the student's log-probabilities require grad, the
teacher's probabilities do not, ``reduction='batchmean'``.
"""
import torch

import lossbook

from ._harness import Bench, register

SHAPE = (8192, 32000)


def _inputs(device):
    x = torch.randn(*SHAPE, device=device).log_softmax(-1).requires_grad_(True)
    t = torch.randn(*SHAPE, device=device).softmax(-1)
    return (x, t), {"reduction": "batchmean"}


def _inputs_log_target(device):
    (x, t), kw = _inputs(device)
    return (x, t.log()), {"reduction": "batchmean", "log_target": True}


register(Bench("kl_div", "kl_divergence", "(8192, 32000) f32", _inputs, lossbook.kl_div,
               torch.nn.functional.kl_div, target=1.3))
register(Bench("kl_div(log_target=True)", "kl_divergence", "(8192, 32000) f32", _inputs_log_target,
               lossbook.kl_div, torch.nn.functional.kl_div, target=1.3))
