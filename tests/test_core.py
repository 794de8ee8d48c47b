"""The shared helpers: reduction, validation, utils, plotting, testing."""
from __future__ import annotations

import math
import os
import warnings

import pytest
import torch

import lossbook
from lossbook import _reduction
from lossbook import _validation as V
from lossbook.testing import assert_matches, compare

# ---------------------------------------------------------------------------------- reduction


def test_reduce_none_sum_mean():
    x = torch.tensor([1.0, 2.0, 6.0])
    assert _reduction.reduce(x, "none") is x
    assert _reduction.reduce(x, "sum").item() == 9.0
    assert _reduction.reduce(x, "mean").item() == 3.0


def test_reduce_weighted_mean_divides_by_the_weights():
    loss = torch.tensor([2.0, 6.0])  # already weighted
    w = torch.tensor([1.0, 3.0])
    assert _reduction.reduce(loss, "mean", weight=w).item() == 2.0


def test_reduce_batchmean_only_when_allowed():
    x = torch.ones(4, 5)
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'; got 'batchmean'"):
        _reduction.reduce(x, "batchmean")
    out = _reduction.reduce(x, "batchmean", batch_size=4, allowed=("none", "mean", "sum", "batchmean"))
    assert out.item() == 5.0


@pytest.mark.parametrize("bad", ["avg", "Mean", None, "elementwise_mean"])
def test_reduce_rejects_unknown(bad):
    with pytest.raises(ValueError, match="reduction must be one of"):
        _reduction.reduce(torch.ones(2), bad)


def test_reduce_empty_like_pytorch():
    e = torch.empty(0)
    assert math.isnan(_reduction.reduce(e, "mean").item())
    assert _reduction.reduce(e, "sum").item() == 0.0
    assert _reduction.reduce(e, "none").shape == (0,)
    assert math.isnan(_reduction.reduce(e, "mean", weight=torch.empty(0)).item())
    # the same as torch's own losses
    assert math.isnan(torch.nn.functional.mse_loss(e, e).item())


def test_reduce_all_zero_weights_is_nan():
    assert math.isnan(_reduction.reduce(torch.zeros(3), "mean", weight=torch.zeros(3)).item())


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("block_values", [3, 1000])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_reduce_elementwise_equals_reduce(monkeypatch, block_values, reduction):
    from lossbook.fast import kernels as _kernels

    monkeypatch.setattr(_kernels, "BLOCK_BYTES", 8 * block_values)  # many blocks, or one
    x = torch.randn(7, 5, dtype=torch.float64)
    w = torch.rand(5, dtype=torch.float64)

    def fill(out, xb, wb):
        torch.mul(xb, xb, out=out).mul_(wb)

    expected = _reduction.reduce(x * x * w, reduction)
    got = _kernels.reduce_elementwise(fill, x, (w,), reduction)
    assert compare(expected, got) is None
    for empty in (torch.empty(0, 5, dtype=torch.float64), torch.empty(0)):
        ref = _reduction.reduce(empty * empty, reduction)
        assert compare(ref, _kernels.reduce_elementwise(lambda o, a, b: torch.mul(a, a, out=o), empty, (None,),
                                                          reduction)) is None


def test_reduce_elementwise_float16_sums_in_float32():
    from lossbook.fast import kernels as _kernels

    x = torch.full((4096,), 60.0, dtype=torch.float16)  # sum 245760 > float16 max, mean 60
    mean = _kernels.reduce_elementwise(lambda o, a: o.copy_(a), x, (), "mean")
    assert mean.dtype == torch.float16 and mean.item() == 60.0 == x.mean().item()
    assert torch.isinf(_kernels.reduce_elementwise(lambda o, a: o.copy_(a), x, (), "sum")) == torch.isinf(x.sum())


def test_reduction_grad():
    from lossbook.fast import kernels as _kernels

    g = torch.tensor(3.0)
    assert _kernels.reduction_grad(g, "mean", 6).item() == 0.5
    assert _kernels.reduction_grad(g, "sum", 6) is g
    full = torch.ones(2, 3)
    assert _kernels.reduction_grad(full, "none", 6) is full


def test_same_shape_message_names_both():
    with pytest.raises(ValueError, match=r"target has shape \(3, 5\) but input has shape \(3,\)"):
        V.check_same_shape(torch.zeros(3), torch.zeros(3, 5))


def test_floating_and_tensor_checks():
    with pytest.raises(TypeError, match="input must have a floating-point dtype, got torch.int64"):
        V.check_floating(torch.tensor([1, 2]), "input")
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        V.check_tensor([1.0], "input")


def test_class_indices():
    V.check_class_indices(torch.tensor([0, 4, -100]), 5, ignore_index=-100)
    with pytest.raises(ValueError, match=r"class index 5, but class indices must be in \[0, 4\] for 5 classes"):
        V.check_class_indices(torch.tensor([0, 5]), 5)
    with pytest.raises(ValueError, match="class index -1"):
        V.check_class_indices(torch.tensor([-1, 2]), 5, ignore_index=-100)
    with pytest.raises(TypeError, match="integer dtype"):
        V.check_class_indices(torch.tensor([0.0, 1.0]), 5)
    V.check_class_indices(torch.empty(0, dtype=torch.long), 3)


def test_probabilities():
    V.check_probabilities(torch.tensor([0.0, 0.5, 1.0]), "target")
    with pytest.raises(ValueError, match="target must contain probabilities in \\[0, 1\\], but it contains 1.5"):
        V.check_probabilities(torch.tensor([0.2, 1.5]), "target")
    with pytest.raises(ValueError, match="nan"):
        V.check_probabilities(torch.tensor([float("nan")]), "target")


def test_ndim_broadcast_positive_choice():
    with pytest.raises(ValueError, match=r"input has shape \(2, 3, 4\) \(3-D\) but must be \(N, C\) or \(C,\)"):
        V.check_ndim(torch.zeros(2, 3, 4), "input", (1, 2), expected="(N, C) or (C,)")
    V.check_broadcastable(torch.zeros(1, 3), torch.zeros(4, 3), names=("var", "input"))
    with pytest.raises(ValueError, match=r"var has shape \(4,\), which does not broadcast"):
        V.check_broadcastable(torch.zeros(4), torch.zeros(4, 3), names=("var", "input"))
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        V.check_positive(0, "delta")
    V.check_positive(0, "eps", strict=False)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 2"):
        V.check_in_range(2, "alpha", 0, 1)


def test_pitfall_warning_is_a_userwarning():
    assert issubclass(lossbook.PitfallWarning, UserWarning)
    with pytest.warns(lossbook.PitfallWarning, match="hint"):
        V.warn_pitfall("hint")


def test_format_shape():
    assert V.format_shape(torch.zeros(())) == "()"
    assert V.format_shape(torch.zeros(3)) == "(3,)"
    assert V.format_shape(torch.Size([2, 3])) == "(2, 3)"


# ------------------------------------------------------------------------------------- utils


def test_default_device(monkeypatch):
    monkeypatch.setenv("LOSSBOOK_DEVICE", "cpu")
    assert lossbook.default_device() == torch.device("cpu")
    monkeypatch.delenv("LOSSBOOK_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert lossbook.default_device().type == expected
    if not torch.cuda.is_available():
        monkeypatch.setenv("LOSSBOOK_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            lossbook.default_device()


def test_test_device_is_the_cpu_unless_lossbook_device_is_set(monkeypatch):
    from lossbook.testing import test_device

    monkeypatch.delenv("LOSSBOOK_DEVICE", raising=False)
    assert test_device() == torch.device("cpu")  # not default_device(): the suite's default is the CPU
    monkeypatch.setenv("LOSSBOOK_DEVICE", "meta")
    assert test_device() == torch.device("meta")


def test_tensors_on_moves_the_tests_tensors_but_not_lossbooks():
    """The device switch, checked on the meta device (it exists everywhere, holds no values)."""
    from lossbook.testing import tensors_on

    g = torch.Generator().manual_seed(0)
    with tensors_on("meta"):
        assert torch.zeros(2).device.type == "meta" and torch.tensor([1.0]).device.type == "meta"
        assert torch.zeros(2, device="cpu").device.type == "cpu"  # an explicit device wins
        x = torch.randn(3, generator=g, requires_grad=True)  # a seeded CPU draw, moved
        assert x.device.type == "meta" and x.is_leaf and x.requires_grad
        assert lossbook.seed_everything(0).device.type == "cpu"
        # a factory call without device= from a file of the lossbook package is not redirected, so a
        # loss that forgets device= still fails on the GPU
        inside = os.path.join(os.path.dirname(lossbook.__file__), "_a_loss.py")
        assert eval(compile("torch.zeros(2)", inside, "eval")).device.type == "cpu"
    assert torch.zeros(2).device.type == "cpu"  # and nothing is left behind


def test_seed_everything_is_deterministic():
    g = lossbook.seed_everything(3)
    a, b = torch.rand(3), torch.rand(3, generator=g)
    g = lossbook.seed_everything(3)
    assert torch.equal(a, torch.rand(3)) and torch.equal(b, torch.rand(3, generator=g))


def test_show_source_shows_the_real_code():
    code = lossbook.show_source(lossbook.utils.loss_and_grad)
    assert "def loss_and_grad" in code.data and "autograd.grad" in code.data
    short = lossbook.show_source(lossbook.utils.loss_and_grad, docstring=False)
    assert "Evaluate an element-wise loss" not in short.data and "autograd.grad" in short.data
    with pytest.raises(ValueError, match="lossbook's own code"):
        lossbook.show_source(torch.nn.functional.mse_loss)


def test_loss_and_grad():
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)
    loss, grad = lossbook.loss_and_grad(lambda e: e**2, x)
    assert torch.allclose(loss, x**2) and torch.allclose(grad, 2 * x)
    with pytest.raises(ValueError, match="one loss per element"):
        lossbook.loss_and_grad(lambda e: (e**2).mean(), x)


def test_loss_and_grad_clear_errors():
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match="fn must be a function of x"):
        lossbook.loss_and_grad(3, x)
    with pytest.raises(TypeError, match="x must be a floating-point tensor .* got list"):
        lossbook.loss_and_grad(lambda e: e**2, [1.0, 2.0])
    with pytest.raises(TypeError, match="x must be a floating-point tensor .* got a tensor of dtype torch.int64"):
        lossbook.loss_and_grad(lambda e: e**2, torch.arange(3))
    with pytest.raises(TypeError, match="fn must return a tensor of per-element losses, got float"):
        lossbook.loss_and_grad(lambda e: 1.0, x)
    for detached in (lambda e: e.detach() ** 2, lambda e: (e > 0).long()):
        with pytest.raises(ValueError, match="does not depend differentiably on x"):
            lossbook.loss_and_grad(detached, x)
    w = torch.ones(5, dtype=torch.float64, requires_grad=True)
    loss, grad = lossbook.loss_and_grad(lambda e: w * 2, x)  # a constant of x: derivative 0
    assert torch.equal(grad, torch.zeros_like(x))


# ---------------------------------------------------------------------------------- plotting


def test_plot_loss_and_grad_draws_every_curve():
    from lossbook.plotting import plot_heatmap, plot_lines, plot_loss_and_grad

    x = torch.linspace(-1, 1, 11)
    fig = plot_loss_and_grad(x, {"a": (x**2, 2 * x), "b": (x.abs(), x.sign())}, title="t")
    left, right = fig.axes[:2]
    assert len(left.lines) == 2 and len(right.lines) == 3  # two curves and the zero line
    assert left.get_xlabel() and right.get_ylabel()
    with pytest.raises(ValueError):
        plot_loss_and_grad(x, {})
    assert len(plot_lines(x, {"a": x}, xlabel="x", ylabel="y").axes[0].lines) == 1
    assert plot_heatmap(torch.rand(3, 4), xlabel="t", ylabel="s").axes[0].images


def test_plot_tree_merges_shared_prefixes_and_keeps_columns_apart():
    from lossbook.plotting import plot_tree, tree_of

    paths = [("fruit", "red", "cherry"), ("fruit", "red", "a-very-long-strawberry-label"), ("fruit", "yellow", "lemon"),
             ("nut", "brown", "hazelnut")]
    fig = plot_tree(paths, level_titles=("kind", "colour", "name"), groups=["a", "b", "a", "c"])
    levels, arrows = tree_of(fig)
    nodes = [t for t in fig.axes[0].texts if (t.get_gid() or "").startswith("tree-node/")]
    assert levels == {0: ["fruit", "nut"], 1: ["red", "yellow", "brown"],
                      2: ["cherry", "a-very-long-strawberry-label", "lemon", "hazelnut"]}
    assert sorted(arrows) == sorted([("fruit", "red"), ("fruit", "yellow"), ("nut", "brown"), ("red", "cherry"),
                                     ("red", "a-very-long-strawberry-label"), ("yellow", "lemon"),
                                     ("brown", "hazelnut")])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c"]
    # every box lies inside the figure and left of the next column's boxes: nothing overlaps
    fig.draw_without_rendering()
    boxes = {t: t.get_bbox_patch().get_window_extent() for t in nodes}
    page = fig.bbox
    assert all(page.x0 <= b.x0 and b.x1 <= page.x1 and page.y0 <= b.y0 and b.y1 <= page.y1 for b in boxes.values())
    for level in (0, 1):
        right = max(b.x1 for t, b in boxes.items() if t.get_gid() == f"tree-node/{level}")
        left = min(b.x0 for t, b in boxes.items() if t.get_gid() == f"tree-node/{level + 1}")
        assert right < left
    with pytest.raises(ValueError, match="same number"):
        plot_tree([("a", "b"), ("c",)])
    with pytest.raises(ValueError, match="groups has 1 entries but there are 2 paths"):
        plot_tree([("a", "b"), ("a", "c")], groups=["x"])


# ----------------------------------------------------------------------------------- testing


def test_compare_reports_each_kind_of_difference():
    e = torch.tensor([1.0, float("inf"), float("nan")])
    assert compare(e, e.clone()) is None
    assert "shape" in compare(e, torch.zeros(2))
    assert "dtype" in compare(e, e.double())
    assert "NaN" in compare(e, torch.tensor([float("nan"), float("inf"), float("nan")]))
    assert "largest absolute difference" in compare(e, torch.tensor([1.1, float("inf"), float("nan")]))
    assert compare(0.5, 0.5) is None and "value" in compare([1.0, 2.0], [1.0])
    assert "tensor" in compare(e, 1.0)


def test_assert_matches_catches_value_and_gradient_errors():
    x = torch.randn(5, dtype=torch.float64)
    assert_matches(lambda t: t.sin(), torch.sin, (x,))
    with pytest.raises(AssertionError, match="largest absolute difference"):
        assert_matches(lambda t: t.sin() + 1e-3, torch.sin, (x,))

    class WrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.sin()

        @staticmethod
        def backward(ctx, g):
            return g  # should be g * cos(t)

    with pytest.raises(AssertionError, match="gradient"):
        assert_matches(WrongGrad.apply, torch.sin, (x,))


def test_no_stray_warnings_on_import():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import importlib

        importlib.reload(lossbook)


def test_single_cpu_thread_restores_the_setting():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with lossbook.utils.single_cpu_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("the setting is restored even when the block fails")
    assert torch.get_num_threads() == before


def test_progress_is_a_tqdm_bar_without_warnings(capsys, monkeypatch):
    monkeypatch.delenv("LOSSBOOK_PROGRESS", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = lossbook.utils.progress(range(5), desc="train")
        assert list(bar) == [0, 1, 2, 3, 4]
    assert "train" in capsys.readouterr().err


def test_progress_in_a_book_build_prints_one_summary_line_per_run(capsys, monkeypatch):
    monkeypatch.setenv("LOSSBOOK_PROGRESS", "summary")
    bar = lossbook.utils.progress(range(4), desc="train", mininterval=1)
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=False)
    assert seen == [0, 1, 2, 3]
    out = capsys.readouterr()
    assert out.out == "train: 4 steps (loss=0.250)\n" and out.err == ""  # no bar debris
    with lossbook.utils.progress(total=3, desc="manual") as manual:
        manual.update(3)
    assert capsys.readouterr().out == "manual: 3 steps\n"


def test_silenced_calls_without_warnings():
    from lossbook.testing import silenced

    def noisy(x):
        warnings.warn("noise", UserWarning, stacklevel=2)
        return x + 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert silenced(noisy)(1) == 2
    with pytest.warns(UserWarning):
        noisy(1)


def test_pitfall_warnings_point_at_the_callers_line():
    """A PitfallWarning names the learner's file and line, not lossbook's internals."""
    logits = torch.tensor([[5.0, -3.0, 2.0]])
    with pytest.warns(lossbook.PitfallWarning) as record:
        lossbook.nll_loss(logits, torch.tensor([0]))  # raw logits where log-probabilities belong
    assert record[0].filename == __file__
    log_probs = torch.randn(2, 1, 3).log_softmax(2)
    with pytest.warns(lossbook.PitfallWarning) as record:  # a target too long for its input
        lossbook.ctc_loss(log_probs, torch.tensor([[1, 1, 2]]), torch.tensor([2]), torch.tensor([3]))
    assert record[0].filename == __file__


def test_expect_error_asserts_the_error():
    from lossbook.testing import expect_error

    err = expect_error(ValueError, lossbook.huber_loss, torch.zeros(2), torch.zeros(2), delta=-1.0, match="delta")
    assert isinstance(err, ValueError)
    with pytest.raises(AssertionError, match="the call succeeded"):
        expect_error(ValueError, lossbook.huber_loss, torch.zeros(2), torch.zeros(2))
    with pytest.raises(AssertionError, match="does not match"):
        expect_error(ValueError, int, "one", match="two")
    with pytest.raises(KeyError):  # a different error is not swallowed
        expect_error(ValueError, {}.__getitem__, "x")


def test_torch_loss_coverage_lists_every_torch_loss_class():
    from pathlib import Path

    from lossbook.utils import chapter_of, torch_loss_coverage

    rows = torch_loss_coverage()
    classes = {n for n in dir(torch.nn) if n.endswith("Loss") and isinstance(getattr(torch.nn, n), type)}
    assert {r["module"] for r in rows} >= classes and len(rows) >= 22
    by_module = {r["module"]: r for r in rows}
    assert by_module["CrossEntropyLoss"] == {"module": "CrossEntropyLoss", "function": "cross_entropy",
                                             "in_lossbook": True, "chapter": "cross_entropy"}
    assert by_module["AdaptiveLogSoftmaxWithLoss"]["function"] is None
    book = Path(__file__).resolve().parents[1] / "book"
    for r in rows:  # a covered loss names a chapter that exists
        assert r["in_lossbook"] == hasattr(lossbook, r["function"] or "-")
        if r["in_lossbook"]:
            assert (book / r["chapter"] / "index.md").is_file(), r
    assert chapter_of(lossbook.kl_div) == "kl_divergence" and chapter_of(len) is None
