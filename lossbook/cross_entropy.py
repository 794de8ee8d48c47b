r"""Negative log-likelihood and cross-entropy, written from scratch.

``cross_entropy`` is its formula: ``log_softmax`` along the class dimension, then the
negative log-likelihood of the target (class indices, with class weights, ``ignore_index`` and
label smoothing; or class probabilities), then one reduction. Autograd derives the famous
gradient :math:`p - y`, and every higher derivative.

Reductions follow PyTorch exactly (through :func:`lossbook._reduction.reduce`): with class
weights the mean divides by :math:`\sum_n w_{y_n}` over the targets that are not ignored (not by
``N``); with probability targets it divides by the number of samples and the weights do not
enter the divisor.

Large CPU inputs with class-index targets run a fast path instead (``lossbook.fast.cross_entropy``:
the loss from the row's log-sum-exp alone and a fused :math:`p - y` backward written into the
forward's exponentials), tested equal to this definition; see the appendix chapter "Making a
loss fast".

Chapter: cross-entropy
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import fast
from ._reduction import check_reduction, reduce
from ._validation import (
    check_class_indices,
    check_floating,
    check_in_range,
    check_tensor,
    float32_under_autocast,
    format_shape,
    looks_like_probabilities,
    values_visible,
    warn_pitfall,
)
from .fast import cross_entropy as fast_cross_entropy
from .softmax import log_softmax

__all__ = ["nll_loss", "cross_entropy"]

# the pitfall heuristics look at a bounded sample, so they cost nothing at (8192, 32000)
_SAMPLE_BATCH = 4
_SAMPLE_POSITIONS = 16


# --------------------------------------------------------------------------------------------
# argument handling shared by nll_loss and cross_entropy


def _batched(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor, bool]:
    """``(C)`` inputs become ``(1, C)`` (and their ``()``/``(C)`` target gets a batch dim)."""
    if input.dim() == 1:
        return input.unsqueeze(0), target.unsqueeze(0), True
    return input, target, False


def _check_input(input: Tensor, fn: str) -> None:
    check_floating(input, "input", hint=f"{fn} needs floating-point scores")
    if input.dim() == 0:
        raise ValueError(
            f"input has shape () (0-D) but {fn} needs the class scores along a dimension: "
            f"(C,), (N, C) or (N, C, d1, ..., dK)"
        )


def _index_target_shape(input: Tensor) -> tuple[int, ...]:
    return () if input.dim() == 1 else (input.shape[0], *input.shape[2:])


def _check_index_target(input: Tensor, target: Tensor, ignore_index: int) -> None:
    """Class-index targets: an integer dtype, the input's shape without C, values in [0, C)."""
    check_tensor(target, "target")
    expected = _index_target_shape(input)
    if target.is_floating_point():
        raise TypeError(
            f"target has dtype {target.dtype} and shape {format_shape(target)}, which is neither "
            f"class indices (an integer dtype, shape {format_shape(expected)}) nor class "
            f"probabilities (a floating dtype and the shape {format_shape(input)} of input); "
            f"if it holds class indices, convert it with target.long()"
        )
    if tuple(target.shape) != expected:
        layout = "(N,) for (N, C) input, (N, d1, ..., dK) for (N, C, d1, ..., dK) input, () for (C,) input"
        raise ValueError(
            f"target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
            f"class-index targets must have shape {format_shape(expected)} ({layout})"
        )
    C = input.shape[0] if input.dim() == 1 else input.shape[1]
    check_class_indices(target, C, name="target", ignore_index=ignore_index)


def _as_indices(target: Tensor) -> Tensor:
    """Class indices as int64 (gather and scatter index with it); torch accepts uint8, int32, ..."""
    return target if target.dtype == torch.long else target.long()


def _check_weight(weight: Tensor | None, input: Tensor) -> Tensor | None:
    if weight is None:
        return None
    check_floating(weight, "weight", hint="weight holds one rescaling factor per class")
    C = input.shape[0] if input.dim() == 1 else input.shape[1]
    if weight.dim() != 1 or weight.numel() != C:
        raise ValueError(
            f"weight has shape {format_shape(weight)} but input has {C} classes "
            f"(shape {format_shape(input)}); weight must have shape ({C},), one value per class"
        )
    return weight.to(dtype=input.dtype, device=input.device)


def _sample_rows(x: Tensor) -> Tensor:
    """A few ``(R, C)`` rows of a batched ``(N, C, ...)`` tensor: a bounded, cheap sample."""
    x = x[:_SAMPLE_BATCH]
    if x.dim() > 2:
        x = x.flatten(2)[:, :, :_SAMPLE_POSITIONS].movedim(1, -1)
    return x.reshape(-1, x.shape[-1]).detach()


def _warn_if_not_log_probs(x: Tensor) -> None:
    if x.numel() == 0 or not values_visible(x):
        return
    rows = _sample_rows(x)
    if bool((rows > 1e-6).any()):
        warn_pitfall(
            "nll_loss got positive values in input, so input is not log-probabilities (those are <= 0); "
            "it looks like raw logits. nll_loss only picks -input[target]: apply lossbook.log_softmax "
            "first, or call cross_entropy on the logits"
        )
        return
    total = rows.exp().sum(-1)
    bad = (total - 1).abs() > 1e-2
    if bool(bad.any()):
        warn_pitfall(
            f"nll_loss got rows whose exp() sums to {total[bad][0].item():.4g}, not 1, so input is not "
            f"log-normalised; apply lossbook.log_softmax along the class dimension first, or call "
            f"cross_entropy on the logits"
        )


def _warn_if_probabilities(x: Tensor) -> None:
    if x.numel() == 0 or x.shape[1] < 2 or not values_visible(x):
        return
    if looks_like_probabilities(_sample_rows(x), dim=-1):
        warn_pitfall(
            "cross_entropy got an input whose rows lie in [0, 1] and sum to 1: it looks like "
            "probabilities (softmax output), but cross_entropy applies log_softmax itself and expects "
            "raw logits. Pass the logits (remove the softmax), or use nll_loss(probs.log(), target)"
        )


def _warn_if_indices_as_floats(target: Tensor) -> None:
    if target.numel() == 0 or not values_visible(target):
        return
    rows = _sample_rows(target)
    if bool((rows == rows.round()).all()) and bool((rows > 1).any()):
        warn_pitfall(
            f"cross_entropy got a floating-point target of whole numbers up to {rows.max().item():g} with "
            f"the shape of input, so it is read as class probabilities; if it holds class indices, give "
            f"them as a long tensor of shape (N,) (target.long())"
        )


# --------------------------------------------------------------------------------------------
# nll_loss


@float32_under_autocast
def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Negative log-likelihood of class indices, given log-probabilities.

    .. math::
        \ell_n = -\,w_{y_n}\, x_{n, y_n}\, \mathbb{1}[y_n \ne \text{ignore\_index}], \qquad
        \ell_{\text{mean}} = \frac{\sum_n \ell_n}{\sum_n w_{y_n} \mathbb{1}[y_n \ne \text{ignore\_index}]}

    ``input`` must already be log-probabilities (the output of :func:`lossbook.log_softmax`);
    ``nll_loss`` only picks ``-input[n, y_n]``. Note that :math:`\ell_n` already contains the
    weight, so the weighted mean divides by the sum of the weights, not by ``N``.

    Shape:
        - input: ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` log-probabilities.
        - target: ``()``, ``(N)`` or ``(N, d1, ..., dK)`` class indices in ``[0, C)`` (integer dtype),
          or ``ignore_index``.
        - output: ``target``'s shape for ``'none'``, ``()`` otherwise.

    Args:
        input: log-probabilities along dimension 1 (dimension 0 for an unbatched ``(C)`` input).
        target: class indices.
        weight: optional ``(C)`` rescaling factor for each class.
        ignore_index: targets equal to it contribute neither to the loss nor to the divisor of
            the mean. It may lie outside ``[0, C)`` (the default ``-100`` does).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. The mean of an empty batch, or of a batch
            whose targets are all ignored, is NaN (0 / 0), as in PyTorch.

    Example:
        >>> log_probs = lossbook.log_softmax(torch.tensor([[2.0, 1.0, 0.1]]), dim=1)
        >>> nll_loss(log_probs, torch.tensor([0]))
        tensor(0.4170)

    Same name, signature and semantics as ``torch.nn.functional.nll_loss`` (without the
    deprecated ``size_average``/``reduce``). Warns (:class:`lossbook.PitfallWarning`) when
    ``input`` looks like raw logits rather than log-probabilities.

    Chapter: cross-entropy
    """
    _check_input(input, "nll_loss")
    check_reduction(reduction)
    _check_index_target(input, target, ignore_index)
    weight = _check_weight(weight, input)
    x, t, unbatched = _batched(input, _as_indices(target))
    _warn_if_not_log_probs(x)

    keep = t != ignore_index
    y = t.masked_fill(~keep, 0)  # ignore_index may be -100 or >= C: never index with it
    w_y = keep.to(x.dtype) if weight is None else torch.where(keep, weight[y], 0)  # not inf * 0
    loss = torch.where(keep, -x.gather(1, y.unsqueeze(1)).squeeze(1) * w_y, 0)
    if unbatched:
        loss, w_y = loss.squeeze(0), w_y.squeeze(0)
    if reduction == "none":
        return loss
    # PyTorch's weighted mean: sum(loss) / sum(w_y), in the input's dtype (float16 sums can overflow)
    return reduce(loss, reduction, weight=w_y)


def _class_view(weight: Tensor, ndim: int) -> Tensor:
    """``(C)`` weights as ``(1, C, 1, ..., 1)`` for an ``ndim``-D ``(N, C, ...)`` tensor."""
    return weight.view(1, -1, *([1] * (ndim - 2)))


# --------------------------------------------------------------------------------------------
# cross_entropy


@float32_under_autocast
def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Cross-entropy between logits and class indices or class probabilities.

    With class indices :math:`y_n` and label smoothing :math:`\varepsilon` over :math:`C` classes
    (:math:`p = \mathrm{softmax}(z)` along the class dimension):

    .. math::
        \ell_n = \mathbb{1}[y_n \ne \text{ignore\_index}]\Big((1-\varepsilon)\,w_{y_n}\,(-\log p_{n,y_n})
        + \frac{\varepsilon}{C} \sum_{c} w_c\,(-\log p_{n,c})\Big), \qquad
        \ell_{\text{mean}} = \frac{\sum_n \ell_n}{\sum_n w_{y_n} \mathbb{1}[y_n \ne \text{ignore\_index}]}

    With probability targets :math:`q_n` (smoothed to :math:`(1-\varepsilon) q_n + \varepsilon/C`):

    .. math::
        \ell_n = -\sum_c w_c\, q_{n,c} \log p_{n,c}, \qquad \ell_{\text{mean}} = \frac{1}{N} \sum_n \ell_n

    The gradient with respect to the logits is :math:`p - y` (softmax minus the, smoothed and
    weighted, target).

    Shape:
        - input: ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` logits.
        - target: class indices of shape ``()``, ``(N)`` or ``(N, d1, ..., dK)`` (integer dtype), or
          class probabilities with the same shape as ``input`` (floating dtype).
        - output: ``()``, ``(N)`` or ``(N, d1, ..., dK)`` for ``'none'`` (the input's shape without
          the class dimension, also for probability targets), ``()`` otherwise.

    Args:
        input: unnormalised scores (logits), classes along dimension 1 (0 if unbatched).
        target: class indices or class probabilities (soft labels).
        weight: optional ``(C)`` rescaling factor for each class.
        ignore_index: class-index targets equal to it are skipped (loss 0, not counted in the
            mean). Probability targets do not support it (it must then be negative).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        label_smoothing: :math:`\varepsilon \in [0, 1]`: the target becomes
            :math:`(1-\varepsilon)\,\text{target} + \varepsilon/C` (ε/C on *every* class, as in
            Szegedy et al., 2016 and PyTorch).

    Example:
        >>> cross_entropy(torch.tensor([[2.0, 1.0, 0.1]]), torch.tensor([0]))
        tensor(0.4170)

    Same name, signature and semantics as ``torch.nn.functional.cross_entropy`` (without the
    deprecated ``size_average``/``reduce``), including the weighted mean, all-ignored batches
    (NaN), empty batches (NaN for ``'mean'``) and float16 overflow. Warns
    (:class:`lossbook.PitfallWarning`) when ``input`` looks like probabilities or a float
    ``target`` looks like class indices.

    Chapter: cross-entropy
    """
    _check_input(input, "cross_entropy")
    check_tensor(target, "target")
    check_reduction(reduction)
    check_in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    weight = _check_weight(weight, input)
    prob_target = target.shape == input.shape and target.is_floating_point()
    if target.shape == input.shape and not target.is_floating_point() and input.dim() > 1:
        # torch reads a same-shaped tensor as probabilities and then rejects its dtype
        raise TypeError(
            f"target has the shape {format_shape(input)} of input, so it is read as class "
            f"probabilities, which need a floating dtype, but it has dtype {target.dtype}; "
            f"convert it with target.to(input.dtype), or give class indices of shape "
            f"{format_shape(_index_target_shape(input))}"
        )
    if prob_target:
        if ignore_index >= 0:
            raise ValueError(
                f"ignore_index={ignore_index} was given with probability targets (target has the "
                f"shape {format_shape(input)} of input); ignore_index only applies to class-index "
                f"targets: leave it at its default (-100) and give ignored samples a zero target row"
            )
        x, q, unbatched = _batched(input, target.to(input.dtype))
        _warn_if_probabilities(x)
        _warn_if_indices_as_floats(q)
        C = x.shape[1]
        q = q * (1 - label_smoothing) + label_smoothing / C if label_smoothing > 0 else q
        wq = q if weight is None else q * _class_view(weight, x.dim())
        loss = reduce(-(wq * log_softmax(x, dim=1)).sum(1), reduction)  # mean: over samples, not weights
        return loss.squeeze(0) if unbatched and reduction == "none" else loss
    _check_index_target(input, target, ignore_index)
    if weight is not None and weight.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            "weight requires grad, but cross_entropy with class-index targets does not differentiate "
            "with respect to the class weights (PyTorch refuses it too); pass weight.detach()"
        )
    x, t, unbatched = _batched(input, _as_indices(target))
    _warn_if_probabilities(x)
    if fast.applies(x, weight):
        loss = fast_cross_entropy.cross_entropy_index(x, t, weight, ignore_index, reduction, label_smoothing)
        return loss.squeeze(0) if unbatched and reduction == "none" else loss
    C, acc = x.shape[1], torch.promote_types(x.dtype, torch.float32)  # float16: float32 inside, as PyTorch
    log_p = log_softmax(x.to(acc), dim=1)
    keep = t != ignore_index
    y = t.masked_fill(~keep, 0)  # ignore_index may be -100 or >= C: never index with it
    w = torch.ones(C, dtype=acc, device=x.device) if weight is None else weight.to(acc)
    w_y = torch.where(keep, w[y], 0)  # not w[y] * keep: an infinite weight times 0 is NaN
    nll = torch.where(keep, -log_p.gather(1, y.unsqueeze(1)).squeeze(1) * w_y, 0).to(x.dtype)
    w_y = w_y.to(x.dtype)
    loss = reduce(nll, reduction, weight=w_y)
    if label_smoothing > 0:  # -sum_c w_c log p_c, reduced alike, then mixed: PyTorch's order
        smooth = torch.where(keep, -(log_p * _class_view(w, x.dim())).sum(1), 0).to(x.dtype)
        loss = (1 - label_smoothing) * loss + reduce(smooth, reduction, weight=w_y) * (label_smoothing / C)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss
