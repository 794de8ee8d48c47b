r"""Negative log-likelihood and cross-entropy, written from scratch.

``cross_entropy`` is ``nll_loss`` applied to ``log_softmax(input)``, fused into one custom
``torch.autograd.Function``: for class-index targets the forward computes
:math:`\mathrm{LSE}(z_n) - z_{n,y_n}` (no ``(N, C)`` matrix of log-probabilities is formed), and
the backward is the famous :math:`p - y` (softmax minus the target distribution), written in
place into the exponentials the forward computed anyway, with class weights and label
smoothing folded in:

* class-index target, no smoothing: :math:`\partial \ell_n/\partial z_n = w_{y_n}(p_n - e_{y_n})`
* the smoothing term :math:`-\sum_c w_c \log p_{nc}`: :math:`\partial/\partial z_n = p_n \sum_c w_c - w`
* probability target :math:`q_n` (after smoothing): :math:`\partial \ell_n/\partial z_n
  = p_n \sum_c w_c q_{nc} - w \odot q_n`

Reductions follow PyTorch exactly (through :func:`lossbook._reduction.reduce`): with class
weights the mean divides by :math:`\sum_n w_{y_n}` over the targets that are not ignored (not by
``N``); with probability targets it divides by the number of samples and the weights do not
enter the divisor.

Chapter: cross-entropy
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._kernels import blocks
from ._reduction import check_reduction, reduce
from ._validation import (
    check_class_indices,
    check_floating,
    check_in_range,
    check_tensor,
    format_shape,
    warn_pitfall,
)
from .softmax import _exp_sum, log_softmax

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
    if x.numel() == 0:
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
    if x.numel() == 0 or x.shape[1] < 2:
        return
    rows = _sample_rows(x)
    in_unit = bool(((rows >= 0) & (rows <= 1)).all())
    if in_unit and bool(((rows.sum(-1) - 1).abs() <= 1e-3).all()):
        warn_pitfall(
            "cross_entropy got an input whose rows lie in [0, 1] and sum to 1: it looks like "
            "probabilities (softmax output), but cross_entropy applies log_softmax itself and expects "
            "raw logits. Pass the logits (remove the softmax), or use nll_loss(probs.log(), target)"
        )


def _warn_if_indices_as_floats(target: Tensor) -> None:
    if target.numel() == 0:
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
    safe = t.masked_fill(~keep, 0)  # ignore_index may be -100 or >= C: never index with it
    picked = x.gather(1, safe.unsqueeze(1)).squeeze(1)
    w_y = keep.to(x.dtype) if weight is None else torch.where(keep, weight[safe], 0)  # not inf * 0
    loss = torch.where(keep, -picked * w_y, torch.zeros((), dtype=x.dtype, device=x.device))
    if unbatched:
        loss, w_y = loss.squeeze(0), w_y.squeeze(0)
    if reduction == "none":
        return loss
    # PyTorch's weighted mean: sum(loss) / sum(w_y), in the input's dtype (float16 sums can overflow)
    return reduce(loss, reduction, weight=w_y)


# --------------------------------------------------------------------------------------------
# cross_entropy with class-index targets


def _class_view(weight: Tensor, ndim: int) -> Tensor:
    """``(C)`` weights as ``(1, C, 1, ..., 1)`` for an ``ndim``-D ``(N, C, ...)`` tensor."""
    return weight.view(1, -1, *([1] * (ndim - 2)))


class _CrossEntropyIndex(torch.autograd.Function):
    """Per-element NLL of softmax(x) and, for label smoothing, the per-element smoothing term.

    Returns ``(nll, smooth)`` with ``nll_n = w_{y_n} (LSE(x_n) - x_{n,y_n}) = -w_{y_n} log p_{n,y_n}``
    and ``smooth_n = sum_c w_c (LSE(x_n) - x_{n,c}) = -sum_c w_c log p_{n,c}`` (both 0 where the
    target is ignored); ``smooth`` is empty when not requested. The caller reduces and mixes them,
    as PyTorch does.

    The forward needs only the log-sum-exp of each row. Computing it produces the exponentials
    ``e = exp(x - max)``; when a gradient will be needed they are kept (one tensor the size of
    the logits, as PyTorch keeps its log-probabilities), and the backward turns them, in place,
    into the gradient ``p * coef - onehot`` with ``p = e / sum(e)``: one pass, no new tensor.
    """

    @staticmethod
    def forward(ctx, x, safe, keep, weight, with_smooth, keep_e):
        acc = torch.promote_types(x.dtype, torch.float32)  # float16/bfloat16: float32 inside, as PyTorch
        xa = x if x.dtype == acc else x.to(acc)
        e, m, total = _exp_sum(xa, (1,), safe=False, keep=keep_e)  # e = exp(x - m), total = sum(e)
        # -log p_y = log(total) - (x_y - m), PyTorch's order: LSE(x) - x_y would cancel two large
        # numbers (float32 logits of 1e4 lose three digits). A row with +inf or of all -inf
        # (m infinite: x - m is NaN) or with a NaN has no log-softmax: NaN, as in PyTorch
        log_total, m1 = total.log().squeeze(1), m.squeeze(1)
        w_y = keep.to(acc) if weight is None else torch.where(keep, weight.to(acc)[safe], 0)
        zero = torch.zeros((), dtype=acc, device=x.device)
        picked = xa.gather(1, safe.unsqueeze(1)).squeeze(1)
        nll = torch.where(keep, (log_total - (picked - m1)) * w_y, zero)
        if with_smooth:
            if weight is None:
                smooth = log_total * xa.shape[1] - (xa - m).sum(1)
            else:
                wa = weight.to(acc)
                # sum_c w_c (-log p_c), term by term: an infinite weight gives inf, not inf - inf
                smooth = ((log_total.unsqueeze(1) - (xa - m)) * _class_view(wa, x.dim())).sum(1)
            smooth = torch.where(keep, smooth, zero).to(x.dtype)
        else:
            smooth = x.new_empty(0)
        ctx.save_for_backward(x, m, total, safe, keep, w_y, weight)
        ctx.e = e  # not saved_tensors: the first backward consumes it in place
        ctx.with_smooth = with_smooth
        if not with_smooth:
            ctx.mark_non_differentiable(smooth)
        return nll.to(x.dtype), smooth

    @staticmethod
    @once_differentiable  # a second derivative raises instead of silently missing terms
    def backward(ctx, g_nll, g_smooth):
        x, m, total, safe, keep, w_y, weight = ctx.saved_tensors
        acc = total.dtype
        zero = torch.zeros((), dtype=acc, device=x.device)
        # the NLL part: w_y (p - onehot(y));  row coefficient a = g * w_y, 0 where ignored
        a = torch.where(keep, g_nll.to(acc) * w_y, zero)
        coef = a
        if ctx.with_smooth:
            # the smoothing part: p * sum_c w_c - w;  row coefficient b = g, 0 where ignored
            b = torch.where(keep, g_smooth.to(acc), zero)
            total_w = x.shape[1] if weight is None else weight.to(acc).sum()
            coef = a + b * total_w
        e, ctx.e = ctx.e, None  # a second backward (retain_graph=True) recomputes it
        if e is None:
            e = _exp_sum(x.to(acc), (1,), safe=False, keep=True)[0]
        scale, y, minus_a = coef.unsqueeze(1) / total, safe.unsqueeze(1), -a.unsqueeze(1)
        for i in blocks(e, (1,)):  # block by block, so the scatter finds its block in the cache
            e[i].mul_(scale[i]).scatter_add_(1, y[i], minus_a[i])  # p * coef = e * coef / sum(e), minus onehot
        grad = e
        if ctx.with_smooth:
            b = b.unsqueeze(1)
            grad.sub_(b if weight is None else b * _class_view(weight.to(acc), x.dim()))
        return grad.to(x.dtype), None, None, None, None, None


def _nll_of_softmax(x: Tensor, safe: Tensor, keep: Tensor, weight: Tensor | None = None,
                    with_smooth: bool = False) -> tuple[Tensor, Tensor]:
    """``(nll, smooth)`` of :class:`_CrossEntropyIndex` for logits ``x`` (classes along dim 1).

    ``nll = -w_y log softmax(x)[y]`` at the class indices ``safe`` (0 where ``keep`` is False),
    with the fused ``p - onehot`` backward; the focal loss builds on it too. The forward keeps
    its exponentials for the backward only when a gradient can be asked for.
    """
    keep_e = x.requires_grad and torch.is_grad_enabled()
    return _CrossEntropyIndex.apply(x, safe, keep, weight, with_smooth, keep_e)


def _cross_entropy_index(x, t, weight, ignore_index, reduction, label_smoothing):
    keep = t != ignore_index
    safe = t.masked_fill(~keep, 0)
    with_smooth = label_smoothing > 0
    nll, smooth = _nll_of_softmax(x, safe, keep, weight, with_smooth)
    w_y = keep.to(x.dtype) if weight is None else torch.where(keep, weight[safe], 0)  # not inf * 0
    if reduction == "none":
        if not with_smooth:
            return nll
        return (1 - label_smoothing) * nll + smooth * (label_smoothing / x.shape[1])
    nll_r = reduce(nll, reduction, weight=w_y)
    if not with_smooth:
        return nll_r
    # reduced separately, with the same divisor, then mixed: PyTorch's order (it matters for float16)
    smooth_r = reduce(smooth, reduction, weight=w_y)
    return (1 - label_smoothing) * nll_r + smooth_r * (label_smoothing / x.shape[1])


# --------------------------------------------------------------------------------------------
# cross_entropy with class-probability targets


class _CrossEntropyProb(torch.autograd.Function):
    """Per-sample ``-sum_c w_c q_c log p_c`` for a smoothed probability target ``q``."""

    @staticmethod
    def forward(ctx, x, target, weight, label_smoothing):
        logp = log_softmax(x, dim=1)
        q = target if label_smoothing == 0 else target * (1 - label_smoothing) + label_smoothing / x.shape[1]
        wq = q if weight is None else q * _class_view(weight, x.dim())
        ctx.save_for_backward(logp, wq, q, weight)
        ctx.label_smoothing = label_smoothing
        return -(logp * wq).sum(1)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        logp, wq, q, weight = ctx.saved_tensors
        g = g.unsqueeze(1)
        grad_x = grad_t = grad_w = None
        if ctx.needs_input_grad[0]:
            # p * sum_c (w q)_c - w q
            grad_x = logp.exp().mul_(wq.sum(1, keepdim=True)).sub_(wq).mul_(g)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            minus_g_logp = -g * logp
            if ctx.needs_input_grad[1]:
                grad_t = minus_g_logp * (1 - ctx.label_smoothing)
                if weight is not None:
                    grad_t = grad_t * _class_view(weight, logp.dim())
            if ctx.needs_input_grad[2]:
                dims = [d for d in range(logp.dim()) if d != 1]
                grad_w = (minus_g_logp * q).sum(dims)
        return grad_x, grad_t, grad_w, None


def _cross_entropy_prob(x, t, weight, reduction, label_smoothing):
    loss = _CrossEntropyProb.apply(x, t, weight, label_smoothing)
    # PyTorch: sum over everything / number of samples (weights never enter the divisor)
    return reduce(loss, reduction, weight=torch.ones_like(loss))


# --------------------------------------------------------------------------------------------
# cross_entropy


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
    weighted, target), implemented as a hand-written backward.

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
        x, t, unbatched = _batched(input, target.to(input.dtype))
        _warn_if_probabilities(x)
        _warn_if_indices_as_floats(t)
        loss = _cross_entropy_prob(x, t, weight, reduction, label_smoothing)
    else:
        _check_index_target(input, target, ignore_index)
        if weight is not None and weight.requires_grad and torch.is_grad_enabled():
            raise ValueError(
                "weight requires grad, but cross_entropy with class-index targets does not differentiate "
                "with respect to the class weights (PyTorch refuses it too); pass weight.detach()"
            )
        x, t, unbatched = _batched(input, _as_indices(target))
        _warn_if_probabilities(x)
        loss = _cross_entropy_index(x, t, weight, ignore_index, reduction, label_smoothing)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss
