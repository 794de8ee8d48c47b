"""lossbook.detection against torchvision's published test vectors, a transcription of torchvision's
functions (lossbook.testing.torchvision_box_ops) and a brute-force raster of the boxes.

torchvision cannot be installed beside the CPU build of torch used here, so the vectors of its
``test/test_ops.py`` (pytorch/vision) are copied below as numbers; its functions are transcribed once,
as a test oracle, in ``lossbook.testing``.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.testing import assert_matches, torchvision_box_ops

D = torch.float64
DEV = torch.device(os.environ.get("LOSSBOOK_DEVICE", "cpu"))
TV = torchvision_box_ops()
REDUCTIONS = ("none", "mean", "sum")
LOSSES = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
PAIRWISE = ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou")


def T(data, dtype=D):
    return torch.tensor(data, dtype=dtype, device=DEV)


def random_boxes(n, seed=0, dtype=D, *, min_size=0.05):
    """Boxes in [0, 4]² of width and height in [min_size, 3] (never square, almost surely)."""
    g = torch.Generator().manual_seed(seed)
    xy1 = torch.rand(n, 2, generator=g, dtype=D) * 4
    wh = min_size + torch.rand(n, 2, generator=g, dtype=D) * (3 - min_size)
    return torch.cat([xy1, xy1 + wh], dim=-1).to(device=DEV, dtype=dtype)


# ------------------------------------------------------------------ torchvision's test vectors
# test/test_ops.py: get_boxes(), TestGeneralizedBoxIouLoss, TestDistanceBoxIouLoss, TestCompleteBoxIouLoss

B1, B2, B3, B4 = [-1, -1, 1, 1], [0, 0, 1, 1], [0, 1, 1, 2], [1, 1, 2, 2]
TV_LOSS_VECTORS = {
    # name: (loss(b1, b1), loss(b1, b2), third pair, fourth pair, batched mean, batched sum)
    "generalized_box_iou_loss": [(B1, B1, 0.0), (B1, B2, 0.75), (B2, B3, 1.0), (B2, B4, 1.5)],
    "distance_box_iou_loss": [(B1, B1, 0.0), (B1, B2, 0.8125), (B1, B3, 1.1923), (B1, B4, 1.2500)],
    "complete_box_iou_loss": [(B1, B1, 0.0), (B1, B2, 0.8125), (B1, B3, 1.1923), (B1, B4, 1.2500)],
}
TV_BATCHED = {  # box1s = [b2, b2], box2s = [b3, b4]: (mean, sum)
    "generalized_box_iou_loss": (1.25, 2.5),
    "distance_box_iou_loss": (1.2250, 2.4500),
    "complete_box_iou_loss": (1.2250, 2.4500),
}


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-4), (torch.float32, 1e-4), (torch.float16, 1e-3)])
def test_torchvision_loss_vectors(name, dtype, tol):
    fn = getattr(lossbook, name)
    for a, b, expected in TV_LOSS_VECTORS[name]:
        got = fn(T(a, dtype), T(b, dtype))
        assert got.dtype == (torch.float32 if dtype == torch.float16 else dtype) and got.shape == ()  # upcast
        assert abs(got.item() - expected) < tol, (a, b, got.item(), expected)
    box1s, box2s = T([B2, B2], dtype), T([B3, B4], dtype)
    mean, total = TV_BATCHED[name]
    assert abs(fn(box1s, box2s, reduction="mean").item() - mean) < tol
    assert abs(fn(box1s, box2s, reduction="sum").item() - total) < tol
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'; got 'xyz'"):
        fn(box1s, box2s, reduction="xyz")


@pytest.mark.parametrize("name", LOSSES + ("iou_loss",))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_torchvision_empty_inputs(name, dtype):
    """assert_empty_loss: the mean over no boxes is 0, with a gradient; 'none' gives an empty tensor."""
    fn = getattr(lossbook, name)
    box1 = torch.randn([0, 4], dtype=dtype, device=DEV).requires_grad_()
    box2 = torch.randn([0, 4], dtype=dtype, device=DEV).requires_grad_()
    loss = fn(box1, box2, reduction="mean")
    loss.backward()
    assert loss.item() == 0.0 and loss.dtype == (torch.float32 if dtype == torch.float16 else dtype)
    assert box1.grad is not None and box2.grad is not None
    assert fn(box1, box2, reduction="none").numel() == 0
    assert fn(box1, box2, reduction="sum").item() == 0.0


# TestBoxIou & co: INT_BOXES against INT_BOXES2 (its first three rows), FLOAT_BOXES against themselves
INT_BOXES = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300], [0, 0, 25, 25]]
INT_BOXES2 = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300]]
FLOAT_BOXES = [
    [285.3538, 185.5758, 1193.5110, 851.4551],
    [285.1472, 188.7374, 1192.4984, 851.0669],
    [279.2440, 197.9812, 1189.4746, 849.2019],
]
FLOAT_EXPECTED = [[1.0, 0.9933, 0.9673], [0.9933, 1.0, 0.9737], [0.9673, 0.9737, 1.0]]
DIOU_INT = [[1.0000, 0.1875, -0.4444], [0.1875, 1.0000, -0.5625], [-0.4444, -0.5625, 1.0000],
            [-0.0781, 0.1875, -0.6267]]
INT_EXPECTED = {
    "box_iou": [[1.0, 0.25, 0.0], [0.25, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0625, 0.25, 0.0]],
    "generalized_box_iou": [[1.0, 0.25, -0.7778], [0.25, 1.0, -0.8611], [-0.7778, -0.8611, 1.0],
                            [0.0625, 0.25, -0.8819]],
    "distance_box_iou": DIOU_INT,
    "complete_box_iou": DIOU_INT,  # squares only: the aspect term vanishes (tested elsewhere)
}


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.int64, torch.float32, torch.float64])
def test_torchvision_pairwise_int_boxes(name, dtype):
    out = getattr(lossbook, name)(T(INT_BOXES, dtype), T(INT_BOXES2, dtype))
    assert out.shape == (4, 3) and out.is_floating_point()
    torch.testing.assert_close(out.double(), T(INT_EXPECTED[name]), rtol=0.0, atol=1e-4)


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize("dtype,atol", [(torch.float16, 0.002), (torch.float32, 1e-3), (torch.float64, 1e-3)])
def test_torchvision_pairwise_float_boxes(name, dtype, atol):
    out = getattr(lossbook, name)(T(FLOAT_BOXES, dtype), T(FLOAT_BOXES, dtype))
    assert out.dtype == (torch.float32 if dtype == torch.float16 else dtype)  # torchvision's upcast
    torch.testing.assert_close(out.double(), T(FLOAT_EXPECTED), rtol=0.0, atol=atol)


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_n_not_m_is_the_cartesian_product(name):
    """torchvision's _run_cartesian_test (5 × 7 boxes), and pytorch/vision#6317 (N ≠ M)."""
    fn = getattr(lossbook, name)
    a, b = random_boxes(5, seed=1), random_boxes(7, seed=2)
    full = fn(a, b)
    assert full.shape == (5, 7)
    one_by_one = torch.stack([torch.cat([fn(a[i:i + 1], b[j:j + 1]) for j in range(7)], 1) for i in range(5)])
    torch.testing.assert_close(full, one_by_one.squeeze(1), rtol=1e-12, atol=1e-12)
    assert fn(a, b[:0]).shape == (5, 0) and fn(a[:0], b).shape == (0, 7)


def test_torchvision_box_area_vectors():
    for dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
        out = lossbook.box_area(T([[0, 0, 100, 100], [0, 0, 0, 0]], dtype))
        assert out.tolist() == [10000, 0] and out.dtype in (torch.int32, torch.int64)
    for dtype in (torch.float32, torch.float64):
        out = lossbook.box_area(T(FLOAT_BOXES, dtype))
        torch.testing.assert_close(out, T([604723.0806, 600965.4666, 592761.0085], dtype), rtol=0.0, atol=1e-4 * 1e2
                                   if dtype == torch.float32 else 1e-4)
    half = T([[2.825, 1.8625, 3.90, 4.85], [2.825, 4.875, 19.20, 5.10], [2.925, 1.80, 8.90, 4.90]], torch.float16)
    torch.testing.assert_close(lossbook.box_area(half).double(), T([3.2170, 3.7108, 18.5071]), rtol=0.0, atol=0.01)


CONVERT_XYXY = [[0, 0, 100, 100], [0, 0, 0, 0], [10, 15, 30, 35], [23, 35, 93, 95]]
CONVERT_XYWH = [[0, 0, 100, 100], [0, 0, 0, 0], [10, 15, 20, 20], [23, 35, 70, 60]]
CONVERT_CXCYWH = [[50, 50, 100, 100], [0, 0, 0, 0], [20, 25, 20, 20], [58, 65, 70, 60]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torchvision_box_convert_vectors(dtype):
    fmts = {"xyxy": T(CONVERT_XYXY, dtype), "xywh": T(CONVERT_XYWH, dtype), "cxcywh": T(CONVERT_CXCYWH, dtype)}
    for fin, x in fmts.items():
        for fout, y in fmts.items():
            out = lossbook.box_convert(x, fin, fout)
            torch.testing.assert_close(out, y, rtol=0, atol=0)
            if fin == fout:
                assert out.data_ptr() != x.data_ptr()  # a copy, as in torchvision
    for bad_in, bad_out in [("xwyh", "xwcx"), ("cxwyh", "xhwcy")]:
        with pytest.raises(ValueError, match="in_fmt must be one of 'xyxy', 'xywh', 'cxcywh'; got 'xwyh|in_fmt"):
            lossbook.box_convert(fmts["xyxy"], bad_in, bad_out)
    with pytest.raises(ValueError, match="out_fmt must be one of"):
        lossbook.box_convert(fmts["xyxy"], "xyxy", "yxyx")


# ------------------------------------------------------------------ against the transcription


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_match_torchvision_transcription(name, reduction):
    a = random_boxes(40, seed=3)
    b = random_boxes(40, seed=4)
    b[:10] = a[:10] + 0.1 * random_boxes(10, seed=5)[:, :1]  # overlapping pairs too
    assert_matches(getattr(lossbook, name), TV[name], (a, b), {"reduction": reduction}, rtol=1e-10, atol=1e-12)
    # unbatched (4,) boxes
    assert_matches(getattr(lossbook, name), TV[name], (a[0], b[0]), {"reduction": reduction}, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", PAIRWISE + ("box_area",))
def test_pairwise_match_torchvision_transcription(name):
    a, b = random_boxes(6, seed=6), random_boxes(9, seed=7)
    args = (a,) if name == "box_area" else (a, b)
    assert_matches(getattr(lossbook, name), TV[name], args, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_float32_match_the_float64_transcription(name):
    a, b = random_boxes(200, seed=8), random_boxes(200, seed=9)
    got = getattr(lossbook, name)(a.float(), b.float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), TV[name](a, b), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ brute force: a raster of the boxes


def raster_metrics(a, b, cells_per_unit=8):
    """IoU, GIoU, DIoU and CIoU of two grid-aligned boxes from their pixel masks (numpy, float64).

    Coordinates are multiples of 1 / cells_per_unit, so counting pixels gives the areas exactly; the
    enclosing box is the bounding box of the union of the masks, the centres are the masks'
    centroids and the widths/heights their extents. No formula of lossbook is reused.
    """
    lo = min(a[0], a[1], b[0], b[1])
    hi = max(a[2], a[3], b[2], b[3])
    n = int(round((hi - lo) * cells_per_unit))
    c = lo + (np.arange(n) + 0.5) / cells_per_unit  # pixel centres
    X, Y = np.meshgrid(c, c, indexing="xy")
    px = 1.0 / cells_per_unit**2

    def mask(box):
        return (X > box[0]) & (X < box[2]) & (Y > box[1]) & (Y < box[3])

    ma, mb = mask(a), mask(b)
    inter = (ma & mb).sum() * px
    union = (ma | mb).sum() * px
    ys, xs = np.nonzero(ma | mb)
    ew = (xs.max() - xs.min() + 1) / cells_per_unit
    eh = (ys.max() - ys.min() + 1) / cells_per_unit
    iou = inter / union
    giou = iou - (ew * eh - union) / (ew * eh)
    ca = np.array([X[ma].mean(), Y[ma].mean()])
    cb = np.array([X[mb].mean(), Y[mb].mean()])
    rho2 = ((ca - cb) ** 2).sum()
    diou = iou - rho2 / (ew**2 + eh**2)

    def extent(m):
        ys, xs = np.nonzero(m)
        return (xs.max() - xs.min() + 1) / cells_per_unit, (ys.max() - ys.min() + 1) / cells_per_unit

    (wa, ha), (wb, hb) = extent(ma), extent(mb)
    v = 4 / math.pi**2 * (math.atan(wa / ha) - math.atan(wb / hb)) ** 2
    ciou = diou - (v / (1 - iou + v) * v if v > 0 else 0.0)
    return iou, giou, diou, ciou


def grid_boxes(n, seed, cells_per_unit=8):
    g = np.random.default_rng(seed)
    xy = g.integers(0, 4 * cells_per_unit, size=(n, 2))
    wh = g.integers(1, 3 * cells_per_unit, size=(n, 2))  # non-square almost always
    return np.concatenate([xy, xy + wh], axis=1) / cells_per_unit


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_brute_force_raster_on_random_boxes(dtype, tol):
    a, b = grid_boxes(60, 0), grid_boxes(60, 1)
    b[:20] = a[:20] + np.random.default_rng(2).integers(-8, 9, size=(20, 1)) / 8  # shifted copies: overlapping
    ref = np.array([raster_metrics(x, y) for x, y in zip(a, b)])
    assert (ref[:, 0] == 0).sum() > 5 and (ref[:, 0] > 0).sum() > 15  # both disjoint and overlapping pairs
    ta, tb = T(a.tolist(), dtype), T(b.tolist(), dtype)
    got = {
        "IoU": 1 - lossbook.iou_loss(ta, tb),
        "GIoU": 1 - lossbook.generalized_box_iou_loss(ta, tb),
        "DIoU": 1 - lossbook.distance_box_iou_loss(ta, tb),
        "CIoU": 1 - lossbook.complete_box_iou_loss(ta, tb),
    }
    for k, (name, val) in enumerate(got.items()):
        np.testing.assert_allclose(val.double().cpu().numpy(), ref[:, k], rtol=0, atol=tol, err_msg=name)
    pairwise = {"IoU": lossbook.box_iou, "GIoU": lossbook.generalized_box_iou, "DIoU": lossbook.distance_box_iou,
                "CIoU": lossbook.complete_box_iou}
    for k, (name, fn) in enumerate(pairwise.items()):
        np.testing.assert_allclose(fn(ta, tb).diagonal().double().cpu().numpy(), ref[:, k], rtol=0, atol=tol,
                                   err_msg=name)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_ciou_aspect_term_on_non_square_boxes(dtype, tol):
    """torchvision's CIoU vectors are squares, where v = 0 and CIoU = DIoU: test where v does not vanish."""
    a = T([[0.0, 0.0, 4.0, 1.0], [1.0, 1.0, 2.0, 4.0], [0.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 9.0]])
    b = T([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 3.0, 1.0], [0.5, 0.0, 2.5, 3.0], [0.0, 0.0, 2.0, 1.0]])
    ciou = lossbook.complete_box_iou_loss(a.to(dtype), b.to(dtype))
    diou = lossbook.distance_box_iou_loss(a.to(dtype), b.to(dtype))
    assert ciou.dtype == dtype and (ciou - diou > 0.005).all()
    ref = [1 - raster_metrics(x, y)[3] for x, y in zip(a.tolist(), b.tolist())]
    torch.testing.assert_close(ciou.double(), T(ref), rtol=0, atol=tol)
    pairwise = lossbook.complete_box_iou(a.to(dtype), b.to(dtype)).diagonal()
    torch.testing.assert_close(1 - pairwise.double(), T(ref), rtol=0, atol=tol)
    ciou = ciou.double()
    # the worked number of the docstring, by hand: IoU = 1/3, ρ² = 1.25, c² = 20, v = 4/π² (atan 4 − π/4)²
    iou, v = 1 / 3, 4 / math.pi**2 * (math.atan(4) - math.pi / 4) ** 2
    by_hand = 1 - iou + 1.25 / 20 + v / (1 - iou + v) * v
    assert abs(ciou[0].item() - by_hand) < 1e-6
    # the weight α is a constant for autograd: the gradient equals DIoU's plus α ∂v
    a32 = a.clone().requires_grad_(True)
    assert_matches(lossbook.complete_box_iou_loss, TV["complete_box_iou_loss"], (a, b), rtol=1e-10, atol=1e-12)
    lossbook.complete_box_iou_loss(a32, b).sum().backward()
    assert torch.isfinite(a32.grad).all()


def test_ciou_pairwise_non_square_n_not_m():
    a, b = random_boxes(4, seed=10), random_boxes(3, seed=11)
    out = lossbook.complete_box_iou(a, b)
    assert not torch.allclose(out, lossbook.distance_box_iou(a, b))
    ref = torch.tensor([[raster_metrics(x, y, cells_per_unit=8)[3] for y in np.round(b.cpu().numpy() * 8) / 8]
                        for x in np.round(a.cpu().numpy() * 8) / 8], dtype=D)
    a8, b8 = torch.round(a * 8) / 8, torch.round(b * 8) / 8
    torch.testing.assert_close(lossbook.complete_box_iou(a8, b8).cpu(), ref, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ the chapter's worked numbers


def test_iou_loss_zero_gradient_for_disjoint_boxes():
    pred = T([[0.0, 0.0, 1.0, 1.0]]).requires_grad_(True)
    target = T([[2.0, 0.0, 3.0, 1.0]])
    loss = lossbook.iou_loss(pred, target)
    loss.sum().backward()
    assert loss.item() == 1.0 and torch.equal(pred.grad, torch.zeros_like(pred))
    far = lossbook.iou_loss(T([[0.0, 0.0, 1.0, 1.0]]), T([[10.0, 0.0, 11.0, 1.0]]))
    assert far.item() == 1.0  # every disjoint pair: loss 1, however far
    near_g = lossbook.generalized_box_iou_loss(T([0.0, 0.0, 1.0, 1.0]), T([2.0, 0.0, 3.0, 1.0]))
    far_g = lossbook.generalized_box_iou_loss(T([0.0, 0.0, 1.0, 1.0]), T([10.0, 0.0, 11.0, 1.0]))
    assert abs(near_g.item() - 4 / 3) < 1e-6 and abs(far_g.item() - 20 / 11) < 1e-6  # 1.333333, 1.818182
    pred.grad = None
    lossbook.generalized_box_iou_loss(pred, target).sum().backward()
    assert pred.grad.abs().sum() > 0
    # overlapping: 1 - 1/7
    assert abs(lossbook.iou_loss(T([0.0, 0, 2, 2]), T([1.0, 1, 3, 3])).item() - 6 / 7) < 1e-7


def test_giou_batch_is_per_pair_not_a_broadcast_sum():
    a, b = T([[0.0, 0, 2, 2], [0, 0, 1, 1]]), T([[1.0, 1, 3, 3], [0, 0, 1, 1]])
    per_pair = lossbook.generalized_box_iou_loss(a, b)
    torch.testing.assert_close(per_pair, T([1 - (1 / 7 - 2 / 9), 0.0]), rtol=0, atol=1e-6)
    assert abs(lossbook.generalized_box_iou_loss(a, b, reduction="mean").item() - 0.539683) < 1e-6


@pytest.mark.parametrize("name", LOSSES + ("iou_loss",))
def test_zero_area_boxes_are_finite(name):
    fn = getattr(lossbook, name)
    points = T([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 2.0, 0.0]]).requires_grad_(True)
    loss = fn(points, points.detach().clone())
    loss.sum().backward()
    torch.testing.assert_close(loss, T([1.0, 1.0, 1.0]), rtol=0, atol=1e-6)
    assert torch.isfinite(points.grad).all()
    if name != "complete_box_iou_loss" and name != "iou_loss":
        torch.testing.assert_close(loss, TV[name](points.detach(), points.detach()))  # torchvision's values


def test_point_box_ciou_is_finite_where_torchvision_is_nan():
    p, q = T([[1.0, 1.0, 1.0, 1.0]]), T([[0.0, 0.0, 2.0, 2.0]])
    assert torch.isnan(TV["complete_box_iou_loss"](p, q)).all()
    ours = lossbook.complete_box_iou_loss(p, q)
    torch.testing.assert_close(ours, lossbook.distance_box_iou_loss(p, q))  # a point has no aspect term
    assert torch.isnan(TV["box_iou"](p, p)).all() and torch.isnan(lossbook.box_iou(p, p)).all()  # no eps there


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("name", LOSSES + ("iou_loss",))
def test_loss_bad_inputs(name):
    fn = getattr(lossbook, name)
    good = T([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
    inverted = T([[0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"boxes1\[1\] = \[2, 2, 0, 0\] has x2 < x1 or y2 < y1.*box_convert"):
        fn(inverted, good)
    with pytest.raises(ValueError, match=r"boxes2\[1\] = \[2, 2, 0, 0\]"):
        fn(good, inverted)
    with pytest.raises(ValueError, match=r"boxes2 has shape \(1, 4\) but boxes1 has shape \(2, 4\)"):
        fn(good, good[:1])
    with pytest.raises(ValueError, match=r"boxes1 has shape \(2, 5\) but .* expects boxes of shape \(N, 4\) or \(4,\)"):
        fn(torch.zeros(2, 5, dtype=D), torch.zeros(2, 5, dtype=D))
    with pytest.raises(TypeError, match="boxes1 must be a torch.Tensor, got list"):
        fn([[0, 0, 1, 1]], good)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fn(good, good, reduction="batchmean")


@pytest.mark.parametrize("name", PAIRWISE + ("box_area",))
def test_pairwise_bad_inputs(name):
    fn = getattr(lossbook, name)
    args = lambda x: (x,) if name == "box_area" else (x, x)  # noqa: E731
    with pytest.raises(ValueError, match=r"\[0\] = \[3, 0, 1, 1\] has x2 < x1"):
        fn(*args(T([[3.0, 0.0, 1.0, 1.0]])))
    with pytest.raises(ValueError, match=r"has shape \(4,\) but .* expects boxes of shape \(N, 4\)"):
        fn(*args(T([0.0, 0.0, 1.0, 1.0])))
    with pytest.raises(TypeError, match="real box coordinates"):
        fn(*args(torch.ones(2, 4, dtype=torch.bool)))


def test_integer_and_half_boxes_in_losses_are_computed_in_float32():
    """torchvision's _upcast_non_float: a float16 box of 300 × 300 would overflow its area (65504)."""
    big = T([[0.0, 0.0, 300.0, 300.0]], torch.float16), T([[10.0, 10.0, 310.0, 310.0]], torch.float16)
    for name in LOSSES + ("iou_loss",):
        out = getattr(lossbook, name)(*big)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        ref = TV[name](*big) if name != "iou_loss" else 1 - lossbook.box_iou(*big).diagonal()
        torch.testing.assert_close(out, ref)
    a, b = T(INT_BOXES2, torch.int64), T(INT_BOXES2[::-1], torch.int64)
    out = lossbook.generalized_box_iou_loss(a, b)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), lossbook.generalized_box_iou_loss(a.double(), b.double()))


# ------------------------------------------------------------------ properties (hypothesis)

coord = st.floats(0, 10, allow_nan=False, width=64)
size = st.floats(0.01, 5, allow_nan=False, width=64)
box = st.tuples(coord, coord, size, size).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(box, box), min_size=1, max_size=6), st.floats(0.1, 10), st.floats(-5, 5))
def test_property_order_symmetry_and_invariance(pairs, scale, shift):
    a, b = T([p[0] for p in pairs]), T([p[1] for p in pairs])
    iou = 1 - lossbook.iou_loss(a, b, eps=0.0)
    giou = 1 - lossbook.generalized_box_iou_loss(a, b, eps=0.0)
    diou_l = lossbook.distance_box_iou_loss(a, b)
    ciou_l = lossbook.complete_box_iou_loss(a, b)  # eps keeps α = 0/0 away for identical boxes
    assert ((iou >= -1e-12) & (iou <= 1 + 1e-12)).all()
    assert ((giou <= iou + 1e-12) & (giou > -1 - 1e-12)).all()  # GIoU ≤ IoU, GIoU ∈ (−1, 1]
    assert (diou_l >= 1 - iou - 1e-12).all() and (diou_l < 2 + 1e-12).all()
    assert (ciou_l >= diou_l - 1e-12).all()
    for name in ("iou_loss",) + LOSSES:  # symmetric in its arguments, invariant to scale and translation
        fn = getattr(lossbook, name)
        base = fn(a, b, eps=1e-12)
        torch.testing.assert_close(fn(b, a, eps=1e-12), base, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(fn(a * scale + shift, b * scale + shift, eps=1e-12), base, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lossbook.box_iou(a, b).diagonal(), iou, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ composability


def _small_pair():
    a = T([[0.1, 0.2, 1.3, 0.9], [0.0, 0.05, 1.1, 2.0], [2.0, 2.1, 3.0, 3.5]])
    b = T([[0.3, 0.1, 1.05, 1.2], [1.5, 0.5, 2.5, 1.15], [0.05, 0.02, 0.5, 0.7]])  # no ties: min/max kinks
    return a, b


@pytest.mark.parametrize("name", LOSSES + ("iou_loss",) + PAIRWISE)
def test_gradcheck_and_gradgradcheck(name):
    fn = getattr(lossbook, name)
    a, b = _small_pair()
    a.requires_grad_(True)
    b.requires_grad_(True)
    if name.startswith("complete"):
        return  # α is detached (a constant by design), so CIoU's gradient is not the derivative of its value
    assert torch.autograd.gradcheck(lambda x, y: fn(x, y), (a, b))
    assert torch.autograd.gradgradcheck(lambda x, y: fn(x, y), (a, b))


def test_ciou_gradient_and_double_backward_hold_the_weight_constant():
    """CIoU's α is a constant for autograd, so gradcheck of its value fails by design. Its first and
    second derivatives equal those of DIoU + α₀ v with α₀ frozen at the evaluation point, a smooth
    function that passes gradgradcheck."""
    a, b = _small_pair()

    def v_of(x):
        w1, h1 = x[:, 2] - x[:, 0], x[:, 3] - x[:, 1]
        w2, h2 = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return 4 / math.pi**2 * (torch.atan(w1 / h1) - torch.atan(w2 / h2)) ** 2

    iou0 = 1 - lossbook.iou_loss(a, b)
    alpha0 = v_of(a) / (1 - iou0 + v_of(a) + 1e-7)
    frozen = lambda x: (lossbook.distance_box_iou_loss(x, b) + alpha0 * v_of(x)).sum()  # noqa: E731
    ciou = lambda x: lossbook.complete_box_iou_loss(x, b).sum()  # noqa: E731
    x = a.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(frozen, (x,))
    torch.testing.assert_close(torch.func.grad(ciou)(a), torch.func.grad(frozen)(a))
    u = torch.randn(a.shape, generator=torch.Generator().manual_seed(0), dtype=D).to(DEV)
    hvp = lambda f: torch.autograd.functional.hvp(f, a, u)[1]  # noqa: E731
    torch.testing.assert_close(hvp(ciou), hvp(frozen))


@pytest.mark.parametrize("name", LOSSES + ("iou_loss",))
def test_torch_func_grad_vmap_and_compile(name):
    fn = getattr(lossbook, name)
    a, b = _small_pair()
    g_func = torch.func.grad(lambda x: fn(x, b, reduction="sum"))(a)
    x = a.clone().requires_grad_(True)
    fn(x, b, reduction="sum").backward()
    torch.testing.assert_close(g_func, x.grad)
    vm = torch.func.vmap(lambda x, y: fn(x, y))(a, b)  # one (4,) pair at a time
    torch.testing.assert_close(vm, fn(a, b))
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(a, b, reduction="mean"), fn(a, b, reduction="mean"))


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_compile(name):
    fn = getattr(lossbook, name)
    a, b = _small_pair()
    torch.testing.assert_close(torch.compile(fn, fullgraph=True, backend="eager")(a, b[:2]), fn(a, b[:2]))


@pytest.mark.parametrize("name", LOSSES + ("iou_loss",))
def test_extreme_coordinates_float32(name):
    """Boxes 10⁴ pixels from the origin, or 10⁴ wide, in float32: finite, and as scale-invariant as float64."""
    a, b = random_boxes(50, seed=14), random_boxes(50, seed=15)
    fn = getattr(lossbook, name)
    ref = fn(a, b)
    for big_a, big_b in ((a + 1e4, b + 1e4), (a * 1e4, b * 1e4)):
        got = fn(big_a.float(), big_b.float())
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got.double(), ref, rtol=0, atol=2e-3)


def test_float16_and_float32_smoke():
    a, b = random_boxes(16, seed=12), random_boxes(16, seed=13)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 5e-3)):
        for name in LOSSES + ("iou_loss",):
            x = a.to(dtype).requires_grad_(True)
            out = getattr(lossbook, name)(x, b.to(dtype))
            out.sum().backward()
            assert out.dtype == torch.float32 and torch.isfinite(out).all() and torch.isfinite(x.grad).all()
            assert x.grad.dtype == dtype
            torch.testing.assert_close(out.double(), getattr(lossbook, name)(a.to(dtype).double(), b.to(dtype).double()),
                                       rtol=tol, atol=tol)
