r"""KL divergence and its relatives, written from scratch.

* :func:`kl_div`: PyTorch's ``kl_div`` (same signature, semantics, inf/NaN behaviour and
  gradients: the same three tensor operations), with a warning for the default
  ``reduction='mean'``, which is not the KL divergence.
* :func:`js_divergence`: the Jensen–Shannon divergence of two categorical distributions given as
  log-probabilities (symmetric, bounded by :math:`\log 2`).
* :func:`gaussian_kl`: the closed-form KL between diagonal Gaussians (the VAE term).
* :func:`distillation_loss`: Hinton et al.'s knowledge-distillation loss.

Chapter: kl_divergence
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ._reduction import reduce
from ._validation import (
    broadcast_with_pitfall,
    check_broadcastable,
    check_floating,
    check_in_range,
    check_ndim,
    check_positive,
    check_same_shape,
    float32_under_autocast,
    format_shape,
    values_visible,
    warn_pitfall,
)
from .softmax import log_softmax, logsumexp

__all__ = ["kl_div", "js_divergence", "gaussian_kl", "distillation_loss"]

_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


# --------------------------------------------------------------------------------------------
# kl_div


@float32_under_autocast
def kl_div(input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
    r"""The Kullback–Leibler divergence :math:`\mathrm{KL}(P \,\|\, Q)`, with PyTorch's argument order.

    ``input`` is :math:`\log Q` (the model's log-probabilities), ``target`` is :math:`P`:

    .. math::
        \ell_i = p_i \,(\log p_i - \log q_i), \qquad 0 \log 0 = 0, \qquad
        \mathrm{KL}(P \,\|\, Q) = \sum_i \ell_i

    With ``log_target=True`` the target is :math:`\log P` and :math:`\ell_i = e^{\log p_i}(\log p_i -
    \log q_i)`. The value contains the target's entropy term; the gradient with respect to
    ``input`` is :math:`-p_i`, the same as the cross-entropy's :math:`H(P, Q)`.

    Shape:
        - input: ``(*)``, any shape; for a batch of distributions ``(N, C)``.
        - target: broadcastable with ``input`` (normally the same shape).
        - output: ``'none'``: the broadcast shape; otherwise a scalar.

    Args:
        input: log-probabilities :math:`\log Q` (from ``log_softmax``), floating point.
        target: probabilities :math:`P` (log-probabilities if ``log_target``), floating point.
        reduction: ``'batchmean'`` (the sum divided by ``input.size(0)``: the KL divergence
            averaged over a batch of distributions; use this), ``'sum'``, ``'none'``, or the
            default ``'mean'``, which divides by the number of *elements* (batch × classes) and so
            is not the KL divergence; it emits a :class:`lossbook.PitfallWarning`.
        log_target: whether ``target`` holds log-probabilities.

    Example:
        >>> log_q = torch.tensor([[0.3, 0.4, 0.3]]).log()
        >>> p = torch.tensor([[0.7, 0.2, 0.1]])
        >>> kl_div(log_q, p, reduction="batchmean")
        tensor(0.3446)

    Same name, signature and semantics as ``torch.nn.functional.kl_div`` (without the deprecated
    ``size_average``/``reduce``), including broadcasting, NaN for ``input = −inf`` where
    ``target = 0``, ``inf`` where the target has mass and the input has none, and NaN for
    negative targets. Beyond PyTorch: a :class:`lossbook.PitfallWarning` for ``'mean'``, for an
    ``input`` with positive values (not log-probabilities: probably probabilities, or the two
    arguments swapped), for negative targets with ``log_target=False`` (probably log-probabilities),
    for both at once (the arguments swapped), and for shapes that only match by broadcasting.

    Chapter: kl_divergence
    """
    check_floating(input, "input", hint="kl_div needs log-probabilities, e.g. lossbook.log_softmax(logits, dim=-1)")
    check_floating(target, "target", hint="kl_div needs (log-)probabilities as the target")
    if reduction not in _KL_REDUCTIONS:
        listed = ", ".join(repr(r) for r in _KL_REDUCTIONS)
        raise ValueError(f"reduction must be one of {listed}; got {reduction!r}")
    broadcast_with_pitfall(input, target, hint="one distribution per row, classes along the last dimension")
    if reduction == "mean":
        warn_pitfall(
            "kl_div(reduction='mean') divides by the number of elements (batch size × number of classes), "
            "so it is not the KL divergence; use reduction='batchmean' for the KL averaged over the batch"
        )
    visible = values_visible(input, target)
    positive_input = visible and input.numel() > 0 and bool(input.detach().amax() > 0)
    negative_target = visible and not log_target and target.numel() > 0 and bool(target.detach().amin() < 0)
    if positive_input and negative_target:
        warn_pitfall(
            "the arguments look swapped: input has positive values and target negative ones; "
            "kl_div(input, target) wants input = log Q (log-probabilities) and target = P (probabilities)"
        )
    elif positive_input:
        warn_pitfall(
            "input contains positive values, so it is not log-probabilities: kl_div wants input = log Q "
            "(e.g. lossbook.log_softmax(logits, dim=-1)), not probabilities or logits"
        )
    elif negative_target:
        warn_pitfall(
            "target contains negative values, which gives NaN: with log_target=False the target must hold "
            "probabilities; if it holds log-probabilities, pass log_target=True"
        )
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # t log t - t x with 0 log 0 = 0 (xlogy); t x is not masked, so input -inf where the target
        # is 0 still gives NaN, exactly as in PyTorch
        loss = torch.xlogy(target, target) - target * input
    batch = input.size(0) if input.dim() != 0 else 1
    if reduction == "batchmean":
        return reduce(loss, "batchmean", batch_size=batch, allowed=_KL_REDUCTIONS)
    return reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# Jensen–Shannon


def js_divergence(p_log: Tensor, q_log: Tensor, dim: int = -1, reduction: str = "mean") -> Tensor:
    r"""The Jensen–Shannon divergence of two categorical distributions given as log-probabilities.

    .. math::
        \mathrm{JS}(P, Q) = \tfrac12 \mathrm{KL}(P \,\|\, M) + \tfrac12 \mathrm{KL}(Q \,\|\, M),
        \qquad M = \tfrac12 (P + Q)

    It is symmetric, finite even where one distribution has no mass, and lies in
    :math:`[0, \log 2]` (natural log, nats). :math:`\log M` is computed stably as
    :math:`\mathrm{LSE}(\log p, \log q) - \log 2`; terms with :math:`p_i = 0` count as 0.

    Shape:
        - p_log, q_log: ``(*, C, *)``, the same shape; ``dim`` indexes the ``C`` outcomes.
        - output: ``'none'``: one divergence per distribution, the input shape without ``dim``;
          ``'mean'`` / ``'sum'``: a scalar.

    Args:
        p_log: :math:`\log P` (e.g. ``lossbook.log_softmax(logits_p, dim=-1)``); ``-inf`` marks an
            outcome of probability 0.
        q_log: :math:`\log Q`, the same shape.
        dim: the dimension that holds the outcomes of each distribution.
        reduction: ``'mean'`` (default: the average over distributions, like ``kl_div``'s
            ``'batchmean'`` for a ``(N, C)`` batch), ``'sum'`` or ``'none'``. The divergence is
            always summed over ``dim`` first: there is no per-element mean.

    Example:
        >>> p = torch.tensor([[0.7, 0.2, 0.1]]).log()
        >>> q = torch.tensor([[0.3, 0.4, 0.3]]).log()
        >>> js_divergence(p, q)
        tensor(0.0843)

    PyTorch has no Jensen–Shannon loss; this follows ``scipy.spatial.distance.jensenshannon``,
    whose value (with the default natural log) is the square root of this one.

    Chapter: kl_divergence
    """
    check_floating(p_log, "p_log", hint="js_divergence needs log-probabilities")
    check_floating(q_log, "q_log", hint="js_divergence needs log-probabilities")
    check_same_shape(p_log, q_log, names=("p_log", "q_log"))
    check_ndim(p_log, "p_log", min_ndim=1, expected="at least 1-D (the outcomes along dim)")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -p_log.dim() <= dim < p_log.dim():
        raise ValueError(f"dim={dim!r} is out of range for p_log of shape {format_shape(p_log)}")
    largest = torch.maximum(p_log.detach().amax(), q_log.detach().amax()) if p_log.numel() else None
    if largest is not None and values_visible(p_log, q_log) and bool(largest > 1e-6):
        warn_pitfall("p_log or q_log contains positive values, so they are not log-probabilities; pass "
                     "log_softmax outputs (or the log of probabilities), not logits or probabilities")
    # an outcome impossible under both: exclude it from log M (LSE of two -inf has a NaN gradient)
    both = torch.isneginf(p_log) & torch.isneginf(q_log)
    lp, lq = p_log.masked_fill(both, 0), q_log.masked_fill(both, 0)
    log_m = logsumexp(torch.stack([lp, lq]), dim=0) - math.log(2)
    # p (log p − log M) with 0 log 0 = 0: mask the log-ratio (not the product) so no NaN appears
    term_p = p_log.exp() * (lp - log_m).masked_fill(torch.isneginf(p_log), 0)
    term_q = q_log.exp() * (lq - log_m).masked_fill(torch.isneginf(q_log), 0)
    js = 0.5 * (term_p + term_q).sum(dim=dim)
    return reduce(js, reduction)


# --------------------------------------------------------------------------------------------
# Gaussian KL (the VAE term)


def gaussian_kl(
    mu_q: Tensor,
    logvar_q: Tensor,
    mu_p: Tensor | None = None,
    logvar_p: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Closed-form :math:`\mathrm{KL}(q \,\|\, p)` between diagonal Gaussians, summed over the latent dims.

    .. math::
        \mathrm{KL}(q \,\|\, p) = \frac12 \sum_{d=1}^{D} \Big( \log \sigma_{p,d}^2 - \log \sigma_{q,d}^2
        + \frac{\sigma_{q,d}^2 + (\mu_{q,d} - \mu_{p,d})^2}{\sigma_{p,d}^2} - 1 \Big)

    With the default standard normal prior :math:`p = \mathcal N(0, I)` this is the VAE term
    :math:`-\tfrac12 \sum_d (1 + \log\sigma_d^2 - \mu_d^2 - \sigma_d^2) \ge 0` (note the minus sign).

    Shape:
        - mu_q, logvar_q: ``(*, D)``, the same shape; the last dimension holds the ``D`` latent dims.
        - mu_p, logvar_p: broadcastable to ``(*, D)``, or ``None``.
        - output: ``'none'``: ``(*)``, one KL per sample; ``'mean'`` / ``'sum'``: a scalar.

    Args:
        mu_q: the mean of :math:`q` (the encoder's output).
        logvar_q: :math:`\log \sigma_q^2` (log-variance, not standard deviation).
        mu_p: the prior mean; ``None`` means 0.
        logvar_p: the prior log-variance; ``None`` means 0 (unit variance).
        reduction: how the per-sample KLs (already summed over the latent dims) are reduced:
            ``'mean'`` (default: averaged over the batch, the usual VAE convention), ``'sum'``
            (the whole batch; ``-0.5 * torch.sum(...)`` in the original VAE code) or ``'none'``.
            There is deliberately no per-element mean: dividing by ``D`` too would rescale the
            KL against the reconstruction term.

    Example:
        >>> gaussian_kl(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 4.0]).log())
        tensor(1.3069)

    Equal to ``torch.distributions.kl_divergence(Independent(Normal(mu_q, σ_q), 1),
    Independent(Normal(mu_p, σ_p), 1))``.

    Chapter: kl_divergence
    """
    check_floating(mu_q, "mu_q")
    check_floating(logvar_q, "logvar_q", hint="pass the log-variance log σ², a float tensor")
    check_same_shape(mu_q, logvar_q, names=("mu_q", "logvar_q"))
    check_ndim(mu_q, "mu_q", min_ndim=1, expected="at least 1-D, with the latent dimensions last")
    if mu_p is None and logvar_p is None:
        per_dim = -0.5 * (1 + logvar_q - mu_q.pow(2) - logvar_q.exp())
    else:
        if mu_p is None:
            mu_p = torch.zeros((), dtype=mu_q.dtype, device=mu_q.device)
        if logvar_p is None:
            logvar_p = torch.zeros((), dtype=mu_q.dtype, device=mu_q.device)
        check_floating(mu_p, "mu_p")
        check_floating(logvar_p, "logvar_p", hint="pass the log-variance log σ², a float tensor")
        check_broadcastable(mu_p, mu_q, names=("mu_p", "mu_q"))
        check_broadcastable(logvar_p, mu_q, names=("logvar_p", "mu_q"))
        per_dim = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * (-logvar_p).exp() - 1)
    return reduce(per_dim.sum(dim=-1), reduction)


# --------------------------------------------------------------------------------------------
# knowledge distillation


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor | None = None,
    *,
    temperature: float,
    alpha: float | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Knowledge distillation (Hinton et al., 2015): the softened KL, scaled by T², plus optional hard labels.

    .. math::
        \mathcal L_{\mathrm{KD}} = T^2 \, \mathrm{KL}\big(\mathrm{softmax}(z_t / T) \,\|\,
        \mathrm{softmax}(z_s / T)\big), \qquad
        \mathcal L = \alpha \, \mathcal L_{\mathrm{KD}} + (1 - \alpha)\, \mathrm{CE}(z_s, y)

    The gradient of the softened KL with respect to the student's logits is
    :math:`(q_s - q_t)/T`, which shrinks like :math:`1/T^2` when the logits are small against
    :math:`T`; the factor :math:`T^2` keeps it on the scale of the hard-label term, so ``alpha`` need
    not be retuned when ``temperature`` changes. The cross-entropy uses the *unsoftened* logits
    (:math:`T = 1`) and is :func:`lossbook.cross_entropy`.

    Shape:
        - student_logits, teacher_logits: ``(N, C)``, the same shape.
        - target: ``(N,)`` class indices (or ``(N, C)`` probabilities), or ``None``.
        - output: ``'none'``: ``(N,)``, one loss per sample; ``'mean'`` / ``'sum'``: a scalar.

    Args:
        student_logits: the student's raw scores (no softmax).
        teacher_logits: the teacher's raw scores; normally computed under ``torch.no_grad()``
            (a :class:`lossbook.PitfallWarning` is emitted if they require grad).
        target: hard labels for the cross-entropy term; ``None`` for pure distillation.
        temperature: :math:`T > 0`, applied to both the student and the teacher.
        alpha: the weight of the distillation term, in ``[0, 1]``; required with ``target``, and
            must be ``None`` (or 1) without it.
        reduction: ``'mean'`` (default: per-sample losses averaged over the batch, i.e. the KL term
            is ``kl_div``'s ``'batchmean'`` and the CE term is the usual mean), ``'sum'`` or ``'none'``.

    Example:
        >>> s, t = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[3.0, 1.0, 0.0]])
        >>> distillation_loss(s, t, temperature=2.0)
        tensor(0.9813)

    Follows Hinton et al. (2015) and the common PyTorch recipe
    ``T**2 * kl_div(log_softmax(s/T), softmax(t/T), reduction='batchmean')``.

    Chapter: kl_divergence
    """
    check_floating(student_logits, "student_logits")
    check_floating(teacher_logits, "teacher_logits")
    check_ndim(student_logits, "student_logits", (2,), expected="2-D (N, C)")
    check_same_shape(student_logits, teacher_logits, names=("student_logits", "teacher_logits"))
    check_positive(temperature, "temperature", finite=True)
    if target is None:
        if alpha is not None and alpha != 1:
            raise ValueError(
                f"alpha={alpha} weights the distillation term against a hard-label cross-entropy, but target "
                f"is None; pass target (class indices) or leave alpha=None"
            )
    else:
        if alpha is None:
            raise ValueError("target is given, so alpha (the weight of the distillation term, in [0, 1]) is needed")
        check_in_range(alpha, "alpha", 0.0, 1.0)
    if teacher_logits.requires_grad:
        warn_pitfall(
            "teacher_logits requires grad: the distillation loss will backpropagate into the teacher; "
            "compute the teacher's logits under torch.no_grad() (or pass teacher_logits.detach())"
        )
    log_q_s = log_softmax(student_logits / temperature, dim=1)
    log_p_t = log_softmax(teacher_logits / temperature, dim=1)
    # KL(teacher ‖ student) per sample. Classes the teacher rules out (logit -inf, e.g. a masked token)
    # count 0 even where the student's logit is -inf too: mask the log-ratio, not the product.
    log_ratio = (log_p_t - log_q_s).masked_fill(torch.isneginf(log_p_t), 0)
    kd = (log_p_t.exp() * log_ratio).sum(dim=1) * temperature**2
    if target is not None:
        from .cross_entropy import cross_entropy  # the cross-entropy chapter's function

        ce = cross_entropy(student_logits, target, reduction="none")
        kd = alpha * kd + (1 - alpha) * ce
    return reduce(kd, reduction)
