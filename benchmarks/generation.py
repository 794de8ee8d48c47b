"""Benchmarks of the generation chapter, forward + backward, float32.

No PyTorch loss exists for these; the anchors are kornia's ``total_variation`` (the peer library)
and the direct formulas a user would write with PyTorch's functions (pix2pix's BCE-with-logits
``GANLoss``, einsum Gram matrices with ``F.mse_loss``, diffusers' per-sample MSE with Min-SNR
weights, the usual ``torch.autograd.grad`` gradient penalty). Target ≤ 1.0× the anchor (≤ 1.3× for
the rows anchored on a fused PyTorch kernel).
"""
import kornia
import torch
import torch.nn.functional as F

import lossbook

from ._harness import Bench, register


def _gen():
    return torch.Generator().manual_seed(0)


def _images(device, shape=(16, 3, 256, 256)):
    return (torch.rand(shape, generator=_gen()).to(device).requires_grad_(True),), {}


def _logit_pair(device, n=1 << 20):
    g = _gen()
    r = (3 * torch.randn(n, generator=g)).to(device).requires_grad_(True)
    f = (3 * torch.randn(n, generator=g)).to(device).requires_grad_(True)
    return (r, f), {}


def _features(device, shape=(8, 256, 64, 64)):
    g = _gen()
    x = torch.randn(shape, generator=g).to(device).requires_grad_(True)
    return (x, torch.randn(shape, generator=g).to(device)), {}


T = 1000
_AC = torch.cumprod(1 - torch.linspace(1e-4, 0.02, T, dtype=torch.float64), 0).float()


def _diffusion(device, shape=(64, 4, 64, 64)):
    g = _gen()
    pred = torch.randn(shape, generator=g).to(device).requires_grad_(True)
    x0, noise = torch.randn(shape, generator=g).to(device), torch.randn(shape, generator=g).to(device)
    t = torch.randint(0, T, (shape[0],), generator=g).to(device)
    return (pred, x0, noise, t, _AC.to(device)), {"parameterization": "v", "snr_gamma": 5.0}


def diffusers_loss(pred, x0, noise, t, ac, parameterization="v", snr_gamma=5.0):
    """diffusers' train_text_to_image.py: the v target, per-sample MSE, min(SNR, γ) / (SNR + 1)."""
    a = ac[t].view(-1, 1, 1, 1)
    target = a.sqrt() * noise - (1 - a).sqrt() * x0
    snr = ac[t] / (1 - ac[t])
    w = torch.stack([snr, snr_gamma * torch.ones_like(snr)], dim=1).min(dim=1)[0] / (snr + 1)
    return (F.mse_loss(pred, target, reduction="none").mean(dim=list(range(1, pred.dim()))) * w).mean()


class _Critic(torch.nn.Module):
    def __init__(self, device):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 4, 2, 1), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Conv2d(32, 64, 4, 2, 1), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 1)).to(device)

    def forward(self, x):
        return self.net(x).squeeze(1)


def _penalty(device):
    g = _gen()
    real = torch.randn(64, 3, 32, 32, generator=g).to(device)
    fake = torch.randn(64, 3, 32, 32, generator=g).to(device)
    critic = _Critic(device)
    # the timed leaf: the critic's first weight (the harness backpropagates into leaves it is given)
    return (critic.net[0].weight, critic, real, fake), {}


def ours_penalty(_w, critic, real, fake):
    return lossbook.gradient_penalty(critic, real, fake, generator=torch.Generator(real.device).manual_seed(0))


def ref_penalty(_w, critic, real, fake):
    """The usual WGAN-GP code (Gulrajani et al.'s, in PyTorch), with the same ε."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=torch.Generator(real.device).manual_seed(0), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    ones = torch.ones(real.shape[0], device=real.device)
    (grad,) = torch.autograd.grad(critic(x_hat), x_hat, ones, create_graph=True)
    return 10.0 * ((grad.reshape(grad.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


register(Bench("total_variation_loss", "generation", "(16, 3, 256, 256) f32", _images,
               lossbook.total_variation_loss, kornia.losses.total_variation, 1.0))
register(Bench("discriminator_loss (vanilla)", "generation", "2 × (2^20,) f32", _logit_pair,
               lossbook.discriminator_loss,
               lambda r, f: F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
               + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)), 1.3))
register(Bench("generator_loss (non-saturating)", "generation", "(2^20,) f32", lambda d: ((_logit_pair(d)[0][1],), {}),
               lossbook.generator_loss, lambda f: F.softplus(-f).mean(), 1.3))
register(Bench("style_loss", "generation", "(8, 256, 64, 64) f32", _features, lossbook.style_loss,
               lambda x, y: F.mse_loss(torch.einsum("nchw,ndhw->ncd", x, x) / (256 * 64 * 64),
                                       torch.einsum("nchw,ndhw->ncd", y, y) / (256 * 64 * 64)), 1.0))
register(Bench("diffusion_loss (v, Min-SNR-5)", "generation", "(64, 4, 64, 64) f32", _diffusion,
               lossbook.diffusion_loss, diffusers_loss, 1.0))
register(Bench("gradient_penalty", "generation", "(64, 3, 32, 32) f32, conv critic", _penalty,
               ours_penalty, ref_penalty, 1.0))
