"""Benchmarks of the detection chapter: GIoU and CIoU losses, forward + backward on 1,000,000 box
pairs in float32, against torchvision's functions transcribed (torchvision does not install here);
target ≤ 1.0×. The issue asks for 1 thread: run ``OMP_NUM_THREADS=1 python -m benchmarks --filter detection``."""
import torch

import lossbook
from lossbook.testing import torchvision_box_ops

from ._harness import Bench, register

N = 1_000_000
SIZE = f"({N:,}, 4) f32 pairs"
TV = torchvision_box_ops()  # the transcribed oracle, shared with the tests


def _boxes(device):
    g = torch.Generator().manual_seed(0)

    def boxes():
        xy = torch.rand(N, 2, generator=g) * 100
        return torch.cat([xy, xy + 1 + torch.rand(N, 2, generator=g) * 50], dim=1)

    pred = boxes().to(device).requires_grad_(True)
    target = boxes().to(device)
    return (pred, target), {"reduction": "mean"}


for _name in ("generalized_box_iou_loss", "complete_box_iou_loss"):
    register(Bench(_name, "detection", SIZE, _boxes, getattr(lossbook, _name), TV[_name], target=1.0))
