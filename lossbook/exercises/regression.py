"""Exercises of the regression chapter (chapter ``regression``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..regression import huber_loss, log_cosh_loss, quantile_loss
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []


def _shape(gen: torch.Generator, ndim: int) -> tuple[int, ...]:
    return tuple(int(s) for s in torch.randint(1, 6, (ndim,), generator=gen))


# ------------------------------------------------------------------ Huber from its definition


def _huber_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for reduction, delta in (("none", 1.0), ("mean", 0.5), ("sum", 2.5)):
        shape = _shape(gen, 2)
        x, y = randn(gen, *shape, scale=2.0), randn(gen, *shape, scale=2.0)
        cases.append(Case(f"reduction={reduction!r}, delta={delta}, shape {shape}", (x, y),
                          {"reduction": reduction, "delta": delta}))
    e = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.2, 1.0, 3.0], dtype=torch.float64)
    cases.append(Case("residuals on both sides of delta=1, and 0", (e, torch.zeros_like(e)),
                      {"reduction": "none", "delta": 1.0}))
    big = torch.tensor([1e4, -1e4], dtype=torch.float64)
    cases.append(Case("huge residuals (no overflow)", (big, torch.zeros_like(big)), {"reduction": "sum", "delta": 1.5}))
    return cases


register(
    Exercise(
        id="regression-huber",
        title="Implement the Huber loss from its definition",
        reference=huber_loss,
        cases=_huber_cases,
        forbidden=("torch.nn.functional.huber_loss", "torch.nn.functional.smooth_l1_loss"),
        hint="the loss has two pieces: decide, element by element, which piece applies",
    )
)


# ------------------------------------------------------------------ pinball loss with a hand-written backward


def _pinball_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for reduction, q in (("none", 0.1), ("mean", 0.5), ("sum", 0.9), ("mean", 0.25)):
        shape = _shape(gen, 2)
        cases.append(Case(f"quantile={q}, reduction={reduction!r}, shape {shape}",
                          (randn(gen, *shape), randn(gen, *shape)), {"quantile": q, "reduction": reduction}))
    n = int(torch.randint(2, 9, (1,), generator=gen))
    cases.append(Case("a 1-D batch with large errors", (randn(gen, n, scale=100.0), randn(gen, n)),
                      {"quantile": 0.7, "reduction": "mean"}))
    return cases


register(
    Exercise(
        id="regression-pinball",
        title="The pinball loss as an autograd Function with a hand-derived backward",
        reference=quantile_loss,
        cases=_pinball_cases,
        hint="the loss is piecewise linear in the error: what is its slope on each side of zero?",
    )
)


# ------------------------------------------------------------------ a stable log-cosh


def _log_cosh_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for reduction in ("none", "mean", "sum"):
        shape = _shape(gen, 2)
        cases.append(Case(f"reduction={reduction!r}, shape {shape}",
                          (randn(gen, *shape, scale=3.0), randn(gen, *shape)), {"reduction": reduction}))
    e = torch.tensor([-1e4, -100.0, -20.0, 0.5, 20.0, 100.0, 1e4], dtype=torch.float64)
    cases.append(Case("huge residuals: cosh overflows, the loss must not", (e, torch.zeros_like(e)),
                      {"reduction": "none"}))
    e32 = torch.tensor([-95.0, -1.0, 0.0, 3.0, 95.0], dtype=torch.float32)
    cases.append(Case("float32 with |e| > 89 (where log(cosh) is inf)", (e32, torch.zeros_like(e32)),
                      {"reduction": "none"}))
    return cases


register(
    Exercise(
        id="regression-log-cosh",
        title="A log-cosh loss that never overflows",
        reference=log_cosh_loss,
        cases=_log_cosh_cases,
        hint="cosh overflows long before log(cosh) does: rewrite log(cosh(e)) so that exp never sees a large argument",
        rtol=1e-5,
        atol=1e-7,
    )
)


# ------------------------------------------------------------------ choosing Huber's delta


def delta_residuals() -> Tensor:
    """The residuals of the choose-δ exercise: 500 draws of 2·N(0, 1) plus 25 gross outliers."""
    gen = torch.Generator().manual_seed(2024)
    noise = 2.0 * torch.randn(500, generator=gen, dtype=torch.float64)
    outliers = 40.0 + 10.0 * torch.rand(25, generator=gen, dtype=torch.float64)
    return torch.cat([noise, outliers])


def _chosen_delta() -> float:
    r = delta_residuals()
    mad = (r - r.median()).abs().median()
    # 1.4826 * MAD estimates the noise scale (consistent at the Gaussian), 1.345 gives 95 % efficiency
    return (1.345 * 1.4826 * mad).item()


register(
    Exercise(
        id="regression-choose-delta",
        title="Choose Huber's delta from residuals that contain outliers",
        reference=_chosen_delta,
        hint="delta should follow the scale of the ordinary residuals, measured in a way the outliers cannot inflate",
        rtol=1e-4,
    )
)


# ------------------------------------------------------------------ conceptual exercises

register(
    ChoiceExercise(
        id="regression-which-loss",
        title="Which loss for prices with a few typing errors (a price entered with three extra zeros)?",
        options={
            "a": Option("the mean squared error",
                        "no: MSE is minimised by the conditional mean, and one price 1000 times too large moves "
                        "a mean a long way; its squared residual also dominates the gradient of every batch "
                        "it is in"),
            "b": Option("the mean absolute error",
                        "right: MAE is minimised by the conditional median, which a few gross errors barely "
                        "move, and each sample's gradient is at most 1 in size, however wrong its target"),
            "c": Option("either: both are minimised by the same prediction",
                        "no: they agree only for symmetric noise without outliers; with outliers the mean (MSE) "
                        "and the median (MAE) are far apart, and that difference is the point of the choice"),
        },
        answer="b",
        hint="which statistic of the targets does each loss estimate, and which one do outliers move?",
    )
)

register(
    ChoiceExercise(
        id="regression-gradient-predict",
        title="Predict: the gradient of the L1 loss at a residual of 100, compared with a residual of 1",
        options={
            "a": Option("100 times larger",
                        "no: that is the MSE, whose gradient 2e grows with the residual; the gradient of |e| is "
                        "sign(e)"),
            "b": Option("exactly the same",
                        "right: d|e|/de = sign(e) = 1 for any positive residual, so an outlier pulls on the "
                        "model exactly as hard as a small error, which is why L1 is robust"),
            "c": Option("zero: a residual that large is treated as an outlier and ignored",
                        "no: L1 never ignores a sample; losses that do (redescending ones such as Tukey's "
                        "biweight) have a gradient that returns to 0 for large residuals"),
        },
        answer="b",
        style="predict",
        hint="differentiate |e| on each side of zero",
    )
)

register(
    ChoiceExercise(
        id="regression-noise-predict",
        title="Predict: for one residual d = 3, which variance minimises the Gaussian NLL ½(log σ² + d²/σ²)?",
        options={
            "a": Option("σ² = 9, the squared residual",
                        "right: the derivative ½(1/σ² − d²/σ⁴) is zero at σ² = d² (the first derivative; the "
                        "second confirms it is a minimum), so a network that predicts its variance learns to "
                        "predict its own squared error"),
            "b": Option("σ² → 0: a smaller variance is always more confident, hence better",
                        "no: the term d²/σ² explodes as σ² → 0 unless the residual is exactly 0; only a "
                        "perfect prediction can afford a tiny variance"),
            "c": Option("σ² = 3, the absolute residual",
                        "no: the variance is in squared units of the target; the minimiser is d², the square "
                        "of the residual, not |d|"),
            "d": Option("σ² → ∞: the NLL keeps decreasing as the variance grows",
                        "no: the log σ² term grows without bound; it is the price a model pays for being vague"),
        },
        answer="a",
        style="predict",
        hint="set the derivative with respect to σ² to zero",
    )
)


def huber_mean_reference(input: Tensor, target: Tensor, delta: float = 1.0) -> Tensor:
    """The mean Huber loss (lossbook's ``huber_loss``, PyTorch's convention)."""
    return huber_loss(input, target, reduction="mean", delta=delta)


def _huber_bug_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for delta in (1.0, 0.5, 2.0):
        shape = _shape(gen, 2)
        cases.append(Case(f"delta={delta}, shape {shape}", (randn(gen, *shape, scale=2.5), randn(gen, *shape)),
                          {"delta": delta}))
    e = torch.tensor([-4.0, -1.0, -0.5, 0.5, 1.0, 4.0], dtype=torch.float64)
    cases.append(Case("residuals on both sides of delta=1", (e, torch.zeros_like(e)), {"delta": 1.0}))
    return cases


register(
    Exercise(
        id="regression-huber-bug",
        title="Find the bug: a Huber loss that jumps at delta",
        reference=huber_mean_reference,
        cases=_huber_bug_cases,
        style="find-the-bug",
        forbidden=("torch.nn.functional.huber_loss", "torch.nn.functional.smooth_l1_loss"),
        hint="evaluate both pieces at a residual of exactly delta: do they meet?",
    )
)
