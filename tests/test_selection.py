"""lossbook.selection: every rule of the decision table, and recommend_loss's contract."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import lossbook
from lossbook.selection import RULES, TASKS, TRAITS, FromTrait, imbalance_ratio, recommend_loss
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
