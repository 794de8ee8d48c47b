"""Benchmarks of the softmax chapter: (4096, 32000) float32 logits, target ≤ 1.3×."""
import torch

import lossbook

from ._harness import Bench, register

SHAPE = (4096, 32000)


def _logits(device):
    x = torch.randn(*SHAPE, device=device, generator=None).requires_grad_(True)
    return (x,), {"dim": -1}


for ours, ref in [
    (lossbook.softmax, torch.softmax),
    (lossbook.log_softmax, torch.log_softmax),
    (lossbook.logsumexp, torch.logsumexp),
]:
    register(Bench(ours.__name__, "softmax", "(4096, 32000) f32", _logits, ours, ref, target=1.3))
