r"""Regression losses: L1, MSE, RMSE, Huber, SmoothL1, log-cosh, quantile (pinball), Gaussian and
Poisson negative log-likelihoods.

Most of these losses are a function :math:`\rho` of the residual :math:`d = \hat y - y` alone,
written here as that formula in a few tensor operations; autograd derives its derivative
:math:`\psi(d) = \rho'(d)` (the "psi function" of robust statistics, what the optimiser feels):

* L1: :math:`\psi(d) = \operatorname{sign}(d)`;  MSE: :math:`\psi(d) = 2d`;
* Huber: :math:`\psi(d) = \operatorname{clamp}(d, -\delta, \delta)`;  log-cosh: :math:`\psi(d) = \tanh d`.

Large CPU inputs of these residual losses run a fast path instead (``lossbook.fast.regression``:
cache-sized blocks, in-place steps, :math:`\psi` written by hand), tested equal to these
definitions; see the appendix chapter "Making a loss fast".

Shapes: unlike PyTorch, which broadcasts ``input`` against ``target`` with a warning (an
``(N, 1)`` prediction against an ``(N,)`` target silently becomes an ``(N, N)`` loss),
lossbook requires the two to have the same shape and raises a ``ValueError`` otherwise.

Chapter: regression
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from . import fast
from ._reduction import check_reduction, reduce
from ._validation import (
    broadcast_with_pitfall,
    check_floating,
    check_in_range,
    check_positive,
    check_same_shape,
    float32_under_autocast,
    format_shape,
    values_visible,
)
from .fast import regression as fast_regression

__all__ = [
    "l1_loss",
    "mse_loss",
    "rmse_loss",
    "huber_loss",
    "smooth_l1_loss",
    "log_cosh_loss",
    "quantile_loss",
    "gaussian_nll_loss",
    "poisson_nll_loss",
]

_LN2 = math.log(2.0)
_BROADCAST_HINT = (
    "lossbook does not broadcast input against target: an (N, 1) prediction against an (N,) "
    "target would silently give an (N, N) loss; reshape one of them, e.g. input.squeeze(-1)"
)


# --------------------------------------------------------------------------------------------
# shared machinery


def _check_pair(input: Tensor, target: Tensor) -> None:
    check_floating(input, "input")
    check_floating(target, "target")
    check_same_shape(input, target, hint=_BROADCAST_HINT)


def _torch_pair(input: Tensor, target: Tensor, *, expand: bool = True) -> tuple[Tensor, Tensor]:
    """A torch-named loss broadcasts ``input`` against ``target`` as PyTorch does (with a PitfallWarning)."""
    check_floating(input, "input")
    check_floating(target, "target")
    broadcast_with_pitfall(input, target)
    if input.shape == target.shape or not expand:
        return input, target
    return tuple(torch.broadcast_tensors(input, target))


def _check_weight(weight: Tensor | None, input: Tensor) -> None:
    if weight is None:
        return
    check_floating(weight, "weight")
    check_same_shape(input, weight, names=("input", "weight"), hint="one weight per element, as in PyTorch")


def _weighted(loss: Tensor, reduction: str, weight: Tensor | None, weighted_mean: bool = True) -> Tensor:
    """``reduce(weight * loss)``; l1/mse divide the mean by the total weight, huber (as PyTorch) does not."""
    if weight is None:
        return reduce(loss, reduction)
    return reduce(loss * weight, reduction, weight=weight if weighted_mean else None)


# --------------------------------------------------------------------------------------------
# L1 and MSE


@float32_under_autocast
def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    r"""Mean absolute error (L1 loss): the estimator of the conditional median.

    .. math::
        \ell_i = w_i\,\lvert \hat y_i - y_i \rvert, \qquad
        \frac{\partial \ell_i}{\partial \hat y_i} = w_i \operatorname{sign}(\hat y_i - y_i)

    With ``reduction='mean'`` the result is :math:`\sum_i \ell_i / \sum_i w_i` (the plain mean
    without weights). The gradient at a perfect fit is 0, as in PyTorch.

    Shape:
        - input: ``(*)``, any shape; target and weight: the same shape as ``input``.
        - output: ``()`` for ``'mean'``/``'sum'``; ``(*)`` for ``'none'``.

    Args:
        input: predictions :math:`\hat y`.
        target: targets :math:`y`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        weight: optional per-element weights.

    Example:
        >>> l1_loss(torch.tensor([1.0, 2.5, 3.3, 4.8]), torch.tensor([1.2, 2.3, 4.0, 4.5]))
        tensor(0.3500)

    Same name and semantics as ``torch.nn.functional.l1_loss`` (without the deprecated
    ``size_average``/``reduce``); a mismatched shape
    is broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`.

    Chapter: regression
    """
    input, target = _torch_pair(input, target)
    _check_weight(weight, input)
    check_reduction(reduction)
    if weight is None and fast.applies(input, target):
        return fast_regression.pointwise(fast_regression.l1(), lambda x, y: l1_loss(x, y, reduction),
                                         input, target, reduction)
    return _weighted((input - target).abs(), reduction, weight)  # abs'(0) = 0: PyTorch's subgradient


@float32_under_autocast
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    r"""Mean squared error (L2 loss): the estimator of the conditional mean.

    .. math::
        \ell_i = w_i\,(\hat y_i - y_i)^2, \qquad
        \frac{\partial \ell_i}{\partial \hat y_i} = 2 w_i (\hat y_i - y_i)

    With ``reduction='mean'`` the result is :math:`\sum_i \ell_i / \sum_i w_i`. A residual whose
    square exceeds the dtype's range gives ``inf`` (not NaN), with a finite gradient.

    Shape:
        - input: ``(*)``, any shape; target and weight: the same shape as ``input``.
        - output: ``()`` for ``'mean'``/``'sum'``; ``(*)`` for ``'none'``.

    Args:
        input: predictions :math:`\hat y`.
        target: targets :math:`y`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        weight: optional per-element weights.

    Example:
        >>> mse_loss(torch.tensor([0.1, 5.0]), torch.tensor([0.0, 0.0]))
        tensor(12.5050)

    Same name and semantics as ``torch.nn.functional.mse_loss`` (without ``size_average``/
    ``reduce``); a mismatched shape
    is broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`.

    Chapter: regression
    """
    input, target = _torch_pair(input, target)
    _check_weight(weight, input)
    check_reduction(reduction)
    if weight is None and fast.applies(input, target):
        return fast_regression.pointwise(fast_regression.mse(), lambda x, y: mse_loss(x, y, reduction),
                                         input, target, reduction)
    return _weighted((input - target).square(), reduction, weight)


def rmse_loss(input: Tensor, target: Tensor, *, eps: float = 0.0, reduction: str = "mean") -> Tensor:
    r"""Root mean squared error, with a gradient that is defined at a perfect fit.

    .. math::
        \mathrm{RMSE} = \sqrt{\tfrac{1}{n}\textstyle\sum_i (\hat y_i - y_i)^2 + \varepsilon}, \qquad
        \frac{\partial\,\mathrm{RMSE}}{\partial \hat y_i} = \frac{\hat y_i - y_i}{n\,\mathrm{RMSE}}

    At a perfect fit :math:`\sqrt{\cdot}` has an infinite derivative and the naive
    ``mse.sqrt()`` backpropagates :math:`0 \cdot \infty = \mathrm{NaN}`. Here the square root is
    taken with the "double ``where``" trick: where the mean square is 0 the result is the
    constant 0 and the square root is evaluated at 1 instead, so the gradient is **exactly 0**
    (a valid subgradient at the minimum) and the value is exact. ``eps > 0`` adds
    :math:`\varepsilon` inside the root instead (the common alternative; it biases the value by
    about :math:`\sqrt{\varepsilon}` at a perfect fit).

    RMSE is a statistic of the whole batch, not a sum of per-element losses, so only
    ``reduction='mean'`` exists.

    Shape:
        - input: ``(*)``; target: the same shape. Output: ``()``.

    Args:
        input: predictions :math:`\hat y`.
        target: targets :math:`y`.
        eps: added to the mean square before the root (``>= 0``).
        reduction: ``'mean'`` only (RMSE has no per-element form).

    Example:
        >>> rmse_loss(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))
        tensor(1.4142)

    Chapter: regression
    """
    _check_pair(input, target)
    check_reduction(reduction, ("mean",))
    check_positive(eps, "eps", strict=False, finite=True)
    ms = mse_loss(input, target)
    if eps > 0:
        ms = ms + eps
    # only an exact 0 takes the constant branch: a NaN mean square (a NaN input, or the mean of
    # an empty tensor) stays NaN, as sqrt(mse) is
    zero = ms == 0
    safe = torch.where(zero, torch.ones_like(ms), ms)
    return torch.where(zero, torch.zeros_like(ms), safe.sqrt())


# --------------------------------------------------------------------------------------------
# Huber and SmoothL1


def _huber(d: Tensor, delta: float) -> Tensor:
    """d²/2 for |d| < δ, δ(|d| - δ/2) beyond: both branches in one expression, c (d - c/2), c = clamp(d)."""
    c = d.clamp(-delta, delta)  # = psi(d): d inside [-delta, delta], +-delta outside
    return c * (d - 0.5 * c)


@float32_under_autocast
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    r"""Huber loss: quadratic for small residuals, linear (slope :math:`\delta`) for large ones.

    .. math::
        \ell_i = w_i \begin{cases} \tfrac12 d_i^2 & \lvert d_i\rvert < \delta \\
        \delta\,(\lvert d_i\rvert - \tfrac12\delta) & \text{otherwise} \end{cases},
        \qquad \frac{\partial \ell_i}{\partial \hat y_i} = w_i\operatorname{clamp}(d_i, -\delta, \delta)

    where :math:`d_i = \hat y_i - y_i`. The small-error branch is *half* the squared error, and
    ``huber_loss(δ) == δ * smooth_l1_loss(β=δ)``. Introduced by Huber (1964) as a robust
    M-estimator of location. With ``weight`` and ``reduction='mean'`` the result is the plain
    mean of :math:`w_i \cdot \text{loss}_i`, as in PyTorch (not divided by the total weight).

    Shape:
        - input: ``(*)``, any shape; target and weight: the same shape as ``input``.
        - output: ``()`` for ``'mean'``/``'sum'``; ``(*)`` for ``'none'``.

    Args:
        input: predictions :math:`\hat y`.
        target: targets :math:`y`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        delta: where the loss turns from quadratic to linear; must be ``> 0``.
        weight: optional per-element weights.

    Example:
        >>> huber_loss(torch.tensor([0.1, 5.0]), torch.zeros(2))
        tensor(2.2525)

    Same name and semantics as ``torch.nn.functional.huber_loss``; a mismatched shape
    is broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`.

    Chapter: regression
    """
    input, target = _torch_pair(input, target)
    target = target.to(input.dtype)  # PyTorch computes huber_loss in the input's dtype
    _check_weight(weight, input)
    check_positive(delta, "delta")
    check_reduction(reduction)
    if weight is None and fast.applies(input, target):
        return fast_regression.pointwise(fast_regression.huber(delta), lambda x, y: huber_loss(x, y, reduction, delta),
                                         input, target, reduction)
    return _weighted(_huber(input - target, delta), reduction, weight, weighted_mean=False)


@float32_under_autocast
def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    r"""Smooth L1 loss: Huber loss divided by its threshold, so that large errors have slope 1.

    .. math::
        \ell_i = \begin{cases} \tfrac{1}{2\beta} d_i^2 & \lvert d_i\rvert < \beta \\
        \lvert d_i\rvert - \tfrac12\beta & \text{otherwise} \end{cases}
        = \frac{\mathrm{Huber}_{\delta=\beta}(d_i)}{\beta},
        \qquad \frac{\partial \ell_i}{\partial \hat y_i} = \operatorname{clamp}(d_i/\beta, -1, 1)

    ``beta=0`` is the L1 loss (as in PyTorch). Popularised by Fast R-CNN for box regression.

    Shape:
        - input: ``(*)``, any shape; target: the same shape as ``input``.
        - output: ``()`` for ``'mean'``/``'sum'``; ``(*)`` for ``'none'``.

    Args:
        input: predictions :math:`\hat y`.
        target: targets :math:`y`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        beta: where the loss turns from quadratic to linear; ``>= 0`` (``0`` gives L1).

    Example:
        >>> smooth_l1_loss(torch.tensor([0.1, 5.0]), torch.zeros(2), beta=2.0)
        tensor(2.0013)

    Same name and semantics as ``torch.nn.functional.smooth_l1_loss`` (without
    ``size_average``/``reduce``); a mismatched shape
    is broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`.

    Chapter: regression
    """
    input, target = _torch_pair(input, target)
    check_positive(beta, "beta", strict=False)
    check_reduction(reduction)
    if fast.applies(input, target):
        rho_psi = fast_regression.huber(beta, 1.0 / beta) if beta > 0 else fast_regression.l1()
        return fast_regression.pointwise(rho_psi, lambda x, y: smooth_l1_loss(x, y, reduction, beta),
                                         input, target, reduction)
    d = input - target
    return reduce(_huber(d, beta) / beta if beta > 0 else d.abs(), reduction)


# --------------------------------------------------------------------------------------------
# log-cosh


def _log_cosh(d: Tensor) -> Tensor:
    """log cosh d in two stable forms, each evaluated only where it is used.

    Small |d|: log cosh a = log1p(cosh a - 1) = log1p(2 sinh^2(a/2)), no cancellation; large |d|:
    log cosh a = a + log1p(exp(-2a)) - ln 2, where exp(-2a) <= 1 never overflows. Each branch gets a
    safe argument where it is not used (the "double where"): sinh of a large unused value would be
    inf, and inf times the zero gradient of the unused branch is NaN.
    """
    a = d.abs()
    small_a, large_a = torch.where(a < 1, a, 0), torch.where(a < 1, 1, a)
    small = (2 * (small_a / 2).sinh().square()).log1p()
    large = large_a + (-2 * large_a).exp().log1p() - _LN2
    return torch.where(a < 1, small, large)


def log_cosh_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Log-cosh loss: :math:`\approx d^2/2` for small residuals, :math:`\approx |d| - \ln 2` for large ones.

    .. math::
        \ell_i = \log\cosh(d_i) = \lvert d_i\rvert + \log\!\left(1 + e^{-2\lvert d_i\rvert}\right) - \ln 2,
        \qquad \frac{\partial \ell_i}{\partial \hat y_i} = \tanh(d_i)

    with :math:`d_i = \hat y_i - y_i`. ``torch.log(torch.cosh(d))`` overflows to ``inf`` (and a NaN
    gradient) for :math:`|d| \gtrsim 89` in float32 and :math:`\gtrsim 11.8` in float16; the form
    above never exponentiates a positive number. For :math:`|d| < 1` lossbook uses the equivalent
    :math:`\log(1 + 2\sinh^2(d/2))`, which keeps full relative precision for tiny residuals (the
    form above would subtract two numbers close to :math:`\ln 2`). The gradient, :math:`\tanh(d)`,
    is finite for every input, in every dtype.

    Shape:
        - input: ``(*)``, any shape; target: the same shape as ``input``.
        - output: ``()`` for ``'mean'``/``'sum'``; ``(*)`` for ``'none'``.

    Args:
        input: predictions :math:`\hat y`.
        target: targets :math:`y`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> log_cosh_loss(torch.tensor([0.1]), torch.tensor([0.0]))
        tensor(0.0050)

    No PyTorch counterpart; keyword-only ``reduction`` as in the book's other non-PyTorch losses.

    Chapter: regression
    """
    _check_pair(input, target)
    check_reduction(reduction)
    if fast.applies(input, target):
        definition = lambda x, y: log_cosh_loss(x, y, reduction=reduction)  # noqa: E731
        return fast_regression.pointwise(fast_regression.log_cosh(), definition, input, target, reduction)
    return reduce(_log_cosh(input - target), reduction)


# --------------------------------------------------------------------------------------------
# quantile (pinball)


def quantile_loss(input: Tensor, target: Tensor, *, quantile: float | Sequence[float] | Tensor = 0.5,
                  reduction: str = "mean") -> Tensor:
    r"""Quantile (pinball) loss: its minimiser is the :math:`\tau`-quantile of the target.

    .. math::
        \ell_{i}(\tau) = \max\big(\tau\, e_i,\; (\tau - 1)\, e_i\big), \qquad e_i = y_i - \hat y_i,
        \qquad \frac{\partial \ell_i}{\partial \hat y_i} = \begin{cases} -\tau & e_i > 0 \\
        1 - \tau & e_i < 0 \end{cases}

    Under-predictions cost :math:`\tau` per unit, over-predictions :math:`1-\tau` (Koenker and
    Bassett, 1978). At :math:`e_i = 0` the gradient is :math:`\tfrac12 - \tau` (the average of
    the two slopes; 0 for the median, like L1).

    Two layouts, and nothing else (no broadcasting guesses):

    * one quantile (a float): ``input`` and ``target`` have the same shape ``(*)``;
    * ``Q`` quantiles (a sequence or 1-D tensor): ``input`` is ``(*, Q)``, one prediction per
      quantile in the last dimension, and ``target`` is ``(*)`` or ``(*, 1)``.

    Shape:
        - one quantile: input ``(*)``, target ``(*)``; output ``(*)`` for ``'none'``.
        - Q quantiles: input ``(*, Q)``, target ``(*)`` or ``(*, 1)``; output ``(*, Q)`` for
          ``'none'``. ``'mean'``/``'sum'`` give ``()``: the mean is over samples *and* quantiles.

    Args:
        input: predicted quantiles.
        target: observed values.
        quantile: :math:`\tau \in (0, 1)`, or a sequence / 1-D tensor of ``Q`` of them.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> quantile_loss(torch.tensor([8.0, 12.0]), torch.tensor([10.0, 10.0]), quantile=0.9,
        ...               reduction='none')
        tensor([1.8000, 0.2000])

    No PyTorch counterpart; follows the pinball loss of GluonTS/pytorch-forecasting (``(N, Q)``
    predictions) but refuses the silent ``(B,)`` vs ``(B, 1)`` broadcast.

    Chapter: regression
    """
    check_floating(input, "input")
    check_floating(target, "target")
    check_reduction(reduction)
    if isinstance(quantile, (int, float)) and not isinstance(quantile, bool):
        check_in_range(quantile, "quantile", 0.0, 1.0, closed=False)
        check_same_shape(input, target, hint=_BROADCAST_HINT + "; for Q quantiles pass a sequence")
        tau: float | Tensor = float(quantile)
    else:
        tau = torch.as_tensor(quantile, dtype=input.dtype, device=input.device)
        if tau.dim() != 1 or tau.numel() == 0:
            raise ValueError(
                f"quantile must be a float or a non-empty 1-D sequence of floats, got shape {format_shape(tau)}"
            )
        if values_visible(tau) and bool(((tau <= 0) | (tau >= 1) | tau.isnan()).any()):
            raise ValueError(f"every quantile must be in (0, 1), got {tau.tolist()}")
        q = tau.numel()
        if input.dim() == 0 or input.shape[-1] != q:
            raise ValueError(
                f"input has shape {format_shape(input)} but with {q} quantiles it must be (*, {q}): "
                f"one prediction per quantile in the last dimension"
            )
        if target.shape == input.shape[:-1]:
            target = target.unsqueeze(-1)
        elif target.shape != input.shape[:-1] + (1,):
            raise ValueError(
                f"target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
                f"with {q} quantiles target must be {format_shape(input.shape[:-1])} or "
                f"{format_shape(input.shape[:-1] + (1,))}"
            )
    e = target - input
    return reduce(torch.maximum(tau * e, (tau - 1) * e), reduction)


# --------------------------------------------------------------------------------------------
# negative log-likelihoods


def _gaussian_var(var: Tensor | float, input: Tensor) -> Tensor:
    """PyTorch's rules for the shape of ``var``, with messages that say what was given."""
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"var must be non-negative, got {var}")
        return torch.full_like(input, float(var))
    check_floating(var, "var")
    if values_visible(var) and bool((var < 0).any()):
        raise ValueError(f"var has negative entries (smallest {var.min().item():g}); a variance must be >= 0")
    if var.shape == input.shape:
        return var  # heteroscedastic: one variance per prediction
    if var.shape == input.shape[:-1]:
        return var.unsqueeze(-1)  # one variance per sample, shared by the last dimension
    mismatched = [v for i, v in zip(input.shape, var.shape) if i != v] if var.dim() == input.dim() else None
    if mismatched is not None and sum(mismatched) == 1:
        return var  # same rank, exactly one dimension of size 1 to broadcast (e.g. (N, 1))
    raise ValueError(
        f"var has shape {format_shape(var)} but input has shape {format_shape(input)}; var must have "
        f"the shape of input, that shape without its last dimension, or that shape with exactly "
        f"one dimension set to 1"
    )


@float32_under_autocast
def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    r"""Gaussian negative log-likelihood with a given or predicted variance.

    .. math::
        \ell_i = \tfrac12\left(\log \max(\sigma_i^2, \varepsilon)
        + \frac{(\hat y_i - y_i)^2}{\max(\sigma_i^2, \varepsilon)}\right)
        \;\big[+\, \tfrac12 \log 2\pi \text{ if full}\big]

    The clamp at ``eps`` changes the value but, as in PyTorch, not the gradient path: the
    gradient with respect to ``var`` is computed as if the clamped value had been passed.
    With a constant variance, minimising it is minimising the MSE; predicting the variance
    lets a model say where it is unsure.

    Shape:
        - input: ``(N, *)`` or ``(*)``; target: the same shape as ``input``.
        - var: the shape of ``input``; or that shape without its last dimension; or that shape
          with exactly one dimension of size 1 (e.g. ``(N, 1)``); or a non-negative float.
        - output: ``()`` for ``'mean'``/``'sum'``; the broadcast shape for ``'none'``.

    Args:
        input: predicted means :math:`\hat y`.
        target: observations :math:`y`.
        var: predicted variances :math:`\sigma^2 \ge 0` (a negative entry raises).
        full: add the constant :math:`\tfrac12\log 2\pi`.
        eps: lower clamp of ``var``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> gaussian_nll_loss(torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([1.0]))
        tensor(0.5000)

    Same name, signature and semantics as ``torch.nn.functional.gaussian_nll_loss``;
    a mismatched shape is broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`.

    Chapter: regression
    """
    _torch_pair(input, target, expand=False)  # var's shape is checked against input's, as in PyTorch
    check_reduction(reduction)
    check_positive(eps, "eps", strict=False)
    var = _gaussian_var(var, input)
    # clamp the value but not the gradient path: a copy clamped in place outside autograd, as
    # PyTorch does (autograd only sees the copy, whose gradient is the identity)
    var = var.clone()
    with torch.no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce(loss, reduction)


@float32_under_autocast
def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean") -> Tensor:
    r"""Poisson negative log-likelihood for count targets.

    .. math::
        \ell_i = \begin{cases} e^{x_i} - y_i x_i & \text{log\_input (} x_i = \log\lambda_i) \\
        \lambda_i - y_i \log(\lambda_i + \varepsilon) & \text{otherwise} \end{cases}
        \;\big[+\, y_i\log y_i - y_i + \tfrac12\log(2\pi y_i) \text{ if full and } y_i > 1\big]

    This is :math:`-\log p(y_i \mid \lambda_i)` up to :math:`\log y_i!`, which does not depend on
    the prediction; ``full=True`` adds Stirling's approximation of it, only where
    :math:`y_i > 1` (for 0 and 1, :math:`\log y! = 0`). Predicting :math:`\log\lambda`
    (``log_input=True``) keeps the rate positive without a clamp.

    Shape:
        - input: ``(*)``, any shape; target: the same shape as ``input``.
        - output: ``()`` for ``'mean'``/``'sum'``; ``(*)`` for ``'none'``.

    Args:
        input: :math:`\log\lambda` if ``log_input`` else the rate :math:`\lambda`.
        target: observed counts :math:`y \ge 0` (a float tensor).
        log_input: whether ``input`` is the log-rate.
        full: add the Stirling term.
        eps: added to :math:`\lambda` inside the log when ``log_input=False``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> poisson_nll_loss(torch.tensor([0.0]), torch.tensor([2.0]))
        tensor(1.)

    Same name, signature and semantics as ``torch.nn.functional.poisson_nll_loss`` (without
    ``size_average``/``reduce``); a mismatched shape
    is broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`.

    Chapter: regression
    """
    input, target = _torch_pair(input, target)
    check_reduction(reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        stirling = target * target.log() - target + 0.5 * (2 * math.pi * target).log()
        loss += stirling.masked_fill(target <= 1, 0)  # in place, as PyTorch: one temporary fewer
    return reduce(loss, reduction)
