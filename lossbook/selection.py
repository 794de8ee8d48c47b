"""Choosing a loss: the book's decision table as data, and ``recommend_loss`` that reads it.

The table :data:`RULES` is the one place where "which loss for which task" is written down. The
chapter renders it, ``recommend_loss`` walks it (the first rule of the task whose conditions all hold
wins), and the tests check each rule: that its function exists in lossbook, that it accepts the input
kind the task produces (logits, not probabilities, for a classifier; log-probabilities for CTC ...),
and that its reason names the chapter the loss is taught in.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ._validation import (
    check_choice,
    check_class_indices,
    check_probabilities,
    check_same_shape,
    check_tensor,
    format_shape,
    looks_like_probabilities,
)
from .diagnostics import Finding, _sorted

__all__ = ["recommend_loss", "imbalance_ratio", "check_setup"]

TASKS = (
    "regression", "binary", "multiclass", "multilabel", "segmentation", "detection", "metric_learning",
    "ranking", "generation", "sequence_alignment", "distillation", "language_modelling",
)

# Traits a caller may state, with what each means. ``imbalance`` is #negatives / #positives for a
# binary or multi-label task (the ratio ``pos_weight`` wants), largest / smallest class count for a
# multi-class one, background / foreground pixels for segmentation.
TRAITS = {
    "outliers": "the targets contain gross errors (bool)",
    "imbalance": "#negatives / #positives (binary, multi-label), largest / smallest class count (multi-class), "
                 "background / foreground pixels (segmentation); a number > 0",
    "noisy_labels": "some class labels are wrong (bool)",
    "need_calibrated_probabilities": "the predicted probabilities themselves are used, not only their ranking (bool)",
    "heteroscedastic": "the noise level varies with the input and the model predicts it (bool)",
    "counts": "the targets are non-negative counts (bool)",
    "quantile": "predict this quantile of the target, in (0, 1), instead of its mean",
    "metric": "the metric the task is judged on, e.g. 'iou' for segmentation",
    "head": "for detection: 'boxes' (the regression head) or 'classes' (the dense classification head)",
    "model": "for generation: 'reconstruction', 'gan' or 'diffusion'",
    "views": "for metric learning: positives are augmented views of the same item, no class labels (bool)",
    "memory_bound": "for language modelling: the (tokens x vocabulary) logits do not fit in memory (bool)",
    "temperature": "for distillation: the softening temperature (> 0)",
    "delta": "for regression with outliers: Huber's delta, at the scale of the clean residuals",
}


@dataclass(frozen=True)
class FromTrait:
    """A keyword argument whose value comes from a trait: ``pos_weight = imbalance``."""

    trait: str
    default: Any = None
    as_tensor: bool = False

    def resolve(self, traits: dict) -> Any:
        value = traits.get(self.trait, self.default)
        return torch.tensor(float(value)) if self.as_tensor else value

    def __repr__(self) -> str:
        return self.trait if self.default is None else f"{self.trait} (default {self.default})"


@dataclass(frozen=True)
class Rule:
    """One row of the decision table: for ``task``, when every condition holds, use ``function``.

    A condition is ``(trait, op, value)`` with op ``"is"`` (equality, for flags and names),
    ``">="``, ``"<="`` or ``"given"`` (the trait was stated).
    """

    task: str
    when: tuple[tuple[str, str, Any], ...]
    function: str
    kwargs: dict
    input_kind: str
    reason: str
    chapter: str
    cite: str = ""

    def matches(self, traits: dict) -> bool:
        return all(_holds(traits, *condition) for condition in self.when)

    def describe_when(self) -> str:
        if not self.when:
            return "otherwise"
        parts = []
        for trait, op, *rest in self.when:
            value = rest[0] if rest else None
            parts.append(trait if (op, value) == ("is", True) else
                         f"{trait} given" if op == "given" else f"{trait} {'=' if op == 'is' else op} {value:.3g}"
                         if isinstance(value, float) else f"{trait} {'=' if op == 'is' else op} {value}")
        return " and ".join(parts)


    def describe_call(self) -> str:
        """The call the rule recommends, e.g. ``binary_cross_entropy_with_logits(pos_weight=imbalance)``."""
        args = ", ".join(f"{k}={v.trait if isinstance(v, FromTrait) else repr(v)}" for k, v in self.kwargs.items())
        return f"{self.function}({args})"


def _holds(traits: dict, trait: str, op: str, value: Any = None) -> bool:
    if op == "given":
        return traits.get(trait) is not None
    if trait not in traits or traits[trait] is None:
        return False
    got = traits[trait]
    if op == "is":
        return got == value
    if op == ">=":
        return got >= value
    if op == "<=":
        return got <= value
    raise ValueError(f"unknown condition operator {op!r}")


def _r(task, when, function, kwargs, input_kind, reason, chapter, cite=""):
    return Rule(task, tuple(when), function, dict(kwargs), input_kind, reason, chapter, cite)


# The decision table. Within a task the rules are tried in order; the last one has no condition.
RULES: tuple[Rule, ...] = (
    # ---- regression
    _r("regression", [("heteroscedastic", "is", True)], "gaussian_nll_loss", {}, "values",
       "the model predicts a mean and a variance per example; the Gaussian negative log-likelihood learns "
       "both, so noisy regions are down-weighted by their own predicted variance", "regression", "nix1994estimating"),
    _r("regression", [("counts", "is", True)], "poisson_nll_loss", {"log_input": True}, "log-values",
       "non-negative counts are Poisson-distributed; predicting the log-rate keeps the rate positive",
       "regression"),
    _r("regression", [("quantile", "given")], "quantile_loss", {"quantile": FromTrait("quantile")}, "values",
       "the pinball loss is minimised by the requested quantile of the target, not by its mean",
       "regression", "koenker1978quantile"),
    _r("regression", [("outliers", "is", True)], "huber_loss", {"delta": FromTrait("delta", 1.0)}, "values",
       "Huber's loss is quadratic for small residuals and linear for large ones, so a few gross errors "
       "cannot dominate the gradient; choose delta at the scale of the clean residuals", "regression",
       "huber1964robust"),
    _r("regression", [], "mse_loss", {}, "values",
       "with Gaussian noise the mean squared error is the maximum-likelihood loss and it is minimised by the "
       "conditional mean", "regression"),
    # ---- binary classification (one logit per example)
    _r("binary", [("need_calibrated_probabilities", "is", True)], "binary_cross_entropy_with_logits", {}, "logits",
       "unweighted BCE is a proper scoring rule, so its probabilities can be trusted (check them, then "
       "temperature-scale); pos_weight and the focal loss move them, so handle imbalance by moving the "
       "decision threshold instead", "classification", "guo2017calibration"),
    _r("binary", [("imbalance", ">=", 100.0)], "sigmoid_focal_loss",
       {"alpha": 0.25, "gamma": 2.0, "reduction": "mean"}, "logits",
       "with extreme imbalance the many easy negatives swamp the loss; the focal term (1 - p_t)^gamma "
       "down-weights them (RetinaNet's alpha = 0.25, gamma = 2)", "classification", "lin2017focal"),
    _r("binary", [("imbalance", ">=", 3.0)], "binary_cross_entropy_with_logits",
       {"pos_weight": FromTrait("imbalance", as_tensor=True)}, "logits",
       "pos_weight = #negatives / #positives gives the positives as much total weight as the negatives",
       "classification"),
    _r("binary", [("imbalance", "<=", 1 / 3)], "binary_cross_entropy_with_logits",
       {"pos_weight": FromTrait("imbalance", as_tensor=True)}, "logits",
       "the positives are the majority: pos_weight = #negatives / #positives < 1 down-weights them",
       "classification"),
    _r("binary", [], "binary_cross_entropy_with_logits", {}, "logits",
       "the Bernoulli negative log-likelihood, computed from the logit in the stable softplus form; a "
       "two-class softmax cross-entropy is the same loss", "classification"),
    # ---- multi-class classification (C logits per example, one class each)
    _r("multiclass", [("need_calibrated_probabilities", "is", True)], "cross_entropy", {}, "logits",
       "plain cross-entropy, then temperature scaling on held-out data; label smoothing and the focal loss "
       "distort the probabilities", "cross_entropy", "guo2017calibration"),
    _r("multiclass", [("noisy_labels", "is", True)], "cross_entropy", {"label_smoothing": 0.1}, "logits",
       "label smoothing caps the confidence the model can be pushed to on a wrong label",
       "cross_entropy", "szegedy2016rethinking"),
    _r("multiclass", [("imbalance", ">=", 3.0)], "focal_loss", {"gamma": 2.0}, "logits",
       "the multi-class focal loss down-weights the well-classified examples of the frequent classes; "
       "class weights (cross_entropy's weight) are the other option", "classification", "lin2017focal"),
    _r("multiclass", [], "cross_entropy", {}, "logits",
       "the categorical negative log-likelihood; it takes logits (log-softmax inside) and class indices or "
       "class probabilities as targets", "cross_entropy"),
    # ---- multi-label classification (C independent yes/no per example)
    _r("multilabel", [("imbalance", ">=", 3.0)], "binary_cross_entropy_with_logits",
       {"pos_weight": FromTrait("imbalance", as_tensor=True)}, "logits",
       "one BCE per label; pos_weight = #negatives / #positives (a scalar here, or one per label)",
       "classification"),
    _r("multilabel", [], "binary_cross_entropy_with_logits", {}, "logits",
       "one independent BCE per label on (N, C) multi-hot float targets; a softmax would make the labels "
       "compete", "classification"),
    # ---- semantic segmentation (C logits per pixel)
    _r("segmentation", [("metric", "is", "iou")], "lovasz_softmax_loss", {}, "probabilities",
       "the Lovász-softmax is a convex surrogate of 1 - IoU, the metric itself; it takes softmax "
       "probabilities", "segmentation", "berman2018lovasz"),
    _r("segmentation", [("imbalance", ">=", 10.0)], "tversky_loss",
       {"alpha": 0.3, "beta": 0.7, "softmax": True, "to_onehot_y": True}, "logits",
       "a small foreground: the Tversky index with beta > alpha penalises missed foreground pixels more "
       "than false alarms", "segmentation", "salehi2017tversky"),
    _r("segmentation", [], "dice_ce_loss", {"softmax": True, "to_onehot_y": True}, "logits",
       "cross-entropy gives every pixel a smooth gradient, Dice measures the overlap per class whatever its "
       "size; their sum is the usual default", "segmentation", "milletari2016vnet"),
    # ---- object detection
    _r("detection", [("head", "is", "classes")], "sigmoid_focal_loss",
       {"alpha": 0.25, "gamma": 2.0, "reduction": "sum"}, "logits",
       "the dense classification head sees thousands of easy background anchors per object; RetinaNet sums "
       "the focal loss and divides by the number of positive anchors", "detection", "lin2017focal"),
    _r("detection", [], "generalized_box_iou_loss", {"reduction": "mean"}, "boxes",
       "an IoU-based loss is invariant to the box's scale, and GIoU still has a gradient when the boxes "
       "do not overlap", "detection", "rezatofighi2019giou"),
    # ---- metric learning (embeddings)
    _r("metric_learning", [("views", "is", True)], "info_nce_loss", {"temperature": 0.1}, "embeddings",
       "without labels, each query's positive is another view of the same item and the rest of the batch "
       "are negatives: InfoNCE", "ranking", "oord2018cpc"),
    _r("metric_learning", [], "supervised_contrastive_loss", {"temperature": 0.1}, "embeddings",
       "with class labels, every other sample of the class is a positive; the supervised contrastive loss "
       "uses them all (batch-hard triplets are the classic alternative)", "ranking", "khosla2020supcon"),
    # ---- ranking (scores of pairs)
    _r("ranking", [], "margin_ranking_loss", {"margin": 1.0}, "scores",
       "a pairwise loss on score differences: it asks that the preferred item score higher by a margin",
       "ranking", "burges2005ranknet"),
    # ---- generation
    _r("generation", [("model", "is", "gan")], "generator_loss", {"mode": "non_saturating"},
       "discriminator logits",
       "the non-saturating generator loss keeps a gradient when the discriminator rejects the fakes",
       "generation", "goodfellow2014gan"),
    _r("generation", [("model", "is", "diffusion")], "diffusion_loss", {"parameterization": "epsilon"},
       "noise prediction", "the DDPM objective: the mean squared error of the predicted noise", "generation",
       "ho2020ddpm"),
    _r("generation", [], "l1_loss", {}, "values",
       "for reconstruction, L1 is less blurry than L2 (pix2pix); add a perceptual loss for texture",
       "generation", "isola2017pix2pix"),
    # ---- sequence alignment
    _r("sequence_alignment", [], "ctc_loss", {}, "log-probabilities",
       "CTC sums over every alignment of an unsegmented target; it takes (T, N, C) log-probabilities "
       "(log_softmax first)", "ctc", "graves2006ctc"),
    # ---- distillation
    _r("distillation", [], "distillation_loss", {"temperature": FromTrait("temperature", 2.0)}, "logits",
       "KL divergence between temperature-softened teacher and student distributions, scaled by T^2 so "
       "its gradient does not shrink with T", "kl_divergence", "hinton2015distilling"),
    # ---- language modelling
    _r("language_modelling", [("memory_bound", "is", True)], "linear_cross_entropy", {}, "hidden states",
       "the fused projection + cross-entropy never materialises the (tokens x vocabulary) logits",
       "llm", "wijmans2025cce"),
    _r("language_modelling", [], "token_cross_entropy", {}, "logits",
       "next-token cross-entropy with the shift and padding (ignore_index) handled, averaged over the "
       "predicted tokens", "llm"),
)


def _input_group(kind: str) -> str:
    """The colour of a decision-tree leaf: logits (a discriminator's too), probabilities, log-probabilities."""
    return "logits" if kind.endswith("logits") else kind if kind in ("probabilities", "log-probabilities") else ""


def plot_decision_tree(rules: tuple[Rule, ...] = RULES):
    """The decision table drawn as a tree: task, then each rule's conditions, then the loss to call.

    Generated from ``rules`` (by default :data:`RULES`, the table ``recommend_loss`` reads), so the
    figure cannot drift from the table: a task's rules appear top to bottom in the order they are
    tried, and each leaf is coloured by the input kind its loss takes (logits for every classifier).
    Returns the ``Figure`` of :func:`lossbook.plotting.plot_tree`.
    """
    from .plotting import plot_tree

    others = ", ".join(sorted({r.input_kind for r in rules if not _input_group(r.input_kind)}))
    groups = [f"takes {_input_group(r.input_kind) or others}" for r in rules]
    return plot_tree([(r.task, r.describe_when(), r.describe_call()) for r in rules],
                     level_titles=("task", "when (tried top to bottom)", "use"), groups=groups)


@dataclass(frozen=True)
class Recommendation:
    """What :func:`recommend_loss` returns: the loss, how to call it, and why.

    ``function`` is the lossbook function itself; call it as ``rec.function(input, target, **rec.kwargs)``.
    ``reasons`` are sentences ending with the chapter that teaches the loss.
    """

    name: str
    function: Callable
    kwargs: dict
    reasons: tuple[str, ...]
    chapter: str
    input_kind: str = ""
    rule: Rule | None = field(default=None, repr=False, compare=False)

    def __call__(self, *args, **kwargs):
        return self.function(*args, **{**self.kwargs, **kwargs})


def recommend_loss(task: str, **traits: Any) -> Recommendation:
    r"""Recommend a lossbook loss for a task and its traits, from the book's decision table.

    The rules of :data:`lossbook.selection.RULES` for ``task`` are tried in order; the first whose
    conditions all hold wins (the last rule of every task has none). The result names the function,
    the keyword arguments to call it with (``pos_weight`` from the stated imbalance, ...), the kind
    of input it takes and the reasons, each pointing to the chapter that teaches the loss.

    .. math::
        \text{rule}(task, traits) = \min\{\, i : \text{task}_i = task \wedge
        \forall (t, op, v) \in \text{when}_i:\ traits_t\ op\ v \,\}

    Shape:
        Not a loss: no tensors in, a :class:`Recommendation` out.

    Args:
        task: one of ``regression``, ``binary``, ``multiclass``, ``multilabel``, ``segmentation``,
            ``detection``, ``metric_learning``, ``ranking``, ``generation``, ``sequence_alignment``,
            ``distillation``, ``language_modelling``.
        **traits: what is known about the task (see ``lossbook.selection.TRAITS``), e.g.
            ``outliers=True``, ``imbalance=20`` (#negatives / #positives, measured with
            :func:`imbalance_ratio`), ``noisy_labels=True``, ``need_calibrated_probabilities=True``,
            ``heteroscedastic=True``.

    Example:
        >>> rec = recommend_loss("binary", imbalance=20.0)
        >>> rec.name, rec.kwargs["pos_weight"].item()
        ('binary_cross_entropy_with_logits', 20.0)
        >>> recommend_loss("regression").name
        'mse_loss'

    Chapter: choosing
    """
    import lossbook

    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    unknown = sorted(set(traits) - set(TRAITS))
    if unknown:
        raise ValueError(f"unknown trait(s) {unknown}; known traits: {', '.join(sorted(TRAITS))}")
    imbalance = traits.get("imbalance")
    if imbalance is not None and not (isinstance(imbalance, (int, float)) and math.isfinite(imbalance)
                                      and imbalance > 0):
        raise ValueError(f"imbalance must be a finite ratio > 0 (#negatives / #positives); got {imbalance!r}")
    quantile = traits.get("quantile")
    if quantile is not None and not 0 < quantile < 1:
        raise ValueError(f"quantile must lie in (0, 1); got {quantile!r}")
    rule = next(r for r in RULES if r.task == task and r.matches(traits))
    kwargs = {k: (v.resolve(traits) if isinstance(v, FromTrait) else v) for k, v in rule.kwargs.items()}
    reasons = (f"{rule.reason} (chapter: {rule.chapter})",)
    return Recommendation(rule.function, getattr(lossbook, rule.function), kwargs, reasons, rule.chapter,
                          rule.input_kind, rule)


def imbalance_ratio(target: Tensor) -> float:
    r"""The class imbalance of a label tensor, as ``recommend_loss`` and ``pos_weight`` define it.

    .. math::
        r = \frac{\#\{y = 0\}}{\#\{y = 1\}} \ \text{(binary, multi-label)}, \qquad
        r = \frac{\max_c n_c}{\min_c n_c} \ \text{(class indices)}

    Shape:
        - target: any shape of 0/1 labels (bool, int or float): #negatives / #positives over all
          elements, the ``pos_weight`` of ``binary_cross_entropy_with_logits``;
          or integer class indices with more than two classes: largest / smallest class count
          (classes that never occur are not counted).
        - output: a Python float.

    Args:
        target: the labels.

    Example:
        >>> imbalance_ratio(torch.tensor([0, 0, 0, 1]))
        3.0

    Chapter: choosing
    """
    if target.numel() == 0:
        raise ValueError("target is empty; the imbalance of no labels is undefined")
    if target.is_floating_point() or target.dtype == torch.bool:
        values = target.to(torch.float64)
        if not bool(((values == 0) | (values == 1)).all()):
            raise ValueError("a floating-point target must hold 0/1 labels; got other values")
    else:
        values = target
    if bool(((values == 0) | (values == 1)).all()):
        pos = int((values == 1).sum())
        neg = int(values.numel() - pos)
        if pos == 0 or neg == 0:
            raise ValueError(f"target has {pos} positives and {neg} negatives; the ratio needs both")
        return neg / pos
    if bool((values < 0).any()):
        raise ValueError("class-index targets must be >= 0 (drop ignore_index entries first)")
    counts = torch.bincount(values.flatten())
    counts = counts[counts > 0]
    return float(counts.max()) / float(counts.min())


# The tasks check_setup knows: those whose loss takes the model's output and a label tensor directly.
SETUP_TASKS = ("regression", "binary", "multilabel", "multiclass")


def _problem(check: Callable, *args, **kwargs) -> str | None:
    """The message of a ``lossbook._validation`` check that fails, or None when it passes."""
    try:
        check(*args, **kwargs)
    except (TypeError, ValueError) as err:
        return str(err)
    return None


def _plain(kwargs: dict) -> str:
    return ", ".join(f"{k}={v.item():.3g}" if isinstance(v, Tensor) and v.numel() == 1 else f"{k}={v!r}"
                     for k, v in kwargs.items())


def check_setup(task: str, output: Tensor, target: Tensor, *, loss: Recommendation | None = None
                ) -> list[Finding]:
    r"""Check a model's output and its labels against what the task's loss expects, before training.

    The runnable part of the pre-training checklist. Each failed check gives a
    :class:`lossbook.diagnostics.Finding` (``kind``, ``severity``, ``message``, ``suggestion``;
    ``step`` is None); a correct setup gives an empty list.

    - ``shape``: output and target agree (the same shape for regression, binary and multi-label;
      ``(N, C, ...)`` logits with ``(N, ...)`` class indices, or class probabilities of the output's
      shape, for multi-class).
    - ``target dtype``, ``target values``: float targets for regression; float 0/1 labels for binary
      and multi-label; integer class indices in ``[0, C)`` for multi-class.
    - ``input kind``: a loss that takes logits fed probabilities, i.e. an output whose values all lie
      in ``[0, 1]`` (a sigmoid was applied) or whose rows also sum to 1 (a softmax); ``non-finite
      output``.
    - ``class balance``: the ratio :math:`r` of :func:`imbalance_ratio`, measured from the labels,
      is looked up in :data:`RULES` with the other conditions of the loss in use; when it selects
      another rule (it crosses that rule's threshold, or no longer meets the one in use), the finding
      names that rule and its keyword arguments (``pos_weight = r``):

    .. math::
        r = \frac{\#\{y = 0\}}{\#\{y = 1\}} \ \text{(binary, multi-label)}, \qquad
        r = \frac{\max_c n_c}{\min_c n_c} \ \text{(multi-class)}

    Shape:
        - output: regression ``(*)``; binary ``(*)``, one logit per example; multi-label ``(N, C)``;
          multi-class ``(N, C)`` or ``(N, C, d1, ..., dK)``.
        - target: the output's shape; for multi-class class indices ``(N)`` or ``(N, d1, ..., dK)``,
          or class probabilities of the output's shape.
        - result: a list of findings, the most severe first.

    Args:
        task: ``"regression"``, ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        output: the model's output on a batch, exactly as it will be passed to the loss.
        target: the targets of that batch (the balance is measured on them: pass all the labels to
            measure the data set's).
        loss: the :class:`Recommendation` that will be trained with, as returned by
            ``recommend_loss(task, ...)``; by default ``recommend_loss(task)``.

    Example:
        >>> logits = torch.tensor([[2.0, -1.0, 0.1], [0.3, 1.5, -2.0]])
        >>> check_setup("multiclass", logits, torch.tensor([0, 1]))
        []
        >>> [f.kind for f in check_setup("multiclass", logits.softmax(1), torch.tensor([0.0, 1.0]))]
        ['input kind', 'target dtype']

    Chapter: choosing
    """
    check_choice(task, "task", SETUP_TASKS)
    check_tensor(output, "output")
    check_tensor(target, "target")
    rec = recommend_loss(task) if loss is None else loss
    if not isinstance(rec, Recommendation) or rec.rule is None or rec.rule.task != task:
        raise ValueError(f"loss must be a Recommendation of recommend_loss({task!r}, ...); got {loss!r}")
    name, findings = rec.name, []

    def add(kind, severity, message, suggestion):
        findings.append(Finding(kind, severity, None, message, suggestion))

    # the output: floating, finite, and logits where the loss takes logits
    if not output.is_floating_point():
        add("output dtype", "critical", f"output has dtype {output.dtype}, but {name} takes floating-point "
            f"{rec.input_kind}.", "pass the model's floating-point output, before any rounding or argmax.")
    elif not bool(torch.isfinite(output).all()):
        add("non-finite output", "critical", "output contains NaN or inf before any training step.",
            "check the inputs for NaN and the model's initialisation.")
    elif rec.input_kind == "logits" and looks_like_probabilities(output):
        softmax = output.dim() >= 2 and output.shape[1] >= 2 and looks_like_probabilities(output, dim=1)
        act = "softmax" if softmax else "sigmoid"
        own = "a (log-)softmax" if task == "multiclass" else "a sigmoid"
        add("input kind", "critical",
            f"every value of output lies in [0, 1]{' and its rows sum to 1' if softmax else ''}: it looks like "
            f"probabilities, the output of a {act}, but {name} takes logits and applies {own} itself, so "
            f"the loss cannot reach 0 and its gradient is damped.",
            f"remove the final {act} from the model and pass its raw output (the logits) to {name}.")

    # the target: dtype, values and shape for the task
    labels = None  # what the class balance is measured on
    if task == "multiclass":
        index_shape = output.shape[:1] + output.shape[2:]
        classes = output.shape[1] if output.dim() >= 2 else 0
        if output.dim() < 2:
            add("shape", "critical", f"output has shape {format_shape(output)}, but {name} takes (N, C) or "
                f"(N, C, d1, ..., dK) logits, one per class.", "output one logit per class (C >= 2).")
        elif target.shape == output.shape and target.is_floating_point():
            problem = _problem(check_probabilities, target, "target")
            if problem is None and not looks_like_probabilities(target, dim=1):
                problem = ("target has the shape of output, so it is read as class probabilities, but its rows "
                           "do not sum to 1")
            if problem:
                add("target values", "critical", problem + ".", "normalise each row of target to sum to 1, or "
                    f"give class indices of shape {format_shape(index_shape)}.")
        elif target.shape == output.shape:
            add("shape", "critical", f"target has dtype {target.dtype} and the shape {format_shape(target)} of "
                f"output: one-hot labels? {name} takes class indices of shape {format_shape(index_shape)} or "
                f"float class probabilities.", "use target.argmax(1) as class indices.")
        elif target.shape != index_shape:
            add("shape", "critical", f"target has shape {format_shape(target)} but output has shape "
                f"{format_shape(output)}; class indices must have shape {format_shape(index_shape)}.",
                "give one class index per example (and per position), without a class dimension.")
        elif target.is_floating_point() or target.dtype == torch.bool:
            whole = target.is_floating_point() and bool((target == target.round()).all())
            add("target dtype", "critical", f"target has the shape of class indices but dtype {target.dtype}; "
                f"{name} takes integer class indices.",
                "use target.long()." if whole else "give integer class indices (torch.long).")
            labels = target.long() if whole else None
        else:
            problem = _problem(check_class_indices, target, classes)
            if problem:
                add("target values", "critical", problem + ".", f"map the labels to 0, ..., {classes - 1}, or give "
                    "the model one output per class.")
            else:
                labels = target
    else:
        hint = " (one logit per example)" if task == "binary" else ""
        problem = _problem(check_same_shape, output, target, names=("output", "target"))
        if problem:
            squeeze = output.dim() == target.dim() + 1 and output.shape[-1] == 1
            binary_two = task == "binary" and output.dim() == target.dim() + 1 and output.shape[-1] == 2
            add("shape", "critical", problem + hint + ".",
                "use output.squeeze(-1)." if squeeze else
                "two outputs per example are a two-class softmax: use the task 'multiclass' (cross_entropy with "
                "class indices), or output one logit." if binary_two else
                "reshape output or target so that they agree element by element.")
        if task == "regression":
            if not target.is_floating_point():
                add("target dtype", "critical", f"target has dtype {target.dtype}, but {name} takes floating-point "
                    "targets.", "use target.float() (or the output's dtype).")
        else:
            if not target.is_floating_point():
                add("target dtype", "critical", f"target has dtype {target.dtype}, but {name} takes float 0/1 "
                    "labels.", "use target.float().")
            values = target.to(torch.float64)
            problem = _problem(check_probabilities, values, "target")
            if problem:
                pm1 = bool(((values == -1) | (values == 1)).all())
                add("target values", "critical", problem + f"; {name} takes 0/1 labels.",
                    "map -1/+1 labels to 0/1 with (target + 1) / 2." if pm1 else "give 0/1 labels.")
            elif bool(((values == 0) | (values == 1)).all()):
                labels = target  # soft labels in (0, 1) have no class balance to measure

    # the class balance, judged by the table's own imbalance rules
    if labels is not None and labels.numel():
        try:
            ratio = imbalance_ratio(labels)
        except ValueError as err:
            add("class balance", "warning", f"{err}.", "check the labels: a model trained on one class learns "
                "a constant.")
            ratio = None
        if ratio is not None:
            if task == "multiclass" and bool(((labels == 0) | (labels == 1)).all()):
                ratio = max(ratio, 1 / ratio)  # two classes: largest / smallest count
            stated = {t: rest[0] for t, op, *rest in rec.rule.when if op == "is"}
            measured = recommend_loss(task, **stated, imbalance=ratio)
            if measured.rule is not rec.rule:
                what = ("largest / smallest class count" if task == "multiclass" else "#negatives / #positives")
                if any(t == "imbalance" for t, *_ in measured.rule.when):
                    verdict = f"which meets the table's rule '{measured.rule.describe_when()}'"
                else:
                    verdict = f"which no longer meets the rule '{rec.rule.describe_when()}' of the loss in use"
                add("class balance", "warning",
                    f"the labels' imbalance ({what}) is {ratio:.3g}, {verdict}.",
                    f"recommend_loss({task!r}, imbalance={ratio:.3g}) gives {measured.name}"
                    + (f"({_plain(measured.kwargs)})" if measured.kwargs else "") + ".")
    return _sorted(findings)
