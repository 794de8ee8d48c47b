r"""Losses of generative models: adversarial losses and their penalties, perceptual and style
losses, total variation, and the denoising objective of diffusion models.

* :func:`discriminator_loss` and :func:`generator_loss`: the GAN game in its common forms
  (vanilla / non-saturating, minimax, least squares, Wasserstein, hinge), written on logits with
  the stable :math:`\operatorname{softplus}`.
* :func:`gradient_penalty` (WGAN-GP) and :func:`r1_penalty`: penalties on the critic's input
  gradient. Both differentiate the critic with ``create_graph=True``, so the critic is trained
  through them (double backward); both detach the samples, so nothing reaches the generator.
* :func:`gram_matrix`, :func:`style_loss`, :func:`perceptual_loss`: feature-space losses with an
  injected feature extractor (nothing is downloaded).
* :func:`total_variation_loss`: kornia's ``total_variation``.
* :func:`diffusion_loss`: the DDPM objective with ε, v or x0 targets and Min-SNR-γ weights.

Everything is plain differentiable tensor code (no custom ``autograd.Function``), so double
backward, ``torch.func`` and ``torch.compile`` work for the losses of logits and features.

Chapter: generation
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ._reduction import check_reduction, reduce
from ._validation import (
    check_choice,
    check_floating,
    check_ndim,
    check_positive,
    check_same_shape,
    check_tensor,
    format_shape,
    warn_pitfall,
)

__all__ = [
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "r1_penalty",
    "gram_matrix",
    "style_loss",
    "perceptual_loss",
    "total_variation_loss",
    "diffusion_loss",
]

DISCRIMINATOR_MODES = ("vanilla", "non_saturating", "minimax", "lsgan", "wgan", "hinge")
GENERATOR_MODES = ("non_saturating", "vanilla", "minimax", "lsgan", "wgan", "hinge")
PARAMETERIZATIONS = ("epsilon", "v", "x0")


def _softplus(x: Tensor) -> Tensor:
    """log(1 + e^x) = logaddexp(x, 0): stable for any x, gradient sigmoid(x) exactly (also at 0)."""
    return torch.logaddexp(x, torch.zeros_like(x))


def _mean_square(a: Tensor, b: Tensor) -> Tensor:
    """The mean squared difference, in plain autograd ops (it must survive double backward and torch.func)."""
    return (a - b).square().mean()


def _check_logits(x: Tensor, name: str) -> None:
    check_floating(x, name)
    check_ndim(x, name, min_ndim=1, expected="at least 1-D, (N,) or (N, *) with one or more scores per sample")


# --------------------------------------------------------------------------------------------
# the adversarial game


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, *, mode: str = "vanilla") -> Tensor:
    r"""The discriminator's (critic's) loss of a GAN, on raw scores ``r = D(x)``, ``f = D(G(z))``.

    .. math::
        \begin{aligned}
        \text{vanilla, non\_saturating, minimax:}&\quad
            \overline{\operatorname{softplus}(-r)} + \overline{\operatorname{softplus}(f)}
            = -\overline{\log \sigma(r)} - \overline{\log(1 - \sigma(f))} \\
        \text{lsgan:}&\quad \tfrac12\,\overline{(r - 1)^2} + \tfrac12\,\overline{f^2} \\
        \text{wgan:}&\quad \overline{f} - \overline{r} \\
        \text{hinge:}&\quad \overline{\operatorname{relu}(1 - r)} + \overline{\operatorname{relu}(1 + f)}
        \end{aligned}

    where the bar is the mean over the batch (and over any patch dimensions). The three
    cross-entropy modes share one discriminator loss (they differ only in the generator's); the
    real and fake batches are averaged separately, so they may differ in size.

    Shape:
        - real_logits: ``(N, *)``; fake_logits: ``(M, *)`` with the same ``*`` (e.g. ``(N,)``,
          ``(N, 1)`` or a PatchGAN's ``(N, 1, H, W)``).
        - output: ``()``.

    Args:
        real_logits: the discriminator's raw scores (logits, not probabilities) of real samples.
        fake_logits: its raw scores of generated samples.
        mode: ``'vanilla'`` (= ``'non_saturating'`` = ``'minimax'`` here), ``'lsgan'``,
            ``'wgan'`` or ``'hinge'``.

    Example:
        >>> discriminator_loss(torch.tensor([0.5, -1.0]), torch.tensor([0.5, -1.0]))
        tensor(1.5373)

    Conventions: ``'vanilla'`` is pix2pix/CycleGAN's ``GANLoss('vanilla')`` (BCE with logits against
    1 for real, 0 for fake); ``'lsgan'`` has Mao et al.'s factor ½ (pix2pix's ``MSELoss`` omits it,
    a constant scale); ``'hinge'`` is the SNGAN/BigGAN hinge loss.

    Chapter: generation
    """
    _check_logits(real_logits, "real_logits")
    _check_logits(fake_logits, "fake_logits")
    check_choice(mode, "mode", DISCRIMINATOR_MODES)
    if real_logits.shape[1:] != fake_logits.shape[1:]:
        raise ValueError(
            f"fake_logits has shape {format_shape(fake_logits)} but real_logits has shape "
            f"{format_shape(real_logits)}; they must agree in every dimension after the batch"
        )
    r, f = real_logits, fake_logits
    if mode in ("vanilla", "non_saturating", "minimax"):
        return _softplus(-r).mean() + _softplus(f).mean()
    if mode == "lsgan":
        return 0.5 * (r - 1).square().mean() + 0.5 * f.square().mean()
    if mode == "wgan":
        return f.mean() - r.mean()
    return torch.relu(1 - r).mean() + torch.relu(1 + f).mean()  # hinge


def generator_loss(fake_logits: Tensor, *, mode: str = "non_saturating", reduction: str = "mean") -> Tensor:
    r"""The generator's loss of a GAN, on the discriminator's raw scores ``f = D(G(z))``.

    .. math::
        \begin{aligned}
        \text{non\_saturating (= vanilla):}&\quad \operatorname{softplus}(-f) = -\log \sigma(f) \\
        \text{minimax:}&\quad -\operatorname{softplus}(f) = \log(1 - \sigma(f)) \\
        \text{lsgan:}&\quad \tfrac12 (f - 1)^2 \\
        \text{wgan, hinge:}&\quad -f
        \end{aligned}

    The minimax form is the literal game of Goodfellow et al.; its gradient
    :math:`-\sigma(f)` vanishes exactly when the discriminator rejects the fakes
    (:math:`f \ll 0`), early in training. The non-saturating form has gradient
    :math:`\sigma(f) - 1 \approx -1` there, which is why everyone trains with it.

    Shape:
        - fake_logits: ``(N, *)``.
        - output: ``()`` for ``'mean'``/``'sum'``, ``(N, *)`` for ``'none'``.

    Args:
        fake_logits: the discriminator's raw scores of generated samples.
        mode: ``'non_saturating'`` (or ``'vanilla'``), ``'minimax'``, ``'lsgan'``, ``'wgan'``,
            ``'hinge'``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> generator_loss(torch.tensor([-4.0, 0.0]))
        tensor(2.3556)

    Convention: pix2pix's ``GANLoss(mode)(D(G(z)), True)``; ``'vanilla'`` means the
    non-saturating loss there too.

    Chapter: generation
    """
    _check_logits(fake_logits, "fake_logits")
    check_choice(mode, "mode", GENERATOR_MODES)
    check_reduction(reduction)
    f = fake_logits
    if mode in ("non_saturating", "vanilla"):
        loss = _softplus(-f)
    elif mode == "minimax":
        loss = -_softplus(f)
    elif mode == "lsgan":
        loss = 0.5 * (f - 1).square()
    else:  # wgan, hinge
        loss = -f
    return reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# penalties on the critic's input gradient


def _input_gradient(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """∇ₓ Σᵢ critic(x)ᵢ, kept in the graph (create_graph=True) so the critic trains through it."""
    if not callable(critic):
        raise TypeError(f"critic must be a callable (an nn.Module or a function), got {type(critic).__name__}")
    scores = critic(x)
    check_tensor(scores, "critic(x)")
    n = x.shape[0]
    if scores.shape not in ((n,), (n, 1)):
        raise ValueError(
            f"critic(x) returned shape {format_shape(scores)} for a batch of {n}; a critic must "
            f"return one score per sample, ({n},) or ({n}, 1)"
        )
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, *, weight: float = 10.0,
                     generator: torch.Generator | None = None) -> Tensor:
    r"""The WGAN-GP gradient penalty on points between real and generated samples.

    .. math::
        \hat x = \epsilon\,x_{\text{real}} + (1 - \epsilon)\,x_{\text{fake}},\quad
        \epsilon \sim U[0, 1] \text{ per sample};\qquad
        \mathrm{GP} = \lambda\;\mathbb{E}\big[(\lVert \nabla_{\hat x} D(\hat x) \rVert_2 - 1)^2\big]

    ``real`` and ``fake`` are detached first: the penalty constrains the critic only, and no
    gradient of it reaches the generator. The input gradient is taken with
    ``create_graph=True``, so ``penalty.backward()`` trains the critic's parameters through it
    (a double backward). ε has one value per sample, shaped ``(N, 1, …, 1)`` for inputs of any
    rank, with the samples' dtype and device.

    Shape:
        - real, fake: ``(N, *)``, the same shape; ``critic(x)`` must return ``(N,)`` or ``(N, 1)``.
        - output: ``()``.

    Args:
        critic: the critic (discriminator), any callable from a batch to one score per sample.
        real: a batch of real samples.
        fake: a batch of generated samples, ``G(z)`` (detached here).
        weight: λ, 10 in Gulrajani et al. (2017).
        generator: an optional ``torch.Generator`` (on the samples' device) that draws ε, for
            reproducible penalties. It is a random-number generator, not the GAN's generator.

    Composability: built on ``torch.autograd.grad(..., create_graph=True)``, so it supports
    backward and double backward (checked with ``gradgradcheck`` through the critic's parameters),
    but not ``torch.func`` transforms or ``torch.compile(fullgraph=True)``, which cannot trace
    ``autograd.grad``; under ``torch.func``, write the penalty with ``torch.func.grad`` of the critic.

    Example:
        >>> w = torch.tensor([3.0, 4.0])
        >>> gradient_penalty(lambda x: x @ w, torch.randn(5, 2), torch.randn(5, 2))
        tensor(160.)

    Chapter: generation
    """
    check_floating(real, "real")
    check_floating(fake, "fake")
    check_same_shape(real, fake, names=("real", "fake"))
    check_ndim(real, "real", min_ndim=1, expected="at least 1-D, (N, *)")
    check_positive(weight, "weight", strict=False)
    real, fake = real.detach(), fake.detach()
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, dtype=real.dtype,
                     device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad = _input_gradient(critic, x_hat)
    norm = grad.reshape(grad.shape[0], -1).norm(dim=1)
    return weight * (norm - 1).square().mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, *, gamma: float = 10.0) -> Tensor:
    r"""The R1 penalty: the squared norm of the discriminator's input gradient on real data.

    .. math::
        R_1 = \frac{\gamma}{2}\;\mathbb{E}_{x \sim p_{\text{data}}}\big[\lVert \nabla_x D(x) \rVert_2^2\big]

    It pushes the gradient towards zero on the data (not towards norm 1 as WGAN-GP), which
    makes the game converge locally (Mescheder et al., 2018; StyleGAN uses it). ``real`` is
    detached and the gradient is taken with ``create_graph=True``, so the discriminator trains
    through the penalty.

    Shape:
        - real: ``(N, *)``; ``critic(x)`` must return ``(N,)`` or ``(N, 1)``.
        - output: ``()``.

    Args:
        critic: the discriminator, a callable from a batch to one score (logit) per sample.
        real: a batch of real samples.
        gamma: γ; the penalty is γ/2 times the mean squared gradient norm.

    Composability: as :func:`gradient_penalty` (backward and double backward, not ``torch.func``
    or ``torch.compile``).

    Example:
        >>> w = torch.tensor([3.0, 4.0])
        >>> r1_penalty(lambda x: x @ w, torch.randn(5, 2), gamma=2.0)
        tensor(25.)

    Convention: Mescheder et al.'s and StyleGAN's (γ/2 · E‖∇D‖², summed over the input's
    dimensions, averaged over the batch).

    Chapter: generation
    """
    check_floating(real, "real")
    check_ndim(real, "real", min_ndim=1, expected="at least 1-D, (N, *)")
    check_positive(gamma, "gamma", strict=False)
    x = real.detach().requires_grad_(True)
    grad = _input_gradient(critic, x)
    return gamma / 2 * grad.reshape(grad.shape[0], -1).square().sum(dim=1).mean()


# --------------------------------------------------------------------------------------------
# feature-space losses


def gram_matrix(features: Tensor) -> Tensor:
    r"""The Gram matrix of a batch of feature maps, normalised by the number of features.

    .. math::
        G_{n,ij} = \frac{1}{C H W} \sum_{h,w} F_{n,i,hw}\,F_{n,j,hw}

    Other normalisations exist: Gatys et al. use the raw sum (and scale the loss by
    :math:`1/(4 C^2 (HW)^2)`), PyTorch's style-transfer tutorial divides by :math:`N C H W`
    (the batch too), and some code divides by :math:`HW` only. They differ by constants, which
    change the style weight that balances content and style, not the optimum of a style loss
    alone.

    Shape:
        - features: ``(N, C, H, W)`` (any number of spatial dimensions, ``(N, C, *)``).
        - output: ``(N, C, C)``, symmetric.

    Args:
        features: feature maps of one layer.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 3, 3))
        tensor([[[0.5000, 0.5000],
                 [0.5000, 0.5000]]])

    Chapter: generation
    """
    check_floating(features, "features")
    check_ndim(features, "features", min_ndim=3, expected="(N, C, H, W) (or (N, C, *), at least 3-D)")
    f = features.flatten(2)  # (N, C, HW)
    return f @ f.transpose(1, 2) / (f.shape[1] * f.shape[2])


def style_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""The style loss of one layer: the squared difference of the two Gram matrices.

    .. math::
        \ell = \frac{1}{C^2}\sum_{i,j}\big(G(\phi(x))_{ij} - G(\phi(y))_{ij}\big)^2
        \quad\text{(per sample, averaged over the batch for 'mean')}

    Shape:
        - input, target: ``(N, C, H, W)`` feature maps; ``H, W`` may differ between them (the
          Gram matrix forgets where things are), ``N`` and ``C`` may not.
        - output: ``()`` for ``'mean'``/``'sum'``, ``(N, C, C)`` for ``'none'``.

    Args:
        input: the features of the generated image.
        target: the features of the style image.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` over the entries of the Gram matrices.

    Example:
        >>> style_loss(torch.ones(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))
        tensor(0.2500)

    Convention: the MSE between Gram matrices normalised by :math:`CHW` (see :func:`gram_matrix`).

    Chapter: generation
    """
    check_floating(input, "input")
    check_floating(target, "target")
    check_ndim(input, "input", min_ndim=3, expected="(N, C, H, W)")
    check_ndim(target, "target", min_ndim=3, expected="(N, C, H, W)")
    if input.shape[:2] != target.shape[:2]:
        raise ValueError(
            f"target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
            f"their batch size and channel count (N, C) must agree"
        )
    return reduce((gram_matrix(input) - gram_matrix(target)).square(), reduction)


def _has_train_time_layers(module: torch.nn.Module) -> bool:
    kinds = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)
    return any(isinstance(m, kinds) for m in module.modules())


def _features(extractor: Callable, x: Tensor, name: str) -> list[Tensor]:
    feats = extractor(x)
    if isinstance(feats, Tensor) or not isinstance(feats, Sequence) or not all(isinstance(f, Tensor) for f in feats):
        raise TypeError(
            f"feature_extractor({name}) must return a list (or tuple) of feature tensors, one per layer, "
            f"got {type(feats).__name__}"
        )
    return list(feats)


def _check_layer_weights(weights: Sequence[float] | None, n: int, name: str) -> list[float]:
    if weights is None:
        return [1.0] * n
    weights = list(weights)
    if len(weights) != n:
        raise ValueError(f"{name} has {len(weights)} entries but feature_extractor returned {n} feature maps")
    return weights


def perceptual_loss(input: Tensor, target: Tensor, *, feature_extractor: Callable[[Tensor], Sequence[Tensor]],
                    weights: Sequence[float] | None = None, style_weights: Sequence[float] | None = None) -> Tensor:
    r"""The perceptual (feature reconstruction) loss, optionally with a style term.

    .. math::
        \mathcal{L} = \sum_l w_l\,\operatorname{MSE}\big(\phi_l(x), \phi_l(y)\big)
        \;+\; \sum_l s_l\,\operatorname{MSE}\big(G(\phi_l(x)), G(\phi_l(y))\big)

    where :math:`\phi_l` are the feature maps returned by ``feature_extractor`` and :math:`G` the
    Gram matrix (:func:`gram_matrix`). The target's features are computed without gradient (the
    target is a fixed reference). The extractor is injected, so this function never downloads
    anything: pass a pretrained network's slices (VGG16's relu1_2, relu2_2, relu3_3 and relu4_3,
    Johnson et al.'s style layers, with ImageNet normalisation inside the extractor; their content
    layer is relu2_2), or any local network.

    Shape:
        - input, target: whatever ``feature_extractor`` accepts, the same shape (``(N, 3, H, W)``
          for VGG).
        - output: ``()``.

    Args:
        input: the generated image(s) :math:`x`.
        target: the reference image(s) :math:`y`.
        feature_extractor: a callable returning a list of feature maps ``[(N, C_l, H_l, W_l), ...]``;
            put an ``nn.Module`` in ``eval()`` mode (a warning is given otherwise if it has
            BatchNorm or Dropout layers) and freeze its parameters if it is not to be trained.
        weights: :math:`w_l`, one per feature map (default all 1); 0 switches a layer off.
        style_weights: :math:`s_l`, one per feature map; ``None`` (default) means no style term.

    Example:
        >>> extractor = lambda x: [x, x[:, :, ::2, ::2]]
        >>> perceptual_loss(torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), feature_extractor=extractor)
        tensor(2.)

    Chapter: generation
    """
    check_floating(input, "input")
    check_floating(target, "target")
    check_same_shape(input, target)
    if not callable(feature_extractor):
        raise TypeError(f"feature_extractor must be callable, got {type(feature_extractor).__name__}")
    if isinstance(feature_extractor, torch.nn.Module) and feature_extractor.training \
            and _has_train_time_layers(feature_extractor):
        warn_pitfall("feature_extractor is in training mode and has BatchNorm or Dropout layers, so its "
                     "features depend on the batch (and on chance); call feature_extractor.eval() first")
    feats_x = _features(feature_extractor, input, "input")
    with torch.no_grad():
        feats_y = _features(feature_extractor, target.detach(), "target")
    w = _check_layer_weights(weights, len(feats_x), "weights")
    s = None if style_weights is None else _check_layer_weights(style_weights, len(feats_x), "style_weights")
    loss = input.new_zeros(())
    for l, (fx, fy) in enumerate(zip(feats_x, feats_y)):  # a loop over layers, not samples
        check_same_shape(fx, fy, names=(f"the input's feature map {l}", f"the target's feature map {l}"))
        loss = loss + w[l] * _mean_square(fx, fy)
        if s is not None:
            loss = loss + s[l] * style_loss(fx, fy)
    return loss


def total_variation_loss(input: Tensor, *, reduction: str = "sum") -> Tensor:
    r"""The anisotropic total variation of images: absolute differences of neighbouring pixels.

    .. math::
        \mathrm{TV}(I) = \sum_{i,j} \lvert I_{i+1,j} - I_{i,j} \rvert + \sum_{i,j} \lvert I_{i,j+1} - I_{i,j} \rvert

    over the last two dimensions only: the result keeps every leading dimension (one value per
    image and channel). With ``reduction='mean'`` each of the two sums is replaced by its mean,
    over :math:`(H-1)W` vertical and :math:`H(W-1)` horizontal differences (not the sum divided
    by :math:`HW`); a direction with no neighbours contributes 0.

    Shape:
        - input: ``(*, H, W)``.
        - output: ``(*)``, e.g. ``(N, C)`` for ``(N, C, H, W)``.

    Args:
        input: images (floating point).
        reduction: ``'sum'`` | ``'mean'`` (there is no ``'none'``: the output is already per image).

    Example:
        >>> total_variation_loss(torch.tensor([[0.0, 1.0], [2.0, 4.0]]))
        tensor(8.)

    Convention: kornia's ``kornia.losses.total_variation`` (same values, output shape and
    ``'mean'``), except that integer images raise a ``TypeError`` here instead of being promoted.

    Chapter: generation
    """
    check_floating(input, "input", hint="convert integer images with .float() first")
    check_ndim(input, "input", min_ndim=2, expected="(*, H, W), at least 2-D")
    check_reduction(reduction, ("sum", "mean"))
    down = (input[..., 1:, :] - input[..., :-1, :]).abs().flatten(-2)
    right = (input[..., :, 1:] - input[..., :, :-1]).abs().flatten(-2)
    if reduction == "sum":
        return down.sum(-1) + right.sum(-1)
    # a direction without neighbours (H = 1 or W = 1) adds 0, not the NaN mean of nothing
    return sum(d.mean(-1) if d.shape[-1] > 0 else d.sum(-1) for d in (down, right))


# --------------------------------------------------------------------------------------------
# diffusion


def _check_timesteps(t: Tensor, n: int, num_steps: int) -> None:
    check_tensor(t, "t")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t holds time-step indices and must have an integer dtype (e.g. torch.long), got {t.dtype}")
    if t.shape != (n,):
        raise ValueError(f"t has shape {format_shape(t)} but must be ({n},): one time step per sample")
    if n and not torch.compiler.is_compiling():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= num_steps:
            raise ValueError(f"t contains the time step {lo if lo < 0 else hi}, but time steps must be in "
                             f"[0, {num_steps - 1}] for alphas_cumprod of length {num_steps}")


def diffusion_loss(prediction: Tensor, x0: Tensor, noise: Tensor, t: Tensor, alphas_cumprod: Tensor, *,
                   parameterization: str = "epsilon", snr_gamma: float | None = None,
                   reduction: str = "mean") -> Tensor:
    r"""The denoising loss of a diffusion model (DDPM), with ε, v or x0 targets and Min-SNR-γ weights.

    The model sees :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon` and
    predicts a target; the loss is the per-sample mean squared error, at every time step:

    .. math::
        \ell_n = w(t_n)\;\frac{1}{D}\big\lVert \hat y_n - y_n \big\rVert^2,\qquad
        y = \begin{cases}
            \epsilon & \text{'epsilon'} \\
            \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\,x_0 & \text{'v'} \\
            x_0 & \text{'x0'}
        \end{cases}

    :math:`w = 1` without ``snr_gamma`` (Ho et al.'s "simple" loss). With ``snr_gamma`` = γ the
    Min-SNR-γ weights of Hang et al. (2023), with :math:`\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)`:
    :math:`\min(\mathrm{SNR}, \gamma)/\mathrm{SNR}` for ε, :math:`\min(\mathrm{SNR}, \gamma)/(\mathrm{SNR} + 1)`
    for v and :math:`\min(\mathrm{SNR}, \gamma)` for x0 — all three are the same weighting of the x0
    error, :math:`\min(\mathrm{SNR}, \gamma)\,\lVert \hat x_0 - x_0 \rVert^2`.

    Shape:
        - prediction, x0, noise: ``(N, *)``, the same shape; t: ``(N,)`` integer;
          alphas_cumprod: ``(T,)``.
        - output: ``()`` for ``'mean'``/``'sum'``, ``(N,)`` for ``'none'``.

    Args:
        prediction: the network's output for :math:`(x_t, t)`.
        x0: the clean samples.
        noise: the ε that made :math:`x_t`.
        t: the time step of each sample, in ``[0, T)``.
        alphas_cumprod: :math:`\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)`, in ``(0, 1]``.
        parameterization: what the network predicts: ``'epsilon'``, ``'v'`` or ``'x0'``.
        snr_gamma: γ of Min-SNR-γ weighting (5 in the paper); ``None`` for no weighting.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` over the per-sample losses.

    Example:
        >>> a = torch.tensor([0.9, 0.5])
        >>> diffusion_loss(torch.zeros(2, 3), torch.ones(2, 3), torch.ones(2, 3), torch.tensor([0, 1]), a)
        tensor(1.)

    Convention: diffusers' training scripts (``train_text_to_image.py``: ε or v targets, the
    per-sample mean over non-batch dimensions, then ``min(SNR, γ)/SNR`` or ``/(SNR + 1)``).

    Chapter: generation
    """
    for x, name in ((prediction, "prediction"), (x0, "x0"), (noise, "noise"), (alphas_cumprod, "alphas_cumprod")):
        check_floating(x, name)
    check_ndim(prediction, "prediction", min_ndim=1, expected="(N, *), at least 1-D")
    check_same_shape(prediction, x0, names=("prediction", "x0"))
    check_same_shape(prediction, noise, names=("prediction", "noise"))
    check_ndim(alphas_cumprod, "alphas_cumprod", (1,), expected="1-D, (T,): one value per time step")
    check_choice(parameterization, "parameterization", PARAMETERIZATIONS)
    if snr_gamma is not None:
        check_positive(snr_gamma, "snr_gamma")
    _check_timesteps(t, prediction.shape[0], alphas_cumprod.shape[0])
    a = alphas_cumprod[t].reshape((-1,) + (1,) * (x0.dim() - 1))
    if parameterization == "epsilon":
        target = noise
    elif parameterization == "v":
        target = a.sqrt() * noise - (1 - a).sqrt() * x0
    else:
        target = x0
    loss = (prediction - target).square().reshape(prediction.shape[0], -1).mean(dim=1)  # (N,)
    if snr_gamma is not None:
        snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
        clipped = snr.clamp_max(snr_gamma)
        if parameterization == "epsilon":
            loss = loss * clipped / snr
        elif parameterization == "v":
            loss = loss * clipped / (snr + 1)
        else:
            loss = loss * clipped
    return reduce(loss, reduction)
