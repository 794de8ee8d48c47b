r"""Classification losses beyond softmax cross-entropy: BCE, focal, margin and hinge losses.

Every loss is its formula in plain, differentiable tensor operations, built on one stable
piece, :func:`_softplus`, :math:`\mathrm{softplus}(x) = \log(e^0 + e^x)`, computed by
``torch.logaddexp``: it never overflows, and its derivative is exactly :math:`\sigma(x)`
everywhere (a hand-written ``max(x, 0) + log1p(exp(-|x|))`` gets the kink at 0 wrong).

One small custom autograd Function states a *convention* rather than a formula:
:class:`_BCE`, the probability-input :func:`binary_cross_entropy`, reproduces PyTorch's clamp of
each log at :math:`-100` and its gradient :math:`w\,(p - y) / \max(p(1 - p), 10^{-12})`. Its
backward is itself differentiable, and it supports ``torch.func``.

Large CPU inputs of ``binary_cross_entropy_with_logits`` and ``soft_margin_loss`` run a fast
path instead (``lossbook.fast.classification``: the reduction fused into the forward, block by
block, and a hand-written backward), tested equal to these definitions; see the appendix
chapter "Making a loss fast".

Chapter: classification
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import fast
from ._reduction import check_reduction, reduce
from ._validation import (
    broadcast_with_pitfall,
    check_broadcastable,
    check_class_indices,
    check_floating,
    check_ndim,
    check_positive,
    check_probabilities,
    check_same_shape,
    check_tensor,
    float32_under_autocast,
    format_shape,
    values_visible,
    warn_pitfall,
)
from .cross_entropy import cross_entropy
from .fast import classification as fast_classification

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multilabel_margin_loss",
    "multi_margin_loss",
    "hinge_embedding_loss",
    "sigmoid_focal_loss",
    "focal_loss",
]

_SHAPE_HINT = (
    "a (N, 1) model output against (N,) labels is the usual cause: use input.squeeze(1) "
    "or target.unsqueeze(1)"
)
_EPS = 1e-12  # PyTorch's floor on p(1 - p) in the gradient of binary_cross_entropy


# --------------------------------------------------------------------------------------------
# the stable building blocks


def _softplus(x: Tensor) -> Tensor:
    """log(1 + e^x) = log(e^0 + e^x): stable for every x, with the derivative sigma(x), also at 0."""
    if fast.applies(x):
        return fast_classification.softplus(x)
    return torch.logaddexp(x, torch.zeros_like(x))


class _BCE(torch.autograd.Function):
    """Per-element -w [y max(log p, -100) + (1 - y) max(log(1 - p), -100)] with PyTorch's gradient.

    The gradient is PyTorch's convention, not the derivative of the clamped value: it keeps
    growing where the log is clamped. The backward uses only differentiable operations, so a
    second derivative is that of this gradient (as in PyTorch); ``setup_context``, ``jvp`` and a
    generated vmap rule make it work under ``torch.func``.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(p: Tensor, y: Tensor, weight: Tensor | None) -> Tensor:
        log_p, log_1mp = p.log().clamp_min_(-100), torch.log1p(-p).clamp_min_(-100)
        # -(y log p + (1 - y) log(1 - p)) = -(log(1 - p) + y (log p - log(1 - p))), in place on fresh tensors
        loss = log_p.sub_(log_1mp).mul_(y).add_(log_1mp).neg_()
        return loss if weight is None else loss.mul_(weight)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def _grads(p, y, weight, need_p=True, need_y=True):
        # PyTorch floors p(1 - p) at 1e-12: a saturated wrong prediction still gets a huge gradient
        gp = (p - y) / (p * (1 - p)).clamp_min(_EPS) if need_p else None
        gy = torch.log1p(-p) - p.log() if need_y else None  # -logit(p), unclamped as in PyTorch
        if weight is not None:
            gp = None if gp is None else gp * weight
            gy = None if gy is None else gy * weight
        return gp, gy

    @staticmethod
    def backward(ctx, grad: Tensor):
        p, y, weight = ctx.saved_tensors
        gp, gy = _BCE._grads(p, y, weight, *ctx.needs_input_grad[:2])
        return (None if gp is None else grad * gp), (None if gy is None else grad * gy), None

    @staticmethod
    def jvp(ctx, tp, ty, tw):
        p, y, weight = ctx.saved_tensors
        gp, gy = _BCE._grads(p, y, weight, tp is not None, ty is not None)
        out = 0
        if tp is not None:
            out = out + gp * tp
        if ty is not None:
            out = out + gy * ty
        return out if isinstance(out, Tensor) else torch.zeros_like(p)


class _BCETraced(_BCE):
    """:class:`_BCE` without its forward-mode rule, which ``torch.compile`` cannot trace (yet)."""

    jvp = torch.autograd.Function.jvp


def _check_weight_like(w: Tensor | None, name: str, input: Tensor) -> None:
    if w is None:
        return
    check_tensor(w, name)
    if w.requires_grad:
        raise ValueError(
            f"{name} requires grad, but {name} is a constant of the loss (as in PyTorch); "
            f"pass {name}.detach()"
        )
    check_broadcastable(w, input, names=(name, "input"))


def _check_binary(input: Tensor, target: Tensor, fn: str) -> None:
    check_floating(input, "input")
    check_tensor(target, "target")
    if not target.is_floating_point():
        raise TypeError(
            f"target must have a floating-point dtype, got {target.dtype}; {fn} takes 0/1 labels "
            f"(or probabilities) as floats: use target.float()"
        )
    check_same_shape(input, target, hint=_SHAPE_HINT)


# --------------------------------------------------------------------------------------------
# binary cross-entropy


@float32_under_autocast
def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    r"""Binary cross-entropy between predicted probabilities and targets, PyTorch's clamp included.

    .. math::
        \ell_n = -w_n\,\big[y_n \max(\log p_n, -100) + (1 - y_n) \max(\log(1 - p_n), -100)\big]

    The negative log-likelihood of a Bernoulli variable. Each log is clamped at :math:`-100`
    (PyTorch's convention), so a prediction of exactly 0 or 1 on the wrong side costs 100,
    not infinity; the gradient :math:`w\,(p - y)/\max(p(1-p), 10^{-12})` stays huge there
    instead of vanishing. Prefer :func:`binary_cross_entropy_with_logits` on logits.

    Shape:
        - input: ``(*)``, probabilities in ``[0, 1]``.
        - target: ``(*)``, same shape as ``input``, floats in ``[0, 1]``.
        - weight: broadcastable to ``(*)`` (not differentiable, as in PyTorch).
        - output: ``(*)`` for ``reduction='none'``, ``()`` otherwise (a plain mean, even with
          ``weight``).

    Args:
        input: predicted probabilities :math:`p`.
        target: labels or soft targets :math:`y`.
        weight: per-element rescaling weight.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> binary_cross_entropy(torch.tensor([0.9, 0.2]), torch.tensor([1.0, 0.0]))
        tensor(0.1643)

    Same name, signature and semantics as ``torch.nn.functional.binary_cross_entropy``; out
    of range inputs or targets raise ``ValueError`` (PyTorch raises ``RuntimeError``).

    Chapter: classification
    """
    _check_binary(input, target, "binary_cross_entropy")
    if target.dtype != input.dtype:
        raise TypeError(
            f"target has dtype {target.dtype} but input has dtype {input.dtype}; "
            f"binary_cross_entropy needs both in the same dtype (PyTorch raises too)"
        )
    check_reduction(reduction)
    check_probabilities(input, "input", hint="binary_cross_entropy takes probabilities; for logits use "
                        "binary_cross_entropy_with_logits")
    check_probabilities(target, "target")
    _check_weight_like(weight, "weight", input)
    if weight is not None:
        weight = weight.to(input.dtype)
    bce = _BCETraced if torch.compiler.is_compiling() else _BCE
    return reduce(bce.apply(input, target, weight), reduction)


@float32_under_autocast
def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    r"""Binary cross-entropy on logits, stable for any logit, with ``weight`` and ``pos_weight``.

    .. math::
        \ell_n = -w_n\,\big[p_w\,y_n \log\sigma(x_n) + (1 - y_n)\log(1 - \sigma(x_n))\big]
               = w_n\,\big[(1 - y_n)\,x_n + (1 + (p_w - 1)\,y_n)\,\mathrm{softplus}(-x_n)\big]

    with :math:`\mathrm{softplus}(-x) = -\log\sigma(x) = \max(-x, 0) + \log(1 + e^{-|x|})`,
    which never overflows and never takes the log of 0. ``pos_weight`` (:math:`p_w`) scales
    only the positive term; it broadcasts along the last (class) dimension, one value per label.

    Shape:
        - input: ``(*)``, logits.
        - target: ``(*)``, same shape, floats (usually 0/1).
        - weight: broadcastable to ``(*)``; pos_weight: broadcastable to ``(*)``, e.g. ``(C,)``
          for ``(N, C)`` logits. Neither is differentiable (as in PyTorch).
        - output: ``(*)`` for ``reduction='none'``, ``()`` otherwise (a plain mean).

    Args:
        input: logits :math:`x`.
        target: labels :math:`y`.
        weight: per-element rescaling weight :math:`w`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        pos_weight: weight of the positive examples, e.g. ``#negatives / #positives`` per label.

    Example:
        >>> binary_cross_entropy_with_logits(torch.tensor([0.3, -1.2, 2.0]),
        ...     torch.tensor([1.0, 0.0, 1.0]), pos_weight=torch.tensor(3.0))
        tensor(0.7690)

    Same name, signature and semantics as ``torch.nn.functional.binary_cross_entropy_with_logits``.
    Labels outside ``[0, 1]`` (e.g. ``-1/+1``) are accepted but raise a ``PitfallWarning``.

    Chapter: classification
    """
    _check_binary(input, target, "binary_cross_entropy_with_logits")
    check_reduction(reduction)
    _check_weight_like(weight, "weight", input)
    _check_weight_like(pos_weight, "pos_weight", input)
    if target.numel() and values_visible(target):
        lo, hi = torch.aminmax(target.detach())
        if bool((lo < 0) | (hi > 1)):
            warn_pitfall(
                f"target contains values in [{lo.item():g}, {hi.item():g}], outside [0, 1]; "
                "binary_cross_entropy_with_logits expects 0/1 labels (for -1/+1 labels use "
                "soft_margin_loss, or map them with (y + 1) / 2)"
            )
    input = input.to(target.dtype)  # PyTorch computes in the target's dtype
    weight = None if weight is None else weight.to(input.dtype)
    pos_weight = None if pos_weight is None else pos_weight.to(input.dtype)
    if fast.applies(input, target, weight, pos_weight):
        return fast_classification.binary_cross_entropy_with_logits(input, target, weight, pos_weight, reduction)
    # (1 - y) x + l_w softplus(-x), with l_w = 1 + (p_w - 1) y the weight of the positive term
    l_w = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + l_w * _softplus(-input)
    return reduce(loss if weight is None else loss * weight, reduction)


# --------------------------------------------------------------------------------------------
# logistic losses with -1/+1 labels and multi-label variants


@float32_under_autocast
def soft_margin_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""The logistic loss with :math:`\pm 1` labels, :math:`\log(1 + e^{-y x})`, element-wise.

    .. math::
        \ell_n = \log\big(1 + e^{-y_n x_n}\big) = \mathrm{softplus}(-y_n x_n)

    It is :func:`binary_cross_entropy_with_logits` with labels mapped by :math:`(y + 1)/2`.

    Shape:
        - input: ``(*)``; target: ``(*)``, same shape, values :math:`\pm 1` (a target that
          broadcasts to input's shape is accepted, as in PyTorch, with a :class:`lossbook.PitfallWarning`).
        - output: ``(*)`` for ``reduction='none'``, ``()`` otherwise.

    Args:
        input: scores :math:`x`.
        target: labels :math:`y \in \{-1, +1\}` (floats).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> soft_margin_loss(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0]))
        tensor(0.7201)

    Same name, signature and semantics as ``torch.nn.functional.soft_margin_loss``, except
    that it is computed in the stable softplus form: PyTorch's kernel evaluates
    ``log1p(exp(-y x))``, which is ``inf`` (and its gradient NaN) once :math:`-yx` exceeds
    about 88.7 in float32 or 709 in float64; here the loss is exact there. A target
    containing 0 (0/1 labels) raises a ``PitfallWarning``: such elements contribute the
    constant :math:`\log 2`.

    Chapter: classification
    """
    check_floating(input, "input")
    check_floating(target, "target", hint="soft_margin_loss takes -1/+1 labels as floats")
    check_broadcastable(target, input, names=("target", "input"), hint=_SHAPE_HINT)
    broadcast_with_pitfall(input, target)  # PyTorch broadcasts target to input's shape
    check_reduction(reduction)
    if values_visible(target) and bool((target == 0).any()):
        warn_pitfall(
            "target contains 0; soft_margin_loss expects -1/+1 labels (a 0 label gives the constant "
            "log 2 and no gradient). For 0/1 labels use binary_cross_entropy_with_logits"
        )
    target = target.to(input.dtype)  # PyTorch computes in the input's dtype
    if fast.applies(input, target):
        return fast_classification.soft_margin_loss(input, target, reduction)
    return reduce(_softplus(-target * input), reduction)


def multilabel_soft_margin_loss(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    r"""Multi-label one-vs-all logistic loss: BCE-with-logits averaged over the C labels of a sample.

    .. math::
        \ell_n = -\frac{1}{C}\sum_{c=1}^{C} w_c\,\big[y_{nc}\log\sigma(x_{nc})
                 + (1 - y_{nc})\log\sigma(-x_{nc})\big]

    With ``reduction='mean'`` it equals ``binary_cross_entropy_with_logits(input, target,
    weight)``; the differences are the ``'none'`` output (one value per *sample*, not per
    label) and ``weight``, which is one value per class.

    Shape:
        - input: ``(N, C)`` or ``(C,)``; target: same shape, 0/1 (floats or integers; other
          shapes are broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`).
        - weight: broadcastable to ``input`` (typically ``(C,)``).
        - output: ``(N,)`` (``()`` for ``(C,)`` input) for ``'none'``, ``()`` otherwise.

    Args:
        input: logits.
        target: multi-hot labels.
        weight: per-class rescaling weight.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> multilabel_soft_margin_loss(torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.0, 1.0]]))
        tensor(0.3048)

    Same name, signature and semantics as ``torch.nn.functional.multilabel_soft_margin_loss``.

    Chapter: classification
    """
    check_floating(input, "input")
    check_tensor(target, "target")
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target must hold 0/1 labels as numbers (e.g. target.float()), got {target.dtype}")
    broadcast_with_pitfall(input, target)
    check_reduction(reduction)
    if input.dim() == 0:
        raise ValueError("input is 0-D, but multilabel_soft_margin_loss needs shape (N, C) or (C,)")
    if weight is not None:
        check_tensor(weight, "weight")
        check_broadcastable(weight, input, names=("weight", "input"))
    if target.shape == input.shape and fast.applies(input, target, weight):  # weight broadcasts to input
        return fast_classification.multilabel_soft_margin_loss(input, target, weight, reduction)
    # -[y log s(x) + (1 - y) log s(-x)], log s(x) = -softplus(-x): PyTorch's form, and its inf/NaN
    # pattern (y = 1 at x = -inf gives +inf, not the NaN of (1 - y) x + softplus(-x))
    loss = target * _softplus(-input) + (1 - target) * _softplus(input)
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(dim=-1) / input.shape[-1]
    return reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# margin (hinge) losses


def _batched_scores(input: Tensor, fn: str) -> tuple[Tensor, bool]:
    """``(N, C)`` scores and whether the input was unbatched: ``(C,)``, or ``()`` (one class), as in PyTorch."""
    check_floating(input, "input")
    check_ndim(input, "input", (0, 1, 2), expected="(N, C) or (C,)")
    if input.dim() and input.shape[-1] == 0:
        raise ValueError(f"{fn}: input has shape {format_shape(input)}, with no classes")
    return input.reshape(-1, input.shape[-1] if input.dim() else 1), input.dim() < 2


@float32_under_autocast
def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Multi-class hinge loss (Weston–Watkins / Crammer–Singer style, PyTorch's form).

    .. math::
        \ell_n = \frac{1}{C}\sum_{i \ne y_n} w_{y_n}\,\max\big(0,\ \mathrm{margin} - x_{n,y_n} + x_{n,i}\big)^p

    Every wrong class whose score comes within ``margin`` of the true class's score is
    penalised; once all are ``margin`` below, the loss and its gradient are exactly 0.

    Shape:
        - input: ``(N, C)`` or ``(C,)``; target: ``(N,)`` or ``()``, integer class indices.
        - weight: ``(C,)``.
        - output: ``(N,)`` (``()`` for unbatched input) for ``'none'``, ``()`` otherwise
          (a plain mean over samples, even with ``weight``).

    Args:
        input: class scores.
        target: class indices.
        p: 1 (hinge) or 2 (squared hinge).
        margin: the required gap between the true score and every other score.
        weight: per-class weight, applied by the true class.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> multi_margin_loss(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([3]))
        tensor(0.3250)

    Same name, signature and semantics as ``torch.nn.functional.multi_margin_loss``.

    Chapter: classification
    """
    x, unbatched = _batched_scores(input, "multi_margin_loss")
    check_tensor(target, "target")
    expected = (x.shape[0],) if not unbatched else ()
    if tuple(target.shape) != expected and not (unbatched and tuple(target.shape) == (1,)):
        raise ValueError(
            f"target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
            f"target must hold one class index per sample, shape {format_shape(expected)}"
        )
    C = x.shape[1]
    check_class_indices(target, C)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    check_reduction(reduction)
    if weight is not None:
        check_tensor(weight, "weight")
        check_ndim(weight, "weight", (1,))
        if weight.shape[0] != C:
            raise ValueError(f"weight has shape {format_shape(weight)} but input has {C} classes; "
                             f"weight must have shape ({C},)")
    y = target.reshape(-1, 1).long()
    # the hinge of every wrong class i against the true class y; the true class is not compared with itself
    hinge = torch.relu(x - (x.gather(1, y) - margin)).scatter(1, y, 0.0)
    loss = (hinge if p == 1 else hinge**2).sum(dim=1) / C
    if weight is not None:
        loss = loss * weight.to(x.dtype)[y.squeeze(1)]
    return reduce(loss.squeeze(0) if unbatched and target.dim() == 0 else loss, reduction)


@float32_under_autocast
def multilabel_margin_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Multi-label hinge loss: every target class must score 1 above every non-target class.

    .. math::
        \ell_n = \frac{1}{C}\sum_{j \in Y_n}\ \sum_{i \notin Y_n} \max\big(0,\ 1 - (x_{n,j} - x_{n,i})\big)

    ``target`` does **not** hold a multi-hot vector: row :math:`n` lists the class indices of
    :math:`Y_n` first, followed by ``-1``; everything after the first ``-1`` is ignored
    (``[3, 0, -1, 1]`` means :math:`Y = \{3, 0\}`).

    Shape:
        - input: ``(N, C)`` or ``(C,)``; target: same shape, integer, values in ``[-1, C-1]``.
        - output: ``(N,)`` (``()`` for unbatched input) for ``'none'``, ``()`` otherwise.

    Args:
        input: class scores.
        target: target class indices, padded with ``-1``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> multilabel_margin_loss(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([[3, 0, -1, 1]]))
        tensor(0.8500)

    Same name, signature and semantics as ``torch.nn.functional.multilabel_margin_loss``
    (an index listed twice counts twice, as in PyTorch's kernel).

    Chapter: classification
    """
    x, unbatched = _batched_scores(input, "multilabel_margin_loss")
    check_tensor(target, "target")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold class indices with an integer dtype (e.g. torch.long), got "
            f"{target.dtype}; note that it is not a multi-hot vector but a -1-terminated list of "
            f"class indices, e.g. [3, 0, -1, 1] for classes {{3, 0}}"
        )
    check_same_shape(input, target, hint="target is a -1-terminated list of class indices per sample")
    check_reduction(reduction)
    C = x.shape[1]
    t = target.reshape(x.shape)
    if t.numel() and values_visible(t) and (int(t.min()) < -1 or int(t.max()) >= C):
        bad = int(t.min()) if int(t.min()) < -1 else int(t.max())
        raise ValueError(
            f"target contains {bad}, but its values must be class indices in [0, {C - 1}] or -1 "
            f"(the end-of-list marker)"
        )
    if C > 2 and t.numel() and values_visible(t) and not bool((t < 0).any()) and bool(((t == 0) | (t == 1)).all()):
        warn_pitfall(
            "target holds only 0s and 1s and no -1: it looks like a multi-hot vector, but "
            "multilabel_margin_loss reads it as a list of class indices (0 and 1, repeated). Convert "
            "it: put the indices of the positive labels first and pad with -1"
        )
    listed = (t < 0).cumsum(dim=1) == 0  # True before the first -1
    idx = t.clamp_min(0)
    # the set Y_n: listed indices go to their column, the rest to a spare column C that is dropped
    spare = torch.where(listed, idx, C)
    is_target = torch.zeros(x.shape[0], C + 1, dtype=torch.bool, device=x.device).scatter_(1, spare, True)[:, :C]
    # the longest list (every slot where its length cannot be read: under torch.compile or vmap)
    L = (int(listed.sum(dim=1).max()) if t.numel() else 0) if values_visible(t) else t.shape[1]
    # an unlisted slot j gets score +inf and a target class i gets -inf: their hinge is exactly 0,
    # so no (N, L, C) mask is ever built
    xj = x.gather(1, idx[:, :L]).masked_fill(~listed[:, :L], float("inf"))  # (N, L)
    xi = x.masked_fill(is_target, float("-inf"))  # (N, C)
    z = (1 - xj).unsqueeze(2) + xi.unsqueeze(1)  # (N, L, C)
    # z > 0, not relu: as in PyTorch's kernel, a NaN hinge (inf - inf: infinite scores, or a
    # real infinity meeting the ±inf mask) counts 0 instead of poisoning the sample
    hinge = torch.where(z > 0, z, 0.0)
    loss = hinge.sum(dim=(1, 2)) / C
    return reduce(loss.squeeze(0) if unbatched else loss, reduction)


@float32_under_autocast
def hinge_embedding_loss(
    input: Tensor, target: Tensor, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    r"""Hinge embedding loss: :math:`x` for similar pairs, :math:`\max(0, \Delta - x)` for dissimilar ones.

    .. math::
        \ell_n = \begin{cases} x_n & y_n = 1 \\ \max(0,\ \Delta - x_n) & y_n = -1 \end{cases}

    ``input`` is usually a distance between two embeddings (e.g. an L1 distance). As in
    PyTorch, a target other than :math:`\pm 1` gets both terms.

    Shape:
        - input: ``(*)``; target: ``(*)``, same shape, values :math:`\pm 1` (other shapes are
          broadcast as in PyTorch, with a :class:`lossbook.PitfallWarning`).
        - output: the broadcast shape for ``'none'``, ``()`` otherwise.

    Args:
        input: distances (or scores) :math:`x`.
        target: :math:`+1` (similar) or :math:`-1` (dissimilar).
        margin: :math:`\Delta`, the distance beyond which dissimilar pairs cost nothing.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> hinge_embedding_loss(torch.tensor([0.3, 0.4]), torch.tensor([1.0, -1.0]))
        tensor(0.4500)

    Same name, signature and semantics as ``torch.nn.functional.hinge_embedding_loss``.

    Chapter: classification
    """
    check_floating(input, "input")
    check_tensor(target, "target")
    broadcast_with_pitfall(input, target)
    check_reduction(reduction)
    target = target.to(input.dtype)  # PyTorch computes in the input's dtype
    zeros = torch.zeros_like(input)
    loss = torch.where(target != 1, (margin - input).clamp_min(0), zeros) + torch.where(
        target != -1, input, zeros
    )
    return reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# focal losses


def sigmoid_focal_loss(
    inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"
) -> Tensor:
    r"""The binary (sigmoid) focal loss of RetinaNet, torchvision's convention.

    .. math::
        \ell_n = \alpha_t\,(1 - p_t)^{\gamma}\,\mathrm{BCE}(x_n, y_n), \quad
        p_t = p\,y + (1 - p)(1 - y), \quad \alpha_t = \alpha\,y + (1 - \alpha)(1 - y),
        \quad p = \sigma(x)

    :math:`(1 - p_t)^\gamma` down-weights easy examples; :math:`\alpha_t` weights positives by
    :math:`\alpha` and negatives by :math:`1 - \alpha` (a negative ``alpha`` disables it).
    At :math:`\gamma = 0`, :math:`\alpha < 0` it is BCE-with-logits.

    Shape:
        - inputs: ``(*)``, logits; targets: ``(*)``, same shape, 0/1 floats.
        - output: ``(*)`` for ``'none'`` (the default, as in torchvision), ``()`` otherwise.

    Args:
        inputs: logits.
        targets: binary labels (floats).
        alpha: weight of the positives in ``[0, 1]``, or ``-1`` for none.
        gamma: focusing parameter :math:`\gamma \ge 0`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> sigmoid_focal_loss(torch.tensor([2.0, -1.0, 0.5, -3.0]),
        ...     torch.tensor([1.0, 1.0, 0.0, 0.0]), reduction="mean")
        tensor(0.1148)

    Same name, signature and semantics as ``torchvision.ops.sigmoid_focal_loss``
    (Lin et al., 2017). Unlike torchvision, shapes, dtypes, ``gamma >= 0`` and ``alpha <= 1``
    are checked.

    Chapter: classification
    """
    _check_binary(inputs, targets, "sigmoid_focal_loss")
    check_reduction(reduction)
    check_positive(gamma, "gamma", strict=False)  # NaN too
    if not alpha <= 1:  # NaN too
        raise ValueError(f"alpha must be in [0, 1] (or negative to disable it), got {alpha}")
    p = torch.sigmoid(inputs)
    ce = binary_cross_entropy_with_logits(inputs, targets.to(inputs.dtype), reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return reduce(loss, reduction)


def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    alpha: Tensor | None = None,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Multi-class (softmax) focal loss of RetinaNet, with per-class α and cross-entropy's conventions.

    .. math::
        \ell_n = -\,\alpha_{y_n}\,w_{y_n}\,(1 - p_{n,y_n})^{\gamma}\,\log p_{n,y_n},
        \qquad p_n = \mathrm{softmax}(x_n)

    and, for ``reduction='mean'``,

    .. math::
        \ell = \frac{\sum_n \ell_n}{\sum_{n:\,y_n \ne \mathrm{ignore}} w_{y_n}}

    ``weight`` follows ``cross_entropy`` exactly (it is in the numerator and the denominator,
    so it re-balances classes without changing the loss scale); ``alpha`` multiplies the
    numerator only, as the α of the paper does (so a single global α is just a loss scale).
    Targets equal to ``ignore_index`` contribute 0 and are left out of the denominator; if
    every target is ignored the mean is NaN, as in ``cross_entropy``. With ``gamma=0`` and
    ``alpha=None`` this is exactly ``cross_entropy(input, target, weight, ignore_index=...)``.

    Shape:
        - input: ``(N, C)``, ``(N, C, d1, ..., dK)`` or ``(C,)``, logits.
        - target: ``(N,)``, ``(N, d1, ..., dK)`` or ``()``, integer class indices.
        - alpha, weight: ``(C,)``.
        - output: the shape of ``target`` for ``'none'``, ``()`` otherwise.

    Args:
        input: logits.
        target: class indices.
        gamma: focusing parameter :math:`\gamma \ge 0`.
        alpha: per-class factor :math:`\alpha_c` (e.g. inverse class frequency); ``None`` for 1.
        weight: per-class weight of a weighted mean, as in ``cross_entropy``.
        ignore_index: target value that is ignored.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> focal_loss(torch.tensor([[2.0, 1.0, 0.1]]), torch.tensor([0]), gamma=0.0)
        tensor(0.4170)

    Beyond PyTorch and torchvision (which only has the sigmoid version); the formula is that of
    Lin et al. (2017) with softmax probabilities, the arguments follow ``cross_entropy``.

    Chapter: classification
    """
    check_floating(input, "input")
    if input.dim() == 0:
        raise ValueError("input is 0-D, but focal_loss needs logits of shape (N, C, ...) or (C,)")
    unbatched = input.dim() == 1
    x = input.unsqueeze(0) if unbatched else input
    check_tensor(target, "target")
    t = target.unsqueeze(0) if unbatched else target
    expected = (x.shape[0],) + tuple(x.shape[2:])
    if tuple(t.shape) != expected:
        raise ValueError(
            f"target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
            f"focal_loss takes class-index targets of shape {format_shape(expected if not unbatched else ())} "
            f"(probability targets are not supported)"
        )
    C = x.shape[1]
    check_class_indices(target, C, ignore_index=ignore_index)
    check_reduction(reduction)
    check_positive(gamma, "gamma", strict=False)  # NaN too
    for name, w in (("alpha", alpha), ("weight", weight)):
        if w is not None:
            check_tensor(w, name)
            if w.shape != (C,):
                raise ValueError(f"{name} has shape {format_shape(w)} but input has {C} classes; "
                                 f"{name} must have shape ({C},)")
    if alpha is not None and values_visible(alpha) and not bool((alpha >= 0).all()):
        bad = alpha[~(alpha >= 0)][0].item()
        raise ValueError(f"alpha must hold non-negative per-class factors, but it contains {bad}")
    t = t.long()  # torch accepts uint8, int32, ... class indices; gather needs int64
    valid = t != ignore_index
    y = t.masked_fill(~valid, 0)  # ignore_index may be -100 or >= C: never index with it
    loss = cross_entropy(x, t, ignore_index=ignore_index, reduction="none")  # -log p_t, 0 where ignored
    logpt = -loss
    if gamma != 0:
        # 1 - p_t as -expm1(log p_t): exact even when p_t is close to 1. Where p_t is exactly 1 the
        # factor is 0; computing it from a safe base keeps pow's gradient (inf for gamma < 1) out
        one_minus = -torch.expm1(logpt)
        saturated = one_minus <= 0
        factor = torch.where(saturated, 0.0, one_minus.masked_fill(saturated, 1) ** gamma)
        loss = loss * factor
    factor = None
    if alpha is not None:
        factor = torch.where(valid, alpha.to(loss.dtype)[y], 0)
    denom = valid.to(loss.dtype)
    if weight is not None:  # where, not * valid: an infinite weight of an ignored target is not inf * 0
        w_t = torch.where(valid, weight.to(loss.dtype)[y], 0)
        factor = w_t if factor is None else factor * w_t
        denom = denom * w_t
    if factor is not None:
        loss = loss * factor
    loss = loss.masked_fill(~valid, 0)
    if unbatched:
        loss, denom = loss.squeeze(0), denom.squeeze(0)
    return reduce(loss, reduction, weight=denom)
