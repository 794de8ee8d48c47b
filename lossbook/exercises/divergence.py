"""Exercises of the KL-divergence chapter (chapter ``kl_divergence``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..divergence import distillation_loss, gaussian_kl, kl_div
from ..softmax import log_softmax
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []

F64 = torch.float64


# ------------------------------------------------------------------ KL of two categoricals by hand


def _by_hand_p() -> Tensor:
    return torch.tensor([[0.5, 0.25, 0.25]], dtype=F64)


def _by_hand_q() -> Tensor:
    return torch.tensor([[0.25, 0.5, 0.25]], dtype=F64)


def _kl_by_hand() -> float:
    return kl_div(_by_hand_q().log(), _by_hand_p(), reduction="batchmean").item()


register(
    Exercise(
        id="kl-categorical",
        title="KL(P‖Q) for P = [1/2, 1/4, 1/4] and Q = [1/4, 1/2, 1/4], in nats",
        reference=_kl_by_hand,
        hint="the outcomes where P and Q agree contribute nothing",
    )
)


# ------------------------------------------------------------------ the swapped kl_div call


def teacher_student_kl(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """KL(teacher ‖ student) averaged over the batch: the corrected ``kl_div`` call."""
    return kl_div(log_softmax(student_logits, dim=1), teacher_probs, reduction="batchmean")


def _teacher_student_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for n, c, scale in [(4, 5, 1.0), (1, 3, 3.0), (int(torch.randint(2, 9, (1,), generator=gen)), 7, 0.3)]:
        probs = torch.softmax(randn(gen, n, c, scale=2.0), dim=1)
        cases.append(Case(f"N={n}, C={c}", (randn(gen, n, c, scale=scale), probs)))
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]], dtype=F64)
    cases.append(Case("teacher probabilities with exact zeros", (randn(gen, 2, 3), probs)))
    return cases


register(
    Exercise(
        id="kl-swapped-args",
        title="Fix a kl_div call: the KL from the teacher's distribution to the student's",
        reference=teacher_student_kl,
        cases=_teacher_student_cases,
        style="find-the-bug",
        hint="which argument of kl_div is in log space, and what does 'batchmean' divide by?",
    )
)


# ------------------------------------------------------------------ the Gaussian KL


def gaussian_kl_per_sample(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(mu_q, e^logvar_q) ‖ N(mu_p, e^logvar_p)) per sample, summed over the last (latent) dim."""
    return gaussian_kl(mu_q, logvar_q, mu_p, logvar_p, reduction="none")


def _gaussian_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for n, d in [(4, 3), (1, 8), (int(torch.randint(2, 7, (1,), generator=gen)), 2)]:
        cases.append(Case(f"N={n}, D={d}", tuple(randn(gen, n, d) for _ in range(4))))
    zeros = torch.zeros(3, 5, dtype=F64)
    cases.append(Case("standard normal prior (mu_p = 0, logvar_p = 0)", (randn(gen, 3, 5), randn(gen, 3, 5), zeros,
                                                                          zeros.clone())))
    mu = randn(gen, 2, 4)
    cases.append(Case("q equal to p: the KL is 0", (mu, mu.clone(), mu.clone(), mu.clone())))
    return cases


register(
    Exercise(
        id="kl-gaussian",
        title="The closed-form KL between two diagonal Gaussians",
        reference=gaussian_kl_per_sample,
        cases=_gaussian_cases,
        forbidden=("torch.distributions.kl_divergence", "torch.distributions.kl.kl_divergence"),
        hint="the KL of independent dimensions is the sum of one-dimensional KLs",
    )
)


# ------------------------------------------------------------------ a distillation loss


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, target: Tensor, temperature: float,
            alpha: float) -> Tensor:
    """α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1−α)·CE(s, y), averaged over the batch."""
    return distillation_loss(student_logits, teacher_logits.detach(), target, temperature=temperature, alpha=alpha)


def _kd_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for n, c, T, a in [(8, 5, 4.0, 0.7), (3, 10, 1.0, 0.5), (5, 3, 8.0, 1.0), (6, 4, 2.0, 0.0)]:
        y = torch.randint(0, c, (n,), generator=gen)
        cases.append(Case(f"N={n}, C={c}, T={T}, alpha={a}", (randn(gen, n, c, scale=2.0), randn(gen, n, c, scale=2.0),
                                                               y, T, a)))
    return cases


register(
    Exercise(
        id="kl-distillation",
        title="A knowledge-distillation loss (Hinton et al.)",
        reference=kd_loss,
        cases=_kd_cases,
        hint="two terms: one compares the softened distributions, one compares with the labels; mind the "
        "scale of the first",
    )
)


# ------------------------------------------------------------------ conceptual exercises

register(
    ChoiceExercise(
        id="kl-reverse-predict",
        title="Predict: where does one Gaussian q end up when it minimises the reverse KL(q‖p) to a two-bump p?",
        options={
            "a": Option("on one of the two bumps, about as narrow as that bump",
                        "right: KL(q‖p) = E_q[log q − log p] is huge wherever q has mass and p has almost none, "
                        "so q avoids the gap between the bumps and settles on one mode (mode-seeking)"),
            "b": Option("between the bumps, broad enough to cover both",
                        "no: that is the forward KL(p‖q), which is huge wherever p has mass and q has none, so q "
                        "stretches over both modes (mode-covering), putting mass in the gap"),
            "c": Option("exactly on p",
                        "no: a single Gaussian cannot represent two bumps, so no direction of the KL can reach "
                        "zero; the two directions differ in which error they tolerate"),
        },
        answer="a",
        style="predict",
        hint="in KL(q‖p) the expectation is taken under q: where is log q − log p large?",
    )
)

register(
    ChoiceExercise(
        id="kl-which-direction",
        title="A distillation student must not ignore the teacher's second-best classes: which KL?",
        options={
            "a": Option("KL(teacher ‖ student): kl_div(student log-probabilities, teacher probabilities)",
                        "right: the forward KL from the teacher is large wherever the teacher puts mass and the "
                        "student does not, so the student is pushed to cover every class the teacher considers "
                        "plausible (mode-covering); this is Hinton et al.'s distillation loss"),
            "b": Option("KL(student ‖ teacher)",
                        "no: the reverse KL is mode-seeking; the student can put all its mass on the teacher's "
                        "top class and pay almost nothing for ignoring the rest"),
            "c": Option("either: the KL divergence is symmetric",
                        "no: KL(P‖Q) ≠ KL(Q‖P) in general; for P = [1/2, 1/4, 1/4] and Q = [1/4, 1/2, 1/4] "
                        "they happen to agree, but for most pairs they do not"),
        },
        answer="a",
        hint="in each direction, the expectation is taken under which distribution?",
    )
)
