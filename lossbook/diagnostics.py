"""Diagnosing training: findings on a loss curve, and the health of a model's gradients.

Every threshold here is relative to the curve (or to the parameter) it judges, never an absolute
loss value: a loss of 0.5 is small for a 1000-class cross-entropy and large for a per-pixel MSE. The
thresholds are heuristics, exposed as keyword arguments, and the chapter shows each detector on
planted curves.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ._validation import check_tensor, looks_like_probabilities

__all__ = ["diagnose_loss_curve", "gradient_health", "compare_losses"]

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One diagnosis of a loss curve: what, how bad, from which step, and what to try."""

    kind: str  # "non-finite", "divergence", "plateau", "oscillation", "over-fitting", "vanishing", ...
    severity: str  # "critical" | "warning" | "info"
    step: int | None
    message: str
    suggestion: str

    def __str__(self) -> str:
        where = "" if self.step is None else f" from step {self.step}"
        return f"[{self.severity}] {self.kind}{where}: {self.message} Try: {self.suggestion}"


def _as_curve(values, name: str) -> Tensor:
    if isinstance(values, Tensor):
        curve = values.detach().to("cpu", torch.float64).flatten()
    else:
        try:
            curve = torch.tensor([float(v) for v in values], dtype=torch.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a sequence of numbers; got {type(values).__name__}") from err
    if curve.numel() == 0:
        raise ValueError(f"{name} is empty; a loss curve needs at least one value")
    return curve


def _smooth(curve: Tensor, window: int) -> Tensor:
    """Centred running median: robust to single spikes, no lag (a step stays where it happened)."""
    if window <= 1 or curve.numel() < 3:
        return curve.clone()
    half = window // 2
    padded = torch.cat([curve[:1].expand(half), curve, curve[-1:].expand(half)])
    return padded.unfold(0, 2 * half + 1, 1).median(dim=1).values


def _running_mean(curve: Tensor, window: int) -> Tensor:
    """Centred running mean: the level an alternating (oscillating) curve swings around."""
    half = max(1, window // 2)
    padded = torch.cat([curve[:1].expand(half), curve, curve[-1:].expand(half)])
    return padded.unfold(0, 2 * half + 1, 1).mean(dim=1)


def _first_non_finite(curve: Tensor) -> int | None:
    bad = (~torch.isfinite(curve)).nonzero()
    return int(bad[0]) if bad.numel() else None


def diagnose_loss_curve(
    train_losses: Sequence[float] | Tensor,
    val_losses: Sequence[float] | Tensor | None = None,
    *,
    window: int | None = None,
    flat_tol: float = 0.01,
    oscillation_tol: float = 0.35,
    overfit_tol: float = 0.1,
) -> list[Finding]:
    r"""Find the common failures in a training (and validation) loss curve.

    The curve is smoothed with a centred running median $\tilde\ell_t$ (window $w$, default
    ``max(5, T // 50)``); with its own scale $R = \tilde\ell_0 - \min_t \tilde\ell_t$ (the improvement
    so far), the detectors are:

    .. math::
        \text{non-finite: } t^\ast = \min\{t : \ell_t \notin \mathbb{R}\}, \qquad
        \text{divergence: } \tilde\ell_t > \tilde\ell_0 \text{ after a minimum}, \\
        \text{plateau: } \tilde\ell_t - \tilde\ell_{t+h} < \epsilon R \text{ for } h = T/5
        \text{ steps, followed by a drop } > 10\,\epsilon R
        \text{ (or } R < \epsilon\,|\tilde\ell_0|\text{: stuck)}, \\
        \text{oscillation: } \operatorname{median}_{\text{window}} |\ell_t - \bar\ell_t| >
        \tau \max(|\bar\ell_t|, R / 10) \text{, alternating, larger than the trend's progress}, \qquad
        \text{over-fitting: } \tilde v_t - \min_s \tilde v_s > \kappa R_v \text{ while } \tilde\ell
        \text{ still falls.}

    Steps are 0-based indices into the lists. A curve that falls and levels off (converges) gives no
    finding. Every threshold is relative to the curve itself (scale-free), and a heuristic.

    Shape:
        - train_losses: (T,) one value per logged step (a list, array or tensor).
        - val_losses: (T,) on the same steps, or ``None``.
        - output: a list of :class:`Finding`, the most severe first (empty for a healthy curve).

    Args:
        train_losses: the training loss per step.
        val_losses: the validation loss on the same steps (enables the over-fitting check).
        window: the smoothing window in steps.
        flat_tol: $\epsilon$, the improvement, as a fraction of $R$, below which a stretch is flat.
        oscillation_tol: $\tau$, the relative amplitude of the step-to-step swings that counts as
            oscillation.
        overfit_tol: $\kappa$, how far (as a fraction of its own improvement) the validation loss must
            climb back from its minimum.

    Example:
        >>> curve = [1.0 / (1 + t) for t in range(200)]
        >>> diagnose_loss_curve(curve)
        []
        >>> curve[137] = float("nan")
        >>> [(f.kind, f.step) for f in diagnose_loss_curve(curve)]
        [('non-finite', 137)]

    Chapter: choosing
    """
    train = _as_curve(train_losses, "train_losses")
    val = None if val_losses is None else _as_curve(val_losses, "val_losses")
    if val is not None and val.numel() != train.numel():
        raise ValueError(f"val_losses has {val.numel()} values but train_losses has {train.numel()}; "
                         "log both on the same steps")
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    findings: list[Finding] = []

    bad = _first_non_finite(train)
    if bad is not None:
        findings.append(Finding(
            "non-finite", "critical", bad, f"the training loss is {train[bad].item()} at step {bad}.",
            "check the inputs of that batch; use the stable form of the loss (on logits, log-softmax, "
            "softplus); lower the learning rate or clip gradients; in float16 use a gradient scaler."))
        train = train[:bad]
    if val is not None:
        vbad = _first_non_finite(val)
        if vbad is not None and (bad is None or vbad < bad):
            findings.append(Finding(
                "non-finite", "critical", vbad, f"the validation loss is {val[vbad].item()} at step {vbad}.",
                "look for an empty or degenerate validation batch, or an overflow in evaluation mode."))
        stop = min(x for x in (bad, vbad, val.numel()) if x is not None)
        val, train = val[:stop], train[:stop]
    T = train.numel()
    if T < 10:
        return _sorted(findings)
    w = window or max(5, T // 50)
    smooth = _smooth(train, w)
    start = smooth[: max(1, w)].median()
    best = smooth.min()
    scale = float(start - best)

    # divergence: after reaching its minimum, the smoothed loss climbs back above where it started
    above = (smooth > start + flat_tol * abs(float(start))) & (torch.arange(T) > w)
    if bool(above.any()):
        t_up = int(above.nonzero()[0])
        t_min = int(smooth[:t_up].argmin()) if t_up > 0 else 0
        if bool(above[t_up:].float().mean() > 0.5):
            findings.append(Finding(
                "divergence", "critical", t_min,
                f"the loss turns upward at step {t_min} and is above its starting value from step {t_up}.",
                "lower the learning rate (or add warm-up), clip the gradient norm, check for a sign error "
                "in a hand-written loss."))
            smooth, train, T = smooth[:t_min + 1], train[:t_min + 1], t_min + 1

    # oscillation: large alternating swings of the raw loss around its smoothed trend
    if T >= 2 * w:
        level = _running_mean(train, w)
        # a level near zero is judged against a tenth of the improvement, not against itself
        floor = max(0.1 * scale, 1e-12)
        rel = (train - level).abs() / level.abs().clamp_min(floor)
        sign_flip = torch.zeros(T, dtype=torch.float64)
        d = torch.sign(train[1:] - train[:-1])
        sign_flip[2:] = (d[1:] * d[:-1] < 0).double()
        windows = max(w, 10)
        if T >= windows:
            amp = rel.unfold(0, windows, 1).median(dim=1).values
            flips = sign_flip.unfold(0, windows, 1).mean(dim=1)
            # ... and the swings are larger than the progress the trend makes over the same window
            before, after = level[: T - windows + 1], level[windows - 1:]
            progress = (before - after) / before.abs().clamp_min(floor)
            hit = (amp > oscillation_tol) & (flips > 0.5) & (progress < amp)
            if bool(hit.any()):
                first = int(hit.nonzero()[0])
                swings = (rel[first:first + windows] > oscillation_tol).nonzero()
                t_osc = first + (int(swings[0]) if swings.numel() else 0)
                findings.append(Finding(
                    "oscillation", "warning", t_osc,
                    f"from step {t_osc} the loss swings by about {100 * amp[t_osc].item():.0f}% of its level "
                    "from one step to the next.",
                    "the learning rate is probably too high: divide it by 3-10, or use a schedule; a larger "
                    "batch also reduces the noise."))

    # plateau: a long flat stretch that is followed by more learning, or a curve that never moved
    tenth = max(1, T // 10)
    head, tail = float(train[:tenth].mean()), float(train[-tenth:].mean())
    if head - tail < flat_tol * max(abs(head), 1e-12):
        findings.append(Finding(
            "plateau", "warning", 0,
            "the loss has not decreased at all (stuck from the start).",
            "raise the learning rate; check the initialisation (dead ReLUs, saturated sigmoids), that "
            "gradients reach the parameters (an optimizer built before the model moved, a detached "
            "tensor), and that targets match inputs."))
    else:
        h = max(w, T // 5)
        if T > h + w:
            future_gain = smooth[:-h] - smooth[h:]
            later_best = torch.flip(torch.cummin(torch.flip(smooth, [0]), 0).values, [0])
            later_drop = smooth[h:] - later_best[h:]
            flat = (future_gain < flat_tol * scale) & (later_drop > 10 * flat_tol * scale)
            if bool(flat.any()):
                t_flat = int(flat.nonzero()[0])
                findings.append(Finding(
                    "plateau", "info", t_flat,
                    f"the loss stays flat for at least {h} steps from step {t_flat}, then falls again.",
                    "a saddle or a too-small learning rate: a learning-rate warm-up or schedule, a "
                    "normalisation layer, or a better initialisation shortens it."))

    # over-fitting: validation loss climbs back while the training loss still falls
    if val is not None and val.numel() >= 2 * w:
        v = _smooth(val, w)
        v_best_step = int(v.argmin())
        v_scale = float(v[: max(1, w)].median() - v.min())
        rise = float(v[-1] - v.min())
        train_falls = float(smooth[min(v_best_step, T - 1)] - smooth[-1]) > 0
        if v_scale > 0 and rise > overfit_tol * v_scale and train_falls and v_best_step < val.numel() - w:
            findings.append(Finding(
                "over-fitting", "warning", v_best_step,
                f"the validation loss is lowest at step {v_best_step} and rises afterwards while the training "
                "loss keeps falling.",
                f"keep the checkpoint of step {v_best_step} (early stopping); add regularisation (weight decay, "
                "dropout, augmentation) or data."))
    return _sorted(findings)


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), -1 if f.step is None else f.step))


@dataclass
class GradientReport:
    """What :func:`gradient_health` returns: one row per parameter and the findings."""

    rows: list[dict] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def __str__(self) -> str:
        lines = [f"{'parameter':<28} {'shape':<14} {'|grad|':>10} {'|grad|/|w|':>11}  flags"]
        for r in self.rows:
            lines.append(f"{r['name']:<28} {str(tuple(r['shape'])):<14} {r['grad_norm']:>10.3g} "
                         f"{r['ratio']:>11.3g}  {', '.join(r['flags'])}")
        lines += [str(f) for f in self.findings]
        return "\n".join(lines)


def gradient_health(
    model: nn.Module,
    *,
    vanishing: float = 1e-6,
    exploding: float = 10.0,
    logits: Tensor | None = None,
) -> GradientReport:
    r"""Check the gradients a backward pass left on a model's parameters.

    For each parameter $w$ with gradient $g$ the report gives $\|g\|$ and the relative size
    $\rho = \|g\| / \|w\|$ (what one SGD step of learning rate 1 would change). Flags:

    .. math::
        \text{nan/inf: } g \notin \mathbb{R}, \quad \text{vanishing: } \rho < \rho_{\min}, \quad
        \text{exploding: } \rho > \rho_{\max}, \quad
        \text{dead units: } \#\{i : g_{i,:} = 0\} \text{ (rows of a weight matrix)}

    A row of a weight matrix with an exactly zero gradient is a unit that received no gradient from
    the batch: a ReLU that is never active ("dead"), or a saturated sigmoid in float32. Parameters
    without a gradient (``grad is None``) are listed as "no grad".

    A loss fed probabilities instead of logits leaves no mark of its own on the gradients: they are
    damped by the extra softmax or sigmoid (by about :math:`1/C` at initialisation) and then shrink as
    that activation saturates, while the loss stalls above a floor (:math:`\log(1 + (C-1)/e)` for
    cross-entropy on :math:`C` softmax probabilities). Pass the tensor the loss received as
    ``logits`` and the report checks it: values that all lie in ``[0, 1]`` (rows summing to 1 for a
    softmax) give a critical "probabilities as logits" finding.

    Shape:
        - model: any ``nn.Module`` after ``loss.backward()``.
        - logits (optional): what the loss was given, ``(N, C, ...)`` or ``(*)``.
        - output: a :class:`GradientReport` (``rows``: one dict per parameter with ``name``,
          ``shape``, ``grad_norm``, ``param_norm``, ``ratio``, ``dead_units``, ``flags``;
          ``findings``: a list of :class:`Finding`; ``ok``).

    Args:
        model: the model whose ``.grad`` fields are checked.
        vanishing: $\rho_{\min}$.
        exploding: $\rho_{\max}$.
        logits: optional, the tensor that was passed to a loss that takes logits (``cross_entropy``,
            ``binary_cross_entropy_with_logits``, ...), shape ``(N, C, ...)`` or ``(*)``.

    Example:
        >>> net = nn.Linear(3, 2)
        >>> net(torch.randn(4, 3)).pow(2).mean().backward()
        >>> gradient_health(net).ok
        True

    Chapter: choosing
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if logits is not None:
        check_tensor(logits, "logits")
    report = GradientReport()
    counts = {"nan": [], "vanishing": [], "exploding": [], "dead": [], "none": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        row = {"name": name, "shape": tuple(p.shape), "grad_norm": math.nan, "param_norm": float(p.detach().norm()),
               "ratio": math.nan, "dead_units": 0, "flags": []}
        if p.grad is None:
            row["flags"].append("no grad")
            counts["none"].append(name)
            report.rows.append(row)
            continue
        g = p.grad.detach()
        gnorm = float(g.double().norm())
        row["grad_norm"] = gnorm
        row["ratio"] = gnorm / max(row["param_norm"], 1e-12)
        if not bool(torch.isfinite(g).all()):
            row["flags"].append("nan/inf")
            counts["nan"].append(name)
        elif row["ratio"] < vanishing:
            row["flags"].append("vanishing")
            counts["vanishing"].append(name)
        elif row["ratio"] > exploding:
            row["flags"].append("exploding")
            counts["exploding"].append(name)
        if g.dim() >= 2 and bool(torch.isfinite(g).all()):
            dead = int((g.flatten(1).abs().amax(dim=1) == 0).sum())
            row["dead_units"] = dead
            if dead:
                row["flags"].append(f"{dead}/{g.shape[0]} dead units")
                counts["dead"].append(f"{name} ({dead}/{g.shape[0]})")
        report.rows.append(row)
    advice = {
        "nan": ("critical", "non-finite gradients in {}.",
                "find the first non-finite value (torch.autograd.detect_anomaly); compute the loss from logits "
                "in a stable form; clip gradients."),
        "exploding": ("critical", f"gradients larger than {exploding:g} x the weights in {{}}.",
                      "lower the learning rate, clip the gradient norm, check the initialisation scale."),
        "vanishing": ("warning", f"gradients below {vanishing:g} x the weights in {{}}.",
                      "check for saturated activations (sigmoid/tanh fed large values, a loss fed probabilities "
                      "instead of logits), use residual connections or normalisation, a He/Xavier init."),
        "dead": ("warning", "units without any gradient in {}.",
                 "ReLUs that are never active: a smaller learning rate, a He init, LeakyReLU, or a bias init."),
        "none": ("info", "no gradient reached {}.",
                 "these parameters are unused in the forward pass, frozen, or cut off by a detach()."),
    }
    for key, names in counts.items():
        if names:
            severity, message, suggestion = advice[key]
            kind = {"nan": "non-finite gradient", "dead": "dead units", "none": "no gradient"}.get(key, key)
            report.findings.append(Finding(kind, severity, None, message.format(", ".join(names)), suggestion))
    if logits is not None and looks_like_probabilities(logits):
        classes = logits.shape[1] if logits.dim() >= 2 else 1
        if classes >= 2 and looks_like_probabilities(logits, dim=1):
            what = (f"rows in [0, 1] that sum to 1, a softmax's output: a loss that takes logits applies a second "
                    f"softmax, whose derivative damps every gradient, and its loss cannot fall below "
                    f"log(1 + (C - 1)/e) = {math.log1p((classes - 1) / math.e):.4g} for C = {classes}.")
        else:
            what = ("values that all lie in [0, 1], a sigmoid's output: a loss that takes logits applies a second "
                    "sigmoid, whose derivative damps every gradient, and its loss cannot reach 0.")
        report.findings.append(Finding(
            "probabilities as logits", "critical", None, f"the tensor given as logits has {what}",
            "remove the model's final softmax/sigmoid and pass its raw output to the loss (or use a loss that "
            "takes probabilities)."))
    report.findings = _sorted(report.findings)
    return report


@dataclass
class Comparison:
    """What :func:`compare_losses` returns: the task metric per loss and seed."""

    metric_name: str
    values: dict[str, list[float]]

    def summary(self) -> dict[str, tuple[float, float]]:
        """``{loss: (mean, std)}`` of the metric over the seeds (std with Bessel's correction)."""
        out = {}
        for name, vals in self.values.items():
            t = torch.tensor(vals, dtype=torch.float64)
            out[name] = (float(t.mean()), float(t.std()) if t.numel() > 1 else 0.0)
        return out

    def table(self) -> str:
        """A Markdown table: loss, mean ± std of the metric, and the per-seed values."""
        rows = [f"| loss | {self.metric_name} (mean ± std) | per seed |", "|---|---|---|"]
        for name, (mean, std) in self.summary().items():
            per_seed = ", ".join(f"{v:.4g}" for v in self.values[name])
            rows.append(f"| {name} | {mean:.4g} ± {std:.2g} | {per_seed} |")
        return "\n".join(rows)

    def plot(self):
        """A bar per loss (the mean) with the seeds' spread as an error bar and each seed as a dot."""
        from . import plotting

        fig, ax = plotting.new_figure(1, width=5.5, height=3.2)
        for i, (name, (mean, std)) in enumerate(self.summary().items()):
            ax.bar(i, mean, yerr=std, capsize=4, color=plotting.PALETTE[i % len(plotting.PALETTE)], alpha=0.7)
            ax.plot([i] * len(self.values[name]), self.values[name], "k.", ms=5)
        ax.set_xticks(range(len(self.values)), list(self.values))
        ax.set(ylabel=self.metric_name)
        return fig


def compare_losses(
    losses: dict,
    make_model,
    train_data: tuple[Tensor, Tensor],
    eval_data: tuple[Tensor, Tensor],
    metric,
    *,
    steps: int,
    seeds: Sequence[int] = (0, 1, 2),
    optimizer=None,
    metric_name: str = "metric",
) -> Comparison:
    r"""Train the same model from the same seeds with each loss; report the task's metric, not the losses.

    For every loss $\ell_k$ and seed $s$: $\theta_s \leftarrow$ ``make_model(s)``, then ``steps``
    full-batch optimiser steps on $\ell_k(f_\theta(X), y)$, then $m_{k,s} = \text{metric}(f_\theta(X'), y')$
    on the evaluation data. Loss values are on different scales (for one error of 3: MSE 9, L1 3,
    Huber 2.5), so only the common metric is compared:

    .. math::
        \bar m_k = \frac{1}{S} \sum_s m_{k,s}, \qquad
        \sigma_k = \sqrt{\tfrac{1}{S - 1} \sum_s (m_{k,s} - \bar m_k)^2}

    Shape:
        - train_data, eval_data: ``(X, y)`` tensors with matching first dimensions.
        - losses: ``{name: loss(output, target) -> scalar}``.
        - output: a :class:`Comparison` (``values[name]``: one metric value per seed; ``summary()``,
          ``table()``, ``plot()``).

    Args:
        losses: the losses to compare, by name.
        make_model: ``make_model(seed) -> nn.Module``; the same seed gives the same initial weights for
            every loss.
        train_data: what the models are trained on.
        eval_data: what the metric is computed on (held-out data).
        metric: ``metric(output, target) -> float``, the task's own measure (MAE, average precision,
            accuracy ...); lower or higher better, as the caller reads it.
        steps: optimiser steps per run.
        seeds: the seeds; each loss is trained once per seed.
        optimizer: ``optimizer(parameters) -> torch.optim.Optimizer``; Adam with lr 0.01 by default.
        metric_name: the metric's name for the table and the figure.

    Example:
        >>> X = torch.randn(64, 3); y = X @ torch.tensor([1.0, -2.0, 0.5])
        >>> cmp = compare_losses({"mse": lambda o, t: ((o - t) ** 2).mean()},
        ...                      lambda s: nn.Linear(3, 1), (X, y.unsqueeze(1)), (X, y.unsqueeze(1)),
        ...                      lambda o, t: float((o - t).abs().mean()), steps=5, seeds=(0, 1))
        >>> len(cmp.values["mse"])
        2

    Chapter: choosing
    """
    from .utils import progress

    if not losses:
        raise ValueError("losses is empty; pass {name: loss_function}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed (three or more for an error bar)")
    X, y = train_data
    Xe, ye = eval_data
    if X.shape[0] != y.shape[0] or Xe.shape[0] != ye.shape[0]:
        raise ValueError(f"inputs and targets must have the same first dimension; got train {tuple(X.shape)} vs "
                         f"{tuple(y.shape)}, eval {tuple(Xe.shape)} vs {tuple(ye.shape)}")
    make_opt = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-2))
    values: dict[str, list[float]] = {name: [] for name in losses}
    bar = progress(total=len(losses) * len(seeds) * steps, desc="compare_losses")
    for name, loss_fn in losses.items():
        for seed in seeds:
            torch.manual_seed(seed)
            model = make_model(seed)
            opt = make_opt(model.parameters())
            model.train()
            for _ in range(steps):
                loss = loss_fn(model(X), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                bar.update(1)
            model.eval()
            with torch.no_grad():
                values[name].append(float(metric(model(Xe), ye)))
            bar.set_postfix(loss=name, seed=seed)
    bar.close()
    return Comparison(metric_name, values)
