"""Comparing lossbook with a reference: used by the test suite and by the exercise checkers.

``compare(expected, got)`` is the one definition of "the same result" in this project: same
type, shape and dtype, the same NaN and infinity pattern, and close finite values.
``assert_matches(fn, ref, args, kwargs)`` runs both functions on fresh copies of the same
inputs and compares their values and their gradients.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "compare", "assert_matches", "finite_pattern", "silenced", "expect_error", "test_device", "tensors_on",
    "torchvision_sigmoid_focal_loss", "torchvision_box_ops",
]


def test_device() -> torch.device:
    """The device the test suite runs on: the CPU, unless ``LOSSBOOK_DEVICE`` names another one
    (then :func:`lossbook.default_device`, which fails loudly if that device is not there)."""
    import os

    from .utils import default_device

    return default_device() if os.environ.get("LOSSBOOK_DEVICE", "").strip() else torch.device("cpu")


test_device.__test__ = False  # not a test, although its name starts with "test"


def tensors_on(device: torch.device | str):
    """A context in which the tensors that *calling code* creates go to ``device``.

    Like ``torch.set_default_device(device)`` for factory calls (``torch.tensor``, ``randn``,
    ``zeros``, ``arange``, ...) without an explicit ``device``, with two differences: a draw from a
    seeded CPU generator is made on the CPU and then moved (the same numbers on every device, and
    no "expected a 'cuda' generator" error), and a tensor created inside ``lossbook`` itself is
    left alone, so that a loss that forgets ``device=`` still fails on the GPU instead of being
    rescued. ``tests/conftest.py`` runs every test in it when ``LOSSBOOK_DEVICE`` names a device.
    """
    import os
    import sys

    from torch.utils._device import DeviceContext, _device_constructors

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep

    class _TensorsOn(DeviceContext):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in _device_constructors() and kwargs.get("device") is None:
                if not os.path.abspath(sys._getframe(1).f_code.co_filename).startswith(package):
                    gen = kwargs.get("generator")
                    if gen is not None and gen.device.type == "cpu":
                        grad = kwargs.pop("requires_grad", False)
                        return func(*args, **kwargs).to(self.device).requires_grad_(grad)
                    kwargs["device"] = self.device
            return func(*args, **kwargs)

    return _TensorsOn(device)


def finite_pattern(t: Tensor) -> Tensor:
    """0 for finite, 1 for NaN, 2 for +inf, 3 for -inf, element-wise."""
    out = torch.zeros(t.shape, dtype=torch.int8, device=t.device)
    out[torch.isnan(t)] = 1
    out[t == float("inf")] = 2
    out[t == float("-inf")] = 3
    return out


def compare(expected: Any, got: Any, *, rtol: float = 1e-6, atol: float = 1e-8, what: str = "the result",
            check_dtype: bool = True) -> str | None:
    """``None`` if ``got`` matches ``expected``, else a one-line reason that names ``what``.

    Tensors must agree in shape, dtype (unless ``check_dtype=False``), NaN/inf pattern and,
    where finite, value (``torch.allclose`` with ``rtol``/``atol``). Numbers and sequences of
    numbers are compared as float64 tensors with the same tolerances.
    """
    if isinstance(expected, Tensor):
        if not isinstance(got, Tensor):
            return f"{what} should be a tensor of shape {tuple(expected.shape)}, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if check_dtype and got.dtype != expected.dtype:
            return f"{what} has dtype {got.dtype}, expected {expected.dtype}"
        e = expected.detach()
        g = got.detach().to(device=e.device)
        if not e.is_floating_point():
            return None if torch.equal(e, g.to(e.dtype)) else f"{what} differs from the reference"
        g = g.to(e.dtype)
        pe, pg = finite_pattern(e), finite_pattern(g)
        if not torch.equal(pe, pg):
            idx = (pe != pg).nonzero()[0].tolist()
            names = {0: "a finite number", 1: "NaN", 2: "+inf", 3: "-inf"}
            at = tuple(idx) if len(idx) != 1 else idx[0]
            return (f"{what} has {names[int(pg[tuple(idx)])]} at index {at} where the reference has "
                    f"{names[int(pe[tuple(idx)])]}")
        fin = pe == 0
        if not torch.allclose(g[fin], e[fin], rtol=rtol, atol=atol):
            diff = (g[fin] - e[fin]).abs()
            return f"{what} differs from the reference (largest absolute difference {diff.max().item():.3g})"
        return None
    try:
        e = torch.as_tensor(expected, dtype=torch.float64)
        g = torch.as_tensor(got.detach().cpu() if isinstance(got, Tensor) else got, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"{what} should be a number or a list of numbers, got {type(got).__name__}"
    if g.numel() != e.numel():
        return f"{what} should have {e.numel()} value(s), got {g.numel()}"
    return compare(e, g.reshape(e.shape), rtol=rtol, atol=atol, what=what)


def silenced(fn: Callable) -> Callable:
    """``fn`` with every warning silenced: for calling a reference (e.g. a PyTorch loss that warns
    about broadcasting, or ``kl_div``'s 'mean' warning) many times in a test without noise."""
    import functools
    import warnings

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    return call


def expect_error(exception: type[BaseException] | tuple[type[BaseException], ...], fn: Callable, *args: Any,
                 match: str | None = None, **kwargs: Any) -> BaseException:
    """Call ``fn(*args, **kwargs)``, assert that it raises ``exception``, and return the error.

    The book's way of showing an expected error: the cell fails if the call succeeds, raises
    something else, or (with ``match``, a regular expression) says something else, so a change
    of behaviour cannot hide behind a printed message.

    Example:
        >>> err = expect_error(ValueError, int, "one")
        >>> print(err)
        invalid literal for int() with base 10: 'one'
    """
    import re

    try:
        fn(*args, **kwargs)
    except exception as err:
        if match is not None and not re.search(match, str(err)):
            raise AssertionError(f"the error says {str(err)!r}, which does not match {match!r}") from err
        return err
    names = exception.__name__ if isinstance(exception, type) else " or ".join(e.__name__ for e in exception)
    raise AssertionError(f"expected {names}, but the call succeeded")


def _fresh(args: Sequence[Any], grad: bool) -> tuple[list[Any], list[int]]:
    out, idx = [], []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            a = a.detach().clone()
            if grad and a.is_floating_point():
                a.requires_grad_(True)
                idx.append(i)
        out.append(a)
    return out, idx


def assert_matches(
    fn: Callable,
    ref: Callable,
    args: Sequence[Any],
    kwargs: dict | None = None,
    *,
    ref_kwargs: dict | None = None,
    grad: bool | Sequence[int] = True,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    grad_rtol: float | None = None,
    grad_atol: float | None = None,
    check_dtype: bool = True,
    seed: int = 0,
) -> None:
    """Assert that ``fn(*args, **kwargs)`` equals ``ref(*args, **ref_kwargs)`` in value and gradient.

    Both are called on fresh copies of ``args``. With ``grad=True`` every floating-point tensor
    argument requires grad (or only the positions listed in ``grad``), the same random upstream
    gradient is backpropagated through both outputs and the gradients are compared, including
    their NaN/inf pattern. Raises ``AssertionError`` with the reason.
    """
    kwargs = kwargs or {}
    ref_kwargs = kwargs if ref_kwargs is None else ref_kwargs
    want_grad = bool(grad)
    a_ours, idx = _fresh(args, want_grad)
    a_ref, _ = _fresh(args, want_grad)
    if not isinstance(grad, bool):
        idx = [i for i in idx if i in set(grad)]
        for i, a in enumerate(a_ours):
            if isinstance(a, Tensor) and i not in idx:
                a_ours[i] = a.detach()
                a_ref[i] = a_ref[i].detach()
    expected = ref(*a_ref, **ref_kwargs)
    got = fn(*a_ours, **kwargs)
    problem = compare(expected, got, rtol=rtol, atol=atol, check_dtype=check_dtype)
    assert problem is None, problem
    if not idx or not isinstance(expected, Tensor) or not expected.requires_grad:
        return
    assert isinstance(got, Tensor) and got.requires_grad, "the result does not require grad"
    gen = torch.Generator().manual_seed(seed)
    upstream = torch.randn(expected.shape, generator=gen, dtype=torch.float64).to(expected)
    g_ref = torch.autograd.grad(expected, [a_ref[i] for i in idx], upstream, allow_unused=True)
    g_ours = torch.autograd.grad(got, [a_ours[i] for i in idx], upstream.to(got), allow_unused=True)
    for i, gr, go in zip(idx, g_ref, g_ours):
        if gr is None:
            gr = torch.zeros_like(a_ref[i])
        if go is None:
            go = torch.zeros_like(a_ours[i])
        problem = compare(gr, go, rtol=grad_rtol or rtol * 10, atol=grad_atol or atol * 10,
                          what=f"the gradient with respect to argument {i}", check_dtype=check_dtype)
        assert problem is None, problem


def torchvision_sigmoid_focal_loss(inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2,
                                   reduction: str = "none") -> Tensor:
    """The oracle for ``lossbook.sigmoid_focal_loss``: ``torchvision.ops.sigmoid_focal_loss``'s formula.

    torchvision cannot be installed beside the CPU build of torch used here, so its function is
    transcribed from ``pytorch/vision`` (``torchvision/ops/focal_loss.py``) in torch primitives, once,
    for the tests and the benchmarks. It reproduces the reference value of ERRATA E10 (0.114765).
    """
    import torch.nn.functional as F

    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"Invalid Value for arg 'reduction': '{reduction}'; supported: 'none', 'mean', 'sum'")


def torchvision_box_ops() -> dict[str, Callable]:
    """The oracle for ``lossbook.detection``: torchvision's box functions, transcribed as they are.

    A test oracle and a benchmark anchor only, never used by lossbook's losses. Transcribed from
    ``pytorch/vision`` (``torchvision/ops/boxes.py``, ``_utils.py`` ``_loss_inter_union``,
    ``giou_loss.py``, ``diou_loss.py``, ``ciou_loss.py``) because torchvision does not install
    beside the CPU build of torch used here. Kept faithful, including the masked assignment of the
    intersection, the ``torch.no_grad`` weight of CIoU, the missing ``eps`` of ``box_iou`` and
    ``generalized_box_iou``, the upcasts, and NaN for a point box in CIoU. Returns
    ``{torchvision name: function}``.
    """
    import math

    def _upcast(t):
        if t.is_floating_point():
            return t if t.dtype in (torch.float32, torch.float64) else t.float()
        return t if t.dtype in (torch.int32, torch.int64) else t.int()

    def _upcast_non_float(t):
        return t if t.dtype in (torch.float32, torch.float64) else t.float()

    def box_area(boxes):
        boxes = _upcast(boxes)
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    def _box_inter_union(boxes1, boxes2):
        area1, area2 = box_area(boxes1), box_area(boxes2)
        lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
        rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
        wh = _upcast(rb - lt).clamp(min=0)
        inter = wh[:, :, 0] * wh[:, :, 1]
        return inter, area1[:, None] + area2 - inter

    def box_iou(boxes1, boxes2):
        inter, union = _box_inter_union(boxes1, boxes2)
        return inter / union

    def _enclosing_wh(boxes1, boxes2):
        lti = torch.min(boxes1[:, None, :2], boxes2[:, :2])
        rbi = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
        return _upcast(rbi - lti).clamp(min=0)

    def generalized_box_iou(boxes1, boxes2):
        inter, union = _box_inter_union(boxes1, boxes2)
        iou = inter / union
        whi = _enclosing_wh(boxes1, boxes2)
        areai = whi[:, :, 0] * whi[:, :, 1]
        return iou - (areai - union) / areai

    def _box_diou_iou(boxes1, boxes2, eps=1e-7):
        iou = box_iou(boxes1, boxes2)
        whi = _enclosing_wh(boxes1, boxes2)
        diag = (whi[:, :, 0] ** 2) + (whi[:, :, 1] ** 2) + eps
        x_p, y_p = (boxes1[:, 0] + boxes1[:, 2]) / 2, (boxes1[:, 1] + boxes1[:, 3]) / 2
        x_g, y_g = (boxes2[:, 0] + boxes2[:, 2]) / 2, (boxes2[:, 1] + boxes2[:, 3]) / 2
        dist = (_upcast(x_p[:, None] - x_g[None, :]) ** 2) + (_upcast(y_p[:, None] - y_g[None, :]) ** 2)
        return iou - dist / diag, iou

    def distance_box_iou(boxes1, boxes2, eps=1e-7):
        return _box_diou_iou(_upcast(boxes1), _upcast(boxes2), eps=eps)[0]

    def complete_box_iou(boxes1, boxes2, eps=1e-7):
        boxes1, boxes2 = _upcast(boxes1), _upcast(boxes2)
        diou, iou = _box_diou_iou(boxes1, boxes2, eps)
        w_pred = boxes1[:, None, 2] - boxes1[:, None, 0]
        h_pred = boxes1[:, None, 3] - boxes1[:, None, 1]
        w_gt = boxes2[:, 2] - boxes2[:, 0]
        h_gt = boxes2[:, 3] - boxes2[:, 1]
        v = (4 / (math.pi**2)) * torch.pow(torch.atan(w_pred / h_pred) - torch.atan(w_gt / h_gt), 2)
        with torch.no_grad():
            alpha = v / (1 - iou + v + eps)
        return diou - alpha * v

    def _loss_inter_union(boxes1, boxes2):
        x1, y1, x2, y2 = boxes1.unbind(dim=-1)
        x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
        xkis1, ykis1 = torch.max(x1, x1g), torch.max(y1, y1g)
        xkis2, ykis2 = torch.min(x2, x2g), torch.min(y2, y2g)
        intsctk = torch.zeros_like(x1)
        mask = (ykis2 > ykis1) & (xkis2 > xkis1)
        intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
        unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk
        return intsctk, unionk

    def _reduce(loss, reduction):
        if reduction == "none":
            return loss
        if reduction == "mean":
            return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
        if reduction == "sum":
            return loss.sum()
        raise ValueError(f"Invalid Value for arg 'reduction': '{reduction} \n Supported reduction modes: "
                         f"'none', 'mean', 'sum'")

    def generalized_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
        boxes1, boxes2 = _upcast_non_float(boxes1), _upcast_non_float(boxes2)
        intsctk, unionk = _loss_inter_union(boxes1, boxes2)
        iouk = intsctk / (unionk + eps)
        x1, y1, x2, y2 = boxes1.unbind(dim=-1)
        x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
        xc1, yc1 = torch.min(x1, x1g), torch.min(y1, y1g)
        xc2, yc2 = torch.max(x2, x2g), torch.max(y2, y2g)
        area_c = (xc2 - xc1) * (yc2 - yc1)
        miouk = iouk - ((area_c - unionk) / (area_c + eps))
        return _reduce(1 - miouk, reduction)

    def _diou_iou_loss(boxes1, boxes2, eps=1e-7):
        intsct, union = _loss_inter_union(boxes1, boxes2)
        iou = intsct / (union + eps)
        x1, y1, x2, y2 = boxes1.unbind(dim=-1)
        x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
        xc1, yc1 = torch.min(x1, x1g), torch.min(y1, y1g)
        xc2, yc2 = torch.max(x2, x2g), torch.max(y2, y2g)
        diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
        x_p, y_p = (x2 + x1) / 2, (y2 + y1) / 2
        x_g, y_g = (x1g + x2g) / 2, (y1g + y2g) / 2
        centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
        return 1 - iou + (centers_distance_squared / diagonal_distance_squared), iou

    def distance_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
        boxes1, boxes2 = _upcast_non_float(boxes1), _upcast_non_float(boxes2)
        loss, _ = _diou_iou_loss(boxes1, boxes2, eps)
        return _reduce(loss, reduction)

    def complete_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
        boxes1, boxes2 = _upcast_non_float(boxes1), _upcast_non_float(boxes2)
        diou_loss, iou = _diou_iou_loss(boxes1, boxes2, eps)
        x1, y1, x2, y2 = boxes1.unbind(dim=-1)
        x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
        w_pred, h_pred = x2 - x1, y2 - y1
        w_gt, h_gt = x2g - x1g, y2g - y1g
        v = (4 / (math.pi**2)) * torch.pow((torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)), 2)
        with torch.no_grad():
            alpha = v / (1 - iou + v + eps)
        return _reduce(diou_loss + alpha * v, reduction)

    return {
        "box_area": box_area, "box_iou": box_iou, "generalized_box_iou": generalized_box_iou,
        "distance_box_iou": distance_box_iou, "complete_box_iou": complete_box_iou,
        "generalized_box_iou_loss": generalized_box_iou_loss, "distance_box_iou_loss": distance_box_iou_loss,
        "complete_box_iou_loss": complete_box_iou_loss,
    }
