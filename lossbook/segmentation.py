r"""Segmentation losses: the Dice / Jaccard / Tversky family from one mechanism, and Lovász.

A segmentation model predicts, for every pixel (voxel) of an image, a score per class. The
per-pixel cross-entropy (:func:`lossbook.cross_entropy` with K-dimensional inputs) treats each
pixel as a separate classification; the *overlap* losses here compare whole masks instead.

Every overlap loss is a few lines on top of one private helper, :func:`_tp_fp_fn`, that sums
soft true positives, false positives and false negatives over the chosen axes (MONAI's
``compute_tp_fp_fn`` habit), and one score, the Tversky index

.. math::
    T_{\alpha,\beta} = \frac{TP + s_n}{TP + \alpha\,FP + \beta\,FN + s_d}

Dice is :math:`T_{1/2,1/2}`, Jaccard (IoU) is :math:`T_{1,1}`, and the generalised Dice loss is
Dice of class-weighted sums. The arguments, defaults and values follow MONAI
(``monai.losses.DiceLoss``, ``TverskyLoss``, ``GeneralizedDiceLoss``, ``DiceCELoss``), as
functions. The Lovász losses follow Berman et al. (2018) and their reference code's conventions.

Chapter: segmentation
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import fast
from ._reduction import check_reduction, reduce
from ._validation import (
    check_choice,
    check_class_indices,
    check_floating,
    check_ndim,
    check_tensor,
    format_shape,
    warn_pitfall,
)
from .classification import binary_cross_entropy_with_logits
from .cross_entropy import cross_entropy
from .fast import segmentation as fast_segmentation
from .softmax import softmax as _softmax

__all__ = [
    "dice_loss",
    "tversky_loss",
    "generalized_dice_loss",
    "dice_ce_loss",
    "lovasz_softmax_loss",
    "lovasz_hinge_loss",
]

_LAYOUT = "(N, C, *spatial), e.g. (N, C, H, W) or (N, C, D, H, W)"


_is_batched = getattr(torch._C._functorch, "is_batchedtensor", lambda x: False)


def _eager(x: Tensor) -> bool:
    """Data-dependent checks (values, not shapes) of ``x`` run only outside torch.compile's tracing
    and outside ``torch.vmap`` (where ``bool(tensor)`` is not defined)."""
    return not torch.compiler.is_compiling() and not _is_batched(x)


# --------------------------------------------------------------------------------------------
# the shared preparation: activation, target layout, ignore mask, background channel


def _activate(input: Tensor, sigmoid: bool, softmax: bool, fn: str) -> Tensor:
    if sigmoid and softmax:
        raise ValueError(f"{fn}: sigmoid=True and softmax=True are incompatible; choose one activation")
    if sigmoid:
        return torch.sigmoid(input)
    if softmax:
        if input.shape[1] == 1:  # softmax of one channel is 1 everywhere; MONAI skips it too
            warn_pitfall(f"{fn}: softmax=True on a single-channel input is ignored (its softmax is 1 "
                         "everywhere); for one foreground channel use sigmoid=True")
            return input
        return _softmax(input, 1)
    if _eager(input) and input.numel():
        lo, hi = torch.aminmax(input.detach())
        if bool((lo < 0) | (hi > 1)):
            warn_pitfall(
                f"{fn}: input contains values in [{lo.item():.3g}, {hi.item():.3g}], outside [0, 1], "
                "but sigmoid=False and softmax=False, so it is used as probabilities; for logits pass "
                "softmax=True (or sigmoid=True)")
    return input


def _one_hot(index: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """(N, 1, *) class indices -> (N, C, *) one-hot in ``dtype``."""
    classes = torch.arange(num_classes, device=index.device).view(1, -1, *([1] * (index.dim() - 2)))
    return (index == classes).to(dtype)


def _ignore_mask(target: Tensor, ignore_index: int | None, dtype: torch.dtype) -> Tensor | None:
    """MONAI's rule: 1 where a pixel counts, 0 where it is ignored, shape (N, 1, *).

    Index targets compare with ``ignore_index``; one-hot targets drop the pixels of class
    ``ignore_index`` if it is a valid class, else the pixels whose one-hot row is all zero.
    """
    if ignore_index is None:
        return None
    if target.shape[1] == 1:
        return (target != ignore_index).to(dtype)
    if 0 <= ignore_index < target.shape[1]:
        return 1 - target[:, ignore_index:ignore_index + 1].to(dtype)
    return (target.sum(1, keepdim=True) > 0).to(dtype)


def _check_layout(input: Tensor, target: Tensor, fn: str) -> None:
    check_floating(input, "input")
    check_tensor(target, "target")
    check_ndim(input, "input", min_ndim=3, expected=f"at least 3-D, {_LAYOUT}")
    C = input.shape[1]
    if target.dim() != input.dim() or target.shape[0] != input.shape[0] or target.shape[2:] != input.shape[2:]:
        hint = (" (a class-index map needs its channel axis: use target.unsqueeze(1))"
                if target.shape == input.shape[:1] + input.shape[2:] else "")
        raise ValueError(
            f"{fn}: target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
            f"target must be (N, 1, *spatial) class indices or (N, C, *spatial) one-hot{hint}")
    if target.shape[1] not in (1, C):
        raise ValueError(
            f"{fn}: target has {target.shape[1]} channels but input has C={C}; target must have 1 "
            f"channel (class indices) or C={C} (one-hot)")


def _prepare(input: Tensor, target: Tensor, *, include_background: bool, to_onehot_y: bool, sigmoid: bool,
             softmax: bool, ignore_index: int | None, fn: str) -> tuple[Tensor, Tensor]:
    """Probabilities and a one-hot target of the same shape, ignored pixels zeroed in both."""
    _check_layout(input, target, fn)
    probs = _activate(input, sigmoid, softmax, fn)
    mask = _ignore_mask(target, ignore_index, input.dtype)
    onehot = _onehot_target(input, target, to_onehot_y, ignore_index, fn)
    if not include_background and input.shape[1] > 1:  # MONAI: ignored (with a warning) for one channel
        probs, onehot = probs[:, 1:], onehot[:, 1:]
    if mask is not None:
        probs, onehot = probs * mask, onehot * mask
    return probs, onehot


def _onehot_target(input: Tensor, target: Tensor, to_onehot_y: bool, ignore_index: int | None, fn: str) -> Tensor:
    """The target as one channel per class of ``input``, in its dtype (class indices one-hot encoded)."""
    C = input.shape[1]
    if C == 1:  # one foreground channel: the target is the binary mask itself (MONAI ignores to_onehot_y)
        return target.to(input.dtype)
    if target.shape[1] == 1:
        if not to_onehot_y:
            raise ValueError(
                f"{fn}: target has shape {format_shape(target)}, one channel of class indices, but input "
                f"has C={C} channels; pass to_onehot_y=True (MONAI's convention) or a one-hot target "
                f"of shape {format_shape(input)}")
        index = target.long() if target.is_floating_point() else target
        if ignore_index is not None and not 0 <= ignore_index < C:
            index = torch.where(index == ignore_index, 0, index)  # masked out by _prepare
        if _eager(index):
            check_class_indices(index, C)
        return _one_hot(index, C, input.dtype)
    if to_onehot_y:
        raise ValueError(
            f"{fn}: to_onehot_y=True expects class indices of shape (N, 1, *spatial), but target "
            f"has shape {format_shape(target)}, already one channel per class; pass to_onehot_y=False")
    return target.to(input.dtype)


def _reduce_axes(x: Tensor, batch: bool) -> list[int]:
    return ([0] if batch else []) + list(range(2, x.dim()))


# --------------------------------------------------------------------------------------------
# the one mechanism


def _tp_fp_fn(probs: Tensor, target: Tensor, dims: list[int], squared: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Soft true positives, false positives and false negatives summed over ``dims``.

    TP = Σ p y, FP = Σ p^q - TP, FN = Σ y^q - TP with q = 2 for squared denominators, else 1
    (for hard labels and q = 1: FP = Σ p (1 - y), FN = Σ (1 - p) y).
    """
    tp = (probs * target).sum(dims)
    if squared:
        probs, target = probs * probs, target * target
    return tp, probs.sum(dims) - tp, target.sum(dims) - tp


def _counts(input: Tensor, target: Tensor, *, batch: bool, squared: bool = False, **prepare) -> tuple[Tensor, ...]:
    """TP, FP and FN of ``input`` against ``target``: :func:`_prepare`, then :func:`_tp_fp_fn` over the
    spatial axes (and the batch with ``batch=True``). ``prepare`` holds ``_prepare``'s keywords.

    Large CPU inputs with ``softmax=True`` (no ``ignore_index``, no squared denominators) take the
    fast path ``lossbook.fast.segmentation``: the softmax and the two sums in one step, with a
    hand-written backward. It is tested equal to these lines.
    """
    if (prepare["softmax"] and not (prepare["sigmoid"] or squared) and prepare["ignore_index"] is None
            and input.dim() >= 3 and input.shape[1] > 1 and fast.applies(input, target)):
        _check_layout(input, target, prepare["fn"])
        onehot = _onehot_target(input, target, prepare["to_onehot_y"], None, prepare["fn"])
        dims = _reduce_axes(input, batch)
        tp, sp = fast_segmentation.softmax_counts(input, onehot, dims)
        sy = onehot.sum(dims)
        if not prepare["include_background"]:
            tp, sp, sy = tp[..., 1:], sp[..., 1:], sy[..., 1:]
        return tp, sp - tp, sy - tp
    probs, onehot = _prepare(input, target, **prepare)
    return _tp_fp_fn(probs, onehot, _reduce_axes(probs, batch), squared)


def _tversky_index(tp: Tensor, fp: Tensor, fn: Tensor, alpha: float, beta: float, smooth_nr: float,
                   smooth_dr: float) -> Tensor:
    """(TP + s_n) / (TP + α FP + β FN + s_d): Dice at α = β = ½, Jaccard at α = β = 1."""
    return (tp + smooth_nr) / (tp + alpha * fp + beta * fn + smooth_dr)


def _class_weight(weight, f: Tensor) -> Tensor | None:
    """MONAI's ``weight`` of DiceLoss: a scalar or one value per (kept) class, applied to f."""
    if weight is None or f.shape[-1] == 1:  # MONAI ignores it when a single class remains
        return None
    w = torch.as_tensor(weight, dtype=f.dtype, device=f.device)
    if w.dim() == 0:
        w = w.expand(f.shape[-1])
    if w.shape != f.shape[-1:]:
        raise ValueError(
            f"weight has shape {format_shape(w)} but there are {f.shape[-1]} classes in the loss; give one "
            "weight per class (without the background class 0 if include_background=False)")
    if _eager(w) and bool((w < 0).any()):
        raise ValueError(f"weight must be >= 0, got {w.tolist()}")
    return w


# --------------------------------------------------------------------------------------------
# the overlap losses


def dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    squared_pred: bool = False,
    jaccard: bool = False,
    reduction: str = "mean",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    weight: Sequence[float] | float | Tensor | None = None,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Soft Dice loss (or soft Jaccard loss), one value per sample and class, MONAI's semantics.

    .. math::
        \ell_{n,c} = 1 - \frac{2\,TP + s_n}{2\,TP + FP + FN + s_d}, \qquad
        TP = \sum_i p_i y_i,\; FP = \sum_i p_i^q - TP,\; FN = \sum_i y_i^q - TP

    summed over the pixels :math:`i` of sample :math:`n` and class :math:`c` (and over the batch
    with ``batch=True``), with :math:`q = 2` if ``squared_pred`` else 1. That is the Tversky
    index at :math:`\alpha = \beta = \tfrac12` with the smoothing halved. ``jaccard=True`` gives
    :math:`1 - (2TP + s_n) / (2TP + 2FP + 2FN + s_d)`, the soft IoU loss. Both prediction and
    target empty give :math:`1 - s_n/s_d = 0` (NaN with no smoothing).

    Shape:
        - input: ``(N, C, *spatial)``, probabilities, or logits with ``sigmoid``/``softmax``.
        - target: ``(N, C, *spatial)`` one-hot, or ``(N, 1, *spatial)`` class indices with
          ``to_onehot_y=True`` (an integer or integral float dtype).
        - output: ``(N, C')`` for ``reduction='none'`` (``(C',)`` with ``batch=True``), where
          :math:`C' = C - 1` without the background; ``()`` otherwise.

    Args:
        input: predictions.
        target: ground truth.
        include_background: keep channel 0 (``False`` drops it from the loss).
        to_onehot_y: convert class-index targets to one-hot with ``C`` classes.
        sigmoid: apply a sigmoid to ``input`` first.
        softmax: apply a softmax over the channels first.
        squared_pred: square predictions and targets in the denominator (V-Net's form).
        jaccard: the Jaccard (IoU) loss instead of Dice.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` over samples and classes.
        smooth_nr, smooth_dr: constants added to the numerator and the denominator.
        batch: sum TP, FP, FN over the batch too (one "global" Dice per class).
        weight: a scalar or one weight per kept class, multiplying each class's loss (ignored
            when a single class remains, as in MONAI); the mean stays a plain mean.
        ignore_index: a label whose pixels are masked out of prediction and target, e.g. 255.

    Example:
        >>> p = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])  # (N=1, C=1, 4 pixels)
        >>> y = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
        >>> dice_loss(p, y, smooth_nr=1.0, smooth_dr=1.0)
        tensor(0.4000)

    Follows ``monai.losses.DiceLoss`` (values, defaults, the ignore mask); inputs outside
    [0, 1] without an activation raise a ``PitfallWarning``.

    Chapter: segmentation
    """
    check_reduction(reduction)
    tp, fp, fn = _counts(input, target, batch=batch, squared=squared_pred, include_background=include_background,
                         to_onehot_y=to_onehot_y, sigmoid=sigmoid, softmax=softmax, ignore_index=ignore_index,
                         fn="dice_loss")
    a = 1.0 if jaccard else 0.5
    f = 1 - _tversky_index(tp, fp, fn, a, a, smooth_nr / 2, smooth_dr / 2)
    w = _class_weight(weight, f)
    return reduce(f if w is None else f * w, reduction)


def tversky_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    alpha: float = 0.5,
    beta: float = 0.5,
    reduction: str = "mean",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Tversky loss: Dice with separate weights on false positives and false negatives.

    .. math::
        \ell_{n,c} = 1 - \frac{TP + s_n}{TP + \alpha\,FP + \beta\,FN + s_d}

    with soft :math:`TP, FP, FN` as in :func:`dice_loss`. :math:`\alpha = \beta = \tfrac12` is
    Dice (up to the smoothing constants), :math:`\alpha = \beta = 1` Jaccard; a larger
    :math:`\beta` penalises missed pixels more and raises recall on small structures.

    Shape:
        - input, target: as in :func:`dice_loss`.
        - output: ``(N, C')`` for ``reduction='none'`` (``(C',)`` with ``batch=True``); ``()``
          otherwise.

    Args:
        input: predictions.
        target: ground truth.
        include_background, to_onehot_y, sigmoid, softmax, batch, ignore_index: as in :func:`dice_loss`.
        alpha: the weight of false positives.
        beta: the weight of false negatives.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        smooth_nr, smooth_dr: constants added to the numerator and the denominator.

    Example:
        >>> p = torch.tensor([[[0.9, 0.8, 0.1, 0.2]]])
        >>> y = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
        >>> tversky_loss(p, y, alpha=0.3, beta=0.7)
        tensor(0.5000)

    Follows ``monai.losses.TverskyLoss`` (α weights false positives, β false negatives).

    Chapter: segmentation
    """
    check_reduction(reduction)
    tp, fp, fn = _counts(input, target, batch=batch, include_background=include_background, to_onehot_y=to_onehot_y,
                         sigmoid=sigmoid, softmax=softmax, ignore_index=ignore_index, fn="tversky_loss")
    return reduce(1 - _tversky_index(tp, fp, fn, alpha, beta, smooth_nr, smooth_dr), reduction)


def generalized_dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    w_type: str = "square",
    reduction: str = "mean",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Generalised Dice loss: one Dice over all classes, each weighted by its inverse volume.

    .. math::
        \ell_n = 1 - \frac{2 \sum_c w_c\,TP_c + s_n}{\sum_c w_c\,(2\,TP_c + FP_c + FN_c) + s_d},
        \qquad w_c = \frac{1}{(\sum_i y_{ic})^2}\ (\texttt{square}),\ \frac{1}{\sum_i y_{ic}}\
        (\texttt{simple}),\ 1\ (\texttt{uniform})

    A class absent from the target would get an infinite weight; it gets the largest finite
    weight of the sample instead (of the batch with ``batch=True``), as in MONAI. The weights
    depend only on the target (no gradient).

    Shape:
        - input, target: as in :func:`dice_loss`.
        - output: ``(N,)`` for ``reduction='none'`` (``()`` with ``batch=True``); ``()`` otherwise.

    Args:
        input: predictions.
        target: ground truth.
        include_background, to_onehot_y, sigmoid, softmax, batch: as in :func:`dice_loss`.
        w_type: ``'square'`` | ``'simple'`` | ``'uniform'``, the class weights.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` over samples.
        smooth_nr, smooth_dr: constants added to the numerator and the denominator.
        ignore_index: pixels to mask out, as in :func:`dice_loss` (MONAI's GeneralizedDiceLoss
            has no such argument; this is its DiceLoss rule).

    Example:
        >>> p = torch.tensor([[[0.9, 0.2, 0.1, 0.1], [0.1, 0.8, 0.9, 0.9]]])  # (1, 2, 4)
        >>> y = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]]])
        >>> generalized_dice_loss(p, y)
        tensor(0.1894)

    Follows ``monai.losses.GeneralizedDiceLoss`` (Sudre et al. 2017), except that the weights are
    computed in the input's dtype (float32 at least), where MONAI always uses float32.

    Chapter: segmentation
    """
    check_reduction(reduction)
    check_choice(w_type, "w_type", ("square", "simple", "uniform"))
    probs, onehot = _prepare(input, target, include_background=include_background, to_onehot_y=to_onehot_y,
                             sigmoid=sigmoid, softmax=softmax, ignore_index=ignore_index,
                             fn="generalized_dice_loss")
    dims = _reduce_axes(probs, batch)
    tp, fp, fn = _tp_fp_fn(probs, onehot, dims)
    acc = torch.promote_types(input.dtype, torch.float32)  # 1/volume² underflows in float16
    volume = onehot.sum(dims).to(acc)
    w = {"square": volume**-2, "simple": volume**-1, "uniform": torch.ones_like(volume)}[w_type]
    finite = torch.isfinite(w)
    w = torch.where(finite, w, 0)
    w = torch.where(finite, w, w.amax(-1, keepdim=True))  # an empty class weighs like the rarest one
    tp, fp, fn = ((w * v.to(acc)).sum(-1) for v in (tp, fp, fn))
    f = 1 - _tversky_index(tp, fp, fn, 0.5, 0.5, smooth_nr / 2, smooth_dr / 2)
    return reduce(f.to(input.dtype), reduction)


def dice_ce_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    squared_pred: bool = False,
    jaccard: bool = False,
    reduction: str = "mean",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Dice plus per-pixel cross-entropy: :math:`\lambda_{dice}\,\ell_{Dice} + \lambda_{ce}\,\ell_{CE}`.

    .. math::
        \ell = \lambda_{dice}\,\mathrm{dice\_loss}(x, y) + \lambda_{ce}\,\mathrm{CE}(x, y)

    Cross-entropy always reads ``input`` as logits (:func:`lossbook.cross_entropy` with
    K-dimensional input, class weights ``weight`` and ``label_smoothing``; BCE-with-logits with
    ``pos_weight=weight`` for a single channel); the Dice term takes the activation flags
    (usually ``softmax=True``) and ``weight`` without its background entry if
    ``include_background=False``.

    Shape:
        - input: ``(N, C, *spatial)`` logits; target: ``(N, 1, *spatial)`` class indices (with
          ``to_onehot_y=True``) or ``(N, C, *spatial)`` one-hot.
        - output: ``()``.

    Args:
        input: logits.
        target: ground truth.
        include_background, to_onehot_y, sigmoid, softmax, squared_pred, jaccard, smooth_nr,
            smooth_dr, batch: the Dice term's options, as in :func:`dice_loss`.
        reduction: ``'mean'`` | ``'sum'`` (for both terms).
        weight: ``(C,)`` class weights of the cross-entropy (and of Dice).
        lambda_dice, lambda_ce: the weights of the two terms (``>= 0``).
        label_smoothing: the cross-entropy's label smoothing.
        ignore_index: a label masked out of both terms (class-index targets only); MONAI's
            DiceCELoss has no such argument.

    Example:
        >>> x = torch.tensor([[[2.0, -1.0], [-1.0, 1.0]]])  # (N=1, C=2, 2 pixels)
        >>> y = torch.tensor([[[0, 1]]])
        >>> dice_ce_loss(x, y, to_onehot_y=True, softmax=True)
        tensor(0.1712)

    Follows ``monai.losses.DiceCELoss``.

    Chapter: segmentation
    """
    check_reduction(reduction, ("mean", "sum"))
    if lambda_dice < 0 or lambda_ce < 0:
        raise ValueError(f"lambda_dice and lambda_ce must be >= 0, got {lambda_dice} and {lambda_ce}")
    _check_layout(input, target, "dice_ce_loss")
    index_target = target.shape[1] == 1 and input.shape[1] > 1
    if ignore_index is not None and not index_target:
        raise ValueError("dice_ce_loss: ignore_index needs class-index targets of shape (N, 1, *spatial); "
                         f"target has shape {format_shape(target)}")
    dice_weight = weight[1:] if weight is not None and not include_background else weight
    dice = dice_loss(input, target, include_background=include_background, to_onehot_y=to_onehot_y,
                     sigmoid=sigmoid, softmax=softmax, squared_pred=squared_pred, jaccard=jaccard,
                     reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch,
                     weight=dice_weight, ignore_index=ignore_index)
    if input.shape[1] == 1:
        ce = binary_cross_entropy_with_logits(input, target.to(input.dtype), reduction=reduction,
                                              pos_weight=weight)
    elif index_target:
        index = target.squeeze(1).long()
        ce = cross_entropy(input, index, weight, -100 if ignore_index is None else ignore_index, reduction,
                           label_smoothing)
    else:
        ce = cross_entropy(input, target.to(input.dtype), weight, reduction=reduction,
                           label_smoothing=label_smoothing)
    return lambda_dice * dice + lambda_ce * ce


# --------------------------------------------------------------------------------------------
# Lovász: the convex extension of the Jaccard loss, on sorted errors


def _lovasz_grad(fg_sorted: Tensor) -> Tensor:
    """Δ J at each prefix of the pixels sorted by decreasing error (Berman et al., Alg. 1).

    The Jaccard loss of "the first k pixels are wrong" minus that of the first k - 1, along the
    last axis; ``fg_sorted`` is 1 for the class's pixels, 0 elsewhere (and for ignored pixels).
    """
    gts = fg_sorted.sum(-1, keepdim=True)
    intersection = gts - fg_sorted.cumsum(-1)
    union = gts + (1 - fg_sorted).cumsum(-1)
    jaccard = 1 - intersection / union
    return jaccard.diff(dim=-1, prepend=torch.zeros_like(jaccard[..., :1]))


def _lovasz(errors: Tensor, fg: Tensor) -> Tensor:
    """The Lovász extension of the Jaccard loss at ``errors``, along the last axis.

    Ignored pixels carry the error -inf and fg 0: they sort last and add nothing.
    """
    errors_sorted, perm = errors.sort(dim=-1, descending=True)
    acc = torch.promote_types(errors.dtype, torch.float32)  # the cumulative sums of a large image
    grad = _lovasz_grad(fg.to(acc).gather(-1, perm)).to(errors.dtype)
    return (errors_sorted.clamp_min(0) * grad).sum(-1)


def _index_or_onehot(input: Tensor, target: Tensor, fn: str) -> tuple[Tensor, Tensor | None]:
    """(N, C, P) one-hot float target (ignored pixels: all zero) and the valid mask, from any layout."""
    check_tensor(target, "target")
    N, C = input.shape[:2]
    if target.shape == input.shape and target.is_floating_point() and C > 1:
        return target.reshape(N, C, -1).to(input.dtype), None
    if target.dim() == input.dim() and target.shape[1] == 1:
        target = target.squeeze(1)
    if target.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(
            f"{fn}: target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
            f"target must be class indices of shape (N, *spatial) = {format_shape(input.shape[:1] + input.shape[2:])} "
            "(or (N, 1, *spatial)), or a one-hot float tensor of the input's shape")
    return target.reshape(N, 1, -1), target.reshape(N, 1, -1)


def lovasz_softmax_loss(
    input: Tensor,
    target: Tensor,
    *,
    classes: str | Sequence[int] = "present",
    per_image: bool = False,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Lovász-softmax loss: a convex surrogate of 1 − IoU for multi-class segmentation.

    .. math::
        \ell = \frac{1}{|\mathcal{C}|} \sum_{c \in \mathcal{C}} \overline{\Delta_{J_c}}(m_c),
        \qquad m_{ic} = |y_{ic} - p_{ic}|, \qquad
        \overline{\Delta_J}(m) = \sum_{k} m_{(k)}\,\big(\Delta_J(\{(1)..(k)\}) - \Delta_J(\{(1)..(k-1)\})\big)

    where :math:`m_{(1)} \ge m_{(2)} \ge \dots` are the errors sorted in decreasing order and
    :math:`\Delta_J(S) = 1 - |F_c \setminus S| / |F_c \cup S|` is the Jaccard loss of predicting
    the pixels :math:`S` wrong (:math:`F_c` the pixels of class :math:`c`). On one-hot
    predictions it equals :math:`1 - \mathrm{IoU}` averaged over the classes.

    Shape:
        - input: ``(N, C, *spatial)``, probabilities (after a softmax), :math:`C \ge 2`.
        - target: ``(N, *spatial)`` or ``(N, 1, *spatial)`` class indices, or ``(N, C, *spatial)``
          one-hot floats.
        - output: ``()``.

    Args:
        input: class probabilities.
        target: ground truth.
        classes: ``'present'`` (average over the classes present in the target), ``'all'``, or a
            list of class indices.
        per_image: compute the loss per image and average (else over the whole batch as one
            image).
        ignore_index: a label to leave out (e.g. 255); for one-hot targets, pixels with an
            all-zero row are left out when it is given.

    Example:
        >>> p = torch.tensor([[[0.8, 0.3, 0.1], [0.2, 0.7, 0.9]]])  # (N=1, C=2, 3 pixels)
        >>> lovasz_softmax_loss(p, torch.tensor([[0, 1, 1]]))
        tensor(0.2333)

    Follows the authors' ``lovasz_softmax`` (Berman et al. 2018): a class absent from the target
    is skipped with ``'present'``, and with no class to average the loss is 0. An image whose
    pixels are all ignored counts as 0 in the per-image mean.

    Chapter: segmentation
    """
    check_floating(input, "input")
    check_ndim(input, "input", min_ndim=2, expected=f"at least 2-D, {_LAYOUT}")
    N, C = input.shape[:2]
    if C < 2:
        raise ValueError(f"lovasz_softmax_loss needs C >= 2 class probabilities, got input of shape "
                         f"{format_shape(input)}; for one foreground channel use lovasz_hinge_loss on logits")
    if _eager(input) and input.numel():
        lo, hi = torch.aminmax(input.detach())
        if bool((lo < 0) | (hi > 1)):
            warn_pitfall(f"lovasz_softmax_loss: input contains values in [{lo.item():.3g}, {hi.item():.3g}], "
                         "outside [0, 1]; it takes probabilities: apply lossbook.softmax(logits, 1) first")
    if not isinstance(classes, str):
        classes = list(classes)
    elif classes not in ("present", "all"):
        raise ValueError(f"classes must be 'present', 'all' or a list of class indices; got {classes!r}")
    fg, index = _index_or_onehot(input, target, "lovasz_softmax_loss")
    valid = None
    if index is not None:
        if _eager(index):
            check_class_indices(index, C, ignore_index=ignore_index)
        fg = _one_hot(index, C, input.dtype)
        valid = None if ignore_index is None else index != ignore_index
    elif ignore_index is not None:
        valid = fg.sum(1, keepdim=True) > 0
    probs = input.reshape(N, C, -1)
    errors = (fg - probs).abs()
    if valid is not None:
        errors, fg = errors.masked_fill(~valid, float("-inf")), fg * valid
    if not per_image:  # the batch as one image
        errors, fg = errors.transpose(0, 1).reshape(1, C, -1), fg.transpose(0, 1).reshape(1, C, -1)
    loss = _lovasz(errors, fg)  # (images, C)
    if isinstance(classes, list):
        loss = loss[:, classes].mean(-1)
    else:
        use = (fg.sum(-1) > 0).to(loss.dtype) if classes == "present" else torch.ones_like(loss)
        loss = (loss * use).sum(-1) / use.sum(-1).clamp_min(1)
    return loss.mean()


def lovasz_hinge_loss(
    input: Tensor,
    target: Tensor,
    *,
    per_image: bool = True,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Lovász hinge loss: the Lovász extension of the binary Jaccard loss on hinge errors of logits.

    .. math::
        \ell = \overline{\Delta_J}(m), \qquad m_i = \max(0,\, 1 - x_i s_i), \quad s_i = 2 y_i - 1

    with :math:`\overline{\Delta_J}` as in :func:`lovasz_softmax_loss`, for the foreground class.

    Shape:
        - input: ``(N, *spatial)`` logits (a channel axis of size 1 is fine: everything after the
          batch axis is flattened).
        - target: same shape as ``input``, labels 0/1 (integer or float), or ``ignore_index``.
        - output: ``()``.

    Args:
        input: foreground logits.
        target: binary labels.
        per_image: the loss per image, averaged (the authors' default); else the batch as one image.
        ignore_index: a label to leave out (e.g. 255).

    Example:
        >>> x = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
        >>> lovasz_hinge_loss(x, torch.tensor([[1, 1, 0, 0]]))
        tensor(1.2500)

    Follows the authors' ``lovasz_hinge`` (Berman et al. 2018); an image whose pixels are all
    ignored counts as 0.

    Chapter: segmentation
    """
    check_floating(input, "input")
    check_tensor(target, "target")
    check_ndim(input, "input", min_ndim=1, expected="(N, *spatial)")
    if target.shape != input.shape:
        raise ValueError(f"target has shape {format_shape(target)} but input has shape {format_shape(input)}; "
                         "lovasz_hinge_loss needs one 0/1 label per logit")
    valid = None if ignore_index is None else target != ignore_index
    labels = target if valid is None else torch.where(valid, target, 0)
    if _eager(labels) and labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"target must contain 0/1 labels{'' if ignore_index is None else ' or ignore_index'}, "
                         f"got values {labels.unique()[:6].tolist()}")
    labels = labels.to(input.dtype)
    errors = 1 - input * (2 * labels - 1)
    if valid is not None:
        errors = errors.masked_fill(~valid, float("-inf"))
    rows = input.shape[0] if per_image else 1
    return _lovasz(errors.reshape(rows, -1), labels.reshape(rows, -1)).mean()
