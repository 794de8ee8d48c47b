r"""Softmax, log-softmax and log-sum-exp, written from scratch with the max-shift trick.

Each function is a custom ``torch.autograd.Function`` with a hand-derived backward, which is
both faster than differentiating the forward graph and the clearest way to show the softmax
Jacobian as code:

* :math:`\partial\,\mathrm{LSE}(x)/\partial x_i = \mathrm{softmax}(x)_i`
* :math:`\partial L/\partial x = p \odot (g - \langle g, p\rangle)` for :math:`p = \mathrm{softmax}(x)`
* :math:`\partial L/\partial x = g - \mathrm{softmax}(x) \sum_j g_j` for log-softmax

Large inputs (e.g. ``(4096, 32000)`` logits of a language model) are memory-bound, so the code
avoids full-size temporaries and runs every pass block by block, a few megabytes of rows at a
time (``lossbook._kernels.blocks``): each step works in place on the block of the output (or
gradient) it returns, which is still in the CPU's cache from the step before, and the
exponentials whose only use is a sum go into one reused block-sized buffer. ``exp`` is
``lossbook._kernels.exp``, the same function computed as ``2 ** (x * log2(e))``, faster on the
CPU. When a graph of the backward itself is needed (double backward), the backward is the plain
differentiable formula instead.

Chapter: softmax
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._kernels import blocks, exp, exp_, fit, scratch
from ._validation import check_tensor

__all__ = ["logsumexp", "softmax", "log_softmax"]


# --------------------------------------------------------------------------------------------
# argument handling shared by the three functions


def _normalize_dim(input: Tensor, dim, fn: str) -> int:
    if dim is None:
        raise ValueError(
            f"{fn}: dim is None, but the dimension to normalise over must be given explicitly "
            f"(PyTorch's implicit choice is deprecated and picks dim=1 for a 2-D input of shape "
            f"{tuple(input.shape)}); pass e.g. dim=-1 for the class dimension of (N, C) logits"
        )
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{fn}: dim must be an int, got {type(dim).__name__}")
    n = max(input.dim(), 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    if not -n <= dim < n:
        raise ValueError(
            f"{fn}: dim={dim} is out of range for input of shape {tuple(input.shape)} "
            f"({input.dim()}-D); dim must be in [{-n}, {n - 1}]"
        )
    return dim % n if input.dim() > 0 else 0


def _prepare(input: Tensor, dtype, fn: str) -> Tensor:
    check_tensor(input, "input")
    if dtype is not None:
        input = input.to(dtype)
    if not input.is_floating_point():
        raise TypeError(
            f"{fn}: input has dtype {input.dtype}, but {fn} needs floating-point values; "
            f"convert it first or pass dtype=torch.float32"
        )
    return input


# --------------------------------------------------------------------------------------------
# log-sum-exp


def _exp_sum(x: Tensor, dims: tuple[int, ...], *, safe: bool, keep: bool) -> tuple[Tensor | None, Tensor, Tensor]:
    """``(e, m, total)``: the max-shifted exponentials of ``x`` and their sum along ``dims``.

    ``m`` is the max along ``dims`` (kept as size-1 dimensions), ``e = exp(x - m)`` and
    ``total = sum(e)``, so that ``LSE(x) = m + log(total)`` and ``softmax(x) = e / total``.
    Subtracting the max keeps every ``exp`` in [0, 1]. An infinite max cannot be subtracted
    (inf - inf = NaN): with ``safe`` it is replaced by 0, and rows of all ``-inf`` or with a
    ``+inf`` entry are then handled by plain IEEE arithmetic (LSE = -inf or +inf, as
    ``torch.logsumexp``); without it such rows give NaN (as a log-softmax does).

    The work runs block by block; ``e`` is returned as a tensor the size of ``x`` only if
    ``keep`` (for a backward that needs it), and otherwise lives one block at a time in a
    scratch buffer.
    """
    kept = [1 if d in dims else n for d, n in enumerate(x.shape)]
    if x.numel() == 0:  # an empty reduction: total 0, so log(total) = -inf, as in PyTorch
        return (torch.empty_like(x) if keep else None), x.new_zeros(kept), x.new_zeros(kept)
    m, total = x.new_empty(kept), x.new_empty(kept)
    idx = blocks(x, dims)
    e = torch.empty_like(x) if keep else None
    buf = None if keep else scratch(x, idx)
    for i in idx:
        xb, mb = x[i], m[i]
        torch.amax(xb, dim=dims, keepdim=True, out=mb)
        if safe:
            mb.masked_fill_(mb.isinf(), 0)
        eb = exp_(torch.sub(xb, mb, out=e[i] if keep else fit(buf, xb)))  # every term in [0, 1]
        torch.sum(eb, dim=dims, keepdim=True, out=total[i])
    return e, m, total


class _LogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dims: tuple[int, ...], keepdim: bool) -> Tensor:
        _, m, total = _exp_sum(x, dims, safe=True, keep=False)
        out_k = total.log_().add_(m)
        ctx.save_for_backward(x, out_k)
        ctx.dims, ctx.keepdim = dims, keepdim
        return out_k if keepdim else out_k.squeeze(dims)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, out_k = ctx.saved_tensors
        if not ctx.keepdim:
            for d in ctx.dims:  # sorted, so each unsqueeze lands where the dimension was
                grad = grad.unsqueeze(d)
        if torch.is_grad_enabled():  # double backward: a differentiable graph, LSE recomputed
            out_k = _LogSumExp.apply(x, ctx.dims, True)
            return grad * (x - out_k).exp(), None, None
        # d LSE / dx = exp(x - LSE(x)) = softmax(x)
        res = torch.empty_like(x)
        for i in blocks(x, ctx.dims):
            exp_(torch.sub(x[i], out_k[i], out=res[i])).mul_(grad[i])
        return res, None, None


def logsumexp(input: Tensor, dim: int | Sequence[int], keepdim: bool = False) -> Tensor:
    r"""Numerically stable :math:`\log \sum_i \exp(x_i)` along ``dim``.

    .. math::
        \mathrm{LSE}(x) = m + \log \sum_i e^{x_i - m}, \qquad m = \max_i x_i

    Shifting by the max keeps every exponential in :math:`[0, 1]`, so nothing overflows, and
    the largest term is exactly 1, so the sum never underflows to 0.

    Shape:
        - input: ``(*)``, any shape (0-d included).
        - output: ``input`` with ``dim`` removed (kept as size 1 if ``keepdim``).

    Args:
        input: a floating-point tensor (integer inputs are promoted to the default float dtype,
            as ``torch.logsumexp`` does).
        dim: the dimension, or tuple of dimensions, to reduce.
        keepdim: keep the reduced dimensions with size 1.

    Example:
        >>> logsumexp(torch.tensor([2.0, 1.0, 0.1]), dim=0)
        tensor(2.4170)

    Same name, signature and semantics as ``torch.logsumexp``: a row of all ``-inf`` gives
    ``-inf``, a ``+inf`` entry gives ``+inf``, an empty reduction gives ``-inf``.

    Chapter: softmax
    """
    check_tensor(input, "input")
    if not input.is_floating_point():
        input = input.to(torch.get_default_dtype())
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        raise ValueError("logsumexp: dim is empty; give the dimension(s) to reduce, e.g. dim=-1")
    normalized = [_normalize_dim(input, d, "logsumexp") for d in dims]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"logsumexp: dim={tuple(dims)} names the same dimension more than once; "
                         f"each dimension may be reduced only once")
    dims = tuple(sorted(normalized))
    if input.dim() == 0:
        return input.clone() if not input.requires_grad else input * 1
    return _LogSumExp.apply(input, dims, keepdim)


# --------------------------------------------------------------------------------------------
# softmax


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        out = torch.empty_like(x)
        if x.numel():
            for i in blocks(x, (dim,)):
                xb, ob = x[i], out[i]
                # unmasked max: a row with +inf (or all -inf) gives NaN, as in PyTorch
                exp_(torch.sub(xb, xb.amax(dim=dim, keepdim=True), out=ob))
                ob.mul_(ob.sum(dim=dim, keepdim=True).reciprocal_())
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (p,) = ctx.saved_tensors
        dim = ctx.dim
        # Jacobian-vector product of J = diag(p) - p p^T:  p * (g - <g, p>)
        if torch.is_grad_enabled():  # double backward: the differentiable formula
            return p * (grad - (grad * p).sum(dim=dim, keepdim=True)), None
        res = torch.empty_like(p)
        for i in blocks(p, (dim,)):
            pb, rb = p[i], res[i]
            torch.mul(grad[i], pb, out=rb)  # p * g, then minus p * <g, p>, in place
            torch.addcmul(rb, pb, rb.sum(dim=dim, keepdim=True), value=-1, out=rb)
        return res, None


def softmax(input: Tensor, dim: int | None = None, dtype: torch.dtype | None = None) -> Tensor:
    r"""Softmax along ``dim``: non-negative values that sum to 1.

    .. math::
        \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}} = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
        \qquad m = \max_j x_j

    Shape:
        - input: ``(*)``, any shape; output: same shape as ``input``.

    Args:
        input: logits (unnormalised scores).
        dim: the dimension to normalise over. Unlike PyTorch (which picks one with a
            deprecation warning), ``None`` is an error.
        dtype: if given, ``input`` is cast to it first; use ``dtype=torch.float32`` for
            float16/bfloat16 logits to compute in single precision.

    Example:
        >>> softmax(torch.tensor([2.0, 1.0, 0.1]), dim=0)
        tensor([0.6590, 0.2424, 0.0986])

    Same name, signature and semantics as ``torch.softmax``, including NaN for a row of
    all ``-inf`` or a row with a ``+inf`` entry.

    Chapter: softmax
    """
    x = _prepare(input, dtype, "softmax")
    d = _normalize_dim(x, dim, "softmax")
    if x.dim() == 0:
        return _Softmax.apply(x.unsqueeze(0), 0).squeeze(0)
    return _Softmax.apply(x, d)


# --------------------------------------------------------------------------------------------
# log-softmax


class _LogSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        out = torch.empty_like(x)
        if x.numel():
            idx = blocks(x, (dim,))
            buf = scratch(x, idx)
            for i in idx:
                xb, ob = x[i], out[i]
                # unmasked max: an infinite max gives NaN, as in PyTorch
                torch.sub(xb, xb.amax(dim=dim, keepdim=True), out=ob)
                e = exp(ob, out=fit(buf, ob))
                ob.sub_(e.sum(dim=dim, keepdim=True).log_())
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (out,) = ctx.saved_tensors
        dim = ctx.dim
        # d/dx of log_softmax: g - softmax(x) * sum(g), with softmax(x) = exp(out)
        if torch.is_grad_enabled():  # double backward: the differentiable formula
            return grad - out.exp() * grad.sum(dim=dim, keepdim=True), None
        res = torch.empty_like(out)
        for i in blocks(out, (dim,)):
            gb, rb = grad[i], res[i]
            exp(out[i], out=rb)
            torch.addcmul(gb, rb, gb.sum(dim=dim, keepdim=True), value=-1, out=rb)
        return res, None


def log_softmax(input: Tensor, dim: int | None = None, dtype: torch.dtype | None = None) -> Tensor:
    r"""Log-softmax along ``dim``, computed without ever forming ``softmax``.

    .. math::
        \log \mathrm{softmax}(x)_i = x_i - \mathrm{LSE}(x) = (x_i - m) - \log \sum_j e^{x_j - m}

    ``torch.log(softmax(x))`` underflows to ``-inf`` as soon as a probability is below the
    smallest float (about ``1e-45`` in float32); this form stays finite and exact.

    Shape:
        - input: ``(*)``, any shape; output: same shape as ``input``.

    Args:
        input: logits.
        dim: the dimension to normalise over (``None`` is an error, see :func:`softmax`).
        dtype: if given, ``input`` is cast to it first.

    Example:
        >>> log_softmax(torch.tensor([2.0, 1.0, 0.1]), dim=0)
        tensor([-0.4170, -1.4170, -2.3170])

    Same name, signature and semantics as ``torch.log_softmax``.

    Chapter: softmax
    """
    x = _prepare(input, dtype, "log_softmax")
    d = _normalize_dim(x, dim, "log_softmax")
    if x.dim() == 0:
        return _LogSoftmax.apply(x.unsqueeze(0), 0).squeeze(0)
    return _LogSoftmax.apply(x, d)
