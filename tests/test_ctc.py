"""lossbook.ctc against torch.nn.functional.ctc_loss, a brute-force enumeration, and the seeds' numbers."""
from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossbook
from lossbook import PitfallWarning
from lossbook.ctc import (
    ctc_alpha_step,
    ctc_collapse,
    ctc_forced_alignment,
    ctc_greedy_decode,
    ctc_log_alpha,
    ctc_loss,
    ctc_min_input_length,
    ctc_prefix_beam_search,
)
from lossbook.testing import assert_matches, compare

D = torch.float64


# --------------------------------------------------------------------------------------------
# an independent reference: sum over every path of length T (tiny T only)


def collapse_ref(path, blank=0):
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return out


def brute_force_logp(logits: torch.Tensor, target: list[int], blank: int = 0) -> torch.Tensor:
    """log p(target | x) by enumerating all C**T paths, differentiable with respect to logits."""
    T, C = logits.shape
    lp = logits.log_softmax(-1)
    terms = [lp[torch.arange(T), torch.tensor(p)].sum() for p in itertools.product(range(C), repeat=T)
             if collapse_ref(p, blank) == list(target)]
    if not terms:
        return logits.sum() * 0 - math.inf
    return torch.stack(terms).logsumexp(0)


def quiet(fn):
    """Call fn with PitfallWarnings silenced (tests that mean to check them use pytest.warns)."""
    def wrapped(*a, **k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PitfallWarning)
            return fn(*a, **k)
    return wrapped


def batch(seed=0, T=9, C=6, dtype=D):
    """Mixed input and target lengths, a repeat, an empty target, an infeasible sample."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, 5, C, generator=g, dtype=dtype)
    lp = lossbook.log_softmax(logits, dim=-1)
    targets = torch.tensor([[1, 2, 2, 3], [1, 1, 1, 0], [3, 0, 0, 0], [5, 4, 3, 2], [2, 4, 0, 0]])
    il = torch.tensor([9, 4, 6, 7, 0])  # sample 1 needs 5 frames: infeasible; sample 4: no frames
    tl = torch.tensor([4, 3, 1, 0, 2])
    return lp, targets, il, tl


def concat(targets, tl):
    return torch.cat([targets[n, : int(tl[n])] for n in range(len(tl))])


# --------------------------------------------------------------------------------------------
# equality with PyTorch


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("fmt", ["padded", "concatenated"])
def test_matches_torch_mixed_lengths_and_infeasible(reduction, zero_infinity, fmt):
    lp, targets, il, tl = batch()
    if fmt == "concatenated":
        targets = concat(targets, tl)
    with pytest.warns(PitfallWarning, match="sample 1 .*input length 4 < 5"):
        assert_matches(ctc_loss, F.ctc_loss, (lp, targets, il, tl),
                       {"reduction": reduction, "zero_infinity": zero_infinity})


@pytest.mark.parametrize("lengths", ["tensor", "tuple", "list", "int32"])
def test_length_formats(lengths):
    lp, targets, il, tl = batch(1)
    il, tl = il[[0, 2, 3]], tl[[0, 2, 3]]
    lp, targets = lp[:, [0, 2, 3]], targets[[0, 2, 3]]
    conv = {"tensor": lambda x: x, "tuple": lambda x: tuple(x.tolist()), "list": lambda x: x.tolist(),
            "int32": lambda x: x.int()}[lengths]
    ref_conv = (lambda x: tuple(x)) if lengths == "list" else (lambda x: x)  # torch wants a tuple
    assert_matches(lambda *a, **k: ctc_loss(*a[:2], conv(a[2]), conv(a[3]), **k),
                   lambda *a, **k: F.ctc_loss(*a[:2], ref_conv(conv(a[2])), ref_conv(conv(a[3])), **k),
                   (lp, targets, il, tl), {"reduction": "none"})


@pytest.mark.parametrize("lengths", [(torch.tensor(7), torch.tensor(3)), ((7,), (3,))])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_unbatched(lengths, reduction):
    lp, targets, _, _ = batch(2)
    args = (lp[:7, 0], targets[0, :3], *lengths)
    assert_matches(ctc_loss, F.ctc_loss, args, {"reduction": reduction})
    assert ctc_loss(*args, reduction=reduction).shape == ()


@pytest.mark.parametrize("blank", [0, 3, 5])
def test_other_blank_index(blank):
    g = torch.Generator().manual_seed(3)
    lp = lossbook.log_softmax(torch.randn(10, 4, 6, generator=g, dtype=D), dim=-1)
    labels = [c for c in range(6) if c != blank]
    targets = torch.tensor([[labels[i % 5] for i in range(k, k + 4)] for k in range(4)])
    assert_matches(ctc_loss, F.ctc_loss, (lp, targets, (10, 9, 8, 4), (4, 3, 2, 1)),
                   {"blank": blank, "reduction": "sum"})


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 12), N=st.integers(1, 4), C=st.integers(2, 6), seed=st.integers(0, 10_000),
       reduction=st.sampled_from(["none", "mean", "sum"]), zero_infinity=st.booleans())
def test_random_batches_match_torch(T, N, C, seed, reduction, zero_infinity):
    g = torch.Generator().manual_seed(seed)
    lp = lossbook.log_softmax(torch.randn(T, N, C, generator=g, dtype=D) * 3, dim=-1)
    S = 5
    targets = torch.randint(1, C, (N, S), generator=g)
    tl = torch.randint(0, S + 1, (N,), generator=g)
    il = torch.randint(0, T + 1, (N,), generator=g)
    quiet(assert_matches)(ctc_loss, F.ctc_loss, (lp, targets, il, tl),
                          {"reduction": reduction, "zero_infinity": zero_infinity})


def test_float32_matches_torch():
    lp, targets, il, tl = batch(4, T=40, dtype=torch.float32)
    sel = [0, 2, 3]
    quiet(assert_matches)(ctc_loss, F.ctc_loss, (lp[:, sel], targets[sel], il[sel], tl[sel]),
                          {"reduction": "none"}, rtol=1e-5, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-5)


@pytest.mark.parametrize("dtype", [D, torch.float32])
def test_extreme_logits_match_torch(dtype):
    """Logits of ±1e4: log-probabilities down to -2e4, where exp(-loss) underflows to 0."""
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(8, 3, 5, generator=g, dtype=dtype).sign() * 1e4
    lp = lossbook.log_softmax(logits, dim=-1)
    targets = torch.tensor([[1, 2, 3], [4, 4, 0], [2, 0, 0]])
    assert_matches(ctc_loss, F.ctc_loss, (lp, targets, (8, 8, 5), (3, 2, 1)), {"reduction": "none"},
                   rtol=1e-6, atol=1e-3)


def test_float16_runs_where_torch_has_no_cpu_kernel():
    lp, targets, il, tl = batch(6)
    sel = [0, 2, 3]
    args = (lp[:, sel], targets[sel], il[sel], tl[sel])
    with pytest.raises(RuntimeError, match="not implemented for 'Half'"):
        F.ctc_loss(args[0].half(), *args[1:])
    half = ctc_loss(args[0].half(), *args[1:], reduction="none")
    assert half.dtype == torch.float16
    assert torch.allclose(half.double(), F.ctc_loss(*args, reduction="none"), rtol=1e-2)


def test_nan_log_probs_stay_nan_with_zero_infinity():
    """ERRATA E34: zero_infinity zeroes infinite losses only; a NaN loss stays NaN."""
    lp, targets, il, tl = batch(7)
    lp = lp.clone()
    lp[0, 0, 1] = float("nan")  # class 1 is the first label of sample 0
    out = quiet(ctc_loss)(lp, targets, il, tl, reduction="none", zero_infinity=True)
    assert torch.isnan(out[0]) and out[1] == 0
    quiet(assert_matches)(ctc_loss, F.ctc_loss, (lp, targets, il, tl),
                          {"reduction": "none", "zero_infinity": True})


# --------------------------------------------------------------------------------------------
# gradients


def test_gradcheck_through_log_softmax():
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(6, 3, 4, generator=g, dtype=D, requires_grad=True)
    targets = torch.tensor([[1, 2, 2], [3, 1, 0], [2, 0, 0]])
    assert torch.autograd.gradcheck(
        lambda x: ctc_loss(lossbook.log_softmax(x, dim=-1), targets, (6, 5, 3), (3, 2, 1), reduction="none"),
        (logits,))


def test_gradient_is_torchs_convention_not_the_plain_derivative():
    """PyTorch returns p - γ for log_probs (the gradient for logits of a log_softmax); so do we."""
    g = torch.Generator().manual_seed(9)
    lp = lossbook.log_softmax(torch.randn(4, 1, 3, generator=g, dtype=D), dim=-1).requires_grad_()
    ctc_loss(lp, torch.tensor([[1, 2]]), (4,), (2,), reduction="sum").backward()
    # the plain derivative of -log p(y|x) with respect to log_probs is -γ, which sums to -1 per frame
    assert torch.allclose(lp.grad.sum(-1), torch.zeros(4, 1, dtype=D), atol=1e-12)


@pytest.mark.parametrize("target", [[1], [1, 1], [1, 2], [2, 1, 2], []])
def test_value_and_gradient_equal_brute_force_enumeration(target):
    g = torch.Generator().manual_seed(len(target))
    T, C = 4, 3
    logits = torch.randn(T, C, generator=g, dtype=D)
    x1 = logits.clone().requires_grad_()
    ref = -brute_force_logp(x1, target)
    ref.backward()
    x2 = logits.clone().requires_grad_()
    ours = ctc_loss(lossbook.log_softmax(x2, dim=-1), torch.tensor(target, dtype=torch.long), (T,), (len(target),),
                    reduction="sum")
    ours.backward()
    assert compare(ref.detach(), ours.detach(), rtol=1e-12) is None
    assert compare(x1.grad, x2.grad, rtol=1e-10, atol=1e-12) is None


def test_zero_infinity_zeroes_gradient_of_infeasible_samples_only():
    lp, targets, il, tl = batch(10)
    lp = lp.clone().requires_grad_()
    quiet(ctc_loss)(lp, targets, il, tl, zero_infinity=True).backward()
    assert torch.all(lp.grad[:, 1] == 0)
    assert torch.all(lp.grad[:, 0].abs().sum(-1) > 0)
    assert torch.all(lp.grad[6:, 2] == 0)  # frames beyond input_lengths[2] = 6


# --------------------------------------------------------------------------------------------
# the book's worked numbers (ERRATA S26, S27, E33, E35, E31)


def test_seed_numbers_single_and_two_frames():
    """S26: T=1, p=[.3, .7], target [1] → -ln 0.7 = 0.356675; T=2 → -ln 0.91 = 0.094311."""
    p = torch.tensor([0.3, 0.7], dtype=D).log()
    one = ctc_loss(p.unsqueeze(0), torch.tensor([1]), (1,), (1,), reduction="sum")
    two = ctc_loss(p.expand(2, 2), torch.tensor([1]), (2,), (1,), reduction="sum")
    assert round(one.item(), 6) == 0.356675
    assert round(two.item(), 6) == 0.094311


def test_mean_divides_by_target_length():
    """S27: 'mean' = mean over the batch of loss_n / target_length_n (0 lengths count as 1)."""
    lp, targets, il, tl = batch(11)
    sel = [0, 2, 3]
    args = (lp[:, sel], targets[sel], il[sel], tl[sel])
    per = ctc_loss(*args, reduction="none")
    mean = ctc_loss(*args, reduction="mean")
    assert torch.allclose(mean, (per / tl[sel].clamp(min=1)).mean())
    assert not torch.allclose(mean, per.mean())


def test_repeats_need_a_blank_between_them():
    """E33: target [1, 1, 1] is inf at T=3 and T=4, finite at T=5; [1, 2, 3] is finite at T=3."""
    lp = lossbook.log_softmax(torch.zeros(5, 1, 3, dtype=D), dim=-1)
    for T, finite in [(3, False), (4, False), (5, True)]:
        if finite:
            out = ctc_loss(lp[:T], torch.tensor([[1, 1, 1]]), (T,), (3,), reduction="sum")
        else:
            with pytest.warns(PitfallWarning, match="sample 0"):
                out = ctc_loss(lp[:T], torch.tensor([[1, 1, 1]]), (T,), (3,), reduction="sum")
            with pytest.warns(PitfallWarning):
                assert ctc_loss(lp[:T], torch.tensor([[1, 1, 1]]), (T,), (3,), zero_infinity=True) == 0
        assert math.isfinite(out.item()) == finite
        assert torch.equal(out.isinf(), F.ctc_loss(lp[:T], torch.tensor([[1, 1, 1]]), (T,), (3,),
                                                   reduction="sum").isinf())
    assert math.isfinite(ctc_loss(lp[:3], torch.tensor([[1, 2, 1]]), (3,), (3,)).item())
    assert ctc_min_input_length(torch.tensor([[1, 1, 1], [1, 2, 2]]), (3, 3)).tolist() == [5, 4]


def test_blank_inside_target_is_an_error():
    """E35: torch silently accepts [1, 0, 2] with blank=0; lossbook refuses it."""
    lp, _, _, _ = batch(12)
    F.ctc_loss(lp[:, :1], torch.tensor([[1, 0, 2]]), (9,), (3,))  # no error in torch
    with pytest.raises(ValueError, match="sample 0 contains the blank index 0"):
        ctc_loss(lp[:, :1], torch.tensor([[1, 0, 2]]), (9,), (3,))
    # padding beyond the target length may hold anything, the blank included
    ctc_loss(lp[:, :1], torch.tensor([[1, 2, 0, 0]]), (9,), (2,))


def test_batch_first_input_is_a_clear_error():
    """E31: there is no batch_first; an (N, T, C) tensor with T != N fails with a hint."""
    lp = lossbook.log_softmax(torch.randn(4, 10, 5, dtype=D), dim=-1)  # (N=4, T=10, C=5) by mistake
    targets = torch.randint(1, 5, (4, 3))
    with pytest.raises(RuntimeError):
        F.ctc_loss(lp, targets, (10,) * 4, (3,) * 4)
    with pytest.raises(ValueError, match=r"batch-first \(N, T, C\).*transpose\(0, 1\)"):
        ctc_loss(lp, targets, (10,) * 4, (3,) * 4)


# --------------------------------------------------------------------------------------------
# bad inputs


@pytest.mark.parametrize("change, exc, match", [
    (lambda a: {**a, "targets": [torch.tensor([1, 2])] * 2}, TypeError, "targets must be a tensor, got a list"),
    (lambda a: {**a, "targets": a["targets"].double()}, TypeError, "integer dtype"),
    (lambda a: {**a, "log_probs": a["log_probs"].long()}, TypeError, "floating-point"),
    (lambda a: {**a, "log_probs": a["log_probs"][0, 0]}, ValueError, r"must be \(T, N, C\) or, unbatched, \(T, C\)"),
    (lambda a: {**a, "targets": torch.tensor([[1, 9], [2, 3]])}, ValueError, "class index 9"),
    (lambda a: {**a, "target_lengths": (3, 2)}, ValueError, "target_lengths contains 3 but the padded targets have"),
    (lambda a: {**a, "targets": torch.tensor([1, 2]), "target_lengths": (2, 2)}, ValueError, "sums to 4"),
    (lambda a: {**a, "input_lengths": (7, 6)}, ValueError, "at most T=6"),
    (lambda a: {**a, "input_lengths": (6, 6, 6)}, ValueError, "3 entries but log_probs"),
    (lambda a: {**a, "input_lengths": (6, -1)}, ValueError, "must be >= 0"),
    (lambda a: {**a, "input_lengths": 6}, TypeError, "tuple/list of ints"),
    (lambda a: {**a, "input_lengths": torch.tensor([6.0, 6.0])}, TypeError, "must hold integers"),
    (lambda a: {**a, "blank": 4}, ValueError, r"blank must be a class index in \[0, 3\]"),
    (lambda a: {**a, "reduction": "batchmean"}, ValueError, "reduction must be one of"),
])
def test_bad_inputs(change, exc, match):
    args = {"log_probs": torch.randn(6, 2, 4).log_softmax(-1), "targets": torch.tensor([[1, 2], [2, 3]]),
            "input_lengths": (6, 5), "target_lengths": (2, 2)}
    with pytest.raises(exc, match=match):
        ctc_loss(**change(args))


# --------------------------------------------------------------------------------------------
# the pieces: collapse, α, decoding, alignment


def test_collapse_examples():
    """E46: merge repeats first, then drop blanks: 'CA_AT' → 'CAAT', '__CAA_TT' → 'CAT'."""
    code = {"_": 0, "A": 1, "C": 2, "T": 3}
    name = {v: k for k, v in code.items()}

    def B(s):
        return "".join(name[int(c)] for c in ctc_collapse(torch.tensor([code[ch] for ch in s])))

    assert B("CA_AT") == "CAAT"
    assert B("CAAT") == "CAT"
    assert B("__CAA_TT") == "CAT"
    assert B("___") == ""
    assert ctc_collapse([5, 5, 2], blank=2).tolist() == [5]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=12))
def test_collapse_matches_reference(path):
    assert ctc_collapse(torch.tensor(path, dtype=torch.long)).tolist() == collapse_ref(path)


def test_alpha_step_is_the_loop_of_the_forward_algorithm():
    lp, targets, il, tl = batch(13)
    sel = [0, 2]
    alpha = ctc_log_alpha(lp[:, sel], targets[sel], il[sel], tl[sel])
    # rebuild α with the public step, one frame at a time
    from lossbook.ctc import _extend, _prepare

    lp3, padded, il3, tl3, _ = _prepare(lp[:, sel], targets[sel], il[sel], tl[sel], 0)
    ext, skip = _extend(padded, 0)
    lp_ext = lp3.gather(2, ext.unsqueeze(0).expand(lp3.shape[0], -1, -1))
    a = alpha[0]
    for t in range(1, 6):
        a = ctc_alpha_step(a, lp_ext[t], skip)
        assert compare(alpha[t], a, rtol=1e-12) is None
    # and the final states give the loss
    loss = ctc_loss(lp[:, sel], targets[sel], il[sel], tl[sel], reduction="none")
    last = alpha[il[sel] - 1, torch.arange(2)]
    ll = torch.stack([last[n, 2 * tl[sel][n] - 1: 2 * tl[sel][n] + 1].logsumexp(0) for n in range(2)])
    assert torch.allclose(-ll, loss)


def test_alpha_step_gradcheck():
    g = torch.Generator().manual_seed(14)
    a = torch.randn(2, 7, generator=g, dtype=D, requires_grad=True)
    e = torch.randn(2, 7, generator=g, dtype=D, requires_grad=True)
    skip = torch.tensor([[False, False, False, True, False, True, False]] * 2)
    assert torch.autograd.gradcheck(lambda a, e: ctc_alpha_step(a, e, skip), (a, e))


def test_log_alpha_example_equals_enumeration():
    p = torch.tensor([[0.3, 0.7], [0.3, 0.7]], dtype=D)
    alpha = ctc_log_alpha(p.log(), torch.tensor([1]), (2,), (1,)).exp()
    # paths of length 2 ending in each state of (∅, 1, ∅): ∅∅ → 0.09; 11, ∅1 → 0.49 + 0.21; 1∅ → 0.21
    assert torch.allclose(alpha[1], torch.tensor([0.09, 0.70, 0.21], dtype=D))


def test_greedy_decode():
    g = torch.Generator().manual_seed(15)
    lp = torch.randn(12, 3, 4, generator=g).log_softmax(-1)
    il = (12, 7, 0)
    out = ctc_greedy_decode(lp, il)
    for n in range(3):
        assert out[n] == collapse_ref(lp[: il[n], n].argmax(-1).tolist())
    assert ctc_greedy_decode(lp[:, 0]) == out[0]


def test_prefix_beam_search_finds_the_most_probable_labelling():
    """With a wide beam, the answer is the argmax of p(y|x) over every labelling (enumerated)."""
    g = torch.Generator().manual_seed(16)
    T, C = 5, 3
    for _ in range(5):
        logits = torch.randn(T, C, generator=g, dtype=D) * 2
        scores: dict = {}
        lp = logits.log_softmax(-1)
        for p in itertools.product(range(C), repeat=T):
            key = tuple(collapse_ref(p))
            scores[key] = scores.get(key, 0.0) + lp[torch.arange(T), torch.tensor(p)].sum().exp().item()
        best = max(scores, key=scores.get)
        labels, logp = ctc_prefix_beam_search(lp, beam_width=64)
        assert tuple(labels) == best
        assert math.isclose(logp, math.log(scores[best]), rel_tol=1e-9)
        assert math.isclose(-logp, ctc_loss(lp, torch.tensor(labels, dtype=torch.long), (T,), (len(labels),),
                                            reduction="sum").item(), rel_tol=1e-9)


def test_forced_alignment_is_the_best_path():
    g = torch.Generator().manual_seed(17)
    T, C = 6, 3
    logits = torch.randn(T, 2, C, generator=g, dtype=D)
    lp = logits.log_softmax(-1)
    targets = torch.tensor([[1, 1, 2], [2, 0, 0]])
    align, scores = ctc_forced_alignment(lp, targets, (6, 4), (3, 1))
    for n, (L, Tn) in enumerate([(3, 6), (1, 4)]):
        tgt = targets[n, :L].tolist()
        best = max((p for p in itertools.product(range(C), repeat=Tn) if collapse_ref(p) == tgt),
                   key=lambda p: lp[torch.arange(Tn), n, torch.tensor(p)].sum().item())
        assert align[n, :Tn].tolist() == list(best)
        assert torch.all(align[n, Tn:] == -1)
        assert torch.allclose(scores[n, :Tn], lp[torch.arange(Tn), n, torch.tensor(best)])
    with pytest.raises(ValueError, match="sample 0 cannot be aligned"):
        ctc_forced_alignment(lp, targets, (3, 4), (3, 1))


@pytest.mark.parametrize("blank", [3, -1, 1.0, True])
def test_decoders_refuse_an_out_of_range_blank(blank):
    """A blank past the last class, or negative (Python indexes from the end), gave wrong labellings."""
    lp = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(18)).log_softmax(-1)
    exc, match = (TypeError, "blank must be an int") if type(blank) is not int else (
        ValueError, rf"blank must be a class index in \[0, 2\] for C=3 classes, got {blank}")
    for decode in (ctc_greedy_decode, ctc_prefix_beam_search):
        with pytest.raises(exc, match=match):
            decode(lp, blank=blank)
    with pytest.raises(exc, match=match):
        ctc_forced_alignment(lp, torch.tensor([[1], [2]]), (5, 5), (1, 1), blank=blank)
    with pytest.raises(exc, match=match):
        ctc_loss(lp, torch.tensor([[1], [2]]), (5, 5), (1, 1), blank=blank)


def test_forced_alignment_of_an_impossible_target_raises():
    """A label of probability 0 in every frame (or no room for the blank between repeats): no alignment."""
    lp = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(19), dtype=D).log_softmax(-1)
    lp[:, 1, 2] = -math.inf  # sample 1 can never emit class 2
    with pytest.raises(ValueError, match="sample 1 cannot be aligned: every alignment of its target has probability 0"):
        ctc_forced_alignment(lp, torch.tensor([[1, 2], [1, 2]]), (4, 4), (2, 2))
    lp[:, 0, 0] = -math.inf  # sample 0 has no blank: "1 1" cannot be told apart from "1"
    with pytest.raises(ValueError, match="sample 0 cannot be aligned"):
        ctc_forced_alignment(lp, torch.tensor([[1, 1], [1, 0]]), (4, 4), (2, 1))
    align, _ = ctc_forced_alignment(lp, torch.tensor([[1, 2], [1, 0]]), (4, 4), (2, 1))  # still possible
    assert ctc_collapse(align[0]).tolist() == [1, 2] and ctc_collapse(align[1]).tolist() == [1]


def test_alpha_step_and_collapse_give_clear_errors():
    a, skip = torch.zeros(5), torch.zeros(5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"log_probs_t has shape \(4,\) but alpha_prev has shape \(5,\)"):
        ctc_alpha_step(a, torch.zeros(4), skip)
    with pytest.raises(ValueError, match=r"skip has shape \(3,\) but alpha_prev has shape \(5,\)"):
        ctc_alpha_step(a, torch.zeros(5), skip[:3])
    with pytest.raises(TypeError, match="skip must be a bool mask"):
        ctc_alpha_step(a, torch.zeros(5), torch.zeros(5))
    with pytest.raises(TypeError, match="alpha_prev must be a torch.Tensor"):
        ctc_alpha_step([0.0] * 5, torch.zeros(5), skip)
    with pytest.raises(TypeError, match="alpha_prev must have a floating-point dtype"):
        ctc_alpha_step(torch.zeros(5, dtype=torch.long), torch.zeros(5), skip)
    with pytest.raises(ValueError, match=r"alpha_prev has shape \(\) but must be"):
        ctc_alpha_step(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(False))
    assert ctc_collapse([]).tolist() == [] and ctc_collapse([]).dtype == torch.long
    for bad, match in (("abc", "path must be a 1-D tensor or a list of ints"), (None, "path must be"),
                       ([1.0, 2.0], "list of ints"), (torch.tensor([True, False]), "integer dtype, got torch.bool")):
        with pytest.raises(TypeError, match=match):
            ctc_collapse(bad)
    with pytest.raises(TypeError, match="blank must be an int"):
        ctc_collapse([1, 2], blank=0.5)
    with pytest.raises(ValueError, match="blank must be a class index in >= 0, got -1"):
        ctc_collapse([1, 2], blank=-1)


def test_forward_only_and_training_sweeps_agree():
    """Without a gradient only α is computed; with one, α and β share a sweep: same losses."""
    lp, targets, il, tl = batch(18, T=25)
    sel = [0, 2, 3]
    args = (lp[:, sel], targets[sel], il[sel], tl[sel])
    plain = ctc_loss(*args, reduction="none")
    trained = ctc_loss(args[0].clone().requires_grad_(), *args[1:], reduction="none")
    assert torch.equal(plain, trained.detach())


@pytest.mark.parametrize("kind", ["logits", "probabilities", "unnormalised"])
def test_not_log_probabilities_warn(kind):
    """Raw logits or probabilities give a finite (even negative) CTC loss: a PitfallWarning says why."""
    logits = torch.randn(6, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    fed = {"logits": logits, "probabilities": logits.softmax(-1),
           "unnormalised": logits.log_softmax(-1) - 1.0}[kind]
    targets, il, tl = torch.tensor([[1, 2], [3, 1]]), torch.tensor([6, 6]), torch.tensor([2, 2])
    with pytest.warns(lossbook.PitfallWarning, match="log_softmax"):
        lossbook.ctc_loss(fed, targets, il, tl)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lossbook.ctc_loss(logits.log_softmax(-1), targets, il, tl)  # proper log-probabilities: silent
