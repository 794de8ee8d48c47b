"""Benchmarks of the CTC chapter: forward + backward at T=200, N=32, C=30, S=40, float32; target ≤ 3×."""
import torch

import lossbook

from ._harness import Bench, register

T, N, C, S = 200, 32, 30, 40


def _inputs(device):
    gen = torch.Generator().manual_seed(0)
    log_probs = torch.randn(T, N, C, generator=gen).log_softmax(-1).to(device).requires_grad_(True)
    targets = torch.randint(1, C, (N, S), generator=gen).to(device)
    input_lengths = torch.randint(T - 40, T + 1, (N,), generator=gen).to(device)
    target_lengths = torch.randint(S // 2, S + 1, (N,), generator=gen).to(device)
    return (log_probs, targets, input_lengths, target_lengths), {}


register(Bench("ctc_loss", "ctc", f"T={T} N={N} C={C} S={S} f32", _inputs, lossbook.ctc_loss,
               torch.nn.functional.ctc_loss, target=3.0))
