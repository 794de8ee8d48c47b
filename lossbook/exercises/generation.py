"""Exercises of the generation chapter (ids ``gen-*``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..generation import _input_gradient, generator_loss, gram_matrix
from ._core import Case, ChoiceExercise, Exercise, Option, randn, register

__all__: list[str] = []

D = torch.float64


# ------------------------------------------------------------------ the gradient penalty (find the bug)


def gradient_penalty_with_eps(critic, real: Tensor, fake: Tensor, eps: Tensor, weight: float = 10.0) -> Tensor:
    """``lossbook.gradient_penalty`` with the per-sample ε given (shape ``(N,)``) instead of drawn."""
    real, fake = real.detach(), fake.detach()
    e = eps.detach().reshape((-1,) + (1,) * (real.dim() - 1))
    x_hat = (e * real + (1 - e) * fake).requires_grad_(True)
    grad = _input_gradient(critic, x_hat)
    return weight * (grad.reshape(grad.shape[0], -1).norm(dim=1) - 1).square().mean()


class _Critic(torch.nn.Module):
    """A small non-linear critic on flattened inputs, so the gradient norm varies from sample to sample."""

    def __init__(self, n_in: int, gen: torch.Generator):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(n_in, 8, generator=gen, dtype=D))
        self.w2 = torch.nn.Parameter(torch.randn(8, generator=gen, dtype=D) / 2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x.reshape(x.shape[0], -1) @ self.w1) @ self.w2


def _gp_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for shape, weight in (((5, 2), 10.0), ((4, 3, 4, 4), 10.0), ((6,), 1.0), ((3, 2, 5), 2.5)):
        n_in = 1
        for s in shape[1:]:
            n_in *= s
        critic = _Critic(n_in, gen)
        eps = torch.rand(shape[0], generator=gen, dtype=D)
        cases.append(Case(f"inputs {shape}, weight {weight}", (critic, randn(gen, *shape), randn(gen, *shape), eps),
                          {"weight": weight}))
    w = torch.tensor([3.0, 4.0], dtype=D)
    cases.append(Case("linear critic w = (3, 4): 160", (lambda x: x @ w, randn(gen, 4, 2), randn(gen, 4, 2),
                                                       torch.rand(4, generator=gen, dtype=D))))
    return cases


register(
    Exercise(
        id="gen-gradient-penalty",
        title="Fix a WGAN-GP gradient penalty that only works for images and trains the generator",
        reference=gradient_penalty_with_eps,
        cases=_gp_cases,
        style="find-the-bug",
        hint="ε has one value per sample: give it as many trailing singleton dimensions as the samples have; "
        "and the interpolated point must be a fresh leaf that is not part of the generator's graph",
    )
)


# ------------------------------------------------------------------ saturation of the minimax loss (value)


SATURATION_LOGIT = -6.0  # the discriminator rejects a fake with this logit (stated in the notebook)


def _saturation_grads() -> list[float]:
    f = torch.tensor([SATURATION_LOGIT], dtype=D, requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss(f, mode="minimax"), f)
    (g_ns,) = torch.autograd.grad(generator_loss(f, mode="non_saturating"), f)
    return [g_mm.item(), g_ns.item()]


register(
    Exercise(
        id="gen-saturation",
        title="The generator's gradient under the minimax and the non-saturating loss, at a rejected fake",
        reference=_saturation_grads,
        hint="the derivative of softplus(x) is sigmoid(x); the minimax loss is -softplus(f), the non-saturating "
        "one softplus(-f)",
    )
)


# ------------------------------------------------------------------ the Gram matrix (implement)


def _gram_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case("(1, 2, 3, 3)", (randn(gen, 1, 2, 3, 3),)),
        Case("(2, 4, 5, 3)", (randn(gen, 2, 4, 5, 3),)),
        Case("(3, 1, 2, 7): one channel", (randn(gen, 3, 1, 2, 7),)),
        Case("(2, 5, 1, 1): one pixel", (randn(gen, 2, 5, 1, 1),)),
        Case("(1, 3, 8, 8) large values", (randn(gen, 1, 3, 8, 8, scale=100),)),
    ]


register(
    Exercise(
        id="gen-gram",
        title="The Gram matrix of a batch of feature maps, normalised by C·H·W",
        reference=gram_matrix,
        cases=_gram_cases,
        hint="flatten the spatial dimensions to get (N, C, H·W), multiply by its own transpose batch-wise, "
        "and divide by the number of entries of one sample's feature map",
    )
)


# ------------------------------------------------------------------ which parameterisation (choice)


register(
    ChoiceExercise(
        id="gen-which-parameterization",
        title="Which target bounds both the x0 error and the ε error by the network's own error at every t?",
        options={
            "a": Option(
                "ε (epsilon)",
                "the x0 it implies is (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t, so an error δ in ε̂ becomes δ·√((1 − ᾱ_t)/ᾱ_t) "
                "in x̂0, which grows without bound as ᾱ_t → 0 at the noisiest steps",
            ),
            "b": Option(
                "x0",
                "the ε it implies is (x_t − √ᾱ_t x̂0) / √(1 − ᾱ_t), so an error δ in x̂0 becomes "
                "δ·√(ᾱ_t/(1 − ᾱ_t)) in ε̂, which grows without bound as ᾱ_t → 1 at the cleanest steps",
            ),
            "c": Option(
                "v",
                "x̂0 = √ᾱ_t x_t − √(1 − ᾱ_t) v̂ and ε̂ = √(1 − ᾱ_t) x_t + √ᾱ_t v̂, so an error δ in v̂ "
                "moves x̂0 by √(1 − ᾱ_t)·δ and ε̂ by √ᾱ_t·δ, both at most δ at every t",
            ),
            "d": Option(
                "they are all the same: each target is a linear function of the others",
                "they carry the same information given x_t, but the conversion multiplies the network's "
                "error by a factor that depends on t, so the same MSE on each target weights the time steps "
                "differently and amplifies errors differently",
            ),
        },
        answer="c",
        hint="write x̂0 and ε̂ in terms of x_t and the network's output for each target, and look at the factor "
        "in front of the output as ᾱ_t goes from 1 to 0",
    )
)
