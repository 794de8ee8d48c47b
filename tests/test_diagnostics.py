"""lossbook.diagnostics: each detector on planted curves, the clean curve gives nothing, gradient health."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lossbook.diagnostics import Finding, diagnose_loss_curve, gradient_health

D = torch.float64
T = 500
STEPS = torch.arange(T, dtype=D)


def noise(seed, scale):
    return 1 + scale * torch.randn(T, generator=torch.Generator().manual_seed(seed), dtype=D)


def clean(seed=0, level=1.0):
    """A healthy curve: exponential decay to a floor, with 3 % mini-batch noise."""
    return level * (2 * torch.exp(-STEPS / 80) + 0.1) * noise(seed, 0.03)


def kinds(findings):
    return [(f.kind, f.step) for f in findings]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", [1e-4, 1.0, 1e4])
def test_a_clean_curve_gives_no_finding_at_any_scale(seed, level):
    assert diagnose_loss_curve(clean(seed, level)) == []
    assert diagnose_loss_curve(clean(seed, level).tolist(), (clean(seed + 10, level) * 1.2)) == []


def test_heavy_mini_batch_noise_is_not_oscillation():
    """Batch-32 cross-entropy swings by a quarter of its level; while it still falls that is no finding."""
    assert diagnose_loss_curve(clean(7) / noise(7, 0.03) * noise(8, 0.25).abs()) == []


@pytest.mark.parametrize("where", [0, 137, 499])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_found_at_its_step(where, bad):
    curve = clean().tolist()
    curve[where] = bad
    findings = diagnose_loss_curve(curve)
    assert kinds(findings) == [("non-finite", where)] and findings[0].severity == "critical"


def test_a_nan_in_validation_is_found_too():
    val = clean(1)
    val[200] = math.nan
    assert kinds(diagnose_loss_curve(clean(), val)) == [("non-finite", 200)]


@pytest.mark.parametrize("start", [150, 300])
def test_divergence_is_found_where_the_loss_turns_up(start):
    curve = clean()
    curve[start:] = curve[start] * torch.exp((STEPS[start:] - start) / 30)
    (finding,) = diagnose_loss_curve(curve)
    assert finding.kind == "divergence" and finding.severity == "critical"
    assert abs(finding.step - start) <= 10


@pytest.mark.parametrize("start", [100, 250])
def test_oscillation_from_too_high_a_learning_rate(start):
    curve = clean()
    curve[start:] *= 1 + 0.6 * (-1) ** STEPS[start:]
    (finding,) = diagnose_loss_curve(curve)
    assert finding.kind == "oscillation" and abs(finding.step - start) <= 5
    assert "learning rate" in finding.suggestion


def test_a_plateau_followed_by_more_learning_is_found_where_it_starts():
    curve = torch.where(STEPS < 100, 2 - STEPS / 100, torch.where(
        STEPS < 300, torch.ones(T, dtype=D), 1 - 0.8 * (1 - torch.exp(-(STEPS - 300) / 40)))) * noise(3, 0.01)
    (finding,) = diagnose_loss_curve(curve)
    assert finding.kind == "plateau" and abs(finding.step - 100) <= 5


def test_a_curve_that_never_moves_is_stuck_from_step_zero():
    (finding,) = diagnose_loss_curve(3.0 * noise(4, 0.01))
    assert (finding.kind, finding.step, finding.severity) == ("plateau", 0, "warning")


@pytest.mark.parametrize("turn", [150, 250])
def test_over_fitting_is_found_at_the_best_validation_step(turn):
    exact = 2 * torch.exp(-STEPS / 80) + 0.3 + (STEPS - turn).clamp_min(0) * 0.002
    (finding,) = diagnose_loss_curve(clean(), exact * noise(5, 0.02))
    assert finding.kind == "over-fitting" and abs(finding.step - int(exact.argmin())) <= 20
    assert f"step {finding.step}" in finding.suggestion


def test_findings_are_sorted_most_severe_first_and_print_their_advice():
    curve = clean()
    curve[100:] *= 1 + 0.6 * (-1) ** STEPS[100:]
    curve[400] = math.nan
    findings = diagnose_loss_curve(curve)
    assert [f.kind for f in findings] == ["non-finite", "oscillation"]
    assert str(findings[0]).startswith("[critical] non-finite from step 400:")


def test_bad_curves_are_refused():
    with pytest.raises(ValueError, match="train_losses is empty"):
        diagnose_loss_curve([])
    with pytest.raises(ValueError, match="train_losses must be a sequence of numbers; got str"):
        diagnose_loss_curve("abc")
    with pytest.raises(ValueError, match="val_losses has 3 values but train_losses has 2"):
        diagnose_loss_curve([1.0, 0.5], [1.0, 0.9, 0.8])
    with pytest.raises(ValueError, match="window must be >= 1; got 0"):
        diagnose_loss_curve([1.0, 0.5], window=0)
    assert diagnose_loss_curve([1.0, 0.5]) == []  # too short to judge, but a NaN is still found
    assert kinds(diagnose_loss_curve([1.0, math.nan])) == [("non-finite", 1)]


def _net(seed=0, width=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 1))


def _backward(net, x=None):
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1)) if x is None else x
    net(x).pow(2).mean().backward()


def test_a_healthy_network_has_no_gradient_finding():
    net = _net()
    _backward(net)
    report = gradient_health(net)
    assert report.ok and len(report.rows) == 4 and all(not r["flags"] for r in report.rows)
    assert report.rows[0]["grad_norm"] == pytest.approx(net[0].weight.grad.norm().item(), rel=1e-6)
    assert "0.weight" in str(report)


def test_dead_relu_units_are_counted():
    net = _net()
    with torch.no_grad():
        net[0].bias[:5] = -100.0  # five units that are never active
    _backward(net)
    report = gradient_health(net)
    assert report.rows[0]["dead_units"] == 5
    assert [f.kind for f in report.findings] == ["dead units"]


def test_nan_exploding_vanishing_and_missing_gradients_are_flagged():
    net = _net()
    _backward(net)
    net[0].weight.grad[0, 0] = math.nan
    net[2].weight.grad *= 1e6
    net[2].bias.grad *= 1e-9
    net[0].bias.grad = None
    report = gradient_health(net)
    flags = {r["name"]: r["flags"] for r in report.rows}
    assert flags == {"0.weight": ["nan/inf"], "0.bias": ["no grad"], "2.weight": ["exploding"],
                     "2.bias": ["vanishing"]}
    assert [f.severity for f in report.findings] == ["critical", "critical", "warning", "info"]
    assert not report.ok


@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_a_loss_fed_probabilities_is_found_from_the_logits_it_was_given(head):
    torch.manual_seed(0)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    healthy = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    broken = nn.Sequential(*healthy, nn.Softmax(dim=1) if head == "softmax" else nn.Sigmoid())
    y = torch.arange(32) % 3
    for net in (healthy, broken):
        out = net(x)
        net.zero_grad()
        if head == "softmax":
            nn.functional.cross_entropy(out, y).backward()
        else:
            nn.functional.binary_cross_entropy_with_logits(out, nn.functional.one_hot(y, 3).float()).backward()
        report = gradient_health(net, logits=out)
        found = [f for f in report.findings if f.kind == "probabilities as logits"]
        if net is healthy:
            assert found == []
            ratios = [r["ratio"] for r in report.rows]
        else:
            (f,) = found
            assert f.severity == "critical" and "remove the model's final softmax/sigmoid" in f.suggestion
            assert ("log(1 + (C - 1)/e) = 0.5514 for C = 3" in f.message) == (head == "softmax")
            assert ("a sigmoid's output" in f.message) == (head == "sigmoid")
            # the gradients alone are only smaller: no flag of their own
            assert all(r["ratio"] < q for r, q in zip(report.rows, ratios))
            assert not any("vanishing" in r["flags"] for r in report.rows)
            assert gradient_health(net).findings == [g for g in report.findings if g is not f]


def test_the_cross_entropy_floor_on_probabilities():
    """log(1 + (C-1)/e), the message's floor, is the loss of a one-hot probability row fed as logits."""
    C = 10
    p = torch.eye(C, dtype=D)
    loss = nn.functional.cross_entropy(p, torch.arange(C))
    assert loss.item() == pytest.approx(math.log1p((C - 1) / math.e))
    q = torch.softmax(torch.randn(1000, C, generator=torch.Generator().manual_seed(0), dtype=D) * 5, 1)
    assert nn.functional.cross_entropy(q, q.argmax(1), reduction="none").min() >= loss - 1e-12


def test_gradient_health_refuses_what_is_not_a_module():
    with pytest.raises(ValueError, match="model must be a torch.nn.Module; got Tensor"):
        gradient_health(torch.zeros(3))
    with pytest.raises(TypeError, match="logits must be a torch.Tensor, got list"):
        gradient_health(nn.Linear(2, 2), logits=[0.5])


def test_finding_text():
    f = Finding("plateau", "info", 3, "flat.", "wait.")
    assert str(f) == "[info] plateau from step 3: flat. Try: wait."


# ------------------------------------------------------------------ compare_losses

import lossbook  # noqa: E402
from lossbook.diagnostics import compare_losses  # noqa: E402


def _regression_with_outliers():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=gen)
    w = torch.tensor([[1.0], [-2.0], [0.5]])
    y = X @ w + 0.1 * torch.randn(200, 1, generator=gen)
    y_train = y[:150].clone()
    y_train[:15] += 50.0  # 10 % gross errors in the training targets only
    return (X[:150], y_train), (X[150:], y[150:])


def _mae(output, target):
    return (output - target).abs().mean()


def test_compare_losses_judges_on_the_metric_and_a_robust_loss_wins_under_outliers():
    train, test = _regression_with_outliers()
    cmp = compare_losses({"mse": lossbook.mse_loss, "l1": lossbook.l1_loss, "huber": lossbook.huber_loss},
                         lambda s: nn.Linear(3, 1), train, test, _mae, steps=150, seeds=(0, 1, 2),
                         optimizer=lambda p: torch.optim.Adam(p, lr=0.05), metric_name="MAE")
    summary = cmp.summary()
    assert set(summary) == {"mse", "l1", "huber"} and all(len(v) == 3 for v in cmp.values.values())
    assert summary["l1"][0] < summary["mse"][0] and summary["huber"][0] < summary["mse"][0]
    assert "| l1 |" in cmp.table() and "MAE (mean ± std)" in cmp.table()
    assert cmp.plot() is not None


def test_compare_losses_starts_every_loss_from_the_same_seeded_model():
    train, test = _regression_with_outliers()
    cmp = compare_losses({"a": lossbook.mse_loss, "b": lambda o, t: lossbook.mse_loss(o, t)},
                         lambda s: nn.Linear(3, 1), train, test, _mae, steps=5, seeds=(3, 4))
    assert cmp.values["a"] == cmp.values["b"] and cmp.values["a"][0] != cmp.values["a"][1]


def test_compare_losses_refuses_bad_arguments():
    train, test = _regression_with_outliers()
    with pytest.raises(ValueError, match="losses is empty"):
        compare_losses({}, lambda s: nn.Linear(3, 1), train, test, _mae, steps=1)
    with pytest.raises(ValueError, match="steps must be >= 1; got 0"):
        compare_losses({"a": lossbook.mse_loss}, lambda s: nn.Linear(3, 1), train, test, _mae, steps=0)
    with pytest.raises(ValueError, match="seeds is empty"):
        compare_losses({"a": lossbook.mse_loss}, lambda s: nn.Linear(3, 1), train, test, _mae, steps=1, seeds=())
    with pytest.raises(ValueError, match=r"same first dimension; got train \(150, 3\) vs \(149, 1\)"):
        compare_losses({"a": lossbook.mse_loss}, lambda s: nn.Linear(3, 1), (train[0], train[1][:-1]), test,
                       _mae, steps=1)
