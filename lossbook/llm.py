r"""Losses at language-model scale: token averaging, z-loss, chunked linear cross-entropy and
vocabulary-parallel cross-entropy on ``torch.distributed``.

A language model is a classifier over a vocabulary of :math:`V` tokens, applied at every position
of every sequence. Everything here is cross-entropy; what changes at scale is

* *what is averaged*: tokens, not sequences or micro-batches (:func:`token_cross_entropy`);
* *stability*: the log-partition function drifts, and :func:`z_loss` pins it;
* *memory*: the ``(N, V)`` logits of an LM head do not fit, so :func:`linear_cross_entropy`
  never forms them;
* *more than one device*: the vocabulary is split across ranks, and
  :func:`vocab_parallel_cross_entropy` needs only three all-reduces of ``N`` numbers each.

Chapter: llm
"""
from __future__ import annotations

import contextlib
import math
import socket
import time
from collections.abc import Sequence
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from ._reduction import check_reduction, reduce
from ._validation import (
    check_class_indices,
    check_floating,
    check_in_range,
    check_ndim,
    check_tensor,
    format_shape,
    warn_pitfall,
)
from .cross_entropy import cross_entropy
from .softmax import logsumexp

__all__ = [
    "token_cross_entropy",
    "z_loss",
    "linear_cross_entropy",
    "vocab_parallel_cross_entropy",
    "perplexity",
    "bits_per_byte",
]


def _tracing() -> bool:
    """True under ``torch.compile`` or a ``torch.func`` transform: plain autograd code only there."""
    return torch.compiler.is_compiling() or torch._C._functorch.peek_interpreter_stack() is not None


# --------------------------------------------------------------------------------------------
# next-token cross-entropy and the token mean


def token_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    *,
    ignore_index: int = -100,
    shift: bool = True,
    num_items_in_batch: int | Tensor | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Next-token cross-entropy of a causal language model, averaged over tokens.

    With ``shift``, position :math:`t` predicts the label at :math:`t + 1`; the set :math:`\mathcal{T}`
    holds the (sequence, position) pairs whose label is not ``ignore_index``:

    .. math::
        \mathcal{L} = \frac{1}{M} \sum_{(b, t) \in \mathcal{T}} -\log \mathrm{softmax}(z_{b,t})_{y_{b,t+1}},
        \qquad M = |\mathcal{T}| \text{ or } \texttt{num\_items\_in\_batch}

    Without ``num_items_in_batch`` the divisor is this call's own number of real tokens (the
    token mean of one batch). With it, the loss is the **sum** over this micro-batch divided by
    that number, the real-token count of the *whole* optimizer step: summing the values of
    all micro-batches of a gradient-accumulation step then gives exactly the token mean of the
    whole batch, whatever the padding of each micro-batch. (Averaging the per-micro-batch means
    does not: the gradient-accumulation bug of ``transformers`` < 4.46.)

    Shape:
        - logits: ``(B, T, V)``.
        - labels: ``(B, T)`` token ids in ``[0, V)`` or ``ignore_index`` (padding, prompt tokens).
        - output: ``()``.

    Args:
        logits: the model's scores for every position.
        labels: the input token ids themselves when ``shift`` (the usual ``labels = input_ids``);
            already the next tokens when ``shift=False``.
        ignore_index: labels equal to it count neither in the sum nor in the divisor.
        shift: drop the last position's logits and the first label, so that position ``t`` is
            scored against token ``t + 1`` (Hugging Face's ``ForCausalLMLoss`` convention).
        num_items_in_batch: the number of real target tokens over all micro-batches of the
            optimizer step; the divisor of the summed loss.
        label_smoothing: as in :func:`lossbook.cross_entropy` (uniform over the ``V`` tokens).

    Example:
        >>> logits = torch.zeros(1, 4, 10)
        >>> token_cross_entropy(logits, torch.tensor([[1, 2, 3, 4]]))  # ln 10
        tensor(2.3026)

    Follows Hugging Face ``transformers``' ``ForCausalLMLoss`` (shift, ``ignore_index=-100``,
    ``num_items_in_batch``). Warns (:class:`lossbook.PitfallWarning`) when ``num_items_in_batch``
    is smaller than the real tokens of this very micro-batch, which no correct count can be.

    Chapter: llm
    """
    check_floating(logits, "logits", hint="token_cross_entropy needs the model's float scores")
    check_ndim(logits, "logits", (3,), expected="(B, T, V): batch, positions, vocabulary")
    check_tensor(labels, "labels")
    if tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"labels has shape {format_shape(labels)} but logits has shape {format_shape(logits)}; "
            f"labels must have shape {format_shape(logits.shape[:2])}, one token id per position"
        )
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    if num_items_in_batch is None:
        return cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index, label_smoothing=label_smoothing)
    if not _tracing():
        real = int((flat_labels != ignore_index).sum())
        if int(num_items_in_batch) < real:
            warn_pitfall(
                f"num_items_in_batch={int(num_items_in_batch)} is smaller than the {real} real target tokens of "
                f"this micro-batch alone; it must count the non-ignored (shifted) labels of all micro-batches "
                f"of the optimizer step"
            )
    total = cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index, reduction="sum",
                          label_smoothing=label_smoothing)
    return total / num_items_in_batch


def z_loss(logits: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""The z-loss of PaLM: the squared log-partition function of every position's logits.

    .. math::
        \ell_n = \big(\log Z_n\big)^2 = \Big(\log \sum_{v=1}^{V} e^{z_{n,v}}\Big)^2

    Softmax is unchanged when a constant is added to all logits, so cross-entropy leaves
    :math:`\log Z` free to drift; large :math:`|\log Z|` loses precision in bfloat16 and can
    precede divergence. Adding :math:`10^{-4}\,\bar\ell` to the loss (PaLM's coefficient) pulls
    it towards 0 without changing the predicted distribution.

    Shape:
        - logits: ``(*, V)``, the vocabulary along the last dimension.
        - output: ``(*)`` for ``'none'``, ``()`` otherwise.

    Args:
        logits: the scores; the vocabulary is the last dimension.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` over the positions.

    Example:
        >>> z_loss(torch.zeros(2, 4))  # (ln 4)^2
        tensor(1.9218)

    Follows PaLM (Chowdhery et al., 2022) and the ``z_loss`` of T5X/Mesh TensorFlow (coefficient
    applied by the caller: ``ce + 1e-4 * z_loss(logits)``).

    Chapter: llm
    """
    check_floating(logits, "logits", hint="z_loss needs the model's float scores")
    check_ndim(logits, "logits", min_ndim=1, expected="(*, V), the vocabulary along the last dimension")
    check_reduction(reduction)
    return reduce(logsumexp(logits, dim=-1).square(), reduction)


def _as_tensor(loss: Tensor | float) -> Tensor:
    """A Python float becomes a float64 tensor (no float32 rounding of a reported number)."""
    return loss if isinstance(loss, Tensor) else torch.tensor(loss, dtype=torch.float64)


def perplexity(loss: Tensor | float) -> Tensor:
    r"""Perplexity of a mean token cross-entropy in nats: :math:`\mathrm{PPL} = e^{\mathcal{L}}`.

    .. math::
        \mathrm{PPL} = \exp\Big(\frac{1}{M}\sum_{i=1}^{M} -\log p(y_i \mid y_{<i})\Big)

    The effective number of equally likely tokens the model hesitates between; a uniform guess
    over :math:`V` tokens has perplexity :math:`V`.

    Shape:
        - loss: ``(*)``, any shape (usually ``()``).
        - output: the same shape.

    Args:
        loss: mean cross-entropy per token, in nats (natural log), as :func:`token_cross_entropy`
            returns it.

    Example:
        >>> perplexity(torch.tensor(math.log(50.0)))
        tensor(50.0000)

    The convention of every LM report (Hugging Face's ``evaluate`` perplexity, GPT-2's paper).

    Chapter: llm
    """
    return _as_tensor(loss).exp()


def bits_per_byte(loss: Tensor | float, n_tokens: int | Tensor, n_bytes: int | Tensor) -> Tensor:
    r"""Bits per byte: a mean token cross-entropy re-expressed per byte of text, in bits.

    .. math::
        \mathrm{bpb} = \frac{\mathcal{L} \cdot n_{\text{tokens}}}{n_{\text{bytes}} \cdot \ln 2}

    Token losses of models with different tokenizers are not comparable (a longer token carries
    more information); the total information in bits divided by the UTF-8 bytes of the same text
    is.

    Shape:
        - loss: ``(*)``, any shape (usually ``()``).
        - output: the same shape.

    Args:
        loss: mean cross-entropy per token, in nats.
        n_tokens: the number of tokens the mean was taken over.
        n_bytes: the number of UTF-8 bytes of the same text.

    Example:
        >>> bits_per_byte(torch.tensor(math.log(2.0)), n_tokens=10, n_bytes=20)
        tensor(0.5000)

    The convention of The Pile (Gao et al., 2020) and of byte-level LM reports.

    Chapter: llm
    """
    return _as_tensor(loss) * n_tokens / (n_bytes * math.log(2.0))


# --------------------------------------------------------------------------------------------
# linear cross-entropy: the LM head and the loss in chunks of rows


def _default_chunk(n: int, d: int, v: int) -> int:
    """Rows per chunk: the whole batch when its logits are small (<= 2**20 values), else as many rows as
    fit in about 2**23 logits (32 MiB in float32), at least one. Fewer rows make the three matrix
    products of a chunk inefficient (their small dimension is the number of rows: in one CPU
    measurement at D = 1024, V = 65,536, 64-row chunks took about 6 % longer than the whole batch,
    128-row chunks no longer); more only add memory."""
    if n * v <= 2**20:
        return max(n, 1)
    return max(1, min(n, 2**23 // v))


def _class_rows(z: Tensor, positions: int) -> Tensor:
    """``(R, C * P)`` logits of a K-dimensional head (``W`` of shape ``(C, d_1 .. d_K, D)``, ``P = d_1 ... d_K``)
    as ``(R P, C)``: one row of ``C`` class scores per (row, position). A view when ``P = 1``."""
    if positions == 1:
        return z
    R = z.shape[0]
    return z.view(R, -1, positions).transpose(1, 2).reshape(R * positions, -1)


def _from_class_rows(g: Tensor, positions: int) -> Tensor:
    """The inverse of :func:`_class_rows`: ``(R P, C)`` back to ``(R, C * P)``."""
    if positions == 1:
        return g
    R = g.shape[0] // positions
    return g.view(R, positions, -1).transpose(1, 2).reshape(R, -1)


def _row_losses(z: Tensor, t: Tensor, weight: Tensor | None, ignore_index: int, label_smoothing: float,
                prob: bool) -> Tensor:
    r"""Per-row cross-entropy of one chunk of logits ``z`` (``(R, V)``), in plain tensor operations.

    ``LSE(z) - z_y`` (times ``w_y``) mixed with the smoothing term ``sum_c w_c (LSE(z) - z_c) / V``;
    for probability targets ``sum_c w_c q'_c (LSE(z) - z_c)`` with ``q' = (1 - eps) q + eps / V``.
    """
    V = z.shape[1]
    m = z.detach().amax(1, keepdim=True)
    m = torch.where(m.isfinite(), m, torch.zeros_like(m))
    lse = (z - m).exp().sum(1).log() + m.squeeze(1)
    w = torch.ones(V, dtype=z.dtype, device=z.device) if weight is None else weight.to(z.dtype)
    if prob:
        wq = ((1 - label_smoothing) * t + label_smoothing / V) * w
        return lse * wq.sum(1) - (z * wq).sum(1)
    keep = t != ignore_index
    safe = t.masked_fill(~keep, 0)
    nll = (lse - z.gather(1, safe.unsqueeze(1)).squeeze(1)) * w[safe]
    loss = (1 - label_smoothing) * nll
    if label_smoothing > 0:
        loss = loss + (label_smoothing / V) * (lse * w.sum() - z @ w)
    return torch.where(keep, loss, torch.zeros((), dtype=z.dtype, device=z.device))


def _divisor(t: Tensor, weight: Tensor | None, ignore_index: int, prob: bool, dtype: torch.dtype) -> Tensor:
    """The denominators of PyTorch's mean: ``w_y`` of each kept target (1 per row for probabilities)."""
    if prob:
        return torch.ones(t.shape[0], dtype=dtype, device=t.device)
    keep = t != ignore_index
    if weight is None:
        return keep.to(dtype)
    return weight.to(dtype)[t.masked_fill(~keep, 0)] * keep


def _linear_cross_entropy_chunks(x, W, t, b, weight, reduction, ignore_index, label_smoothing, chunk, prob, P=1):
    """The definition: the LM head and the loss one chunk of rows at a time, in plain autograd code.

    ``t`` has one target (or one distribution) per row of class scores: ``P`` of them per row of
    ``x`` for a K-dimensional head (``W`` flattened to ``(C P, D)``), one otherwise. Under
    ``torch.no_grad`` only one chunk of logits lives at a time. With autograd, every chunk's
    logits are kept for the backward (O(N V)); :class:`_LinearCrossEntropy` avoids that.
    """
    parts = []
    for i in range(0, x.shape[0], chunk):
        z = x[i:i + chunk] @ W.t()
        if b is not None:
            z = z + b
        acc = torch.promote_types(z.dtype, torch.float32)
        z = _class_rows(z.to(acc), P)
        parts.append(_row_losses(z, t[i * P:(i + chunk) * P], weight, ignore_index, label_smoothing, prob))
    loss = torch.cat(parts) if parts else x.new_zeros(0, dtype=torch.promote_types(x.dtype, torch.float32))
    return reduce(loss, reduction, weight=_divisor(t, weight, ignore_index, prob, loss.dtype)).to(x.dtype)


def _grad_of_logits_(z: Tensor, t: Tensor, weight: Tensor | None, ignore_index: int, label_smoothing: float,
                     prob: bool, g: Tensor | None) -> Tensor:
    """Per-row losses of the logits ``z`` (``(R, V)``); if ``g`` (``(R,)``) is given, ``z`` is overwritten,
    in place, with ``g_r * d loss_r / d z_r`` (no other ``(R, V)`` tensor is allocated for index targets)."""
    R, V = z.shape
    zero = torch.zeros((), dtype=z.dtype, device=z.device)
    if prob:
        wq = (1 - label_smoothing) * t.to(z.dtype) + label_smoothing / V
        if weight is not None:
            wq = wq * weight.to(z.dtype)
        sum_wq, z_wq = wq.sum(1), (z * wq).sum(1)
    else:
        keep = t != ignore_index
        safe = t.masked_fill(~keep, 0)
        picked = z.gather(1, safe.unsqueeze(1)).squeeze(1)
        w_y = keep.to(z.dtype) if weight is None else weight.to(z.dtype)[safe] * keep
        if label_smoothing > 0:
            sum_w = V if weight is None else weight.to(z.dtype).sum()
            z_w = z.sum(1) if weight is None else z @ weight.to(z.dtype)
    m = z.amax(1, keepdim=True)
    m = torch.where(m.isfinite(), m, zero)
    e = z.sub_(m).exp_()  # z is now exp(z - m)
    s = e.sum(1)
    lse = s.log() + m.squeeze(1)
    if prob:
        loss = lse * sum_wq - z_wq
    else:
        loss = (1 - label_smoothing) * w_y * (lse - picked)
        if label_smoothing > 0:
            loss = loss + (label_smoothing / V) * (lse * sum_w - z_w)
        loss = torch.where(keep, loss, zero)
    if g is None:
        return loss
    g = g.to(z.dtype)
    if prob:  # p * sum(wq) - wq
        e.mul_((g * sum_wq / s).unsqueeze(1)).sub_(wq * g.unsqueeze(1))
        return loss
    a = torch.where(keep, g * (1 - label_smoothing) * w_y, zero)  # the NLL part: a (p - onehot)
    coef = a
    if label_smoothing > 0:  # the smoothing part: c (p sum_c w_c - w)
        c = torch.where(keep, g * (label_smoothing / V), zero)
        coef = a + c * sum_w
    e.mul_((coef / s).unsqueeze(1)).scatter_add_(1, safe.unsqueeze(1), -a.unsqueeze(1))
    if label_smoothing > 0:
        if weight is None:
            e.sub_(c.unsqueeze(1))
        else:
            e.addr_(c, weight.to(z.dtype), alpha=-1)
    return loss


class _LinearCrossEntropy(torch.autograd.Function):
    """The fast path: logits, loss and gradients one chunk of rows at a time, never ``(N, V)``.

    For ``'mean'``/``'sum'`` the upstream gradient is a scalar, so the forward computes the
    gradients of ``input``, ``linear_weight`` and ``linear_bias`` along with the loss (as torch's
    chunked path does: each chunk's logits are computed once) and the backward only scales them.
    For ``'none'`` each row has its own upstream gradient, unknown in the forward: the backward
    recomputes each chunk's logits and scales each row by its own gradient. Memory: one
    ``(chunk, V)`` block plus the gradients themselves, O(chunk V + V D).

    When a graph of the backward is asked for (double backward), the backward differentiates
    the plain definition instead.
    """

    @staticmethod
    def forward(ctx, x, W, b, t, weight, reduction, ignore_index, label_smoothing, chunk, prob, P):
        acc = torch.promote_types(x.dtype, torch.float32)
        xa, Wa = x.to(acc), W.to(acc)  # no copy for float32/float64
        ba = None if b is None else b.to(acc)
        wa = None if weight is None else weight.to(acc)
        opts = (wa, ignore_index, label_smoothing, prob)
        N = x.shape[0]
        divisor = _divisor(t, weight, ignore_index, prob, acc)
        need_x, need_W, need_b = ctx.needs_input_grad[:3]
        precompute = reduction != "none" and (need_x or need_W or need_b)
        if precompute:
            scale = 1 / divisor.sum() if reduction == "mean" else torch.ones((), dtype=acc, device=x.device)
            gx = torch.empty_like(xa) if need_x else None
            gW = torch.zeros_like(Wa) if need_W else None
            gb = torch.zeros(W.shape[0], dtype=acc, device=x.device) if need_b else None
        losses = torch.empty(N * P, dtype=acc, device=x.device)
        for i in range(0, N, chunk):
            rows, cls = slice(i, i + chunk), slice(i * P, (i + chunk) * P)
            z = _class_rows(_chunk_logits(xa[rows], Wa, ba), P)
            g = scale.expand(z.shape[0]) if precompute else None
            losses[cls] = _grad_of_logits_(z, t[cls], *opts, g)
            if precompute:  # z is now d loss / d logits for these rows
                _accumulate(_from_class_rows(z, P), xa[rows], Wa, gx, gW, gb, rows)
        ctx.save_for_backward(x, W, b, t, weight)
        ctx.options = (reduction, ignore_index, label_smoothing, chunk, prob, P)
        ctx.grads = (gx, gW, gb) if precompute else None
        return reduce(losses, reduction, weight=divisor).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, W, b, t, weight = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain definition
            inputs = [v for v in (x, W, b) if v is not None and v.requires_grad]
            loss = _linear_cross_entropy_chunks(x, W, t, b, weight, *ctx.options)
            found = iter(torch.autograd.grad(loss, inputs, grad, create_graph=True, allow_unused=True))
            grads = [next(found) if v is not None and v.requires_grad else None for v in (x, W, b)]
        elif ctx.grads is not None:
            grads = [None if gr is None else gr.mul_(grad) for gr in ctx.grads]
            ctx.grads = None  # a second backward (retain_graph=True) recomputes them below
        else:
            grads = _recompute_grads(ctx, x, W, b, t, weight, grad)
        grads = [None if gr is None else gr.to(v.dtype) for gr, v in zip(grads, (x, W, b))]
        return (*grads, None, None, None, None, None, None, None, None)


def _chunk_logits(x_rows: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
    """A chunk's logits ``x_rows @ W.T + b`` (``(R, V)``), computed as ``(W @ x_rows.T).T``: with the large
    ``(V, D)`` weight as the left operand the BLAS streams it as it is stored, where ``x_rows @ W.T``
    repacks all of ``W`` for every chunk (about 1.4x slower for 64-row chunks on CPU). The result is
    the transpose of a contiguous ``(V, R)`` tensor; ``d loss / d logits`` is written into it in place,
    and its transpose is again the contiguous left operand of ``W``'s gradient."""
    z = torch.mm(W, x_rows.t()).t()
    if b is not None:
        z += b
    return z


def _accumulate(dz, x_rows, Wa, gx, gW, gb, rows):
    """Add one chunk's ``d loss / d logits`` into the gradients of the input, weight and bias."""
    if gx is not None:
        torch.mm(dz, Wa, out=gx[rows])
    if gW is not None:
        gW.addmm_(dz.t(), x_rows)
    if gb is not None:
        gb += dz.sum(0)


def _recompute_grads(ctx, x, W, b, t, weight, grad):
    """The backward of ``'none'`` (or of a second backward): every chunk's logits once more, each row
    scaled by its own upstream gradient."""
    reduction, ignore_index, label_smoothing, chunk, prob, P = ctx.options
    acc = torch.promote_types(x.dtype, torch.float32)
    xa, Wa = x.to(acc), W.to(acc)
    need_x, need_W, need_b = ctx.needs_input_grad[:3]
    gx = torch.empty_like(xa) if need_x else None
    gW = torch.zeros_like(Wa) if need_W else None
    gb = torch.zeros(W.shape[0], dtype=acc, device=x.device) if need_b else None
    ba = None if b is None else b.to(acc)
    N = x.shape[0]
    if reduction == "none":
        g_rows = grad.to(acc)
    else:
        scale = 1 / _divisor(t, weight, ignore_index, prob, acc).sum() if reduction == "mean" else 1
        g_rows = (grad.to(acc) * scale).expand(N * P)
    wa = None if weight is None else weight.to(acc)
    for i in range(0, N, chunk):
        rows, cls = slice(i, i + chunk), slice(i * P, (i + chunk) * P)
        z = _class_rows(_chunk_logits(xa[rows], Wa, ba), P)
        _grad_of_logits_(z, t[cls], wa, ignore_index, label_smoothing, prob, g_rows[cls])
        _accumulate(_from_class_rows(z, P), xa[rows], Wa, gx, gW, gb, rows)
    return [gx, gW, gb]


def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    chunk_size: int | None = None,
    options=None,
) -> Tensor:
    r"""Cross-entropy of a linear layer's output (an LM head) without forming the ``(N, V)`` logits.

    Equal to ``cross_entropy(input @ linear_weight.T + linear_bias, target, ...)``; the rows are
    processed ``chunk_size`` at a time, so only a ``(chunk_size, V)`` block of logits exists at once:

    .. math::
        \ell_n = \log \sum_{v} e^{h_n^\top W_v + b_v} - (h_n^\top W_{y_n} + b_{y_n}), \qquad
        \frac{\partial \ell_n}{\partial h_n} = \sum_v (p_{n,v} - [v = y_n])\, W_v

    (with class weights, ``ignore_index`` and label smoothing exactly as in
    :func:`lossbook.cross_entropy`). For ``'mean'`` and ``'sum'`` the gradients of ``input``,
    ``linear_weight`` and ``linear_bias`` are computed chunk by chunk in the forward (each chunk's
    logits once); for ``'none'`` the backward recomputes each chunk and scales every row by its
    own upstream gradient. Memory O(chunk_size V + V D) instead of O(N V).

    A K-dimensional ``linear_weight`` ``(C, d_1, ..., d_K, D)`` maps each row to ``(C, d_1, ..., d_K)``
    logits, a ``C``-class cross-entropy at each of the ``d_1 ... d_K`` positions (torch's
    K-dimensional loss): its ``C d_1 ... d_K`` outputs play the role of ``V``.

    Shape:
        - input: ``(D)`` or ``(N, D)`` hidden states.
        - linear_weight: ``(V, D)`` (``torch.nn.Linear(D, V).weight``), or ``(C, d_1, ..., d_K, D)``
          with batched input.
        - target: class indices of shape ``()``, ``(N)`` or ``(N, d_1, ..., d_K)``; or class
          probabilities of the logits' shape, ``(V)``, ``(N, V)`` or ``(N, C, d_1, ..., d_K)``.
        - linear_bias: ``(V)``, or ``(C, d_1, ..., d_K)``. weight: ``(V)`` or ``(C)``.
        - output: ``()``, ``(N)`` or ``(N, d_1, ..., d_K)`` for ``'none'``, ``()`` otherwise.

    Args:
        input: the last hidden states, one row per token.
        linear_weight: the output projection (LM head).
        target: the next tokens, or a distribution over the vocabulary per row (a target with the
            shape of the logits holds probabilities, as in torch).
        linear_bias: optional bias of the projection.
        weight: optional rescaling weight per class, as in ``cross_entropy``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        ignore_index: ignored target value for class indices; ``None`` means ``-100``. Not allowed
            with class probabilities.
        label_smoothing: in ``[0, 1]``.
        chunk_size: rows per chunk; ``None`` picks one from the shapes (the whole batch when its
            logits are small, else chunks of about 2**23 logits: 128 rows for V = 65,536).
        options: torch's ``torch.nn.LinearCrossEntropyOptions``, accepted so that a call written
            for torch runs unchanged; only its ``batch_chunk_size`` is used (as ``chunk_size``).
            Results never depend on the chunking.

    Example:
        >>> h, W = torch.randn(6, 4), torch.randn(10, 4)
        >>> y = torch.randint(0, 10, (6,))
        >>> torch.allclose(linear_cross_entropy(h, W, y, chunk_size=2), cross_entropy(h @ W.T, y))
        True

    Same name, signature and semantics as ``torch.nn.functional.linear_cross_entropy`` (torch
    2.13), plus ``chunk_size``. Every option runs chunked (torch's chunked path falls back to the
    full logits for label smoothing, probability targets and K-dimensional weights). A gradient
    with respect to the target (probabilities) or to the class weights, ``torch.func`` transforms
    and ``torch.compile`` run the plain chunked definition (its autograd keeps every chunk's
    logits); double backward differentiates that definition too.

    Chapter: llm
    """
    check_floating(input, "input", hint="input holds the hidden states fed to the LM head")
    check_floating(linear_weight, "linear_weight", hint="linear_weight is the (V, D) LM head")
    check_ndim(input, "input", (1, 2), expected="(D,) or (N, D)")
    check_ndim(linear_weight, "linear_weight", min_ndim=2,
               expected="(V, D), or (C, d_1, ..., d_K, D) for a K-dimensional loss")
    check_reduction(reduction)
    check_in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    check_tensor(target, "target")
    C, out, D = linear_weight.shape[0], tuple(linear_weight.shape[1:-1]), linear_weight.shape[-1]
    P = math.prod(out)  # positions per row of a K-dimensional loss (1 for an LM head)
    if input.shape[-1] != D:
        raise ValueError(
            f"input has shape {format_shape(input)} but linear_weight has shape {format_shape(linear_weight)}; "
            f"input's last dimension must be in_features={D}"
        )
    if out and input.dim() == 1:
        raise ValueError(f"linear_weight has shape {format_shape(linear_weight)} (a K-dimensional loss), which needs "
                         f"batched input (N, {D}); got input of shape {format_shape(input)}")
    for name, vec, shape in (("linear_bias", linear_bias, (C, *out)), ("weight", weight, (C,))):
        if vec is not None:
            check_floating(vec, name)
            if tuple(vec.shape) != shape:
                raise ValueError(f"{name} has shape {format_shape(vec)} but must have shape {format_shape(shape)}, "
                                 f"one value per class of linear_weight {format_shape(linear_weight)}")
    if options is not None:
        if chunk_size is not None:
            raise ValueError("give chunk_size or torch's options (its batch_chunk_size), not both")
        chunk_size = getattr(options, "batch_chunk_size", None)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int (rows per chunk) or None, got {chunk_size!r}")
    batch = tuple(input.shape[:-1])
    logits_shape, index_shape = (*batch, C, *out), (*batch, *out)
    prob = tuple(target.shape) == logits_shape  # torch's rule: a target shaped like the logits holds probabilities
    if not prob and tuple(target.shape) != index_shape:
        kind, expected = (("class probabilities", logits_shape) if target.is_floating_point()
                          else ("class indices", index_shape))
        raise ValueError(f"target has shape {format_shape(target)} but input has shape {format_shape(input)} and "
                         f"linear_weight {format_shape(linear_weight)}; {kind} must have shape "
                         f"{format_shape(expected)}")
    if prob and not target.is_floating_point():
        raise TypeError(f"target has the shape of the logits {format_shape(logits_shape)}, so it holds class "
                        f"probabilities and must be floating point, got {target.dtype}")
    if prob and ignore_index is not None:
        raise ValueError("ignore_index applies to class indices only; target holds class probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    x = input.unsqueeze(0) if not batch else input
    N = x.shape[0]
    if prob:  # one distribution over the C classes per (row, position)
        t = target.reshape(N, C, P).transpose(1, 2).reshape(N * P, C)
    else:
        t = target.reshape(N * P)
        if not _tracing():  # data-dependent: not under torch.compile / torch.func
            check_class_indices(t, C, name="target", ignore_index=ignore_index)
    W = linear_weight.reshape(C * P, D) if out else linear_weight
    b = linear_bias.reshape(C * P) if out and linear_bias is not None else linear_bias
    chunk = chunk_size or _default_chunk(N, D, C * P)
    args = (reduction, ignore_index, label_smoothing, chunk, prob, P)
    needs_grad = torch.is_grad_enabled() and any(v is not None and v.requires_grad for v in (x, W, b))
    other_grad = t.requires_grad or (weight is not None and weight.requires_grad)
    if needs_grad and not other_grad and not _tracing():
        loss = _LinearCrossEntropy.apply(x, W, b, t, weight, *args)
    else:
        loss = _linear_cross_entropy_chunks(x, W, t, b, weight, *args)
    return loss.reshape(index_shape) if reduction == "none" else loss


# --------------------------------------------------------------------------------------------
# vocabulary-parallel cross-entropy


def _group_info(group) -> tuple[int, int]:
    """``(world_size, rank)`` of ``group``; one process holding everything if torch.distributed is off."""
    if group is None and not (dist.is_available() and dist.is_initialized()):
        return 1, 0
    return dist.get_world_size(group), dist.get_rank(group)


def _all_reduce(x: Tensor, op, group, world: int) -> Tensor:
    if world > 1:
        dist.all_reduce(x, op=op, group=group)
    return x


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """Each rank holds logits for its shard ``[rank V_l, (rank + 1) V_l)`` of the vocabulary.

    Forward: three all-reduces of one number per row (Megatron-LM's): the max, the sum of the
    shifted exponentials and the target's logit (only the rank that owns the target has it; the
    others contribute 0); with label smoothing a fourth, the sum of the logits, so that the
    smoothing term averages over the *global* vocabulary. Backward: the local slice of
    ``p - (1 - eps) onehot - eps / V``, with no communication.
    """

    @staticmethod
    def forward(ctx, logits, target, group, world, rank, label_smoothing, ignore_index):
        acc = torch.promote_types(logits.dtype, torch.float32)
        z = logits.to(acc)
        V_local = z.shape[-1]
        V = V_local * world
        m = z.amax(-1)  # the max is a constant shift: no gradient flows through it
        m = _all_reduce(m, dist.ReduceOp.MAX, group, world)
        e = (z - m.unsqueeze(-1)).exp()
        s = _all_reduce(e.sum(-1), dist.ReduceOp.SUM, group, world)
        keep = target != ignore_index
        lo = rank * V_local
        mine = keep & (target >= lo) & (target < lo + V_local)
        idx = torch.where(mine, target - lo, torch.zeros_like(target))
        zero = torch.zeros((), dtype=acc, device=z.device)
        z_y = torch.where(mine, z.gather(-1, idx.unsqueeze(-1)).squeeze(-1), zero)
        z_y = _all_reduce(z_y, dist.ReduceOp.SUM, group, world)
        lse = s.log() + m
        loss = lse - z_y
        if label_smoothing > 0:  # mean over the V global logits, not the V_local of this rank
            z_sum = _all_reduce(z.sum(-1), dist.ReduceOp.SUM, group, world)
            loss = (1 - label_smoothing) * loss + label_smoothing * (lse - z_sum / V)
        loss = torch.where(keep, loss, zero)
        p = e.div_(s.unsqueeze(-1))
        ctx.save_for_backward(p, idx, mine, keep)
        ctx.label_smoothing, ctx.V = label_smoothing, V
        return loss.to(logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        p, idx, mine, keep = ctx.saved_tensors
        eps = ctx.label_smoothing
        g = torch.where(keep, grad.to(p.dtype), torch.zeros((), dtype=p.dtype, device=p.device))
        out = p * g.unsqueeze(-1)
        out.scatter_add_(-1, idx.unsqueeze(-1), (-(1 - eps) * g * mine).unsqueeze(-1))
        if eps > 0:
            out -= (eps / ctx.V) * g.unsqueeze(-1)
        return out.to(grad.dtype), None, None, None, None, None, None


def vocab_parallel_cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    group=None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Cross-entropy over a vocabulary split across the ranks of a ``torch.distributed`` group.

    Rank :math:`r` of :math:`R` holds the logits of tokens :math:`[r V/R, (r+1) V/R)`. With
    :math:`m = \max_r m_r` (all-reduce MAX), :math:`S = \sum_r \sum_{v \in r} e^{z_v - m}`
    (all-reduce SUM) and the target logit :math:`z_y` (all-reduce SUM, 0 on the ranks that do
    not own :math:`y`):

    .. math::
        \ell_n = (1 - \varepsilon)\,(m + \log S - z_{y}) + \varepsilon\,\Big(m + \log S
        - \frac{1}{V} \sum_{v=1}^{V} z_v\Big)

    where the smoothing term averages over the **global** vocabulary (a fourth all-reduce). The
    loss is the same on every rank, and each rank's gradient is its slice of the full
    :math:`\mathrm{softmax}(z) - (1 - \varepsilon)\,e_y - \varepsilon / V`: the backward needs no
    communication.

    Shape:
        - logits: ``(*, V / world_size)``, this rank's contiguous shard of the vocabulary.
        - target: ``(*)`` global token ids in ``[0, V)`` or ``ignore_index`` (the same on every rank).
        - output: ``(*)`` for ``'none'``, ``()`` otherwise (the same on every rank).

    Args:
        logits: this rank's shard (``world_size`` equal shards, in rank order).
        target: the token ids, identical on every rank.
        group: the process group (default: the world); without an initialised process group, one
            process holds the whole vocabulary.
        label_smoothing: in ``[0, 1]``, uniform over the whole vocabulary.
        ignore_index: targets equal to it contribute neither loss, gradient nor count.
        reduction: ``'none'`` | ``'mean'`` (over the tokens that are not ignored) | ``'sum'``.

    Example:
        >>> z, y = torch.randn(4, 10), torch.randint(0, 10, (4,))
        >>> torch.allclose(vocab_parallel_cross_entropy(z, y), cross_entropy(z, y))  # one process
        True

    Follows Megatron-LM's ``vocab_parallel_cross_entropy`` (``tensor_parallel/cross_entropy.py``),
    with the smoothing term over the global vocabulary; equals :func:`lossbook.cross_entropy` on
    the gathered logits. A custom ``autograd.Function``: first derivatives only.

    Chapter: llm
    """
    check_floating(logits, "logits", hint="this rank's shard of the model's scores")
    check_ndim(logits, "logits", min_ndim=1, expected="(*, V / world_size)")
    check_tensor(target, "target")
    check_reduction(reduction)
    check_in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    if tuple(target.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"target has shape {format_shape(target)} but logits has shape {format_shape(logits)}; target must "
            f"have shape {format_shape(logits.shape[:-1])} (the vocabulary shard is the last dimension)"
        )
    world, rank = _group_info(group)
    if not _tracing():
        check_class_indices(target, logits.shape[-1] * world, name="target", ignore_index=ignore_index)
    loss = _VocabParallelCrossEntropy.apply(logits, target, group, world, rank, label_smoothing, ignore_index)
    return reduce(loss, reduction, weight=(target != ignore_index).to(loss.dtype))


# --------------------------------------------------------------------------------------------
# running it on several processes (tests, the book's demo)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_vocab_parallel_case(n: int, v: int, seed: int, dtype: torch.dtype = torch.float64,
                             ignored: int = 0, ignore_index: int = -100) -> tuple[Tensor, Tensor, Tensor]:
    """``(logits, target, upstream)`` of one test case: the full ``(n, v)`` logits, targets (the first
    ``ignored`` set to ``ignore_index``) and a random per-token upstream gradient, the same in every process."""
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, v, generator=gen, dtype=torch.float64) * 3).to(dtype)
    target = torch.randint(0, v, (n,), generator=gen)
    target[:ignored] = ignore_index
    upstream = torch.rand(n, generator=gen, dtype=torch.float64).to(dtype) + 0.5
    return logits, target, upstream


def _vocab_parallel_worker(rank: int, world: int, init_method: str, cases: Sequence[dict], queue) -> None:
    """One rank: join the gloo group, compute the loss and the gradient of its shard for every case."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    try:
        for k, case in enumerate(cases):
            options = case.get("options", {})
            logits, target, upstream = make_vocab_parallel_case(case["n"], case["v"], case["seed"],
                                                                case.get("dtype", torch.float64),
                                                                case.get("ignored", 0),
                                                                options.get("ignore_index", -100))
            shard = logits.chunk(world, dim=-1)[rank].clone().requires_grad_()
            loss = vocab_parallel_cross_entropy(shard, target, **options)
            loss.backward(upstream if options.get("reduction") == "none" else None)
            queue.put((k, rank, loss.detach().double().tolist(), shard.grad.double().tolist()))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_vocab_parallel(world_size: int, cases: Sequence[dict], *, timeout: float = 90.0,
                       start_method: str = "forkserver") -> list[dict]:
    """Run :func:`vocab_parallel_cross_entropy` on ``world_size`` gloo processes on this machine.

    Each case is ``{"n": tokens, "v": vocabulary, "seed": int, "options": {...}}`` (optionally
    ``"dtype"``, ``"ignored"``); every rank builds the same full logits, keeps its shard, and
    reports its loss and its shard's gradient. Returns, per case, ``{"loss": [loss of each rank],
    "grad": the shards' gradients concatenated in rank order}`` (float64). Processes are started
    with ``torch.multiprocessing`` on ``tcp://127.0.0.1:<free port>``, by default from a fork
    server that has imported torch and lossbook once (a fresh interpreter, like ``"spawn"``, but each
    rank starts in milliseconds instead of re-importing torch); ``start_method="spawn"`` also works.
    A group that does not finish within ``timeout`` seconds is terminated and raises ``TimeoutError``.
    """
    import torch.multiprocessing as mp

    ctx = mp.get_context(start_method)
    if start_method == "forkserver":
        # the server imports torch and lossbook once; every rank of every group is then a cheap fork of it
        ctx.set_forkserver_preload(["lossbook.llm"])
    queue = ctx.SimpleQueue()
    init = f"tcp://127.0.0.1:{_free_port()}"
    procs = mp.start_processes(_vocab_parallel_worker, args=(world_size, init, list(cases), queue),
                               nprocs=world_size, join=False, start_method=start_method)
    deadline = time.monotonic() + timeout
    got: dict[tuple[int, int], tuple] = {}

    def drain():  # read while the ranks run: a full pipe would block a writer, and so its group
        while not queue.empty():
            k, rank, loss, grad = queue.get()
            got[(k, rank)] = (loss, grad)

    try:
        while not procs.join(timeout=0.05):
            drain()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world_size}-process gloo group did not finish in {timeout:g} s")
        drain()
    finally:
        for p in procs.processes:
            if p.is_alive():
                p.terminate()
    out = []
    for k in range(len(cases)):
        losses = [torch.tensor(got[(k, r)][0], dtype=torch.float64) for r in range(world_size)]
        grads = [torch.tensor(got[(k, r)][1], dtype=torch.float64) for r in range(world_size)]
        out.append({"loss": losses, "grad": torch.cat(grads, dim=-1)})
    return out


def run_vocab_parallel_demo(world_sizes: Sequence[int] = (2, 4), *, n: int = 64, v: int = 1024,
                            label_smoothing: float = 0.1, seed: int = 0) -> list[dict]:
    """The book's demo: the loss and gradient of ``world_size`` gloo processes vs one process.

    For each world size, runs :func:`run_vocab_parallel` on one case (``n`` tokens, a ``v``-token
    vocabulary, label smoothing, a few ignored targets) and compares with
    :func:`lossbook.cross_entropy` on the full logits. Returns one row per world size: the
    ranks' losses, the single-process loss, both gradients, their largest difference and the wall time.
    """
    rows = []
    options = {"label_smoothing": label_smoothing}
    for world in world_sizes:
        case = {"n": n, "v": v, "seed": seed, "ignored": 3, "options": options}
        start = time.perf_counter()
        result = run_vocab_parallel(world, [case])[0]
        seconds = time.perf_counter() - start
        logits, target, _ = make_vocab_parallel_case(n, v, seed, ignored=3)
        logits.requires_grad_()
        ref = cross_entropy(logits, target, label_smoothing=label_smoothing)
        ref.backward()
        rows.append({
            "processes": world,
            "grad": result["grad"],
            "single-process grad": logits.grad,
            "vocabulary per rank": v // world,
            "loss of each rank": [float(x) for x in result["loss"]],
            "single-process loss": ref.detach().item(),
            "max |grad difference|": float((result["grad"] - logits.grad).abs().max()),
            "seconds": seconds,
        })
    return rows


# --------------------------------------------------------------------------------------------
# measuring memory


def _rss_kib() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def peak_rss_growth(fn, *args, **kwargs) -> tuple[object, float | None]:
    """``(fn(*args, **kwargs), peak growth in bytes)``: how far the resident memory rose above its level
    at the call, on Linux (the kernel's high-water mark ``VmHWM`` is reset first through
    ``/proc/self/clear_refs``). CPU memory only; ``None`` where that interface is missing."""
    try:
        before = _rss_kib()["VmRSS"]
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        return fn(*args, **kwargs), None
    result = fn(*args, **kwargs)
    return result, (_rss_kib()["VmHWM"] - before) * 1024.0


# --------------------------------------------------------------------------------------------
# the book's tiny character-level language model


def stdlib_text(max_chars: int = 60_000) -> str:
    """Offline training text: the documentation strings of a few Python standard-library modules."""
    import collections
    import csv
    import datetime
    import fractions
    import functools
    import inspect
    import itertools
    import json
    import pathlib
    import random
    import statistics
    import string
    import textwrap

    parts = []
    for module in (json, csv, textwrap, statistics, fractions, random, string, datetime, functools, itertools,
                   collections, pathlib):
        parts.append(inspect.getdoc(module) or "")
        for name in sorted(vars(module)):
            obj = getattr(module, name)
            if not name.startswith("_") and callable(obj) and inspect.getdoc(obj):
                parts.append(inspect.getdoc(obj))
    text = "\n\n".join(p for p in parts if p)
    text = "".join(c for c in text if c.isascii() and (c.isprintable() or c == "\n"))
    return text[:max_chars]


class CharLM(torch.nn.Module):
    """A tiny causal character model: embedding, two causal (left-padded) convolutions, an LM head.

    Position ``t`` sees the characters ``t - 6 .. t`` (receptive field 7) and scores the next one.
    ``forward(ids (B, T)) -> logits (B, T, V)``.
    """

    def __init__(self, vocab: int, dim: int = 32, hidden: int = 64):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.conv1 = torch.nn.Conv1d(dim, hidden, kernel_size=4)
        self.conv2 = torch.nn.Conv1d(hidden, hidden, kernel_size=4)
        self.head = torch.nn.Linear(hidden, vocab)
        self.pad = torch.nn.ConstantPad1d((3, 0), 0.0)  # left only: position t never sees t + 1

    def hidden(self, ids: Tensor) -> Tensor:
        h = self.embed(ids).transpose(1, 2)
        h = torch.relu(self.conv1(self.pad(h)))
        h = torch.relu(self.conv2(self.pad(h)))
        return h.transpose(1, 2)

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(self.hidden(ids))


def train_char_lm(text: str, *, steps: int = 200, batch: int = 32, length: int = 32, z_loss_coef: float = 0.0,
                  lr: float = 3e-3, seed: int = 0, device=None, desc: str = "train") -> dict:
    """Train :class:`CharLM` on ``text`` with :func:`token_cross_entropy` (+ ``z_loss_coef`` z-loss).

    Returns ``{"model", "chars", "loss", "val_loss", "lse"}``: the model, its alphabet, the training
    loss per step, the held-out loss (the last tenth of the text) at the end, and the mean and
    max of :math:`|\\log Z|` over the batch at every step.
    """
    from .utils import progress, single_cpu_thread

    device = torch.device("cpu") if device is None else device
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text], device=device)
    split = int(len(ids) * 0.9)
    train, val = ids[:split], ids[split:]
    model = CharLM(len(chars)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"loss": [], "lse_mean": [], "lse_max": []}

    def windows(data, k):
        starts = torch.randint(0, len(data) - length - 1, (k,), generator=gen).to(device)
        return data[starts.unsqueeze(1) + torch.arange(length, device=device)]

    cm = single_cpu_thread() if device.type == "cpu" else contextlib.nullcontext()
    with cm:
        for _ in progress(range(steps), desc=desc):
            x = windows(train, batch)
            logits = model(x)
            loss = token_cross_entropy(logits, x)
            total = loss + z_loss_coef * z_loss(logits) if z_loss_coef else loss
            opt.zero_grad()
            total.backward()
            opt.step()
            with torch.no_grad():
                lse = logsumexp(logits.detach(), dim=-1).abs()
            history["loss"].append(loss.item())
            history["lse_mean"].append(lse.mean().item())
            history["lse_max"].append(lse.max().item())
        with torch.no_grad():
            xv = windows(val, 64)
            val_loss = token_cross_entropy(model(xv), xv).item()
    return {"model": model, "chars": chars, "val_loss": val_loss, **history}


@torch.no_grad()
def sample_char_lm(model: CharLM, chars: Sequence[str], prompt: str, n: int = 200, *, temperature: float = 0.8,
                   seed: int = 0) -> str:
    """Continue ``prompt`` with ``n`` characters sampled from the model (softmax at ``temperature``)."""
    from .softmax import softmax

    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    ids = [chars.index(c) for c in prompt if c in chars]
    for _ in range(n):
        ctx = torch.tensor([ids[-7:]], device=device)
        probs = softmax(model(ctx)[0, -1] / temperature, dim=-1).cpu()
        ids.append(int(torch.multinomial(probs, 1, generator=gen)))
    return "".join(chars[i] for i in ids)
