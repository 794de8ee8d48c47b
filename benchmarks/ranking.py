"""Benchmarks of the ranking chapter, forward + backward.

* The torch-named four against ``torch.nn.functional`` (target ≤ 1.3×).
* The batch triplet losses at N = 512, D = 128 (32 classes × 16), float32, against what a user
  would pick instead: pytorch-metric-learning's miner + loss (target ≤ 1.0×). PML is a
  benchmark/test dependency only; a row is skipped when it is not installed.
* The per-anchor Python loop that is often written for batch-hard mining (transcribed below),
  against lossbook: its ratio lossbook / loop must be ≤ 0.1 (the loop ≥ 10× slower).
"""
import torch
import torch.nn.functional as F

import lossbook

from ._harness import Bench, register

TARGET_TORCH = 1.3
N, D, CLASSES = 512, 128, 32
SIZE = f"N={N}, D={D}, {CLASSES} classes, f32"


def _gen():
    return torch.Generator().manual_seed(0)


def _pairs(device, n=16384, d=128):
    g = _gen()
    a = torch.randn(n, d, generator=g).to(device).requires_grad_(True)
    b = torch.randn(n, d, generator=g).to(device).requires_grad_(True)
    y = torch.where(torch.rand(n, generator=g) > 0.5, 1.0, -1.0).to(device)
    return a, b, y


def _scores(device, n=1 << 20):
    g = _gen()
    a = torch.randn(n, generator=g).to(device).requires_grad_(True)
    b = torch.randn(n, generator=g).to(device).requires_grad_(True)
    y = torch.where(torch.rand(n, generator=g) > 0.5, 1.0, -1.0).to(device)
    return (a, b, y), {"margin": 0.1}


def _triplets(device, n=16384, d=128):
    g = _gen()
    return tuple(torch.randn(n, d, generator=g).to(device).requires_grad_(True) for _ in range(3)), {}


def _batch(device):
    g = _gen()
    x = torch.randn(N, D, generator=g).to(device).requires_grad_(True)
    y = torch.arange(CLASSES).repeat_interleave(N // CLASSES)[torch.randperm(N, generator=g)].to(device)
    return (x, y), {}


def seed_triplet_loss_with_hard_mining(embeddings, labels, margin=1.0):
    """The per-anchor loop (batch-hard branch) as it is often written, transcribed for timing only.

    It gives the right number on ordinary inputs, but loops over anchors in Python, builds its
    ``arange`` on the CPU and returns a disconnected ``torch.tensor(0.0)`` when no triplet exists.
    """
    distances = torch.cdist(embeddings, embeddings)
    batch_size = embeddings.size(0)
    triplet_losses = []
    for i in range(batch_size):
        positive_mask = (labels == labels[i]) & (torch.arange(batch_size) != i)
        positive_distances = distances[i][positive_mask]
        if len(positive_distances) == 0:
            continue
        negative_distances = distances[i][labels != labels[i]]
        if len(negative_distances) == 0:
            continue
        triplet_losses.append(F.relu(positive_distances.max() - negative_distances.min() + margin))
    if len(triplet_losses) == 0:
        return torch.tensor(0.0, requires_grad=True)
    return torch.stack(triplet_losses).mean()


register(Bench("margin_ranking_loss", "ranking", "(1048576,) f32", _scores,
               lossbook.margin_ranking_loss, F.margin_ranking_loss, TARGET_TORCH))
register(Bench("cosine_embedding_loss", "ranking", "(16384, 128) f32", lambda d: (_pairs(d), {"margin": 0.2}),
               lossbook.cosine_embedding_loss, F.cosine_embedding_loss, TARGET_TORCH))
register(Bench("triplet_margin_loss", "ranking", "(16384, 128) f32", _triplets,
               lossbook.triplet_margin_loss, F.triplet_margin_loss, TARGET_TORCH))
register(Bench("triplet_margin_with_distance_loss", "ranking", "(16384, 128) f32", _triplets,
               lossbook.triplet_margin_with_distance_loss, F.triplet_margin_with_distance_loss, TARGET_TORCH))
register(Bench("batch_hard_triplet_loss vs seed loop", "ranking", SIZE, _batch,
               lossbook.batch_hard_triplet_loss, seed_triplet_loss_with_hard_mining, 0.1))

try:
    from pytorch_metric_learning import distances, losses, miners, reducers
except ImportError:  # pragma: no cover - PML is a test/benchmark dependency only
    pass
else:
    _LP = distances.LpDistance(normalize_embeddings=False)
    _miner = miners.BatchHardMiner(distance=_LP)
    _hard = losses.TripletMarginLoss(margin=1.0, distance=_LP, reducer=reducers.MeanReducer())
    _all = losses.TripletMarginLoss(margin=1.0, distance=_LP)  # AvgNonZeroReducer, PML's default

    def pml_batch_hard(embeddings, labels):
        return _hard(embeddings, labels, _miner(embeddings, labels))

    def pml_batch_all(embeddings, labels):
        return _all(embeddings, labels)

    register(Bench("batch_hard_triplet_loss", "ranking", SIZE, _batch,
                   lossbook.batch_hard_triplet_loss, pml_batch_hard, 1.0))
    register(Bench("batch_all_triplet_loss", "ranking", SIZE, _batch,
                   lossbook.batch_all_triplet_loss, pml_batch_all, 1.0))
    def _views(device, n=256):
        # SimCLR's labels: two views of n/2 images. PML's NTXentLoss builds a (#positive pairs) x
        # (#negative pairs) matrix, so with 32 classes at N = 512 it needs ~8 GB; this size keeps it small.
        g = _gen()
        x = torch.randn(n, D, generator=g).to(device).requires_grad_(True)
        return (x, torch.arange(n // 2).repeat(2).to(device)), {}

    register(Bench("nt_xent_loss", "ranking", f"N=256 (2 views), D={D}, f32", _views,
                   lambda x, y: lossbook.nt_xent_loss(x, y, temperature=0.1),
                   losses.NTXentLoss(temperature=0.1), 1.0))
    register(Bench("supervised_contrastive_loss", "ranking", SIZE, _batch,
                   lossbook.supervised_contrastive_loss, losses.SupConLoss(temperature=0.1), 1.0))
