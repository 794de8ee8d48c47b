"""Box geometry and the IoU family of box-regression losses (torchvision's names and conventions).

Boxes are ``(x1, y1, x2, y2)`` rows with ``x2 >= x1`` and ``y2 >= y1`` (torchvision's ``'xyxy'``);
:func:`box_convert` turns ``'xywh'`` and ``'cxcywh'`` boxes into them. Two kinds of functions:

- pairwise metrics ``(N, 4) × (M, 4) → (N, M)``: :func:`box_iou`, :func:`generalized_box_iou`,
  :func:`distance_box_iou`, :func:`complete_box_iou` (and :func:`box_area`, ``(N, 4) → (N,)``);
- element-wise losses ``(N, 4), (N, 4) → (N,)`` (``reduction='none'`` by default, as in
  torchvision): :func:`iou_loss`, :func:`generalized_box_iou_loss`, :func:`distance_box_iou_loss`,
  :func:`complete_box_iou_loss`.

Both are built from the same four private pieces of geometry (overlap, enclosing box, centre
distance, aspect-ratio term) on the coordinates ``(x1, y1, x2, y2)`` of boxes that broadcast against
each other: a pairwise metric passes those of ``boxes1[:, None]`` and ``boxes2[None]``, a loss those of
the two ``(N, 4)`` tensors as they are. Each set of boxes is unbound into its coordinates once (every
``unbind`` costs a ``stack`` of four gradients in the backward pass).

The focal loss of dense detection is :func:`lossbook.sigmoid_focal_loss` (classification chapter)
and the Smooth L1 loss on box coordinates is :func:`lossbook.smooth_l1_loss` (regression chapter).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ._reduction import check_reduction, reduce
from ._validation import check_tensor, format_shape

__all__ = [
    "box_convert",
    "box_area",
    "box_iou",
    "generalized_box_iou",
    "distance_box_iou",
    "complete_box_iou",
    "iou_loss",
    "generalized_box_iou_loss",
    "distance_box_iou_loss",
    "complete_box_iou_loss",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


# ------------------------------------------------------------------ checks and dtypes


def _data_checks_apply(x: Tensor) -> bool:
    """Value checks need a concrete tensor: skipped while tracing for torch.compile or under torch.func."""
    return not torch.compiler.is_compiling() and not torch._C._functorch.is_functorch_wrapped_tensor(x)


def _check_boxes(boxes: object, name: str, fn: str, *, pairwise: bool) -> None:
    """Type, shape (``(N, 4)``, or ``(4,)`` for a loss) and validity (``x2 >= x1``, ``y2 >= y1``)."""
    check_tensor(boxes, name)
    if boxes.dtype == torch.bool or boxes.is_complex():
        raise TypeError(f"{name} must hold real box coordinates, got dtype {boxes.dtype}")
    allowed = (2,) if pairwise else (1, 2)
    if boxes.dim() not in allowed or boxes.shape[-1] != 4:
        expected = "(N, 4)" if pairwise else "(N, 4) or (4,)"
        raise ValueError(
            f"{name} has shape {format_shape(boxes)} but {fn} expects boxes of shape {expected}, "
            f"one (x1, y1, x2, y2) row per box"
        )
    if boxes.numel() == 0 or not _data_checks_apply(boxes):
        return
    bad = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
    if bool(bad.any()):
        rows = boxes.reshape(-1, 4)
        i = int(bad.reshape(-1).nonzero()[0, 0])
        where = f"{name}[{i}]" if boxes.dim() == 2 else name
        coords = ", ".join(f"{v:g}" for v in rows[i].tolist())
        raise ValueError(
            f"{where} = [{coords}] has x2 < x1 or y2 < y1, but boxes must be in (x1, y1, x2, y2) format "
            f"with x2 >= x1 and y2 >= y1; convert (x, y, w, h) or (cx, cy, w, h) boxes with box_convert"
        )


def _upcast_pairwise(boxes: Tensor) -> Tensor:
    """torchvision's ``_upcast`` for the pairwise metrics: areas of float16 boxes overflow easily
    (300 × 300 > 65504), so half precision is computed in float32 and small integers in int32."""
    if boxes.is_floating_point():
        return boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()
    return boxes if boxes.dtype in (torch.int32, torch.int64) else boxes.int()


def _upcast_loss(boxes: Tensor) -> Tensor:
    """torchvision's ``_upcast_non_float`` for the losses: anything but float32/float64 (integers,
    float16, bfloat16) is computed in float32, since products of half-precision coordinates
    overflow (a 300 × 300 box has an area above float16's maximum, 65504)."""
    return boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()


def _pairwise_coords(boxes1: Tensor, boxes2: Tensor, fn: str) -> tuple[Coords, Coords]:
    """The checks of every pairwise metric; returns coordinates of shapes (N, 1) and (1, M)."""
    _check_boxes(boxes1, "boxes1", fn, pairwise=True)
    _check_boxes(boxes2, "boxes2", fn, pairwise=True)
    return _upcast_pairwise(boxes1)[:, None].unbind(-1), _upcast_pairwise(boxes2)[None].unbind(-1)


def _check_loss_inputs(boxes1: Tensor, boxes2: Tensor, fn: str, reduction: str) -> tuple[Coords, Coords]:
    """The checks of every box loss; returns the (upcast) coordinates of both sets of boxes."""
    _check_boxes(boxes1, "boxes1", fn, pairwise=False)
    _check_boxes(boxes2, "boxes2", fn, pairwise=False)
    if boxes1.shape != boxes2.shape:
        raise ValueError(
            f"boxes2 has shape {format_shape(boxes2)} but boxes1 has shape {format_shape(boxes1)}; {fn} "
            f"compares box i of boxes1 with box i of boxes2, so they must have the same shape "
            f"(for every pair of boxes, use the pairwise functions such as box_iou)"
        )
    check_reduction(reduction)
    return _upcast_loss(boxes1).unbind(-1), _upcast_loss(boxes2).unbind(-1)


def _box_reduce(loss: Tensor, reduction: str) -> Tensor:
    """``reduce``, except that the mean over no boxes is 0 (with a gradient), as in torchvision:
    an image without objects contributes nothing to a detector's box loss."""
    if reduction == "mean" and loss.numel() == 0:
        return loss.sum() * 0.0
    return reduce(loss, reduction)


# ------------------------------------------------------------------ the pieces of geometry


Coords = tuple[Tensor, Tensor, Tensor, Tensor]  # x1, y1, x2, y2 of a set of boxes: boxes.unbind(-1)


def _overlap(boxes1: Coords, boxes2: Coords) -> tuple[Tensor, Tensor]:
    """Intersection and union areas of boxes that broadcast against each other."""
    x1, y1, x2, y2 = boxes1
    x1g, y1g, x2g, y2g = boxes2
    iw = torch.minimum(x2, x2g) - torch.maximum(x1, x1g)
    ih = torch.minimum(y2, y2g) - torch.maximum(y1, y1g)
    # disjoint or touching boxes: no intersection, and no gradient through it (torchvision's mask)
    inter = torch.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union


def _enclosing(boxes1: Coords, boxes2: Coords) -> tuple[Tensor, Tensor]:
    """Width and height of the smallest box that encloses both."""
    x1, y1, x2, y2 = boxes1
    x1g, y1g, x2g, y2g = boxes2
    return torch.maximum(x2, x2g) - torch.minimum(x1, x1g), torch.maximum(y2, y2g) - torch.minimum(y1, y1g)


def _centre_distance2(boxes1: Coords, boxes2: Coords) -> Tensor:
    """Squared distance between the two boxes' centres."""
    x1, y1, x2, y2 = boxes1
    x1g, y1g, x2g, y2g = boxes2
    dx, dy = (x1 + x2) - (x1g + x2g), (y1 + y2) - (y1g + y2g)  # twice the offsets of the centres
    return (dx**2 + dy**2) / 4


def _aspect_term(boxes1: Coords, boxes2: Coords) -> Tensor:
    """CIoU's v = (4 / π²) (arctan(w₁/h₁) − arctan(w₂/h₂))² ∈ [0, 1]; 0 for equal aspect ratios.

    The difference of the two angles is one atan2, arctan(w₁/h₁) − arctan(w₂/h₂) =
    atan2(w₁h₂ − h₁w₂, w₁w₂ + h₁h₂) (both angles lie in [0, π/2]): half the work of two arctans,
    and finite for lines (h = 0 gives π/2). Only a point box (w = h = 0) makes it atan2(0, 0): it has
    no aspect ratio, so its v is 0, with a finite gradient (torchvision gives NaN there).
    """
    x1, y1, x2, y2 = boxes1
    x1g, y1g, x2g, y2g = boxes2
    w1, h1, w2, h2 = x2 - x1, y2 - y1, x2g - x1g, y2g - y1g
    sin_part, cos_part = w1 * h2 - h1 * w2, w1 * w2 + h1 * h2
    undefined = (sin_part == 0) & (cos_part == 0)  # atan2(0, 0): a finite value, but a NaN gradient
    angle = torch.atan2(sin_part, cos_part + undefined)  # atan2(0, 1) = 0 there instead
    return (4 / math.pi**2) * angle**2


# ------------------------------------------------------------------ formats and areas


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    r"""Convert boxes between the ``'xyxy'``, ``'xywh'`` and ``'cxcywh'`` formats.

    .. math::
        \texttt{xywh}: (x_1, y_1, w, h), \quad \texttt{cxcywh}: (c_x, c_y, w, h), \quad
        w = x_2 - x_1,\; h = y_2 - y_1,\; c_x = \tfrac{x_1 + x_2}{2},\; c_y = \tfrac{y_1 + y_2}{2}

    Shape:
        - boxes: ``(*, 4)``, one box per row in ``in_fmt``.
        - output: ``(*, 4)`` in ``out_fmt`` (a copy, also when the formats are equal).

    Args:
        boxes: the boxes.
        in_fmt: ``'xyxy'`` (corners), ``'xywh'`` (top-left corner, width, height) or ``'cxcywh'``
            (centre, width, height).
        out_fmt: one of the same three.

    Example:
        >>> box_convert(torch.tensor([[10.0, 15.0, 30.0, 35.0]]), "xyxy", "cxcywh")
        tensor([[20., 25., 20., 20.]])

    Same formats, name and semantics as ``torchvision.ops.box_convert``; unlike torchvision, the
    error names the format that is not supported.

    Chapter: detection
    """
    check_tensor(boxes, "boxes")
    for value, name in ((in_fmt, "in_fmt"), (out_fmt, "out_fmt")):
        if value not in BOX_FORMATS:
            listed = ", ".join(repr(f) for f in BOX_FORMATS)
            raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes has shape {format_shape(boxes)} but must have shape (*, 4), one box per row")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":  # to corners first
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return torch.stack((a, b, c, d), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    r"""The area of each box.

    .. math::
        \mathrm{area} = (x_2 - x_1)(y_2 - y_1)

    Shape:
        - boxes: ``(N, 4)``, ``(x1, y1, x2, y2)`` with ``x2 >= x1`` and ``y2 >= y1``.
        - output: ``(N,)``; float16 boxes give float32, small integers int32 (torchvision's upcast).

    Args:
        boxes: the boxes.

    Example:
        >>> box_area(torch.tensor([[0.0, 0.0, 2.0, 3.0]]))
        tensor([6.])

    Same name and semantics as ``torchvision.ops.box_area``; boxes with ``x2 < x1`` or ``y2 < y1``
    raise a ``ValueError`` (torchvision returns a negative area).

    Chapter: detection
    """
    _check_boxes(boxes, "boxes", "box_area", pairwise=True)
    boxes = _upcast_pairwise(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


# ------------------------------------------------------------------ pairwise metrics


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    r"""Intersection over union of every box of ``boxes1`` with every box of ``boxes2``.

    .. math::
        \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|} = \frac{I}{|A| + |B| - I}

    Shape:
        - boxes1: ``(N, 4)``; boxes2: ``(M, 4)``, both ``(x1, y1, x2, y2)``.
        - output: ``(N, M)``, in ``[0, 1]``; float16 boxes give float32 (torchvision's upcast).

    Args:
        boxes1: the first set of boxes.
        boxes2: the second set of boxes.

    Example:
        >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
        tensor([[0.1429]])

    Same name, values and dtypes as ``torchvision.ops.box_iou`` (no ``eps``: two identical
    zero-area boxes give 0/0 = NaN there and here; the losses below add ``eps`` and stay finite).

    Chapter: detection
    """
    b1, b2 = _pairwise_coords(boxes1, boxes2, "box_iou")
    inter, union = _overlap(b1, b2)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    r"""Generalized IoU of every box of ``boxes1`` with every box of ``boxes2``.

    .. math::
        \mathrm{GIoU}(A, B) = \mathrm{IoU}(A, B) - \frac{|C| - |A \cup B|}{|C|}

    where :math:`C` is the smallest box enclosing :math:`A` and :math:`B`.

    Shape:
        - boxes1: ``(N, 4)``; boxes2: ``(M, 4)``, both ``(x1, y1, x2, y2)``.
        - output: ``(N, M)``, in ``(-1, 1]``.

    Args:
        boxes1: the first set of boxes.
        boxes2: the second set of boxes.

    Example:
        >>> generalized_box_iou(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[1.0, 1.0, 2.0, 2.0]]))
        tensor([[-0.5000]])

    Same name and values as ``torchvision.ops.generalized_box_iou`` (Rezatofighi et al., 2019),
    no ``eps``.

    Chapter: detection
    """
    b1, b2 = _pairwise_coords(boxes1, boxes2, "generalized_box_iou")
    inter, union = _overlap(b1, b2)
    cw, ch = _enclosing(b1, b2)
    area_c = cw * ch
    return inter / union - (area_c - union) / area_c


def distance_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    r"""Distance IoU of every box of ``boxes1`` with every box of ``boxes2``.

    .. math::
        \mathrm{DIoU}(A, B) = \mathrm{IoU}(A, B) - \frac{\rho^2(a, b)}{c^2 + \epsilon}

    with :math:`\rho(a, b)` the distance between the centres and :math:`c` the diagonal of the
    smallest enclosing box.

    Shape:
        - boxes1: ``(N, 4)``; boxes2: ``(M, 4)``, both ``(x1, y1, x2, y2)``.
        - output: ``(N, M)``, in ``(-1, 1]``.

    Args:
        boxes1: the first set of boxes.
        boxes2: the second set of boxes.
        eps: added to :math:`c^2` so that two identical points do not divide by zero.

    Example:
        >>> distance_box_iou(torch.tensor([[-1.0, -1.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
        tensor([[0.1875]])

    Same name, signature and values as ``torchvision.ops.distance_box_iou`` (Zheng et al., 2020).

    Chapter: detection
    """
    b1, b2 = _pairwise_coords(boxes1, boxes2, "distance_box_iou")
    inter, union = _overlap(b1, b2)
    cw, ch = _enclosing(b1, b2)
    return inter / union - _centre_distance2(b1, b2) / (cw**2 + ch**2 + eps)


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    r"""Complete IoU of every box of ``boxes1`` with every box of ``boxes2``.

    .. math::
        \mathrm{CIoU}(A, B) = \mathrm{DIoU}(A, B) - \alpha v, \quad
        v = \frac{4}{\pi^2}\Big(\arctan\frac{w_A}{h_A} - \arctan\frac{w_B}{h_B}\Big)^2, \quad
        \alpha = \frac{v}{1 - \mathrm{IoU} + v + \epsilon}

    (:math:`\alpha` is a constant for autograd, as in the paper and torchvision).

    Shape:
        - boxes1: ``(N, 4)``; boxes2: ``(M, 4)``, both ``(x1, y1, x2, y2)``.
        - output: ``(N, M)``.

    Args:
        boxes1: the first set of boxes.
        boxes2: the second set of boxes.
        eps: keeps the divisions of the distance and the weight :math:`\alpha` finite.

    Example:
        >>> complete_box_iou(torch.tensor([[0.0, 0.0, 4.0, 1.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
        tensor([[0.2530]])

    Same name, signature and values as ``torchvision.ops.complete_box_iou`` (Zheng et al.,
    2020); a point box (zero width and height), whose aspect ratio is 0/0 (NaN in torchvision),
    has no aspect term here.

    Chapter: detection
    """
    b1, b2 = _pairwise_coords(boxes1, boxes2, "complete_box_iou")
    inter, union = _overlap(b1, b2)
    iou = inter / union
    cw, ch = _enclosing(b1, b2)
    v = _aspect_term(b1, b2)
    with torch.no_grad():  # α is a weight, not a function to differentiate (the paper's choice)
        alpha = v / (1 - iou + v + eps)
    return iou - _centre_distance2(b1, b2) / (cw**2 + ch**2 + eps) - alpha * v


# ------------------------------------------------------------------ element-wise losses


def iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    r"""The IoU loss, one minus the IoU of each pair of boxes (UnitBox).

    .. math::
        \ell_n = 1 - \frac{I_n}{U_n + \epsilon}

    It is 1, with a gradient of exactly zero, for every pair of disjoint boxes, however far apart:
    the reason for GIoU, DIoU and CIoU.

    Shape:
        - boxes1, boxes2: ``(N, 4)`` (or ``(4,)``), ``(x1, y1, x2, y2)``, box ``n`` against box ``n``.
        - output: ``(N,)`` for ``'none'`` (the default, as for torchvision's box losses), ``()``
          otherwise; the mean of no boxes is 0; float16, bfloat16 and integer boxes give float32.

    Args:
        boxes1: predicted boxes.
        boxes2: target boxes.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        eps: added to the union so that zero-area boxes give a finite loss (1).

    Example:
        >>> iou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
        tensor([0.8571])

    Not in torchvision; it follows the conventions of torchvision's box losses (signature,
    defaults, empty inputs) (Yu et al., 2016).

    Chapter: detection
    """
    b1, b2 = _check_loss_inputs(boxes1, boxes2, "iou_loss", reduction)
    inter, union = _overlap(b1, b2)
    return _box_reduce(1 - inter / (union + eps), reduction)


def generalized_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    r"""The GIoU loss of each pair of boxes.

    .. math::
        \ell_n = 1 - \frac{I_n}{U_n + \epsilon} + \frac{|C_n| - U_n}{|C_n| + \epsilon} \in [0, 2)

    with :math:`C_n` the smallest box enclosing both: for disjoint boxes the second term still
    grows with their distance, so the gradient pulls them together.

    Shape:
        - boxes1, boxes2: ``(N, 4)`` (or ``(4,)``), ``(x1, y1, x2, y2)``, box ``n`` against box ``n``.
        - output: ``(N,)`` for ``'none'`` (the default), ``()`` otherwise; the mean of no boxes is 0;
          float16, bfloat16 and integer boxes give float32 (torchvision's upcast).

    Args:
        boxes1: predicted boxes.
        boxes2: target boxes.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        eps: added to the union and to the enclosing area, so zero-area boxes give a finite loss.

    Example:
        >>> generalized_box_iou_loss(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[1.0, 1.0, 2.0, 2.0]]))
        tensor([1.5000])

    Same name, signature, defaults and values as ``torchvision.ops.generalized_box_iou_loss``
    (Rezatofighi et al., 2019); invalid boxes raise a ``ValueError`` instead of an assertion.

    Chapter: detection
    """
    b1, b2 = _check_loss_inputs(boxes1, boxes2, "generalized_box_iou_loss", reduction)
    inter, union = _overlap(b1, b2)
    cw, ch = _enclosing(b1, b2)
    area_c = cw * ch
    loss = 1 - inter / (union + eps) + (area_c - union) / (area_c + eps)
    return _box_reduce(loss, reduction)


def distance_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    r"""The DIoU loss of each pair of boxes.

    .. math::
        \ell_n = 1 - \frac{I_n}{U_n + \epsilon} + \frac{\rho^2(a_n, b_n)}{c_n^2 + \epsilon}

    with :math:`\rho` the distance between the centres and :math:`c_n` the diagonal of the
    smallest enclosing box: a penalty that pulls the centres together directly.

    Shape:
        - boxes1, boxes2: ``(N, 4)`` (or ``(4,)``), ``(x1, y1, x2, y2)``, box ``n`` against box ``n``.
        - output: ``(N,)`` for ``'none'`` (the default), ``()`` otherwise; the mean of no boxes is 0;
          float16, bfloat16 and integer boxes give float32 (torchvision's upcast).

    Args:
        boxes1: predicted boxes.
        boxes2: target boxes.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        eps: added to the union and to :math:`c^2`.

    Example:
        >>> distance_box_iou_loss(torch.tensor([[-1.0, -1.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
        tensor([0.8125])

    Same name, signature, defaults and values as ``torchvision.ops.distance_box_iou_loss``
    (Zheng et al., 2020).

    Chapter: detection
    """
    b1, b2 = _check_loss_inputs(boxes1, boxes2, "distance_box_iou_loss", reduction)
    inter, union = _overlap(b1, b2)
    cw, ch = _enclosing(b1, b2)
    loss = 1 - inter / (union + eps) + _centre_distance2(b1, b2) / (cw**2 + ch**2 + eps)
    return _box_reduce(loss, reduction)


def complete_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    r"""The CIoU loss of each pair of boxes: DIoU plus an aspect-ratio term.

    .. math::
        \ell_n = \ell^{\mathrm{DIoU}}_n + \alpha_n v_n, \quad
        v_n = \frac{4}{\pi^2}\Big(\arctan\frac{w^{(1)}_n}{h^{(1)}_n} - \arctan\frac{w^{(2)}_n}{h^{(2)}_n}\Big)^2,
        \quad \alpha_n = \frac{v_n}{1 - \mathrm{IoU}_n + v_n + \epsilon}

    :math:`\alpha_n` is treated as a constant by autograd (the paper's choice, and torchvision's).
    For two boxes of the same aspect ratio (two squares, say) :math:`v_n = 0` and CIoU is DIoU.

    Shape:
        - boxes1, boxes2: ``(N, 4)`` (or ``(4,)``), ``(x1, y1, x2, y2)``, box ``n`` against box ``n``.
        - output: ``(N,)`` for ``'none'`` (the default), ``()`` otherwise; the mean of no boxes is 0;
          float16, bfloat16 and integer boxes give float32 (torchvision's upcast).

    Args:
        boxes1: predicted boxes.
        boxes2: target boxes.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        eps: added to the union, to :math:`c^2` and to the denominator of :math:`\alpha`.

    Example:
        >>> complete_box_iou_loss(torch.tensor([[0.0, 0.0, 4.0, 1.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
        tensor([0.7470])

    Same name, signature, defaults and values as ``torchvision.ops.complete_box_iou_loss``
    (Zheng et al., 2020); a point box (zero width and height), whose aspect ratio is 0/0 (NaN in
    torchvision), has no aspect term (v = 0) here, so the loss stays finite.

    Chapter: detection
    """
    b1, b2 = _check_loss_inputs(boxes1, boxes2, "complete_box_iou_loss", reduction)
    inter, union = _overlap(b1, b2)
    iou = inter / (union + eps)
    cw, ch = _enclosing(b1, b2)
    v = _aspect_term(b1, b2)
    with torch.no_grad():  # α is a weight, not a function to differentiate (the paper's choice)
        alpha = v / (1 - iou + v + eps)
    loss = 1 - iou + _centre_distance2(b1, b2) / (cw**2 + ch**2 + eps) + alpha * v
    return _box_reduce(loss, reduction)
