"""lossbook.generation: the GAN losses against direct transcriptions of their formulas, the penalties
(linear critic, no leak into the generator, double backward), total variation against kornia and
kornia's own test vectors, and diffusion_loss against a direct computation, all in float64."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.testing import assert_matches

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, scale=1.0, dtype=D):
    return torch.randn(shape, generator=gen(seed), dtype=dtype) * scale


# --------------------------------------------------------------------------------------------
# the adversarial losses: the table, transcribed with torch's own functions


def sig(x):
    return torch.sigmoid(x)


REF_D = {
    # -log D(x) - log(1 - D(G(z))), written with BCE-with-logits as pix2pix's GANLoss('vanilla') does
    "vanilla": lambda r, f: F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
    + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)),
    "non_saturating": lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    "minimax": lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean(),
    "lsgan": lambda r, f: 0.5 * F.mse_loss(r, torch.ones_like(r)) + 0.5 * F.mse_loss(f, torch.zeros_like(f)),
    "wgan": lambda r, f: f.mean() - r.mean(),
    "hinge": lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),
}

REF_G = {
    "non_saturating": lambda f: F.softplus(-f),
    "vanilla": lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f), reduction="none"),
    "minimax": lambda f: F.logsigmoid(-f),  # log(1 - D(G(z)))
    "lsgan": lambda f: 0.5 * (f - 1) ** 2,
    "wgan": lambda f: -f,
    "hinge": lambda f: -f,
}


@pytest.mark.parametrize("mode", list(REF_D))
@pytest.mark.parametrize("shape", [(7,), (5, 1), (3, 1, 4, 4)])
def test_discriminator_loss_matches_the_table(mode, shape):
    r = randn(*shape, seed=1, scale=3)
    f = randn(*((shape[0] + 2,) + shape[1:]), seed=2, scale=3)  # batches of different sizes are fine
    assert_matches(lambda a, b: lossbook.discriminator_loss(a, b, mode=mode), REF_D[mode], (r, f))


@pytest.mark.parametrize("mode", list(REF_G))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_generator_loss_matches_the_table(mode, reduction):
    f = randn(6, 2, seed=3, scale=3)

    def ref(x):
        loss = REF_G[mode](x)
        return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]

    assert_matches(lambda x: lossbook.generator_loss(x, mode=mode, reduction=reduction), ref, (f,))


def test_gan_losses_match_pix2pix_worked_numbers():
    # pix2pix's GANLoss on the predictions [0.5, -1]: vanilla real 0.893669, vanilla fake 0.643669,
    # lsgan real (MSE without 1/2) 2.125, wgangp real/fake -0.25/+0.25
    pred = torch.tensor([0.5, -1.0], dtype=D)
    empty = pred[:0]
    nothing = lossbook.discriminator_loss(empty[:1], empty, mode="wgan")  # the mean of nothing is NaN
    assert math.isnan(nothing.item())
    real_part = F.softplus(-pred).mean().item()
    assert round(real_part, 6) == 0.893669
    assert round(lossbook.generator_loss(pred).item(), 6) == 0.893669  # the generator's "target is real" loss
    assert round(lossbook.discriminator_loss(pred, pred).item() - real_part, 6) == 0.643669
    assert lossbook.discriminator_loss(pred, torch.zeros(1, dtype=D), mode="lsgan").item() == pytest.approx(2.125 / 2)
    assert lossbook.generator_loss(pred, mode="wgan").item() == pytest.approx(0.25)
    assert lossbook.discriminator_loss(torch.zeros(1, dtype=D), pred, mode="wgan").item() == pytest.approx(-0.25)


def test_minimax_saturates_and_non_saturating_does_not():
    f = torch.tensor([-10.0, -5.0], dtype=D, requires_grad=True)
    (g_mm,) = torch.autograd.grad(lossbook.generator_loss(f, mode="minimax", reduction="sum"), f)
    (g_ns,) = torch.autograd.grad(lossbook.generator_loss(f, reduction="sum"), f)
    assert torch.allclose(g_mm, -sig(f.detach()))          # -sigma(f): tiny when D rejects the fakes
    assert torch.allclose(g_ns, sig(f.detach()) - 1)       # sigma(f) - 1: about -1 there
    assert g_mm.abs().max() < 1e-2 and g_ns.abs().min() > 0.99


def test_gan_losses_are_stable_for_extreme_logits():
    x = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=D, requires_grad=True)
    for mode in ("non_saturating", "minimax"):
        loss = lossbook.generator_loss(x, mode=mode, reduction="none")
        (g,) = torch.autograd.grad(loss.sum(), x)
        assert torch.isfinite(loss).all() and torch.isfinite(g).all()
        assert torch.allclose(loss, REF_G[mode](x.detach()))
    d = lossbook.discriminator_loss(x, x)
    assert torch.isfinite(d) and d.item() == pytest.approx((F.softplus(-x) + F.softplus(x)).mean().item())


def test_softplus_gradient_at_zero_is_one_half():
    x = torch.zeros(3, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(lossbook.generator_loss(x, reduction="sum"), x)
    assert torch.equal(g, torch.full_like(g, -0.5))


@pytest.mark.parametrize("fn, kwargs", [(lossbook.discriminator_loss, {}), (lossbook.generator_loss, {})])
def test_unknown_mode_lists_the_modes(fn, kwargs):
    x = torch.zeros(3)
    args = (x, x) if fn is lossbook.discriminator_loss else (x,)
    with pytest.raises(ValueError, match=r"mode must be one of 'vanilla'.*'hinge'; got 'wgangp'"
                       if fn is lossbook.discriminator_loss else r"mode must be one of 'non_saturating'.*'wgangp'"):
        fn(*args, mode="wgangp", **kwargs)


def test_gan_bad_inputs():
    with pytest.raises(ValueError, match=r"fake_logits has shape \(3, 2\) but real_logits has shape \(3, 1\)"):
        lossbook.discriminator_loss(torch.zeros(3, 1), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="real_logits must have a floating-point dtype"):
        lossbook.discriminator_loss(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(ValueError, match=r"fake_logits has shape \(\) \(0-D\)"):
        lossbook.generator_loss(torch.tensor(1.0))
    with pytest.raises(ValueError, match="reduction must be one of"):
        lossbook.generator_loss(torch.zeros(2), reduction="batchmean")


@given(st.lists(st.floats(-30, 30), min_size=1, max_size=8))
@settings(max_examples=40, deadline=None)
def test_non_saturating_and_minimax_differ_by_the_logit(values):
    # softplus(-f) + f = softplus(f): the two generator losses differ by f, so they share every fixed point
    # of the game but not their gradients
    f = torch.tensor(values, dtype=D)
    ns = lossbook.generator_loss(f, reduction="none")
    mm = lossbook.generator_loss(f, mode="minimax", reduction="none")
    assert torch.allclose(ns + mm, -f, atol=1e-9)


# --------------------------------------------------------------------------------------------
# gradient penalty and R1


def test_gradient_penalty_of_a_linear_critic_is_160_for_any_input():
    w = torch.tensor([3.0, 4.0], dtype=D)
    for seed in range(3):
        real, fake = randn(8, 2, seed=seed, scale=5), randn(8, 2, seed=seed + 10, scale=5)
        gp = lossbook.gradient_penalty(lambda x: x @ w, real, fake)
        assert gp.item() == pytest.approx(160.0, abs=1e-9)  # 10 (|w| - 1)^2 = 10 * 4^2
    unit = torch.tensor([0.6, 0.8], dtype=D)
    assert lossbook.gradient_penalty(lambda x: x @ unit, real, fake).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(5,), (5, 3), (5, 2, 4), (5, 1, 3, 3), (5, 1, 2, 2, 2)])
def test_gradient_penalty_any_rank_matches_a_direct_transcription(shape):
    real, fake = randn(*shape, seed=1), randn(*shape, seed=2)
    n_in = math.prod(shape[1:])
    lin = torch.nn.Linear(n_in, 4, dtype=D)
    critic = lambda x: lin(x.reshape(x.shape[0], -1)).tanh().sum(1)  # noqa: E731  (non-linear: norm varies)
    gp = lossbook.gradient_penalty(critic, real, fake, weight=3.0, generator=gen(7))
    eps = torch.rand((shape[0],) + (1,) * (len(shape) - 1), generator=gen(7), dtype=D)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    ref = 3.0 * ((g.reshape(shape[0], -1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(gp, ref)
    # and the critic is trained through it: the same parameter gradient as the transcription's
    g1 = torch.autograd.grad(gp, lin.weight)[0]
    g2 = torch.autograd.grad(ref, lin.weight)[0]
    assert torch.allclose(g1, g2) and g1.abs().sum() > 0


def test_gradient_penalty_does_not_leak_into_the_generator():
    G = torch.nn.Linear(3, 2, dtype=D)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 8, dtype=D), torch.nn.Tanh(), torch.nn.Linear(8, 1, dtype=D))
    real, fake = randn(6, 2, seed=1), G(randn(6, 3, seed=2))
    lossbook.gradient_penalty(critic, real, fake).backward()
    assert G.weight.grad is None and G.bias.grad is None
    assert critic[0].weight.grad is not None and critic[0].weight.grad.abs().sum() > 0
    # the form that does not detach fake leaks: the generator receives a gradient from the penalty
    eps = torch.rand(6, 1, dtype=D)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)  # still in G's graph
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    (10 * ((g.norm(dim=1) - 1) ** 2).mean()).backward()
    assert G.weight.grad is not None and G.weight.grad.abs().sum() > 0


def test_gradient_penalty_epsilon_follows_dtype_device_and_generator():
    w = torch.tensor([1.0, 2.0], dtype=torch.float32)
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    gp = lossbook.gradient_penalty(lambda x: (x @ w).square(), real, fake, generator=gen(3))
    again = lossbook.gradient_penalty(lambda x: (x @ w).square(), real, fake, generator=gen(3))
    assert gp.dtype == torch.float32 and torch.equal(gp, again)


def test_r1_penalty_matches_its_formula():
    w = torch.tensor([3.0, 4.0], dtype=D)
    assert lossbook.r1_penalty(lambda x: x @ w, randn(5, 2)).item() == pytest.approx(5.0 * 25.0)
    lin = torch.nn.Linear(6, 1, dtype=D)
    critic = lambda x: torch.sin(lin(x.flatten(1)))  # noqa: E731
    real = randn(4, 2, 3, seed=4)
    r1 = lossbook.r1_penalty(critic, real, gamma=0.5)
    x = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    ref = 0.25 * g.square().sum(dim=(1, 2)).mean()
    assert torch.allclose(r1, ref)
    assert torch.allclose(torch.autograd.grad(r1, lin.weight)[0], torch.autograd.grad(ref, lin.weight)[0])


def _functional_critic(params, x):
    w1, b1, w2 = params
    return torch.tanh(x @ w1 + b1) @ w2


@pytest.mark.parametrize("which", ["gp", "r1"])
def test_penalties_under_double_backward(which):
    # gradgradcheck of the penalty w.r.t. the critic's parameters: the penalty's own gradient involves a
    # second derivative of the critic, and its check a third
    real, fake = randn(3, 2, seed=1), randn(3, 2, seed=2)
    params = (randn(2, 4, seed=3).requires_grad_(), randn(4, seed=4).requires_grad_(),
              randn(4, seed=5).requires_grad_())

    def penalty(*p):
        critic = lambda x: _functional_critic(p, x)  # noqa: E731
        if which == "gp":
            return lossbook.gradient_penalty(critic, real, fake, generator=gen(0))
        return lossbook.r1_penalty(critic, real)

    assert torch.autograd.gradcheck(penalty, params)
    assert torch.autograd.gradgradcheck(penalty, params)


def test_penalty_bad_inputs():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"critic\(x\) returned shape \(4, 2\) for a batch of 4; a critic must "
                                         r"return one score per sample, \(4,\) or \(4, 1\)"):
        lossbook.gradient_penalty(lambda v: v * 2, x, x)
    with pytest.raises(ValueError, match=r"fake has shape \(3, 2\) but real has shape \(4, 2\)"):
        lossbook.gradient_penalty(lambda v: v.sum(1), x, torch.zeros(3, 2))
    with pytest.raises(TypeError, match="critic must be a callable"):
        lossbook.r1_penalty("D", x)
    with pytest.raises(TypeError, match=r"critic\(x\) must be a torch.Tensor"):
        lossbook.r1_penalty(lambda v: 1.0, x)
    with pytest.raises(ValueError, match="weight must be >= 0, got -1"):
        lossbook.gradient_penalty(lambda v: v.sum(1), x, x, weight=-1)


# --------------------------------------------------------------------------------------------
# Gram matrix, style and perceptual losses


def test_gram_matrix_matches_a_transcription():
    f = randn(2, 3, 4, 5, seed=1)
    ref = torch.einsum("nchw,ndhw->ncd", f, f) / (3 * 4 * 5)
    assert_matches(lossbook.gram_matrix, lambda x: torch.einsum("nchw,ndhw->ncd", x, x) / 60, (f,))
    G = lossbook.gram_matrix(f)
    assert torch.allclose(G, ref) and torch.allclose(G, G.transpose(1, 2))
    assert (torch.linalg.eigvalsh(G) > -1e-12).all()  # positive semi-definite


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))
@settings(max_examples=25, deadline=None)
def test_gram_matrix_forgets_where_things_are(n, c, h, w):
    f = randn(n, c, h, w, seed=n * 100 + c * 10 + h + w)
    perm = torch.randperm(h * w, generator=gen(h * w))
    shuffled = f.flatten(2)[:, :, perm].reshape(n, c, h, w)
    assert torch.allclose(lossbook.gram_matrix(f), lossbook.gram_matrix(shuffled))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_style_loss_is_the_mse_of_gram_matrices(reduction):
    x, y = randn(2, 3, 4, 4, seed=1), randn(2, 3, 6, 5, seed=2)  # spatial sizes may differ

    def ref(a, b):
        return F.mse_loss(lossbook.gram_matrix(a), lossbook.gram_matrix(b), reduction=reduction)

    assert_matches(lambda a, b: lossbook.style_loss(a, b, reduction=reduction), ref, (x, y))


class TinyCNN(torch.nn.Module):
    def __init__(self, batchnorm=False):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 4, 3, padding=1, dtype=D)
        self.c2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, dtype=D)
        self.bn = torch.nn.BatchNorm2d(4, dtype=D) if batchnorm else torch.nn.Identity()

    def forward(self, x):
        a = torch.relu(self.bn(self.c1(x)))
        return [a, torch.relu(self.c2(a))]


def test_perceptual_loss_matches_a_transcription():
    torch.manual_seed(0)
    net = TinyCNN()
    x, y = randn(2, 3, 8, 8, seed=1), randn(2, 3, 8, 8, seed=2)
    w, s = [0.5, 2.0], [3.0, 0.0]

    def ref(a, b):
        fa, fb = net(a), [f.detach() for f in net(b)]
        content = sum(wi * F.mse_loss(p, q) for wi, p, q in zip(w, fa, fb))
        style = sum(si * F.mse_loss(lossbook.gram_matrix(p), lossbook.gram_matrix(q)) for si, p, q in zip(s, fa, fb))
        return content + style

    loss = lossbook.perceptual_loss(x, y, feature_extractor=net, weights=w, style_weights=s)
    assert torch.allclose(loss, ref(x, y))
    assert_matches(lambda a, b: lossbook.perceptual_loss(a, b, feature_extractor=net, weights=w, style_weights=s),
                   ref, (x, y))
    # the target's features carry no gradient
    yy = y.clone().requires_grad_(True)
    lossbook.perceptual_loss(x, yy, feature_extractor=net).backward()
    assert yy.grad is None
    default = lossbook.perceptual_loss(x, y, feature_extractor=net)
    assert torch.allclose(default, sum(F.mse_loss(p, q) for p, q in zip(net(x), net(y))))


def test_perceptual_loss_warns_about_a_training_mode_extractor():
    net = TinyCNN(batchnorm=True)
    x, y = randn(2, 3, 8, 8, seed=1), randn(2, 3, 8, 8, seed=2)
    with pytest.warns(lossbook.PitfallWarning, match=r"call feature_extractor.eval\(\)"):
        lossbook.perceptual_loss(x, y, feature_extractor=net)
    net.eval()
    lossbook.perceptual_loss(x, y, feature_extractor=net)  # no warning (it would be an error here)
    lossbook.perceptual_loss(x, y, feature_extractor=TinyCNN().train())  # no BatchNorm/Dropout: no warning


def test_feature_loss_bad_inputs():
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match=r"features has shape \(3, 4\) \(2-D\) but must be \(N, C, H, W\)"):
        lossbook.gram_matrix(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"their batch size and channel count \(N, C\) must agree"):
        lossbook.style_loss(x, torch.zeros(1, 2, 4, 4))
    with pytest.raises(TypeError, match=r"feature_extractor\(input\) must return a list"):
        lossbook.perceptual_loss(x, x, feature_extractor=lambda v: v)
    with pytest.raises(ValueError, match="weights has 1 entries but feature_extractor returned 2 feature maps"):
        lossbook.perceptual_loss(x, x, feature_extractor=lambda v: [v, v], weights=[1.0])
    with pytest.raises(TypeError, match="feature_extractor must be callable"):
        lossbook.perceptual_loss(x, x, feature_extractor=None)


# --------------------------------------------------------------------------------------------
# total variation: kornia and kornia's own test vectors


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 5), (2, 3, 6, 7), (2, 2, 3, 5, 5), (1, 1, 1, 6), (2, 5, 1)])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_total_variation_matches_kornia(shape, reduction):
    kornia = pytest.importorskip("kornia")
    img = randn(*shape, seed=sum(shape))
    assert_matches(lambda x: lossbook.total_variation_loss(x, reduction=reduction),
                   lambda x: kornia.losses.total_variation(x, reduction=reduction), (img,))


KORNIA_VECTORS = [  # kornia/kornia tests/losses/test_total_variation.py: test_tv_on_3d and test_tv_on_4d
    (
        [[[0.11747694, 0.5717714, 0.89223915, 0.2929412, 0.63556224],
          [0.5371079, 0.13416398, 0.7782737, 0.21392655, 0.1757018],
          [0.62360305, 0.8563448, 0.25304103, 0.68539226, 0.6956515],
          [0.9350611, 0.01694632, 0.78724295, 0.4760313, 0.73099905]],
         [[0.4788819, 0.45253807, 0.932798, 0.5721999, 0.7612051],
          [0.5455887, 0.8836531, 0.79551977, 0.6677338, 0.74293613],
          [0.4830376, 0.16420758, 0.15784949, 0.21445751, 0.34168917],
          [0.8675162, 0.5468113, 0.6117004, 0.01305223, 0.17554593]],
         [[0.6423703, 0.5561105, 0.54304767, 0.20339686, 0.8553698],
          [0.98024786, 0.31562763, 0.10122144, 0.17686582, 0.26260805],
          [0.20522952, 0.14523649, 0.8601968, 0.02593213, 0.7382898],
          [0.71935296, 0.9625162, 0.42287344, 0.07979459, 0.9149871]]],
        [12.6647, 7.9527, 12.3838],
    ),
    ([[[0.09094203, 0.32630223, 0.8066123], [0.10921168, 0.09534764, 0.48588026]]], [1.6900]),
    (
        [[[[0.8756, 0.0920], [0.8034, 0.3107]], [[0.3069, 0.2981], [0.9399, 0.7944]],
          [[0.6269, 0.1494], [0.2493, 0.8490]]],
         [[[0.3256, 0.9923], [0.2856, 0.9104]], [[0.4107, 0.4387], [0.2742, 0.0095]],
          [[0.7064, 0.3674], [0.6139, 0.2487]]]],
        [[1.5672, 1.2836, 2.1544], [1.4134, 0.8584, 0.9154]],
    ),
    (
        [[[[0.1104, 0.2284, 0.4371], [0.4569, 0.1906, 0.8035]]],
         [[[0.0552, 0.6831, 0.8310], [0.3589, 0.5044, 0.0802]]],
         [[[0.5078, 0.5703, 0.9110], [0.4765, 0.8401, 0.2754]]]],
        [[1.9566], [2.5787], [2.2682]],
    ),
]


@pytest.mark.parametrize("dtype", [torch.float32, D])
@pytest.mark.parametrize("img, expected", KORNIA_VECTORS)
def test_total_variation_on_kornias_test_vectors(img, expected, dtype):
    got = lossbook.total_variation_loss(torch.tensor(img, dtype=dtype))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=dtype), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("reduction, expected", [("sum", 20.0), ("mean", 1.0)])
def test_total_variation_reduction_of_kornias_ramp(reduction, expected):
    ramp, _ = torch.meshgrid(torch.arange(5, dtype=D), torch.arange(5, dtype=D), indexing="ij")
    assert lossbook.total_variation_loss(ramp, reduction=reduction).item() == pytest.approx(expected)


def test_total_variation_of_constants_and_of_slices():
    assert torch.equal(lossbook.total_variation_loss(2 * torch.ones(2, 3, 4, 5)), torch.zeros(2, 3))
    x = torch.rand(4, 2, 3, 5, 5, generator=gen(1), dtype=D)
    stacked = torch.stack([lossbook.total_variation_loss(s) for s in x.unbind(0)])
    assert torch.allclose(stacked, lossbook.total_variation_loss(x))
    permuted = x.permute(0, 1, 2, 4, 3)  # a non-contiguous input: transposing the image swaps the two sums
    assert torch.allclose(lossbook.total_variation_loss(permuted), lossbook.total_variation_loss(x))


def test_total_variation_bad_inputs():
    with pytest.raises(TypeError, match=r"input must have a floating-point dtype, got torch.int32; convert"):
        lossbook.total_variation_loss(torch.ones(3, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"input has shape \(5,\) \(1-D\) but must be \(\*, H, W\)"):
        lossbook.total_variation_loss(torch.ones(5))
    with pytest.raises(ValueError, match=r"reduction must be one of 'sum', 'mean'; got 'none'"):
        lossbook.total_variation_loss(torch.ones(3, 3), reduction="none")
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        lossbook.total_variation_loss([1.0, 2.0])


# --------------------------------------------------------------------------------------------
# diffusion


def linear_schedule(T=50, dtype=D):
    return torch.cumprod(1 - torch.linspace(1e-4, 0.2, T, dtype=dtype), 0)


def ref_diffusion(pred, x0, noise, t, ac, parameterization, snr_gamma, reduction):
    """A direct computation, written like diffusers' train_text_to_image.py."""
    a = ac[t].view(-1, *([1] * (x0.dim() - 1)))
    target = {"epsilon": noise, "v": a.sqrt() * noise - (1 - a).sqrt() * x0, "x0": x0}[parameterization]
    loss = F.mse_loss(pred, target, reduction="none").mean(dim=list(range(1, pred.dim())))
    if snr_gamma is not None:
        snr = ac[t] / (1 - ac[t])
        mse_w = torch.stack([snr, snr_gamma * torch.ones_like(snr)], dim=1).min(dim=1)[0]
        if parameterization == "epsilon":
            mse_w = mse_w / snr
        elif parameterization == "v":
            mse_w = mse_w / (snr + 1)
        loss = loss * mse_w
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("parameterization", ["epsilon", "v", "x0"])
@pytest.mark.parametrize("snr_gamma", [None, 5.0, 0.5])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_diffusion_loss_matches_a_direct_computation(parameterization, snr_gamma, reduction):
    ac = linear_schedule()
    x0, noise, pred = randn(6, 2, 3, seed=1), randn(6, 2, 3, seed=2), randn(6, 2, 3, seed=3)
    t = torch.tensor([0, 3, 10, 25, 40, 49])
    kw = {"parameterization": parameterization, "snr_gamma": snr_gamma, "reduction": reduction}
    assert_matches(lambda p, a, b: lossbook.diffusion_loss(p, a, b, t, ac, **kw),
                   lambda p, a, b: ref_diffusion(p, a, b, t, ac, parameterization, snr_gamma, reduction),
                   (pred, x0, noise))


def test_the_three_parameterisations_weight_the_x0_error_alike_under_min_snr():
    # every target is a reparameterisation of x0: with Min-SNR-γ weights all three losses equal
    # min(SNR, γ) · ||x0_hat - x0||^2 / D for the x0_hat that each prediction implies
    ac = linear_schedule()
    x0, noise = randn(5, 4, seed=1), randn(5, 4, seed=2)
    t = torch.tensor([1, 5, 12, 30, 45])
    a = ac[t].unsqueeze(1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    x0_hat = x0 + 0.3 * randn(5, 4, seed=3)
    eps_hat = (xt - a.sqrt() * x0_hat) / (1 - a).sqrt()
    v_hat = a.sqrt() * eps_hat - (1 - a).sqrt() * x0_hat
    losses = [lossbook.diffusion_loss(p, x0, noise, t, ac, parameterization=k, snr_gamma=5.0, reduction="none")
              for p, k in ((eps_hat, "epsilon"), (v_hat, "v"), (x0_hat, "x0"))]
    assert torch.allclose(losses[0], losses[1]) and torch.allclose(losses[0], losses[2])


def test_diffusion_loss_1d_samples_and_the_alphas_dtype():
    ac = linear_schedule(dtype=torch.float32)
    pred = torch.randn(4)
    loss = lossbook.diffusion_loss(pred, torch.zeros(4), torch.zeros(4), torch.tensor([0, 1, 2, 3]), ac)
    assert loss.item() == pytest.approx(pred.square().mean().item(), rel=1e-6)


def test_diffusion_bad_inputs():
    ac = linear_schedule()
    x = torch.zeros(3, 2, dtype=D)
    t = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"t contains the time step 50, but time steps must be in \[0, 49\]"):
        lossbook.diffusion_loss(x, x, x, torch.tensor([0, 1, 50]), ac)
    with pytest.raises(TypeError, match="t holds time-step indices and must have an integer dtype"):
        lossbook.diffusion_loss(x, x, x, t.double(), ac)
    with pytest.raises(ValueError, match=r"t has shape \(2,\) but must be \(3,\)"):
        lossbook.diffusion_loss(x, x, x, t[:2], ac)
    with pytest.raises(ValueError, match=r"noise has shape \(3, 3\) but prediction has shape \(3, 2\)"):
        lossbook.diffusion_loss(x, x, torch.zeros(3, 3, dtype=D), t, ac)
    with pytest.raises(ValueError, match=r"parameterization must be one of 'epsilon', 'v', 'x0'; got 'eps'"):
        lossbook.diffusion_loss(x, x, x, t, ac, parameterization="eps")
    with pytest.raises(ValueError, match="snr_gamma must be > 0, got 0"):
        lossbook.diffusion_loss(x, x, x, t, ac, snr_gamma=0)
    with pytest.raises(ValueError, match=r"alphas_cumprod has shape \(50, 1\)"):
        lossbook.diffusion_loss(x, x, x, t, ac.unsqueeze(1))


# --------------------------------------------------------------------------------------------
# composability and low precision


def _cases():
    ac = linear_schedule(T=10)
    t = torch.tensor([1, 7])
    feat = lambda v: [v, v[:, :, ::2, ::2]]  # noqa: E731  (a feature extractor without parameters)
    img2 = randn(2, 2, 4, 4, seed=9)
    x0, noise = randn(2, 3, seed=1), randn(2, 3, seed=2)
    return {
        "discriminator": (lambda x: lossbook.discriminator_loss(x, x.flip(0) * 0.5, mode="hinge"), randn(4, seed=1)),
        "generator": (lambda x: lossbook.generator_loss(x), randn(4, seed=2)),
        "generator_lsgan": (lambda x: lossbook.generator_loss(x, mode="lsgan", reduction="sum"), randn(4, seed=3)),
        "gram": (lambda x: lossbook.gram_matrix(x).sum(), randn(1, 2, 3, 3, seed=4)),
        "style": (lambda x: lossbook.style_loss(x, img2), randn(2, 2, 4, 4, seed=5)),
        "perceptual": (lambda x: lossbook.perceptual_loss(x, img2, feature_extractor=feat, style_weights=[1.0, 0.5]),
                       randn(2, 2, 4, 4, seed=6)),
        "tv": (lambda x: lossbook.total_variation_loss(x, reduction="mean").sum(), randn(2, 3, 4, seed=7)),
        "diffusion": (lambda x: lossbook.diffusion_loss(x, x0, noise, t, ac,
                                                        parameterization="v", snr_gamma=2.0), randn(2, 3, seed=8)),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_and_gradgradcheck(name):
    fn, x = CASES[name]
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("name", list(CASES))
def test_torch_func_grad_and_vmap(name):
    fn, x = CASES[name]
    x = x.detach()
    g = torch.func.grad(fn)(x)
    xr = x.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(fn(xr), xr)
    assert torch.allclose(g, g_ref)
    batched = torch.func.vmap(fn)(torch.stack([x, 2 * x]))
    assert torch.allclose(batched, torch.stack([fn(x), fn(2 * x)]))


@pytest.mark.parametrize("name", list(CASES))
def test_compiles_without_graph_breaks(name):
    fn, x = CASES[name]
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    assert torch.allclose(compiled(x), fn(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_smoke(dtype):
    x = torch.randn(4, 2, 3, 3, generator=gen(1)).to(dtype)
    outs = [
        lossbook.discriminator_loss(x.flatten(1)[:, 0], x.flatten(1)[:, 1]),
        lossbook.generator_loss(x, mode="minimax"),
        lossbook.style_loss(x, x.flip(0)),
        lossbook.total_variation_loss(x),
        lossbook.diffusion_loss(x, x, x.flip(0), torch.tensor([0, 1, 2, 3]), linear_schedule(T=4, dtype=dtype),
                                snr_gamma=5.0),
    ]
    for out in outs:
        assert out.dtype == dtype and torch.isfinite(out).all()
