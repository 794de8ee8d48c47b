"""lossbook.selection: every rule of the decision table, and recommend_loss's contract."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import lossbook
from lossbook.plotting import tree_of
from lossbook.selection import (
    RULES,
    TASKS,
    TRAITS,
    FromTrait,
    check_setup,
    imbalance_ratio,
    plot_decision_tree,
    recommend_loss,
)
from lossbook.utils import chapter_of

ROOT = Path(__file__).resolve().parents[1]
D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, scale=1.0):
    return torch.randn(shape, generator=gen(seed), dtype=D) * scale


def traits_for(rule):
    """Traits under which ``rule`` should fire, derived from its own conditions."""
    out = {}
    for trait, op, *value in rule.when:
        value = value[0] if value else None
        out[trait] = (value if op == "is" else 2 * value if op == ">=" else value / 2 if op == "<=" else 0.9)
    return out


def _boxes(seed):
    xy = torch.rand(6, 2, generator=gen(seed), dtype=D) * 10
    return torch.cat([xy, xy + 1 + torch.rand(6, 2, generator=gen(seed + 1), dtype=D) * 5], dim=1)


def sample_call(rule, kwargs):
    """Call the rule's function on inputs of the rule's input kind; returns (loss, leaf tensors)."""
    fn = getattr(lossbook, rule.function)
    kind = rule.input_kind
    n, c = 8, 4
    if kind == "logits" and rule.task in ("binary", "detection"):
        x = randn(n, scale=8.0).requires_grad_()
        y = (torch.rand(n, generator=gen(1), dtype=D) < 0.3).to(D)
        return fn(x, y, **kwargs), [x]
    if kind == "logits" and rule.task == "multilabel":
        x = randn(n, c, scale=8.0).requires_grad_()
        y = (torch.rand(n, c, generator=gen(1), dtype=D) < 0.3).to(D)
        return fn(x, y, **kwargs), [x]
    if kind == "logits" and rule.task == "multiclass":
        x = randn(n, c, scale=8.0).requires_grad_()
        return fn(x, torch.randint(0, c, (n,), generator=gen(1)), **kwargs), [x]
    if rule.task == "segmentation":
        x = randn(2, 3, 5, 5, scale=4.0).requires_grad_()
        y = torch.randint(0, 3, (2, 1, 5, 5), generator=gen(1))
        if kind == "probabilities":
            return fn(x.softmax(1), y[:, 0], **kwargs), [x]
        return fn(x, y, **kwargs), [x]
    if kind == "logits" and rule.task == "distillation":
        s, t = randn(n, c, scale=4.0).requires_grad_(), randn(n, c, seed=2, scale=4.0)
        return fn(s, t, **kwargs), [s]
    if kind == "logits" and rule.task == "language_modelling":
        x = randn(2, 6, 11, scale=4.0).requires_grad_()
        return fn(x, torch.randint(0, 11, (2, 6), generator=gen(1)), **kwargs), [x]
    if kind == "hidden states":
        h, w = randn(10, 5).requires_grad_(), randn(11, 5, seed=1).requires_grad_()
        return fn(h, w, torch.randint(0, 11, (10,), generator=gen(2)), **kwargs), [h, w]
    if kind == "values":
        x, y = randn(n).requires_grad_(), randn(n, seed=1)
        if rule.function == "gaussian_nll_loss":
            var = torch.rand(n, generator=gen(2), dtype=D).add(0.1).requires_grad_()
            return fn(x, y, var, **kwargs), [x, var]
        return fn(x, y, **kwargs), [x]
    if kind == "log-values":
        x = randn(n).requires_grad_()
        return fn(x, torch.poisson(torch.full((n,), 3.0, dtype=D), generator=gen(1)), **kwargs), [x]
    if kind == "boxes":
        b = _boxes(0).requires_grad_()
        return fn(b, _boxes(5), **kwargs), [b]
    if kind == "embeddings" and rule.function == "info_nce_loss":
        q, k = randn(n, 5).requires_grad_(), randn(n, 5, seed=1)
        return fn(q, k, **kwargs), [q]
    if kind == "embeddings":
        e = randn(n, 5).requires_grad_()
        return fn(e, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), **kwargs), [e]
    if kind == "scores":
        a, b = randn(n).requires_grad_(), randn(n, seed=1)
        return fn(a, b, torch.where(randn(n, seed=2) > 0, 1.0, -1.0).to(D), **kwargs), [a]
    if kind == "discriminator logits":
        f = randn(n, scale=4.0).requires_grad_()
        return fn(f, **kwargs), [f]
    if kind == "noise prediction":
        x0, noise = randn(4, 3), randn(4, 3, seed=1)
        pred = randn(4, 3, seed=2).requires_grad_()
        abar = torch.linspace(0.99, 0.01, 10, dtype=D)
        return fn(pred, x0, noise, torch.tensor([0, 3, 6, 9]), abar, **kwargs), [pred]
    if kind == "log-probabilities":
        lp = randn(12, 2, 5).log_softmax(-1).requires_grad_()
        return fn(lp, torch.tensor([[1, 2, 3], [2, 2, 4]]), [12, 10], [3, 3], **kwargs), [lp]
    raise AssertionError(f"no sample inputs for {rule.function} taking {kind}")


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.task}:{r.describe_when()}:{r.function}")
def test_every_rule_fires_under_its_own_conditions_and_its_loss_runs(rule):
    traits = traits_for(rule)
    rec = recommend_loss(rule.task, **traits)
    assert rec.rule is rule, f"{traits} gave {rec.name} ({rec.rule.describe_when()}), not this rule"
    assert rec.name == rule.function and rec.function is getattr(lossbook, rule.function)
    assert rule.function in lossbook.__all__
    loss, leaves = sample_call(rule, rec.kwargs)
    assert loss.dim() == 0 and torch.isfinite(loss), f"{rule.function} gave {loss}"
    grads = torch.autograd.grad(loss, leaves)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.task}:{r.describe_when()}:{r.function}")
def test_every_reason_cites_a_chapter_that_teaches_the_loss(rule):
    folder = ROOT / "book" / rule.chapter
    assert (folder / "index.md").exists(), f"{rule.function}: no chapter {rule.chapter}"
    text = "".join(p.read_text() for p in folder.glob("*") if p.suffix in (".md", ".ipynb"))
    assert rule.function in text, f"book/{rule.chapter} never mentions {rule.function}"
    rec = recommend_loss(rule.task, **traits_for(rule))
    assert rec.reasons[-1].endswith(f"(chapter: {rule.chapter})") and rec.chapter == rule.chapter
    if rule.cite:
        assert re.search(rf"^@\w+\{{{re.escape(rule.cite)},", (ROOT / "references.bib").read_text(), re.M)
    # the chapter is the loss's own, or one that uses it for this task (l1_loss in generation)
    assert chapter_of(getattr(lossbook, rule.function)) == rule.chapter or rule.function in text


def test_every_task_ends_with_a_default_rule_and_nothing_follows_it():
    for task in TASKS:
        rules = [r for r in RULES if r.task == task]
        assert rules, f"no rule for {task}"
        assert not rules[-1].when, f"{task}: the last rule must be unconditional"
        assert all(r.when for r in rules[:-1]), f"{task}: a rule after the default can never fire"
        assert recommend_loss(task).rule is rules[-1]


def test_every_condition_uses_a_known_trait_and_operator():
    for rule in RULES:
        for trait, op, *_ in rule.when:
            assert trait in TRAITS and op in ("is", ">=", "<=", "given")
        for value in rule.kwargs.values():
            if isinstance(value, FromTrait):
                assert value.trait in TRAITS


def test_classifier_rules_take_logits_never_probabilities():
    """The probability-input binary_cross_entropy is never recommended; only Lovász takes probabilities."""
    for rule in RULES:
        assert rule.function != "binary_cross_entropy"
        if rule.task in ("binary", "multiclass", "multilabel", "distillation"):
            assert rule.input_kind == "logits"
    assert {r.function for r in RULES if r.input_kind == "probabilities"} == {"lovasz_softmax_loss"}


def test_plain_regression_is_mse_and_outliers_give_a_robust_loss():
    assert recommend_loss("regression").name == "mse_loss"
    rec = recommend_loss("regression", outliers=True)
    assert rec.name == "huber_loss" and rec.kwargs == {"delta": 1.0}
    assert recommend_loss("regression", outliers=True, delta=0.3).kwargs == {"delta": 0.3}
    assert recommend_loss("regression", outliers=False).name == "mse_loss"


def test_imbalanced_binary_gets_pos_weight_equal_to_negatives_over_positives():
    y = torch.tensor([0.0] * 18 + [1.0] * 2, dtype=D)
    ratio = imbalance_ratio(y)
    assert ratio == 9.0
    rec = recommend_loss("binary", imbalance=ratio)
    assert rec.name == "binary_cross_entropy_with_logits"
    x = randn(20, scale=3.0)
    assert torch.allclose(rec(x, y), F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor(9.0, dtype=D)))
    # with pos_weight the positives carry as much total weight as the negatives
    assert rec.kwargs["pos_weight"].item() * y.sum() == (1 - y).sum()
    assert recommend_loss("binary", imbalance=500.0).name == "sigmoid_focal_loss"
    assert recommend_loss("binary", imbalance=1.5).kwargs == {}
    assert recommend_loss("binary", imbalance=0.1).kwargs["pos_weight"].item() == pytest.approx(0.1)
    calibrated = recommend_loss("binary", imbalance=9.0, need_calibrated_probabilities=True)
    assert calibrated.kwargs == {}


def test_multiclass_traits():
    assert recommend_loss("multiclass").kwargs == {}
    assert recommend_loss("multiclass", noisy_labels=True).kwargs == {"label_smoothing": 0.1}
    assert recommend_loss("multiclass", noisy_labels=True, need_calibrated_probabilities=True).kwargs == {}
    assert recommend_loss("multiclass", imbalance=10.0).name == "focal_loss"


def test_bad_tasks_and_traits_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"task must be one of regression, binary.*got 'clasification'"):
        recommend_loss("clasification")
    with pytest.raises(ValueError, match=r"unknown trait\(s\) \['outlier'\]; known traits: .*outliers"):
        recommend_loss("regression", outlier=True)
    with pytest.raises(ValueError, match=r"imbalance must be a finite ratio > 0 \(#negatives / #positives\); got 0"):
        recommend_loss("binary", imbalance=0)
    with pytest.raises(ValueError, match=r"imbalance must be .* got 'high'"):
        recommend_loss("binary", imbalance="high")
    with pytest.raises(ValueError, match=r"quantile must lie in \(0, 1\); got 1.5"):
        recommend_loss("regression", quantile=1.5)


def test_imbalance_ratio():
    assert imbalance_ratio(torch.tensor([True, False, False, False])) == 3.0
    assert imbalance_ratio(torch.tensor([[0, 1], [0, 0]])) == 3.0
    assert imbalance_ratio(torch.tensor([0, 0, 0, 0, 1, 2, 2])) == 4.0
    assert imbalance_ratio(torch.tensor([0, 1, 1, 1, 1], dtype=torch.float32)) == 0.25
    with pytest.raises(ValueError, match="1 positives and 0 negatives"):
        imbalance_ratio(torch.tensor([1]))
    with pytest.raises(ValueError, match="must hold 0/1 labels"):
        imbalance_ratio(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="empty"):
        imbalance_ratio(torch.tensor([]))
    with pytest.raises(ValueError, match=">= 0"):
        imbalance_ratio(torch.tensor([0, 2, -100]))


def test_recommendation_call_passes_its_kwargs_and_lets_the_caller_override():
    rec = recommend_loss("multiclass", noisy_labels=True)
    x, y = randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    assert torch.allclose(rec(x, y), F.cross_entropy(x, y, label_smoothing=0.1))
    assert torch.allclose(rec(x, y, label_smoothing=0.0), F.cross_entropy(x, y))


def test_the_decision_tree_figure_draws_exactly_the_rules():
    levels, arrows = tree_of(plot_decision_tree())
    assert levels[0] == list(dict.fromkeys(r.task for r in RULES))  # every task once, in the table's order
    assert levels[1] == [r.describe_when() for r in RULES]  # one condition box per rule, in the order tried
    assert levels[2] == [r.describe_call() for r in RULES]
    assert sorted(arrows) == sorted([(r.task, r.describe_when()) for r in RULES]
                                    + [(r.describe_when(), r.describe_call()) for r in RULES])
    assert RULES[0].describe_call() == "gaussian_nll_loss()"
    pos = next(r for r in RULES if r.task == "binary" and "pos_weight" in r.kwargs)
    assert pos.describe_call() == "binary_cross_entropy_with_logits(pos_weight=imbalance)"
    # a different table draws a different tree: the figure is generated, not drawn once
    levels, _ = tree_of(plot_decision_tree(RULES[:2]))
    assert levels == {0: ["regression"], 1: ["heteroscedastic", "counts"],
                      2: ["gaussian_nll_loss()", "poisson_nll_loss(log_input=True)"]}


# ---- check_setup: one failing setup per check, and clean setups that give nothing


def _labels(n_neg, n_pos, dtype=D):
    return torch.cat([torch.zeros(n_neg, dtype=dtype), torch.ones(n_pos, dtype=dtype)])


def _kinds(findings):
    return [f.kind for f in findings]


def _threshold(task):
    """The smallest 'imbalance >=' threshold of the task's rules, read from the table."""
    return min(v for r in RULES if r.task == task for t, op, v in r.when if t == "imbalance" and op == ">=")


def test_check_setup_passes_correct_setups():
    assert check_setup("regression", randn(20), randn(20, seed=1)) == []
    assert check_setup("binary", randn(20, scale=3.0), _labels(10, 10)) == []
    assert check_setup("multilabel", randn(6, 4, scale=3.0), (randn(6, 4, seed=1) > 0).to(D)) == []
    y = torch.arange(12) % 4
    assert check_setup("multiclass", randn(12, 4, scale=3.0), y) == []
    assert check_setup("multiclass", randn(3, 4, 5, 5, scale=3.0), torch.randint(0, 4, (3, 5, 5), generator=gen(2))) == []
    soft = randn(12, 4, seed=3).softmax(1)
    assert check_setup("multiclass", randn(12, 4, scale=3.0), soft) == []
    assert check_setup("binary", randn(8, scale=3.0), torch.full((8,), 0.5, dtype=D)) == []  # soft labels


def test_check_setup_finds_probabilities_fed_to_a_logit_loss():
    logits = randn(64, 5, scale=3.0)
    (f,) = check_setup("multiclass", logits.softmax(1), torch.arange(64) % 5)
    assert (f.kind, f.severity) == ("input kind", "critical")
    assert "rows sum to 1" in f.message and "remove the final softmax" in f.suggestion
    (f,) = check_setup("binary", torch.sigmoid(logits[:, 0]), _labels(32, 32))
    assert f.kind == "input kind" and "a sigmoid itself" in f.message and "softmax" not in f.message
    assert "input kind" not in _kinds(check_setup("regression", torch.rand(64, generator=gen()), torch.rand(64)))


def test_check_setup_finds_wrong_target_dtypes():
    (f,) = check_setup("multiclass", randn(12, 4, scale=3.0), (torch.arange(12) % 4).to(D))
    assert f.kind == "target dtype" and "integer class indices" in f.message and f.suggestion == "use target.long()."
    (f,) = check_setup("binary", randn(20, scale=3.0), _labels(10, 10, dtype=torch.long))
    assert f.kind == "target dtype" and "float 0/1" in f.message and f.suggestion == "use target.float()."
    (f,) = check_setup("regression", randn(20), torch.arange(20))
    assert f.kind == "target dtype" and "floating-point targets" in f.message
    (f,) = check_setup("binary", randn(8).to(torch.long), _labels(4, 4))
    assert f.kind == "output dtype"


def test_check_setup_finds_wrong_target_values():
    (f,) = check_setup("multiclass", randn(12, 4, scale=3.0), torch.arange(12) % 5)
    assert f.kind == "target values" and "class index 4" in f.message
    (f,) = check_setup("binary", randn(20, scale=3.0), 2 * _labels(10, 10) - 1)
    assert f.kind == "target values" and "(target + 1) / 2" in f.suggestion
    bad_soft = randn(12, 4, seed=3).abs()
    (f,) = check_setup("multiclass", randn(12, 4, scale=3.0), bad_soft / bad_soft.sum(1, keepdim=True) * 0.5)
    assert f.kind == "target values" and "do not sum to 1" in f.message


def test_check_setup_finds_shape_disagreements():
    (f,) = check_setup("regression", randn(20, 1), randn(20, seed=1))
    assert f.kind == "shape" and "(20,)" in f.message and f.suggestion == "use output.squeeze(-1)."
    (f,) = check_setup("binary", randn(20, 2, scale=3.0), _labels(10, 10))
    assert f.kind == "shape" and "multiclass" in f.suggestion
    onehot = F.one_hot(torch.arange(12) % 4, 4)
    (f,) = check_setup("multiclass", randn(12, 4, scale=3.0), onehot)
    assert f.kind == "shape" and "one-hot" in f.message and "argmax" in f.suggestion
    (f,) = check_setup("multiclass", randn(12, 4, scale=3.0), torch.arange(6) % 4)
    assert f.kind == "shape" and "(12,)" in f.message


def test_check_setup_measures_the_balance_and_reads_the_threshold_from_the_table():
    threshold = _threshold("binary")
    below = _labels(int(threshold * 10) - 1, 10)  # a ratio just under the table's threshold
    above = _labels(int(threshold * 10) + 1, 10)
    assert check_setup("binary", randn(below.numel(), scale=3.0), below) == []
    (f,) = check_setup("binary", randn(above.numel(), scale=3.0), above)
    ratio = imbalance_ratio(above)
    rule = recommend_loss("binary", imbalance=ratio).rule
    assert (f.kind, f.severity) == ("class balance", "warning")
    assert rule.describe_when() in f.message and f"pos_weight={ratio:.3g}" in f.suggestion
    # the loss in use already weighs the positives: nothing to report
    assert check_setup("binary", randn(above.numel(), scale=3.0), above,
                       loss=recommend_loss("binary", imbalance=ratio)) == []
    # pos_weight the wrong way round (#positives / #negatives) is caught
    (f,) = check_setup("binary", randn(above.numel(), scale=3.0), above,
                       loss=recommend_loss("binary", imbalance=1 / ratio))
    assert f.kind == "class balance"
    # a stated need for calibrated probabilities wins over the imbalance rules, as in recommend_loss
    assert check_setup("binary", randn(above.numel(), scale=3.0), above,
                       loss=recommend_loss("binary", need_calibrated_probabilities=True)) == []
    # a pos_weight that the labels do not call for
    (f,) = check_setup("binary", randn(20, scale=3.0), _labels(10, 10), loss=recommend_loss("binary", imbalance=20.0))
    assert f.kind == "class balance" and "no longer meets" in f.message


def test_check_setup_multiclass_balance_and_a_single_class():
    y = torch.cat([torch.zeros(30, dtype=torch.long), torch.ones(5, dtype=torch.long), torch.full((5,), 2)])
    assert imbalance_ratio(y) >= _threshold("multiclass")
    (f,) = check_setup("multiclass", randn(40, 3, scale=3.0), y)
    assert f.kind == "class balance" and "largest / smallest" in f.message and "focal_loss" in f.suggestion
    two = torch.cat([torch.zeros(2, dtype=torch.long), torch.ones(30, dtype=torch.long)])  # the minority is class 0
    assert _kinds(check_setup("multiclass", randn(32, 2, scale=3.0), two)) == ["class balance"]
    (f,) = check_setup("binary", randn(8, scale=3.0), torch.ones(8, dtype=D))
    assert f.kind == "class balance" and "8 positives and 0 negatives" in f.message


def test_check_setup_reports_a_non_finite_output_and_refuses_bad_arguments():
    x = randn(8)
    x[3] = math.nan
    assert _kinds(check_setup("regression", x, randn(8))) == ["non-finite output"]
    with pytest.raises(ValueError, match="task must be one of 'regression', 'binary', 'multilabel', 'multiclass'"):
        check_setup("segmentation", randn(8), randn(8))
    with pytest.raises(ValueError, match=r"loss must be a Recommendation of recommend_loss\('binary', ...\)"):
        check_setup("binary", randn(8), _labels(4, 4), loss=recommend_loss("multiclass"))
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        check_setup("binary", randn(8), [0, 1])
