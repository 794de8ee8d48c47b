r"""Connectionist temporal classification (CTC): the loss, its forward algorithm and decoders.

CTC :cite:`graves2006ctc` scores a label sequence :math:`y` of length :math:`L` against
:math:`T \ge L` frames of per-class log-probabilities without knowing which frame emits which
label. A *path* :math:`\pi` picks one class (or the blank) per frame; the collapse function
:math:`\mathcal{B}` merges repeated classes and then drops blanks; the loss is

.. math::
    \ell = -\log p(y \mid x) = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_{t=1}^{T} p_t(\pi_t).

The sum is computed by the forward algorithm on the *extended* label sequence
:math:`y' = (\varnothing, y_1, \varnothing, y_2, \dots, y_L, \varnothing)` of length
:math:`2L + 1`, in log space, vectorised over the batch and the lattice states and looping
only over time (:func:`ctc_alpha_step`); autograd derives the gradient. Plain tensors (outside
``torch.func`` and ``torch.compile``) run a fast path instead (``lossbook.fast.ctc``: α and β in
one in-place sweep and the forward–backward gradient written by hand), tested equal to this
definition; see the appendix chapter "Making a loss fast".

Chapter: ctc
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from . import fast
from ._reduction import check_reduction, reduce
from ._validation import (
    check_floating,
    check_tensor,
    float32_under_autocast,
    format_shape,
    values_visible,
    warn_pitfall,
)
from .fast import ctc as fast_ctc
from .softmax import logsumexp

__all__ = [
    "ctc_loss",
    "ctc_collapse",
    "ctc_min_input_length",
    "ctc_alpha_step",
    "ctc_log_alpha",
    "ctc_greedy_decode",
    "ctc_prefix_beam_search",
    "ctc_forced_alignment",
]

_NEG_INF = float("-inf")


# --------------------------------------------------------------------------------------------
# argument handling


def _as_lengths(x, name: str, n: int, device) -> Tensor:
    """Lengths given as a tensor or a tuple/list of ints → a 1-D int64 tensor of size ``n``."""
    if isinstance(x, Tensor):
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers (e.g. torch.long), got {x.dtype}")
        t = x.reshape(-1).to(device=device, dtype=torch.long)
    elif isinstance(x, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in x):
        t = torch.tensor(list(x), dtype=torch.long, device=device)
    else:
        raise TypeError(
            f"{name} must be a tensor or a tuple/list of ints (one length per sample), "
            f"got {type(x).__name__}"
        )
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} entries but the batch has {n} samples; "
                         f"give one length per sample")
    if n and int(t.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got {int(t.min())}")
    return t


def _check_blank(blank: int, C: int | None = None) -> None:
    """``blank`` is a class index: an int in ``[0, C - 1]`` (a negative one would silently index
    from the end, and one past the last class would make the decoders return wrong labellings)."""
    if isinstance(blank, bool) or not isinstance(blank, int):
        raise TypeError(f"blank must be an int (the blank's class index), got {type(blank).__name__} {blank!r}")
    if blank < 0 or (C is not None and blank >= C):
        where = f"[0, {C - 1}] for C={C} classes" if C is not None else ">= 0"
        raise ValueError(f"blank must be a class index in {where}, got {blank}")


def _prepare(log_probs, targets, input_lengths, target_lengths, blank: int):
    """Validate the arguments of ``ctc_loss``; return the batched, padded, checked tensors.

    Returns ``(log_probs (T, N, C), targets (N, S) long, input_lengths (N,), target_lengths (N,),
    unbatched)``. Padding positions of ``targets`` (beyond a sample's length) are set to ``blank``
    so that they can be gathered; they never reach the loss.
    """
    check_floating(log_probs, "log_probs", hint="pass log-probabilities, e.g. model(x).log_softmax(-1)")
    if isinstance(targets, (list, tuple)):
        raise TypeError(
            f"targets must be a tensor, got a {type(targets).__name__}; pad the sequences into an "
            f"(N, S) tensor or concatenate them into one 1-D tensor (PyTorch accepts no list either)"
        )
    check_tensor(targets, "targets")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"targets holds class indices and must have an integer dtype, got {targets.dtype}")
    if log_probs.dim() not in (2, 3):
        raise ValueError(
            f"log_probs has shape {format_shape(log_probs)} ({log_probs.dim()}-D) but must be "
            f"(T, N, C) or, unbatched, (T, C)"
        )
    unbatched = log_probs.dim() == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        if targets.dim() != 1:
            raise ValueError(f"targets has shape {format_shape(targets)} but an unbatched (T, C) "
                             f"log_probs needs 1-D targets of shape (S,)")
        targets = targets.unsqueeze(0)
    T, N, C = log_probs.shape
    device = log_probs.device
    _check_blank(blank, C)
    # E31: a batch-first (N, T, C) tensor gives a batch size that disagrees with the lengths
    n_lengths = (input_lengths.numel() if isinstance(input_lengths, Tensor)
                 else len(input_lengths) if isinstance(input_lengths, (list, tuple)) else None)
    if n_lengths is not None and n_lengths != N:
        hint = ""
        if n_lengths == T:
            hint = ("; it looks like log_probs is batch-first (N, T, C): CTC has no batch_first, "
                    "pass log_probs.transpose(0, 1)")
        raise ValueError(
            f"input_lengths has {n_lengths} entries but log_probs of shape {format_shape(log_probs)} "
            f"has batch size N={N} (log_probs must be (T, N, C)){hint}"
        )
    il = _as_lengths(input_lengths, "input_lengths", N, device)
    tl = _as_lengths(target_lengths, "target_lengths", N, device)
    if N and int(il.max()) > T:
        raise ValueError(f"input_lengths must be at most T={T} (the first dimension of log_probs), "
                         f"got {int(il.max())}")
    targets = targets.to(device=device, dtype=torch.long)
    S = int(tl.max()) if N else 0
    if targets.dim() == 2:
        if targets.shape[0] != N:
            raise ValueError(f"targets has shape {format_shape(targets)} but the batch has N={N} samples; "
                             f"padded targets must be (N, S)")
        if S > targets.shape[1]:
            raise ValueError(f"target_lengths contains {S} but the padded targets have only "
                             f"S={targets.shape[1]} columns")
        padded = targets[:, :S]
    elif targets.dim() == 1:
        total = int(tl.sum())
        if total > targets.numel():
            raise ValueError(f"concatenated 1-D targets have {targets.numel()} labels but "
                             f"target_lengths sums to {total}")
        # scatter the concatenation into an (N, S) matrix: row n holds labels offset[n] ... + tl[n]
        offsets = torch.cumsum(tl, 0) - tl
        cols = torch.arange(S, device=device)
        index = (offsets.unsqueeze(1) + cols).clamp(max=max(targets.numel() - 1, 0))
        padded = targets[index] if targets.numel() else torch.zeros(N, S, dtype=torch.long, device=device)
    else:
        raise ValueError(f"targets has shape {format_shape(targets)} but must be padded (N, S) or "
                         f"concatenated 1-D (sum(target_lengths),)")
    valid = torch.arange(S, device=device) < tl.unsqueeze(1)
    if valid.any():
        labels = padded[valid]
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= C:
            bad = lo if lo < 0 else hi
            raise ValueError(f"targets contains the class index {bad}, but labels must be in [0, {C - 1}] "
                             f"for C={C} classes")
        # E35: PyTorch silently accepts a blank inside a target, which makes it a different problem
        has_blank = ((padded == blank) & valid).any(1)
        if has_blank.any():
            n = int(has_blank.nonzero()[0])
            raise ValueError(
                f"targets of sample {n} contains the blank index {blank}; the blank separates labels "
                f"and must not appear in a target (PyTorch would silently accept it)"
            )
    padded = padded.masked_fill(~valid, blank)
    return log_probs, padded, il, tl, unbatched


def _repeats(targets: Tensor, target_lengths: Tensor) -> Tensor:
    """Number of adjacent equal labels inside each target's length: (N, S) → (N,)."""
    if targets.shape[1] < 2:
        return torch.zeros(targets.shape[0], dtype=torch.long, device=targets.device)
    inside = torch.arange(1, targets.shape[1], device=targets.device) < target_lengths.unsqueeze(1)
    return ((targets[:, 1:] == targets[:, :-1]) & inside).sum(1)


def _warn_infeasible(il: Tensor, tl: Tensor, need: Tensor) -> None:
    bad = (il < need).nonzero().flatten().tolist()
    if bad:
        shown = ", ".join(f"sample {n} (input length {int(il[n])} < {int(need[n])})" for n in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warn_pitfall(
            f"CTC target cannot be aligned to its input for {shown}{more}: a target needs at least "
            f"target_length + adjacent repeats frames (a blank must separate repeated labels); "
            f"the loss of these samples is inf (0 with zero_infinity=True, which hides them)"
        )


def _warn_if_not_log_probs(lp: Tensor) -> None:
    """PitfallWarning when a few frames of ``(T, N, C)`` ``log_probs`` are not log-probabilities.

    Raw logits or probabilities give a finite loss that can even be negative, with no error.
    """
    rows = lp[:16, :4].reshape(-1, lp.shape[-1]).detach()
    if rows.numel() == 0 or not values_visible(lp):
        return
    if bool((rows > 1e-6).any()):
        warn_pitfall(
            "ctc_loss got positive values in log_probs, so they are not log-probabilities (those are <= 0): "
            "raw logits or probabilities were passed, and the loss can even come out negative; apply "
            "lossbook.log_softmax(logits, dim=-1) first"
        )
        return
    total = rows.exp().sum(-1)
    bad = (total - 1).abs() > 1e-2
    if bool(bad.any()):
        warn_pitfall(
            f"ctc_loss got frames whose exp() sums to {total[bad][0].item():.4g}, not 1, so log_probs are not "
            f"log-normalised over the classes; apply lossbook.log_softmax(logits, dim=-1) first"
        )


def _extend(targets: Tensor, blank: int) -> tuple[Tensor, Tensor]:
    """The extended label sequence (blanks interleaved) and where the skip transition is allowed.

    targets ``(N, S)`` → ``ext (N, 2S + 1)`` and ``skip (N, 2S + 1)`` (bool): state ``s`` may be
    reached from ``s - 2`` when it is a label different from the label two states back.
    """
    N, S = targets.shape
    ext = torch.full((N, 2 * S + 1), blank, dtype=torch.long, device=targets.device)
    ext[:, 1::2] = targets
    skip = torch.zeros(ext.shape, dtype=torch.bool, device=targets.device)
    if S > 1:
        skip[:, 3::2] = targets[:, 1:] != targets[:, :-1]
    return ext, skip


# --------------------------------------------------------------------------------------------
# the forward algorithm


def _skip_add(skip: Tensor, dtype) -> Tensor:
    """The additive mask of :func:`_lse3`: ``(*, S')`` bool → ``(*, S', 3)`` of 0 / -inf."""
    add = torch.zeros(skip.shape + (3,), dtype=dtype, device=skip.device)
    add[..., 0].masked_fill_(~skip, _NEG_INF)
    return add


def _pad2(x: Tensor) -> Tensor:
    """Two ``-inf`` states in front of the last dimension (the states before the first one)."""
    return torch.cat([x.new_full(x.shape[:-1] + (2,), _NEG_INF), x], dim=-1)


def ctc_alpha_step(alpha_prev: Tensor, log_probs_t: Tensor, skip: Tensor) -> Tensor:
    r"""One step of the CTC forward recursion, in log space, on the extended label sequence.

    .. math::
        \alpha_t(s) = \log p_t(y'_s) + \mathrm{LSE}\big(\alpha_{t-1}(s),\ \alpha_{t-1}(s-1),\
        [\alpha_{t-1}(s-2)\ \text{if skip}(s)]\big)

    State :math:`s` is reached by staying, by advancing one state, or — only when :math:`y'_s`
    is a label that differs from :math:`y'_{s-2}` — by jumping over the blank between them.

    Shape:
        - alpha_prev: ``(*, S')`` log-α at time :math:`t-1` (``S' = 2L + 1``).
        - log_probs_t: ``(*, S')`` log-probability of each state's class at time :math:`t`.
        - skip: ``(*, S')`` bool, where the :math:`s-2 \to s` transition is allowed.
        - output: ``(*, S')``.

    Args:
        alpha_prev: log-α of the previous frame (``-inf`` for unreachable states).
        log_probs_t: :math:`\log p_t(y'_s)` for every state :math:`s`.
        skip: the allowed skips (False for blanks, the first label and repeated labels).

    Example:
        >>> a = torch.tensor([0.0, -1.0, float("-inf")])
        >>> ctc_alpha_step(a, torch.tensor([-0.5, -0.5, -0.5]), torch.zeros(3, dtype=torch.bool))
        tensor([-0.5000, -0.1867, -1.5000])

    The fast path of ``ctc_loss`` (``lossbook.fast.ctc``) runs the same computation in place on a
    pre-padded buffer (no copy per step).

    Chapter: ctc
    """
    check_floating(alpha_prev, "alpha_prev")
    check_floating(log_probs_t, "log_probs_t")
    check_tensor(skip, "skip")
    if skip.dtype != torch.bool:
        raise TypeError(f"skip must be a bool mask (True where the s-2 -> s jump is allowed), got {skip.dtype}")
    if alpha_prev.dim() == 0:
        raise ValueError("alpha_prev has shape () but must be (*, S'): one log-alpha per state of the extended labels")
    for name, x in (("log_probs_t", log_probs_t), ("skip", skip)):
        if x.shape != alpha_prev.shape:
            raise ValueError(f"{name} has shape {format_shape(x)} but alpha_prev has shape "
                             f"{format_shape(alpha_prev)}; both must be (*, S'), one value per state")
    window = _pad2(alpha_prev).unfold(-1, 3, 1) + _skip_add(skip, alpha_prev.dtype)  # α(s-2), α(s-1), α(s)
    # an unreachable state (all three -inf) stays -inf; its log-sum-exp is taken of zeros instead,
    # so that its gradient is 0 rather than NaN (0/0): the "double where"
    reachable = ~(window == _NEG_INF).all(dim=-1)  # NaN stays NaN
    safe = torch.where(reachable.unsqueeze(-1), window, 0)
    return torch.where(reachable, logsumexp(safe, dim=-1), _NEG_INF) + log_probs_t


def _log_alpha(lp_ext: Tensor, skip: Tensor, steps: int) -> Tensor:
    """log-α for every frame: lp_ext ``(T, N, S')`` → ``(T, N, S')`` (frames ≥ ``steps`` are -inf).

    The forward algorithm itself: start in the leading blank or on the first label, then one
    :func:`ctc_alpha_step` per frame. The loop is over time only; batch and states are vectorised.
    """
    T, N, Sx = lp_ext.shape
    if steps == 0:
        return torch.full_like(lp_ext, _NEG_INF)
    states = torch.arange(Sx, device=lp_ext.device)
    rows = [torch.where(states < 2, lp_ext[0], _NEG_INF)]  # α_0: the leading blank or the first label
    for t in range(1, steps):
        rows.append(ctc_alpha_step(rows[-1], lp_ext[t], skip))
    rows += [torch.full_like(lp_ext[0], _NEG_INF)] * (T - steps)  # no frames left
    return torch.stack(rows)


def _final(alpha: Tensor, il: Tensor, tl: Tensor) -> Tensor:
    """log p(y|x) = LSE of α at the last frame over the two final states: → ``(N,)``."""
    N = alpha.shape[1]
    n = torch.arange(N, device=alpha.device)
    last = alpha[(il - 1).clamp(min=0), n]  # (N, S')
    a_end = last.gather(1, (2 * tl).unsqueeze(1)).squeeze(1)
    a_lab = last.gather(1, (2 * tl - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    a_lab = a_lab.masked_fill(tl == 0, _NEG_INF)
    ends = torch.stack([a_end, a_lab], dim=-1)
    # a target that cannot be aligned (both end states -inf): log p = -inf, with a zero gradient, not NaN
    aligned = ~(ends == _NEG_INF).all(dim=-1)  # NaN stays NaN
    ll = torch.where(aligned, logsumexp(torch.where(aligned.unsqueeze(-1), ends, 0), dim=-1), _NEG_INF)
    # no frame at all: the empty target has probability 1, any other target 0
    empty = torch.where(tl == 0, 0.0, _NEG_INF).to(ll)
    return torch.where(il == 0, empty, ll)


def ctc_log_alpha(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0) -> Tensor:
    r"""The forward variables :math:`\log\alpha_t(s)` of CTC on the extended label sequence.

    .. math::
        \alpha_t(s) = \sum_{\pi_{1:t}\ \text{reaching state}\ s} \prod_{\tau=1}^{t} p_\tau(\pi_\tau),
        \qquad p(y\mid x) = \alpha_T(2L) + \alpha_T(2L-1)

    (0-based states: :math:`2L` is the trailing blank, :math:`2L - 1` the last label.)

    Shape:
        - log_probs: ``(T, N, C)`` or ``(T, C)``; targets: ``(N, S)``, 1-D concatenated, or ``(S,)``.
        - output: ``(T, N, 2 S_{max} + 1)`` (``(T, 2S + 1)`` unbatched), ``-inf`` for unreachable
          states and for frames beyond a sample's input length.

    Args:
        log_probs, targets, input_lengths, target_lengths, blank: as in :func:`ctc_loss`.

    Example:
        >>> lp = torch.tensor([[0.3, 0.7], [0.3, 0.7]]).log()
        >>> ctc_log_alpha(lp, torch.tensor([1]), (2,), (1,)).exp()
        tensor([[0.3000, 0.7000, 0.0000],
                [0.0900, 0.7000, 0.2100]])

    Chapter: ctc
    """
    lp, padded, il, tl, unbatched = _prepare(log_probs, targets, input_lengths, target_lengths, blank)
    ext, skip = _extend(padded, blank)
    T = lp.shape[0]
    lp_ext = lp.gather(2, ext.unsqueeze(0).expand(T, -1, -1))
    alpha = _log_alpha(lp_ext, skip, int(il.max()) if il.numel() else 0)
    beyond = torch.arange(T, device=lp.device).unsqueeze(1) >= il.unsqueeze(0)
    alpha = alpha.masked_fill(beyond.unsqueeze(2), _NEG_INF)
    return alpha.squeeze(1) if unbatched else alpha


@float32_under_autocast
def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor | Sequence[int],
    target_lengths: Tensor | Sequence[int],
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    r"""The connectionist temporal classification loss, :math:`-\log p(y \mid x)` summed over alignments.

    .. math::
        \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_n)} \prod_{t=1}^{T_n} p_t(\pi_t),
        \qquad \mathrm{mean} = \frac{1}{N} \sum_n \frac{\ell_n}{\max(L_n, 1)}

    computed with the forward algorithm in log space; :math:`\mathcal{B}` merges repeated labels
    and then removes blanks.

    Shape:
        - log_probs: ``(T, N, C)`` or unbatched ``(T, C)``: log-probabilities over ``C`` classes
          including the blank (e.g. ``log_softmax`` outputs). Time first: there is no batch-first
          layout.
        - targets: padded ``(N, S)``, or the ``N`` targets concatenated into one 1-D tensor of
          length ``sum(target_lengths)``; ``(S,)`` when unbatched.
        - input_lengths, target_lengths: ``(N,)`` tensors or tuples/lists of ``N`` ints
          (``()``/one int when unbatched).
        - output: ``(N,)`` for ``'none'`` (``()`` unbatched), ``()`` otherwise.

    Args:
        log_probs: per-frame log-probabilities.
        targets: label indices in ``[0, C)``, never the blank.
        input_lengths: the number of valid frames of each sample (``≤ T``).
        target_lengths: the length of each target.
        blank: the index of the blank class.
        reduction: ``'mean'`` (each loss divided by its target length, then averaged over the
            batch), ``'sum'`` or ``'none'``.
        zero_infinity: replace infinite losses (targets that cannot be aligned) and their
            gradients by 0. NaN losses stay NaN.

    Example:
        >>> lp = torch.tensor([[0.3, 0.7], [0.3, 0.7]]).log()   # T=2, C=2, blank=0
        >>> ctc_loss(lp, torch.tensor([1]), (2,), (1,), reduction="sum")   # -log 0.91
        tensor(0.0943)

    Same name, signature and semantics as ``torch.nn.functional.ctc_loss``, including the
    gradient, which PyTorch defines as :math:`p_t(c) - \gamma_t(c)` (the gradient with respect
    to the logits of a ``log_softmax``) rather than the derivative with respect to
    ``log_probs``; the two agree once propagated through ``log_softmax``. Unlike PyTorch, a
    blank inside a target is a ``ValueError``; a target too long for its input (fewer than
    ``L + repeats`` frames) and ``log_probs`` that are not log-probabilities (raw logits or
    probabilities, which give a finite, even negative, loss) emit a :class:`lossbook.PitfallWarning`.

    Chapter: ctc
    """
    check_reduction(reduction)
    lp, padded, il, tl, unbatched = _prepare(log_probs, targets, input_lengths, target_lengths, blank)
    _warn_if_not_log_probs(lp)
    _warn_infeasible(il, tl, tl + _repeats(padded, tl))
    if fast.applies(lp, min_numel=0, cpu_only=False):  # the kernel wins at every size
        loss = fast_ctc.ctc_nll(lp, padded, il, tl, blank, bool(zero_infinity))
    else:
        ext, skip = _extend(padded, blank)
        lp_ext = lp.gather(2, ext.unsqueeze(0).expand(lp.shape[0], -1, -1))  # log p_t(y'_s)
        loss = -_final(_log_alpha(lp_ext, skip, int(il.max()) if il.numel() else 0), il, tl)
        # PyTorch's gradient convention (see below): that of the logits of a log_softmax, p_t(c) - γ_t(c).
        # The derivative of -log p(y|x) is -γ_t(c); a term of value 0 whose gradient is p_t(c) adds the rest
        frames = (torch.arange(lp.shape[0], device=lp.device).unsqueeze(1) < il).unsqueeze(2)
        p = torch.where(frames, lp.exp(), 0).sum(dim=(0, 2))
        loss = loss + (p - p.detach())
        if zero_infinity:
            loss = torch.where(loss == float("inf"), 0, loss)
    if reduction == "mean":
        loss = loss / tl.clamp(min=1).to(loss.dtype)
    if unbatched and reduction == "none":
        return loss.squeeze(0)
    return reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# alignments and decoding


def ctc_collapse(path: Tensor | Sequence[int], blank: int = 0) -> Tensor:
    r"""The collapse function :math:`\mathcal{B}`: merge adjacent repeats, then drop blanks.

    .. math::
        \mathcal{B}(\pi) = (\pi_t : \pi_t \ne \varnothing \text{ and } (t = 1 \text{ or } \pi_t \ne \pi_{t-1}))

    The order matters: ``a a ∅ a`` → ``a ∅ a`` → ``a a`` (the blank keeps the two ``a`` apart),
    while dropping blanks first would give ``a``.

    Shape:
        - path: ``(T,)`` class indices; output: ``(L,)`` with ``L ≤ T``, same dtype.

    Args:
        path: one class per frame (a tensor, or a list of ints).
        blank: the blank index.

    Example:
        >>> ctc_collapse(torch.tensor([0, 3, 3, 0, 1, 1, 0, 0, 20, 20]))
        tensor([ 3,  1, 20])

    Chapter: ctc
    """
    _check_blank(blank)
    if isinstance(path, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in path):
            raise TypeError("path must be a 1-D tensor or a list of ints (one class per frame), got a "
                            f"{type(path).__name__} containing {sorted({type(v).__name__ for v in path})}")
        p = torch.tensor(list(path), dtype=torch.long)
    elif isinstance(path, Tensor):
        p = path
    else:
        raise TypeError(f"path must be a 1-D tensor or a list of ints (one class per frame), got {type(path).__name__}")
    if p.dim() != 1:
        raise ValueError(f"path has shape {format_shape(p)} but must be 1-D (one class per frame)")
    if p.is_floating_point() or p.is_complex() or p.dtype == torch.bool:
        raise TypeError(f"path holds class indices and must have an integer dtype, got {p.dtype}")
    first = torch.ones_like(p, dtype=torch.bool)
    first[1:] = p[1:] != p[:-1]
    return p[first & (p != blank)]


def ctc_min_input_length(targets: Tensor, target_lengths: Tensor | Sequence[int]) -> Tensor:
    r"""The fewest frames each target needs: its length plus its number of adjacent repeats.

    .. math::
        T_{\min}(y) = L + \#\{i : y_i = y_{i-1}\}

    because a blank frame must separate two equal labels. ``ctc_loss`` is ``inf`` when
    ``input_length < T_min``.

    Shape:
        - targets: padded ``(N, S)`` or ``(S,)`` for one target; output: ``(N,)`` (``()`` for one).

    Args:
        targets: label indices (padding beyond ``target_lengths`` is ignored).
        target_lengths: the length of each target.

    Example:
        >>> ctc_min_input_length(torch.tensor([[1, 1, 1], [1, 2, 3]]), (3, 3))
        tensor([5, 3])

    Chapter: ctc
    """
    check_tensor(targets, "targets")
    single = targets.dim() == 1
    t = targets.unsqueeze(0) if single else targets
    if t.dim() != 2:
        raise ValueError(f"targets has shape {format_shape(targets)} but must be (N, S) or (S,)")
    tl = _as_lengths(target_lengths, "target_lengths", t.shape[0], t.device)
    need = tl + _repeats(t.long(), tl)
    return need.squeeze(0) if single else need


def _batched(log_probs: Tensor, input_lengths, blank: int) -> tuple[Tensor, Tensor, bool]:
    check_floating(log_probs, "log_probs")
    if log_probs.dim() not in (2, 3):
        raise ValueError(f"log_probs has shape {format_shape(log_probs)} but must be (T, N, C) or (T, C)")
    _check_blank(blank, log_probs.shape[-1])
    unbatched = log_probs.dim() == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    T, N, _ = lp.shape
    if input_lengths is None:
        il = torch.full((N,), T, dtype=torch.long, device=lp.device)
    else:
        il = _as_lengths(input_lengths, "input_lengths", N, lp.device)
        if N and int(il.max()) > T:
            raise ValueError(f"input_lengths must be at most T={T}, got {int(il.max())}")
    return lp, il, unbatched


def ctc_greedy_decode(log_probs: Tensor, input_lengths=None, blank: int = 0) -> list:
    r"""Best-path decoding: the most likely class in every frame, then the collapse function.

    .. math::
        \hat y = \mathcal{B}\big(\arg\max_c p_1(c), \dots, \arg\max_c p_T(c)\big)

    Fast and usually close to the best labelling, but not always equal to it: the most likely
    *path* need not collapse to the most likely *labelling* (see :func:`ctc_prefix_beam_search`).

    Shape:
        - log_probs: ``(T, N, C)`` or ``(T, C)``; output: a list of ``N`` lists of ints (one list
          when unbatched).

    Args:
        log_probs: per-frame log-probabilities (or logits: the argmax is the same).
        input_lengths: the valid frames of each sample (default: all ``T``).
        blank: the blank index.

    Example:
        >>> ctc_greedy_decode(torch.tensor([[.1, .9], [.2, .8], [.9, .1], [.3, .7]]).log())
        [1, 1]

    Chapter: ctc
    """
    lp, il, unbatched = _batched(log_probs, input_lengths, blank)
    T = lp.shape[0]
    best = lp.argmax(dim=2).T  # (N, T)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= (best != blank) & (torch.arange(T, device=lp.device) < il.unsqueeze(1))
    out = [row[k].tolist() for row, k in zip(best.cpu(), keep.cpu())]  # ragged: one list each
    return out[0] if unbatched else out


def _logadd(a: float, b: float) -> float:
    """log(e^a + e^b) on Python floats, shifted by the max like every log-sum-exp in lossbook."""
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def _beam_add(beams: dict, prefix: tuple, b: float, nb: float) -> None:
    old_b, old_nb = beams.get(prefix, (_NEG_INF, _NEG_INF))
    beams[prefix] = (_logadd(old_b, b), _logadd(old_nb, nb))


def ctc_prefix_beam_search(log_probs: Tensor, input_lengths=None, beam_width: int = 8, blank: int = 0) -> list:
    r"""Prefix beam search: keep the ``beam_width`` most probable *labellings* frame by frame.

    Each prefix :math:`\ell` carries two log-probabilities, of the paths that collapse to
    :math:`\ell` and end in a blank (:math:`p_b`) or in its last label (:math:`p_{nb}`):

    .. math::
        p_b^{t}(\ell) = \big(p_b^{t-1}(\ell) + p_{nb}^{t-1}(\ell)\big)\, p_t(\varnothing), \quad
        p_{nb}^{t}(\ell c) \mathrel{+}= \big(p_b^{t-1}(\ell) + [c \ne \ell_{-1}]\, p_{nb}^{t-1}(\ell)\big)\, p_t(c)

    A small, readable implementation in plain Python (a loop over samples, frames and beams),
    meant for teaching and short sequences, not for production decoding.

    Shape:
        - log_probs: ``(T, N, C)`` or ``(T, C)``; output: a list of ``N`` ``(labels, log_prob)``
          pairs (one pair when unbatched), best first in each beam.

    Args:
        log_probs: per-frame log-probabilities.
        input_lengths: the valid frames of each sample (default: all ``T``).
        beam_width: how many prefixes survive each frame.
        blank: the blank index.

    Example:
        >>> lp = torch.tensor([[.4, .6], [.4, .6]]).log()  # [1] = "1 1", "0 1" or "1 0": 0.84
        >>> labels, logp = ctc_prefix_beam_search(lp)
        >>> labels, round(logp, 4)
        ([1], -0.1744)

    Chapter: ctc
    """
    lp, il, unbatched = _batched(log_probs, input_lengths, blank)
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    table = lp.detach().to("cpu", torch.float64).tolist()
    results = []
    for n in range(lp.shape[1]):
        beams = {(): (0.0, _NEG_INF)}  # prefix → (log p_blank, log p_nonblank)
        for t in range(int(il[n])):
            row = table[t][n]
            nxt: dict = {}
            for prefix, (pb, pnb) in beams.items():
                total = _logadd(pb, pnb)
                _beam_add(nxt, prefix, total + row[blank], _NEG_INF)  # emit a blank: the prefix stays
                if prefix:
                    _beam_add(nxt, prefix, _NEG_INF, pnb + row[prefix[-1]])  # repeat the last label: merged
                for c, lpc in enumerate(row):
                    if c == blank:
                        continue
                    # a new label c; after a non-blank equal label only a blank path can extend it
                    src = pb if prefix and c == prefix[-1] else total
                    _beam_add(nxt, prefix + (c,), _NEG_INF, src + lpc)
            beams = dict(sorted(nxt.items(), key=lambda kv: -_logadd(*kv[1]))[:beam_width])
        best, (pb, pnb) = max(beams.items(), key=lambda kv: _logadd(*kv[1]))
        results.append((list(best), _logadd(pb, pnb)))
    return results[0] if unbatched else results


def ctc_forced_alignment(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths,
                         blank: int = 0) -> tuple[Tensor, Tensor]:
    r"""The Viterbi best path: the single most probable alignment of each target to its frames.

    The forward recursion with the log-sum-exp replaced by a max, then a trace-back:

    .. math::
        \delta_t(s) = \log p_t(y'_s) + \max\big(\delta_{t-1}(s), \delta_{t-1}(s-1),
        [\delta_{t-1}(s-2)]\big), \qquad \hat\pi = \arg\max_{\pi \in \mathcal{B}^{-1}(y)} \prod_t p_t(\pi_t)

    Shape:
        - log_probs: ``(T, N, C)`` or ``(T, C)``; targets, lengths: as in :func:`ctc_loss`.
        - output: ``(alignment, scores)``, both ``(N, T)`` (``(T,)`` unbatched): the class of each
          frame on the best path (``-1`` beyond a sample's input length) and its log-probability
          (0 there).

    Args:
        log_probs, targets, input_lengths, target_lengths, blank: as in :func:`ctc_loss`.

    Example:
        >>> lp = torch.tensor([[.6, .4], [.3, .7], [.8, .2]]).log()
        >>> ctc_forced_alignment(lp, torch.tensor([1]), (3,), (1,))[0]
        tensor([0, 1, 0])

    Follows ``torchaudio.functional.forced_align`` (frame labels and their log-probabilities),
    batched. A target that cannot be aligned (too few frames, or every alignment of probability 0)
    is a ``ValueError``.

    Chapter: ctc
    """
    lp, padded, il, tl, unbatched = _prepare(log_probs, targets, input_lengths, target_lengths, blank)
    need = tl + _repeats(padded, tl)
    if bool((il < need).any()):
        n = int((il < need).nonzero()[0])
        raise ValueError(f"sample {n} cannot be aligned: input length {int(il[n])} < target length + "
                         f"repeats = {int(need[n])}")
    ext, skip = _extend(padded, blank)
    T, N, _ = lp.shape
    lp = lp.detach()
    lp_ext = lp.gather(2, ext.unsqueeze(0).expand(T, -1, -1))
    Sx = ext.shape[1]
    delta = torch.full((N, Sx), _NEG_INF, dtype=lp.dtype, device=lp.device)
    back = torch.zeros(T, N, Sx, dtype=torch.long, device=lp.device)
    states = torch.arange(Sx, device=lp.device)
    if T:
        delta[:, :2] = lp_ext[0, :, :2]
    for t in range(1, T):
        neg = delta.new_full((N, 1), _NEG_INF)
        cand = torch.stack([delta, torch.cat([neg, delta[:, :-1]], 1),
                            torch.cat([neg, neg, delta[:, :-2]], 1)[:, :Sx].masked_fill(~skip, _NEG_INF)], -1)
        best, arg = cand.max(-1)
        active = (t < il).unsqueeze(1)  # frames past the input keep δ frozen
        delta = torch.where(active, best + lp_ext[t], delta)
        back[t] = torch.where(active, states - arg, states)
    n_idx = torch.arange(N, device=lp.device)
    end_blank = delta[n_idx, 2 * tl]
    end_label = torch.where(tl > 0, delta[n_idx, (2 * tl - 1).clamp(min=0)], _NEG_INF)
    impossible = (torch.maximum(end_blank, end_label) == _NEG_INF) & (il > 0)
    if bool(impossible.any()):  # no path of non-zero probability: a trace-back would be arbitrary
        n = int(impossible.nonzero()[0])
        raise ValueError(f"sample {n} cannot be aligned: every alignment of its target has probability 0 "
                         f"(log_probs is -inf on each of them)")
    state = torch.where(end_label > end_blank, 2 * tl - 1, 2 * tl)
    path = torch.empty(T, N, dtype=torch.long, device=lp.device)
    for t in range(T - 1, -1, -1):
        path[t] = state
        state = back[t, n_idx, state]
    frames = (torch.arange(T, device=lp.device).unsqueeze(1) < il.unsqueeze(0))  # (T, N)
    labels = ext.gather(1, path.T).T
    scores = lp.gather(2, labels.unsqueeze(2)).squeeze(2)
    labels = torch.where(frames, labels, -1).T
    scores = torch.where(frames, scores, 0.0).T
    return (labels[0], scores[0]) if unbatched else (labels, scores)
