"""Benchmarks of the classification chapter: (65536, 80) float32 logits (a detection-head sized
multi-label batch), forward + backward, target ≤ 1.3× PyTorch / the torchvision formula."""
import torch
import torch.nn.functional as F

import lossbook
from lossbook.testing import torchvision_sigmoid_focal_loss

from ._harness import Bench, register

N, C = 65536, 80
SIZE = f"({N}, {C}) f32"
TARGET = 1.3


def _gen():
    return torch.Generator().manual_seed(0)


def _probs(device):
    g = _gen()
    p = torch.rand(N, C, generator=g).clamp(1e-4, 1 - 1e-4).to(device).requires_grad_(True)
    y = (torch.rand(N, C, generator=g) < 0.05).float().to(device)
    return (p, y), {}


def _logits(device, *, signs=False):
    g = _gen()
    x = (3 * torch.randn(N, C, generator=g)).to(device).requires_grad_(True)
    y = (torch.rand(N, C, generator=g) < 0.05).float().to(device)
    if signs:
        y = 2 * y - 1
    return x, y


def _logits_pos_weight(device):
    x, y = _logits(device)
    return (x, y), {"pos_weight": torch.full((C,), 19.0, device=device)}


def _class_indices(device):
    g = _gen()
    x = torch.randn(N, C, generator=g).to(device).requires_grad_(True)
    t = torch.randint(0, C, (N,), generator=g).to(device)
    return x, t


def _multilabel_index_lists(device):
    # up to 4 labels per row, as a -1-terminated list of class indices
    g = _gen()
    n = 16384
    x = torch.randn(n, C, generator=g).to(device).requires_grad_(True)
    k = torch.randint(1, 5, (n, 1), generator=g)
    idx = torch.rand(n, C, generator=g).argsort(dim=1)
    t = torch.where(torch.arange(C) < k, idx, torch.full_like(idx, -1))
    return (x, t.to(device)), {}


tv_sigmoid_focal_loss = torchvision_sigmoid_focal_loss  # the transcribed oracle, shared with the tests


def ref_focal_loss(input, target, *, gamma=2.0, reduction="mean"):
    """The softmax focal loss in torch primitives: -(1 - p_t)^γ log p_t, mean over samples."""
    logpt = F.log_softmax(input, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    loss = -((1 - logpt.exp()) ** gamma) * logpt
    return loss.mean()


register(Bench("binary_cross_entropy", "classification", SIZE, _probs,
               lossbook.binary_cross_entropy, F.binary_cross_entropy, TARGET))
register(Bench("binary_cross_entropy_with_logits", "classification", SIZE,
               lambda d: (_logits(d), {}),
               lossbook.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, TARGET))
register(Bench("bce_with_logits (pos_weight)", "classification", SIZE, _logits_pos_weight,
               lossbook.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, TARGET))
register(Bench("soft_margin_loss", "classification", SIZE, lambda d: (_logits(d, signs=True), {}),
               lossbook.soft_margin_loss, F.soft_margin_loss, TARGET))
register(Bench("multilabel_soft_margin_loss", "classification", SIZE, lambda d: (_logits(d), {}),
               lossbook.multilabel_soft_margin_loss, F.multilabel_soft_margin_loss, TARGET))
register(Bench("multilabel_margin_loss", "classification", f"(16384, {C}) f32, ≤ 4 labels",
               _multilabel_index_lists, lossbook.multilabel_margin_loss, F.multilabel_margin_loss, TARGET))
register(Bench("multi_margin_loss", "classification", SIZE, lambda d: (_class_indices(d), {}),
               lossbook.multi_margin_loss, F.multi_margin_loss, TARGET))
register(Bench("hinge_embedding_loss", "classification", SIZE,
               lambda d: ((_logits(d)[0].detach().abs().requires_grad_(True), _logits(d, signs=True)[1]), {}),
               lossbook.hinge_embedding_loss, F.hinge_embedding_loss, TARGET))
register(Bench("sigmoid_focal_loss", "classification", SIZE + ", 'mean'",
               lambda d: (_logits(d), {"reduction": "mean"}),
               lossbook.sigmoid_focal_loss, tv_sigmoid_focal_loss, TARGET))
register(Bench("focal_loss (softmax)", "classification", SIZE + ", γ=2",
               lambda d: (_class_indices(d), {}),
               lossbook.focal_loss, ref_focal_loss, TARGET))
