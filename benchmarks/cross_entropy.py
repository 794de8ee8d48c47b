"""Benchmarks of the cross-entropy chapter: forward + backward, float32, target ≤ 1.2×.

* LLM-like: ``(8192, 32000)`` logits (8192 tokens, a 32k vocabulary) with class indices;
* segmentation-like: ``(16, 21, 128, 128)`` logits (21 Pascal-VOC classes) with ``(16, 128, 128)`` indices.
"""
import torch
import torch.nn.functional as F

import lossbook

from ._harness import Bench, register


def _inputs(shape):
    def make(device):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(*shape, generator=g).to(device).requires_grad_(True)
        t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g).to(device)
        return (x, t), {}
    return make


def _inputs_smoothed(shape):
    make = _inputs(shape)

    def make_smoothed(device):
        args, _ = make(device)
        return args, {"label_smoothing": 0.1}
    return make_smoothed


register(Bench("cross_entropy", "cross-entropy", "(8192, 32000) f32", _inputs((8192, 32000)),
               lossbook.cross_entropy, F.cross_entropy, target=1.2))
register(Bench("cross_entropy (segmentation)", "cross-entropy", "(16, 21, 128, 128) f32",
               _inputs((16, 21, 128, 128)), lossbook.cross_entropy, F.cross_entropy, target=1.2))
register(Bench("cross_entropy (label_smoothing)", "cross-entropy", "(8192, 32000) f32",
               _inputs_smoothed((8192, 32000)), lossbook.cross_entropy, F.cross_entropy, target=1.2))
