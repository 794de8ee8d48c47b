r"""Fast path of ``lossbook.ctc_loss`` (definition: ``lossbook.ctc``, the forward algorithm in autograd).

The definition runs :func:`lossbook.ctc_alpha_step` once per frame and lets autograd walk the
lattice backwards. This kernel instead

* computes the three-term log-sum-exp of every step in place on a pre-padded buffer
  (:func:`lse3`; the three predecessors of every state are shifted views of the previous row);
* advances α and β (the same recursion run backwards on the reversed lattice) in one sweep,
  stacked along the batch, so a training step makes ``T`` small launches of each kernel
  instead of ``2T`` (:func:`log_alpha_beta`);
* writes the forward–backward gradient by hand: the posterior occupancy
  :math:`\gamma_t(c) = \sum_{s: y'_s = c} \alpha_t(s)\beta_t(s) / (p_t(c)\, p(y|x))`, returned in
  PyTorch's convention :math:`p_t(c) - \gamma_t(c)` (the gradient with respect to the logits of a
  ``log_softmax``).

The loop over time makes the kernel worthwhile at every size, so it runs on any device; only
``torch.func`` transforms, ``torch.compile`` and tensor subclasses take the definition.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import run

__all__ = ["lse3", "log_alpha", "log_alpha_beta", "ctc_nll"]

_NEG_INF = float("-inf")


def lse3(prev: Tensor, skip_add: Tensor, out: Tensor, work: tuple[Tensor, ...]) -> Tensor:
    """log(e^{a(s)} + e^{a(s-1)} + e^{a(s-2)} [if skip]) for every state, from a padded row, into ``out``.

    ``prev`` is ``(*, S' + 2)``: the previous frame's log-α behind two ``-inf`` states, so that
    the three predecessors of every state are three shifted views; ``skip_add`` ``(*, S')`` is 0
    where the jump from ``s - 2`` is allowed and ``-inf`` elsewhere; ``work`` (from :func:`_work`)
    holds buffers and their views, made once and reused at every step: the loop runs ``T`` times
    on small tensors, where each kernel launch, and even each view, costs as much as the
    arithmetic, so the fewer the better. This is the inner loop of the forward and backward
    sweeps. It shifts each row by its own maximum ``m`` (raised to the dtype's lowest finite value
    for a row of all ``-inf``, which then stays ``-inf`` instead of becoming NaN), combines the
    shifted terms with two ``torch.logaddexp`` calls (each a max-shifted two-term log-sum-exp in
    one kernel) and adds ``m`` back: the values that matter are near the row's maximum, so those
    two roundings happen at small magnitudes and only the last at the magnitude of log-α, as in a
    three-term log-sum-exp written out. ``ctc_alpha_step`` is the differentiable, readable
    version, built on ``lossbook.logsumexp``.
    """
    q, m, stay, one_back, two_back = work
    torch.amax(prev, dim=-1, keepdim=True, out=m).clamp_min_(torch.finfo(m.dtype).min)
    torch.sub(prev, m, out=q)
    torch.logaddexp(stay, one_back, out=out)
    torch.logaddexp(out, two_back.add_(skip_add), out=out)
    return out.add_(m)


def _work(prev: Tensor) -> tuple[Tensor, ...]:
    """The buffers of :func:`lse3` for rows like ``prev`` ``(*, S' + 2)``: the shifted row, its
    maximum, and the shifted row's three views (the predecessors of every state)."""
    q = torch.empty_like(prev)
    return q, prev.new_empty(prev.shape[:-1] + (1,)), q[..., 2:], q[..., 1:-1], q[..., :-2]


def log_alpha(lp_ext: Tensor, skip: Tensor, steps: int) -> Tensor:
    """log-α for every frame: lp_ext ``(T, N, S')`` → ``(T, N, S')`` (frames ≥ ``steps`` are -inf).

    α lives in a buffer with two ``-inf`` states in front, so that the three predecessors of
    every state are shifted views of the previous row (no copy per step): the loop is over
    time only.
    """
    T, N, Sx = lp_ext.shape
    buf = lp_ext.new_full((T, N, Sx + 2), _NEG_INF)
    if steps:
        buf[0, :, 2:4] = lp_ext[0, :, :2]  # start in the leading blank or on the first label
    skip_add = torch.zeros(skip.shape, dtype=lp_ext.dtype, device=skip.device).masked_fill_(~skip, _NEG_INF)
    work, row = _work(buf[0]), torch.empty_like(skip_add)
    rows, states, emits = buf.unbind(0), buf[..., 2:].unbind(0), lp_ext.unbind(0)  # every view at once
    for t in range(1, steps):
        torch.add(lse3(rows[t - 1], skip_add, row, work), emits[t], out=states[t])
    return buf[..., 2:]


def log_alpha_beta(lp_ext: Tensor, skip: Tensor, il: Tensor, tl: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """log-α and log-β in one sweep over time: ``(T, N, S')`` each.

    β is the α recursion run backwards in time on the reversed lattice, started at each sample's
    last frame in its two final states. Loop step ``k`` advances α to frame ``k`` and β to frame
    ``steps - 1 - k``, stacked along the batch, so a training step makes ``T`` small launches of
    each kernel instead of ``2T``.
    """
    T, N, Sx = lp_ext.shape
    # reversed lattice: state r is state Sx-1-r; the jump into s from s+2 is allowed when the
    # jump into s+2 from s is (skip[s+2])
    skip_b = torch.zeros_like(skip)
    skip_b[:, : Sx - 2] = skip[:, 2:]
    both = torch.cat([skip, skip_b.flip(-1)])  # (2N, S')
    skip_add = torch.zeros(both.shape, dtype=lp_ext.dtype, device=skip.device).masked_fill_(~both, _NEG_INF)
    lp_r = lp_ext[:steps].flip(-1).flip(0)  # row k: frame steps-1-k, states reversed
    emit = torch.cat([lp_ext[:steps], lp_r], dim=1)  # (steps, 2N, S')
    # β starts at frame il-1, i.e. at loop step steps-il, in the (reversed) final two states
    states = torch.arange(Sx - 1, -1, -1, device=lp_ext.device)
    two_l = 2 * tl.unsqueeze(1)
    end = (states == two_l) | ((states == two_l - 1) & (two_l > 0))
    k = torch.arange(steps, device=lp_ext.device).view(steps, 1, 1)
    restart = torch.cat([torch.zeros(steps, N, 1, dtype=torch.bool, device=lp_ext.device),
                         (k == (steps - il).view(1, N, 1))], dim=1)  # (steps, 2N, 1)
    start_values = torch.cat([torch.full_like(lp_r, _NEG_INF), lp_r.masked_fill(~end, _NEG_INF)], dim=1)
    buf = lp_ext.new_full((max(steps, 1), 2 * N, Sx + 2), _NEG_INF)
    if steps:
        buf[0, :N, 2:4] = lp_ext[0, :, :2]  # α starts in the leading blank or on the first label
        buf[0, N:, 2:] = torch.where(restart[0, N:], start_values[0, N:], _NEG_INF)
    restarts = set((steps - il).tolist())  # the loop steps at which some sample's β starts
    work, lse = _work(buf[0]), torch.empty_like(skip_add)
    rows, states, emits = buf.unbind(0), buf[..., 2:].unbind(0), emit.unbind(0)  # every view at once
    for step in range(1, steps):
        row = states[step]
        torch.add(lse3(rows[step - 1], skip_add, lse, work), emits[step], out=row)
        if step in restarts:
            row.copy_(torch.where(restart[step], start_values[step], row))
    alpha = lp_ext.new_full((T, N, Sx), _NEG_INF)
    beta = lp_ext.new_full((T, N, Sx), _NEG_INF)
    if steps:
        alpha[:steps] = buf[:, :N, 2:]
        beta[:steps] = buf[:, N:, 2:].flip(0).flip(-1)
    return alpha, beta


class _CTC:
    """Per-sample CTC negative log-likelihood with the α–β gradient, as PyTorch defines it."""

    def __init__(self, blank: int, zero_infinity: bool, need_beta: bool):
        self.blank, self.zero_infinity, self.need_beta = blank, zero_infinity, need_beta

    def forward(self, ctx, lp: Tensor, padded: Tensor, il: Tensor, tl: Tensor):
        from ..ctc import _extend, _final

        ext, skip = _extend(padded, self.blank)
        T, N, C = lp.shape
        steps = int(il.max()) if N else 0
        lp_ext = lp.gather(2, ext.unsqueeze(0).expand(T, -1, -1))
        if self.need_beta:  # training: β in the same sweep, for the backward
            alpha, beta = log_alpha_beta(lp_ext, skip, il, tl, steps)
        else:
            alpha = beta = log_alpha(lp_ext, skip, steps)
        nll = -_final(alpha, il, tl)
        ctx.alpha, ctx.beta, ctx.ext, ctx.nll = alpha, beta, ext, nll
        if self.zero_infinity:
            return nll.masked_fill(nll == float("inf"), 0.0)
        return nll

    def backward(self, ctx, tensors, needs, grad_out: Tensor):
        lp, _, il, _ = tensors
        alpha, beta, ext, nll = ctx.alpha, ctx.beta, ctx.ext, ctx.nll
        T, N, C = lp.shape
        # α_t(s) β_t(s) / p_t(y'_s) / p(y|x) is the posterior probability of being in state s at
        # frame t; summed over the states that carry class c it is the "occupancy" γ_t(c).
        ab = alpha + beta  # β includes the emission at t, so α+β counts it twice
        # log Σ_{s: y'_s = c} e^{ab_s} per class c: a log-sum-exp over the states of each class,
        # shifted by that class's own max (a shared max would underflow the unlikely classes)
        index = ext.unsqueeze(0).expand(T, -1, -1)
        m = lp.new_full((T, N, C), _NEG_INF).scatter_reduce_(2, index, ab, "amax")
        m = m.masked_fill_(m.isinf(), 0.0)
        summed = lp.new_zeros(T, N, C).scatter_add_(2, index, (ab - m.gather(2, index)).exp_())
        log_ab = summed.log_().add_(m)
        # PyTorch's convention: the gradient with respect to the *logits* of a log_softmax, i.e.
        # p_t(c) - γ_t(c), returned as the gradient of log_probs (see the chapter)
        grad = lp.exp() - (log_ab + nll.view(1, N, 1) - lp).exp()
        frames = torch.arange(T, device=lp.device).view(T, 1, 1) < il.view(1, N, 1)
        keep = frames
        if self.zero_infinity:
            keep = keep & (nll != float("inf")).view(1, N, 1)
        grad = torch.where(keep, grad * grad_out.view(1, N, 1), 0.0)
        return grad, None, None, None


def ctc_nll(lp: Tensor, padded: Tensor, il: Tensor, tl: Tensor, blank: int, zero_infinity: bool) -> Tensor:
    """Per-sample ``-log p(y|x)`` of ``(T, N, C)`` log-probabilities and ``(N, S)`` padded targets."""
    from ..ctc import ctc_loss as definition

    kernel = _CTC(blank, zero_infinity, need_beta=lp.requires_grad and torch.is_grad_enabled())
    return run(kernel, lambda lp, padded, il, tl: definition(lp, padded, il, tl, blank, "none", zero_infinity),
               lp, padded, il, tl)
