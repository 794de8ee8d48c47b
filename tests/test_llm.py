"""lossbook.llm against PyTorch in float64: token CE, z-loss, chunked linear CE, vocab-parallel CE (gloo)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook.llm import (
    _LinearCrossEntropy,
    bits_per_byte,
    linear_cross_entropy,
    make_vocab_parallel_case,
    peak_rss_growth,
    perplexity,
    run_vocab_parallel,
    token_cross_entropy,
    vocab_parallel_cross_entropy,
    z_loss,
)
from lossbook.testing import assert_matches, compare

D, REDUCTIONS = torch.float64, ("none", "mean", "sum")


def gen(seed=0):
    """A fresh generator, so every tensor of a test is reproducible on its own."""
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, scale=1.0, dtype=D):
    return torch.randn(shape, generator=gen(seed), dtype=dtype) * scale


def labels(*shape, v, seed=0, pad=0):
    """Token ids in [0, v), the last ``pad`` positions of every row set to -100."""
    t = torch.randint(0, v, shape, generator=gen(seed + 100))
    if pad:
        t[..., -pad:] = -100
    return t


def ref_token_ce(logits, labels, ignore_index=-100, label_smoothing=0.0):
    """Hugging Face's ForCausalLMLoss: pad the labels by one ignore_index, shift, flatten, mean."""
    shifted = F.pad(labels, (0, 1), value=ignore_index)[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=ignore_index,
                           label_smoothing=label_smoothing)


# --------------------------------------------------------------------------------------------
# token_cross_entropy


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("pad", [0, 3])
def test_token_ce_matches_the_shifted_reference(label_smoothing, pad):
    logits, y = randn(3, 7, 11, scale=2), labels(3, 7, v=11, pad=pad)
    assert_matches(token_cross_entropy, ref_token_ce, (logits, y), {"label_smoothing": label_smoothing})


def test_token_ce_without_shift_is_cross_entropy_of_the_flattened_positions():
    logits, y = randn(2, 5, 9), labels(2, 5, v=9, pad=2)
    ref = lambda z, t: F.cross_entropy(z.reshape(-1, 9), t.reshape(-1))  # noqa: E731
    assert_matches(lambda z, t: token_cross_entropy(z, t, shift=False), ref, (logits, y))


def test_uniform_logits_give_ln_v_and_perplexity_v():
    v = 50
    loss = token_cross_entropy(torch.zeros(2, 6, v, dtype=D), labels(2, 6, v=v))
    assert math.isclose(loss.item(), math.log(v), rel_tol=1e-12)
    assert math.isclose(perplexity(loss).item(), v, rel_tol=1e-12)


def _micro_batches():
    """Two micro-batches with very different numbers of real tokens (heavy padding in the second)."""
    a_logits, a_labels = randn(2, 8, 13, seed=1, scale=2), labels(2, 8, v=13, seed=1)
    b_logits, b_labels = randn(2, 8, 13, seed=2, scale=2), labels(2, 8, v=13, seed=2, pad=6)
    return [(a_logits, a_labels), (b_logits, b_labels)]


def test_gradient_accumulation_with_num_items_in_batch_is_the_token_mean_of_the_whole_batch():
    micro = _micro_batches()
    full_logits = torch.cat([m[0] for m in micro]).requires_grad_()
    full_labels = torch.cat([m[1] for m in micro])
    whole = token_cross_entropy(full_logits, full_labels)
    (g_whole,) = torch.autograd.grad(whole, full_logits)
    n_items = int((full_labels[:, 1:] != -100).sum())
    leaves = [m[0].clone().requires_grad_() for m in micro]
    accumulated = sum(token_cross_entropy(z, y, num_items_in_batch=n_items) for z, (_, y) in zip(leaves, micro))
    grads = torch.autograd.grad(accumulated, leaves)
    assert compare(whole, accumulated, rtol=1e-12) is None
    assert compare(g_whole, torch.cat(grads), rtol=1e-12) is None
    # the bug: the mean of the per-micro-batch means weights the padded micro-batch's tokens more
    buggy = sum(token_cross_entropy(z, y) for z, y in micro) / len(micro)
    assert abs(buggy.item() - whole.item()) > 1e-3


def test_num_items_in_batch_accepts_a_tensor_and_warns_when_too_small():
    (z, y), _ = _micro_batches()
    n = int((y[:, 1:] != -100).sum())
    a = token_cross_entropy(z, y, num_items_in_batch=torch.tensor(2 * n))
    assert compare(token_cross_entropy(z, y) / 2, a, rtol=1e-12) is None
    with pytest.warns(lossbook.PitfallWarning, match=f"smaller than the {n} real target tokens"):
        token_cross_entropy(z, y, num_items_in_batch=n - 1)


def test_token_ce_bad_inputs():
    with pytest.raises(ValueError, match=r"logits has shape \(4, 9\) \(2-D\) but must be \(B, T, V\)"):
        token_cross_entropy(randn(4, 9), labels(4, v=9))
    with pytest.raises(ValueError, match=r"labels has shape \(2, 4\) but logits has shape \(2, 5, 9\)"):
        token_cross_entropy(randn(2, 5, 9), labels(2, 4, v=9))
    with pytest.raises(TypeError, match="logits"):
        token_cross_entropy(labels(2, 5, 9, v=3), labels(2, 5, v=9))


# --------------------------------------------------------------------------------------------
# z_loss, perplexity, bits per byte


def ref_z_loss(logits, reduction="mean"):
    z = torch.logsumexp(logits, dim=-1).square()
    return {"none": z, "mean": z.mean(), "sum": z.sum()}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (4, 7), (2, 3, 7)])
def test_z_loss_matches_logsumexp_squared(reduction, shape):
    assert_matches(lambda z: z_loss(z, reduction=reduction), lambda z: ref_z_loss(z, reduction),
                   (randn(*shape, scale=3),))


def test_z_loss_worked_number_and_extremes():
    assert math.isclose(z_loss(torch.zeros(3, 4, dtype=D)).item(), math.log(4) ** 2, rel_tol=1e-12)
    big = randn(3, 5, scale=1e4)
    assert compare(ref_z_loss(big), z_loss(big), rtol=1e-12) is None and torch.isfinite(z_loss(big))


@given(shift=st.floats(-30, 30))
@settings(max_examples=20, deadline=None)
def test_z_loss_moves_with_a_constant_shift_while_cross_entropy_does_not(shift):
    z, y = randn(4, 6, seed=3), labels(4, v=6)
    ce, ce_shifted = lossbook.cross_entropy(z, y), lossbook.cross_entropy(z + shift, y)
    assert compare(ce, ce_shifted, rtol=1e-9, atol=1e-9) is None
    lse = torch.logsumexp(z, dim=-1)
    assert compare(((lse + shift) ** 2).mean(), z_loss(z + shift), rtol=1e-9, atol=1e-9) is None


def test_perplexity_and_bits_per_byte():
    assert math.isclose(perplexity(math.log(7.0)).item(), 7.0, rel_tol=1e-12)
    # 1 nat per token, 4 tokens over 10 bytes: 4 / (10 ln 2) bits per byte
    assert math.isclose(bits_per_byte(torch.tensor(1.0, dtype=D), 4, 10).item(), 4 / (10 * math.log(2)),
                        rel_tol=1e-12)
    # a byte-level model (one token per byte) in bits: loss / ln 2
    assert math.isclose(bits_per_byte(math.log(2.0), 100, 100).item(), 1.0, rel_tol=1e-6)


def test_z_loss_bad_inputs():
    with pytest.raises(ValueError, match="reduction must be one of"):
        z_loss(randn(2, 3), reduction="batchmean")
    with pytest.raises(ValueError, match=r"logits has shape \(\) \(0-D\)"):
        z_loss(torch.tensor(1.0))


# --------------------------------------------------------------------------------------------
# linear_cross_entropy


def _lce_inputs(n=9, d=5, v=11, seed=0, prob=False, ignore=-100):
    x, W, b = randn(n, d, seed=seed), randn(v, d, seed=seed + 1), randn(v, seed=seed + 2)
    if prob:
        t = torch.softmax(randn(n, v, seed=seed + 3, scale=2), dim=1)
    else:
        t = labels(n, v=v, seed=seed)
        t[0], t[1] = ignore, 3
    return x, W, b, t


def _grads(loss, leaves, upstream):
    return torch.autograd.grad(loss, leaves, upstream)


def _check_lce(kw, bias, chunk, prob=False, rtol=1e-10):
    ignore = kw.get("ignore_index", None)
    x, W, b, t = _lce_inputs(prob=prob, ignore=-100 if ignore is None else ignore)
    leaves = [v.clone().requires_grad_() for v in ((x, W, b) if bias else (x, W))]
    ref_leaves = [v.clone().requires_grad_() for v in leaves]
    extra = {"linear_bias": leaves[2]} if bias else {}
    ref_extra = {"linear_bias": ref_leaves[2]} if bias else {}
    got = linear_cross_entropy(leaves[0], leaves[1], t, chunk_size=chunk, **extra, **kw)
    want = F.linear_cross_entropy(ref_leaves[0], ref_leaves[1], t, **ref_extra, **kw)
    assert compare(want, got, rtol=rtol, atol=1e-12) is None
    upstream = torch.rand(want.shape, generator=gen(5), dtype=D) + 0.5
    for i, (a, e) in enumerate(zip(_grads(got, leaves, upstream), _grads(want, ref_leaves, upstream))):
        assert compare(e, a, rtol=rtol, atol=1e-12, what=f"gradient {i}") is None


WEIGHT = torch.rand(11, generator=gen(9), dtype=D) + 0.1
LCE_OPTIONS = [
    {"reduction": r, **extra}
    for r, extra in itertools.product(REDUCTIONS, [{}, {"label_smoothing": 0.2}, {"weight": WEIGHT},
                                                   {"weight": WEIGHT, "label_smoothing": 0.1},
                                                   {"ignore_index": 4}])
]


@pytest.mark.parametrize("kw", LCE_OPTIONS, ids=lambda k: ",".join(f"{a}={'w' if a == 'weight' else b}"
                                                                   for a, b in k.items()))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk", [2, None])
def test_linear_ce_matches_torch_value_and_gradients(kw, bias, chunk):
    _check_lce(kw, bias, chunk)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.3, "weight": WEIGHT}])
def test_linear_ce_probability_targets(reduction, kw):
    _check_lce({"reduction": reduction, **kw}, bias=True, chunk=4, prob=True)


def _check_against_torch(x, W, t, rtol=1e-10, **kw):
    """Value and the gradient of every floating input that requires grad (the target too), against torch's."""
    leaves = [v for v in (x, W, t, kw.get("linear_bias")) if v is not None and v.requires_grad]
    ref_leaves = [v.detach().clone().requires_grad_() for v in leaves]
    swap = dict(zip(map(id, leaves), ref_leaves))
    ref_args = [swap.get(id(v), v) for v in (x, W, t)]
    ref_kw = {k: swap.get(id(v), v) for k, v in kw.items()}
    got = linear_cross_entropy(x, W, t, **kw)
    want = F.linear_cross_entropy(*ref_args, **{k: v for k, v in ref_kw.items() if k != "chunk_size"})
    assert got.shape == want.shape and got.dtype == want.dtype
    assert compare(want, got, rtol=rtol, atol=1e-12) is None
    upstream = torch.rand(want.shape, generator=gen(5), dtype=want.dtype) + 0.5
    for i, (a, e) in enumerate(zip(_grads(got, leaves, upstream), _grads(want, ref_leaves, upstream))):
        assert compare(e, a, rtol=rtol, atol=1e-12, what=f"gradient {i}") is None


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("prob", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, None])
def test_linear_ce_k_dimensional_weight_is_torchs_k_dimensional_loss(reduction, prob, chunk):
    """W of shape (C, d1, d2, D): (N, C, d1, d2) logits, a C-class cross-entropy at each of the d1 d2 positions."""
    n, c, out, d = 7, 5, (3, 2), 4
    x, W = randn(n, d).requires_grad_(), randn(c, *out, d, seed=1).requires_grad_()
    b = randn(c, *out, seed=2).requires_grad_()
    if prob:
        t = torch.softmax(randn(n, c, *out, seed=3, scale=2), dim=1)
        kw = {"label_smoothing": 0.1}
    else:
        t = labels(n, *out, v=c, seed=3)
        t[0, 0, 0] = -100
        kw = {"ignore_index": -100, "weight": WEIGHT[:c]}
    _check_against_torch(x, W, t, linear_bias=b, reduction=reduction, chunk_size=chunk, **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batched", [False, True])
def test_linear_ce_gradient_of_a_probability_target(reduction, batched):
    """d loss / d q = -(1 - eps) w log p, also when the input needs its gradient at the same time."""
    x, W, b, t = _lce_inputs(prob=True)
    x, t = (x, t) if batched else (x[2], t[2])
    _check_against_torch(x.requires_grad_(), W.requires_grad_(), t.requires_grad_(), linear_bias=b,
                         weight=WEIGHT, reduction=reduction, label_smoothing=0.2, chunk_size=4)


def test_linear_ce_takes_torchs_options():
    """A call written for torch's chunked path runs unchanged; its batch_chunk_size is the chunk size."""
    x, W, _, t = _lce_inputs()
    options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2, chunking_method=None)
    _check_against_torch(x.requires_grad_(), W.requires_grad_(), t, options=options)
    _check_against_torch(x, W, t, options=torch.nn.LinearCrossEntropyOptions(), reduction="none")


def test_linear_ce_none_applies_each_rows_own_upstream_gradient():
    """A per-token upstream gradient (e.g. a mask times a weight) must reach each row, not a scalar."""
    x, W, _, t = _lce_inputs()
    x.requires_grad_()
    upstream = torch.zeros(9, dtype=D)
    upstream[2] = 1.0  # only row 2 counts
    (g,) = torch.autograd.grad(linear_cross_entropy(x, W, t, reduction="none", chunk_size=4), x, upstream)
    (g_row,) = torch.autograd.grad(lossbook.cross_entropy(x[2:3] @ W.T, t[2:3], reduction="sum"), x)
    assert compare(g_row, g, rtol=1e-12, atol=1e-15) is None
    assert bool((g[torch.arange(9) != 2] == 0).all())


def test_linear_ce_unbatched_and_retain_graph():
    x, W, _, t = _lce_inputs()
    for red in REDUCTIONS:
        assert compare(F.linear_cross_entropy(x[3], W, t[3], reduction=red),
                       linear_cross_entropy(x[3], W, t[3], reduction=red), rtol=1e-12) is None
    xl = x.clone().requires_grad_()
    loss = linear_cross_entropy(xl, W, t, chunk_size=3)
    (g1,) = torch.autograd.grad(loss, xl, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, xl)  # the second backward recomputes the consumed gradients
    assert compare(g1, g2, rtol=1e-12) is None


def test_linear_ce_float32_is_within_torchs_own_float32_distance():
    x, W, b, t = _lce_inputs(n=64, d=16, v=300, seed=4)
    ref64 = F.linear_cross_entropy(x, W, t, linear_bias=b)
    ours = linear_cross_entropy(x.float(), W.float(), t, linear_bias=b.float(), chunk_size=16)
    torch32 = F.linear_cross_entropy(x.float(), W.float(), t, linear_bias=b.float())
    assert ours.dtype == torch.float32
    assert abs(ours.double() - ref64).item() <= 4 * abs(torch32.double() - ref64).item() + 1e-6


def test_linear_ce_half_smoke():
    x, W, _, t = _lce_inputs(n=16, d=8, v=50)
    for dt in (torch.float16, torch.bfloat16):
        xh = x.to(dt).requires_grad_()
        loss = linear_cross_entropy(xh, W.to(dt), t, chunk_size=4)
        loss.backward()
        assert loss.dtype == dt and xh.grad.dtype == dt and torch.isfinite(xh.grad).all()
        assert abs(loss.double() - F.linear_cross_entropy(x, W, t)).item() < 2e-2


def test_linear_ce_extreme_logits_stay_finite():
    x, W, _, t = _lce_inputs()
    _x = x * 300  # logits of order 1e3: exp overflows without the max shift
    got = linear_cross_entropy(_x, W, t, chunk_size=2)
    assert torch.isfinite(got) and compare(F.linear_cross_entropy(_x, W, t), got, rtol=1e-10) is None


def test_linear_ce_memory_is_one_chunk_of_logits_not_n_by_v():
    """Peak resident-memory growth of forward + backward: O(chunk V + V D), far below the (N, V) logits."""
    n, d, v, chunk = 2048, 16, 8192, 64
    x, W, t = randn(n, d, dtype=torch.float32), randn(v, d, seed=1, dtype=torch.float32), labels(n, v=v)
    x.requires_grad_()
    W.requires_grad_()
    logits_bytes = n * v * 4  # 64 MiB; the gradients of x and W are 0.6 MiB together
    _, naive = peak_rss_growth(lambda: lossbook.cross_entropy(x @ W.T, t).backward())
    if naive is None:
        pytest.skip("no /proc/self/clear_refs: peak RSS cannot be reset here")
    x.grad = W.grad = None
    _, chunked = peak_rss_growth(lambda: linear_cross_entropy(x, W, t, chunk_size=chunk).backward())
    assert naive > logits_bytes, f"the naive path holds the logits: {naive / 2**20:.1f} MiB"
    assert chunked < logits_bytes / 4, f"chunked peak {chunked / 2**20:.1f} MiB vs logits {logits_bytes / 2**20} MiB"


def test_linear_ce_default_chunk_never_forms_the_logits_of_a_large_batch():
    from lossbook.llm import _default_chunk

    assert _default_chunk(4096, 1024, 65536) == 128  # 2**23 logits: 32 MiB in float32 instead of 1 GiB
    assert _default_chunk(8, 4, 100) == 8  # small: one chunk
    assert _default_chunk(10, 4, 2**23) == 1  # a huge vocabulary: one row at a time


def test_linear_ce_uses_the_fast_function_only_when_a_gradient_is_needed(monkeypatch):
    calls = []
    original = _LinearCrossEntropy.apply
    monkeypatch.setattr(_LinearCrossEntropy, "apply", lambda *a: calls.append(1) or original(*a))
    x, W, _, t = _lce_inputs()
    linear_cross_entropy(x, W, t)
    assert not calls
    linear_cross_entropy(x.requires_grad_(), W, t)
    assert calls


def test_linear_ce_bad_inputs():
    x, W, b, t = _lce_inputs()
    with pytest.raises(ValueError, match=r"input has shape \(9, 4\) but linear_weight has shape \(11, 5\)"):
        linear_cross_entropy(x[:, :4], W, t)
    with pytest.raises(ValueError, match=r"linear_bias has shape \(10,\) but must have shape \(11,\)"):
        linear_cross_entropy(x, W, t, linear_bias=b[:10])
    with pytest.raises(ValueError, match=r"target has shape \(8,\) but input has shape \(9, 5\)"):
        linear_cross_entropy(x, W, t[:8])
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        linear_cross_entropy(x, W, t, chunk_size=0)
    with pytest.raises(ValueError, match="class index 11"):
        linear_cross_entropy(x, W, torch.full((9,), 11))
    with pytest.raises(ValueError, match=r"linear_weight has shape \(11,\) \(1-D\)"):
        linear_cross_entropy(x, W[:, 0], t)
    with pytest.raises(ValueError, match=r"\(a K-dimensional loss\), which needs batched input \(N, 5\)"):
        linear_cross_entropy(x[0], W.view(11, 1, 5), t[0])
    with pytest.raises(ValueError, match=r"linear_bias has shape \(11,\) but must have shape \(11, 1\)"):
        linear_cross_entropy(x, W.view(11, 1, 5), t.view(9, 1), linear_bias=b)
    with pytest.raises(ValueError, match=r"class indices must have shape \(9, 1\)"):
        linear_cross_entropy(x, W.view(11, 1, 5), t)
    with pytest.raises(ValueError, match="ignore_index applies to class indices only"):
        linear_cross_entropy(x, W, torch.rand(9, 11, dtype=D), ignore_index=-100)
    with pytest.raises(TypeError, match="holds class probabilities and must be floating point"):
        linear_cross_entropy(x, W, torch.zeros(9, 11, dtype=torch.long))
    with pytest.raises(ValueError, match="give chunk_size or torch's options"):
        linear_cross_entropy(x, W, t, chunk_size=2, options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2))


# --------------------------------------------------------------------------------------------
# composability: double backward, torch.func, torch.compile


@pytest.mark.parametrize("k_dimensional", [False, True], ids=["(V, D) weight", "(C, d1, D) weight"])
def test_linear_ce_gradgradcheck(k_dimensional):
    if k_dimensional:
        x, W, b = randn(4, 3), randn(3, 2, 3, seed=1), randn(3, 2, seed=2)
        t, chunk = labels(4, 2, v=3, seed=3), 3
    else:
        x, W, b, t = _lce_inputs(n=5, d=3, v=7)
        t[0], t[1], chunk = -100, 3, 2
    args = [v.requires_grad_() for v in (x, W, b)]
    for red in REDUCTIONS:
        fn = lambda x, W, b, red=red: linear_cross_entropy(x, W, t, linear_bias=b, reduction=red,  # noqa: E731
                                                  label_smoothing=0.1, chunk_size=chunk)
        assert torch.autograd.gradcheck(fn, args)
        assert torch.autograd.gradgradcheck(fn, args)


def test_linear_ce_torch_func_and_compile():
    x, W, b, t = _lce_inputs(n=5, d=3, v=7)
    ref = torch.autograd.grad(F.linear_cross_entropy(x.requires_grad_(), W, t, linear_bias=b), x)[0]
    got = torch.func.grad(lambda x: linear_cross_entropy(x, W, t, linear_bias=b, chunk_size=2))(x.detach())
    assert compare(ref, got, rtol=1e-10) is None
    per_row = torch.func.vmap(lambda xi, ti: linear_cross_entropy(xi, W, ti))(x.detach(), t.clamp(min=0))
    assert compare(F.linear_cross_entropy(x.detach(), W, t.clamp(min=0), reduction="none"), per_row) is None
    compiled = torch.compile(lambda x: linear_cross_entropy(x, W, t, chunk_size=2), fullgraph=True, backend="eager")
    assert compare(F.linear_cross_entropy(x, W, t), compiled(x.detach())) is None


def test_z_loss_gradcheck_and_gradgradcheck():
    z = randn(2, 4, 5, seed=7).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: z_loss(z), (z,))
    assert torch.autograd.gradgradcheck(lambda z: z_loss(z), (z,))


def test_token_ce_gradcheck():
    z, y = randn(2, 4, 5, seed=7).requires_grad_(), labels(2, 4, v=5, pad=1)
    assert torch.autograd.gradcheck(lambda z: token_cross_entropy(z, y, num_items_in_batch=5), (z,))


# token_cross_entropy and z_loss are a few lines on lossbook.cross_entropy / lossbook.logsumexp, so they
# compose exactly as far as those do: double backward, torch.func and torch.compile.


def test_token_ce_gradgradcheck():
    z, y = randn(2, 4, 5, seed=7).requires_grad_(), labels(2, 4, v=5, pad=1)
    assert torch.autograd.gradgradcheck(lambda z: token_cross_entropy(z, y), (z,))


def test_token_ce_and_z_loss_torch_func():
    z, y = randn(2, 4, 5, seed=7), labels(2, 4, v=5, pad=1)
    ref = torch.autograd.grad(ref_token_ce(z.requires_grad_(), y) + ref_z_loss(z), z)[0]
    got = torch.func.grad(lambda z: token_cross_entropy(z, y) + z_loss(z))(z.detach())
    assert compare(ref, got, rtol=1e-10) is None


def test_token_ce_and_z_loss_compile():
    z, y = randn(2, 4, 5, seed=7), labels(2, 4, v=5, pad=1)
    fn = torch.compile(lambda z: token_cross_entropy(z, y) + z_loss(z), fullgraph=True, backend="eager")
    assert compare(ref_token_ce(z, y) + ref_z_loss(z), fn(z)) is None


# --------------------------------------------------------------------------------------------
# vocab_parallel_cross_entropy: one process, then 2 and 4 gloo processes


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_vocab_parallel_in_one_process_is_cross_entropy(reduction, label_smoothing):
    logits, y, _ = make_vocab_parallel_case(8, 12, seed=0, ignored=2)
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    assert_matches(lambda z, t: vocab_parallel_cross_entropy(z, t, **kw),
                   lambda z, t: F.cross_entropy(z, t, **kw), (logits, y))
    assert torch.autograd.gradcheck(lambda z: vocab_parallel_cross_entropy(z, y, **kw), (logits.requires_grad_(),))


def test_vocab_parallel_bad_inputs():
    logits, y, _ = make_vocab_parallel_case(4, 6, seed=0)
    with pytest.raises(ValueError, match=r"target has shape \(3,\) but logits has shape \(4, 6\)"):
        vocab_parallel_cross_entropy(logits, y[:3])
    with pytest.raises(ValueError, match="class index 6"):
        vocab_parallel_cross_entropy(logits, torch.full((4,), 6))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0.0, 1.0\]"):
        vocab_parallel_cross_entropy(logits, y, label_smoothing=1.5)


# every (world size, options) case runs in one process group per world size, so the module stays fast
DIST_CASES = [
    {"n": 10, "v": 24, "seed": 1, "ignored": 2, "options": {}},
    {"n": 10, "v": 24, "seed": 2, "ignored": 2, "options": {"label_smoothing": 0.2}},
    {"n": 10, "v": 24, "seed": 3, "ignored": 3, "options": {"reduction": "none", "label_smoothing": 0.1}},
    {"n": 10, "v": 24, "seed": 4, "ignored": 2, "options": {"reduction": "sum", "ignore_index": 5}},
    {"n": 10, "v": 24, "seed": 5, "ignored": 10, "options": {"reduction": "sum"}},  # every target ignored
    {"n": 10, "v": 24, "seed": 6, "dtype": torch.float32, "options": {"label_smoothing": 0.1}},
]


def _reference(case):
    logits, target, upstream = make_vocab_parallel_case(case["n"], case["v"], case["seed"],
                                                        case.get("dtype", D), case.get("ignored", 0),
                                                        case["options"].get("ignore_index", -100))
    logits.requires_grad_()
    loss = F.cross_entropy(logits, target, **case["options"])
    loss.backward(upstream if case["options"].get("reduction") == "none" else None)
    return loss.detach().double(), logits.grad.double()


@pytest.mark.parametrize("world_size", [2, 4])
def test_vocab_parallel_on_gloo_processes_equals_one_process(world_size):
    results = run_vocab_parallel(world_size, DIST_CASES, timeout=50)
    for case, got in zip(DIST_CASES, results):
        want_loss, want_grad = _reference(case)
        tol = 1e-5 if case.get("dtype") == torch.float32 else 1e-12
        assert len(got["loss"]) == world_size
        for rank, loss in enumerate(got["loss"]):
            assert compare(want_loss, loss, rtol=tol, atol=tol, what=f"the loss of rank {rank}") is None, case
        assert compare(want_grad, got["grad"], rtol=tol, atol=tol, what="the gradient shards") is None, case


def test_vocab_parallel_smoothing_with_the_local_vocabulary_would_depend_on_the_rank():
    """Megatron-LM#737: averaging the smoothing term over V/world (each rank's own logits) is wrong."""
    logits, y, _ = make_vocab_parallel_case(6, 16, seed=0)
    shards = logits.chunk(4, dim=-1)
    lse = torch.logsumexp(logits, dim=-1)
    local_means = [(lse - s.mean(-1)).mean() for s in shards]  # what a rank-local average gives
    assert max(local_means) - min(local_means) > 1e-2
    want = F.cross_entropy(logits, y, label_smoothing=0.1)
    nll = F.cross_entropy(logits, y)
    assert compare(want, 0.9 * nll + 0.1 * (lse - logits.mean(-1)).mean(), rtol=1e-12) is None


def test_run_vocab_parallel_times_out_instead_of_hanging():
    """A group that cannot finish in time is terminated and raises. Spawned ranks must import torch
    afresh (seconds), so 0.5 s is never enough for them."""
    with pytest.raises(TimeoutError, match="did not finish in 0.5 s"):
        run_vocab_parallel(2, DIST_CASES[:1], timeout=0.5, start_method="spawn")
