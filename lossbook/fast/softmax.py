r"""Fast paths of ``lossbook.logsumexp``, ``softmax`` and ``log_softmax`` (definitions: ``lossbook.softmax``).

Large inputs (e.g. ``(4096, 32000)`` logits of a language model) are memory-bound, so these
kernels avoid full-size temporaries and run every pass block by block, a few megabytes of rows
at a time (:func:`lossbook.fast.kernels.blocks`): each step works in place on the block of the
output (or gradient) it returns, still in the CPU's cache from the step before, and the
exponentials whose only use is a sum go into one reused block-sized buffer. ``exp`` is
:func:`lossbook.fast.kernels.exp`, computed as ``2 ** (x * log2(e))``. The hand-written
backward passes are the softmax Jacobian as code:

* :math:`\partial\,\mathrm{LSE}(x)/\partial x_i = \mathrm{softmax}(x)_i`
* :math:`\partial L/\partial x = p \odot (g - \langle g, p\rangle)` for :math:`p = \mathrm{softmax}(x)`
* :math:`\partial L/\partial x = g - \mathrm{softmax}(x) \sum_j g_j` for log-softmax
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import run
from .kernels import blocks, exp, exp_, fit, scratch

__all__ = ["exp_sum", "logsumexp", "softmax", "log_softmax"]


def exp_sum(x: Tensor, dims: tuple[int, ...], *, safe: bool, keep: bool) -> tuple[Tensor | None, Tensor, Tensor]:
    """``(e, m, total)``: the max-shifted exponentials of ``x`` and their sum along ``dims``.

    ``m`` is the max along ``dims`` (kept as size-1 dimensions), ``e = exp(x - m)`` and
    ``total = sum(e)``, so that ``LSE(x) = m + log(total)`` and ``softmax(x) = e / total``. An
    infinite max cannot be subtracted (inf - inf = NaN): with ``safe`` it is replaced by 0 (rows
    of all ``-inf`` or with a ``+inf`` entry then get LSE = -inf or +inf by IEEE arithmetic);
    without it such rows give NaN (as a log-softmax does). ``e`` is returned as a tensor the
    size of ``x`` only if ``keep``; otherwise it lives one block at a time in a scratch buffer.
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


class _LogSumExp:
    def __init__(self, dims: tuple[int, ...], keepdim: bool):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, state, x: Tensor) -> Tensor:
        _, m, total = exp_sum(x, self.dims, safe=True, keep=False)
        out_k = total.log_().add_(m)
        state.out_k = out_k.detach()
        return out_k if self.keepdim else out_k.squeeze(self.dims)

    def backward(self, state, tensors, needs, grad: Tensor):
        (x,) = tensors
        if not self.keepdim:
            for d in self.dims:  # sorted, so each unsqueeze lands where the dimension was
                grad = grad.unsqueeze(d)
        res = torch.empty_like(x)
        for i in blocks(x, self.dims):  # d LSE / dx = exp(x - LSE(x)) = softmax(x)
            exp_(torch.sub(x[i], state.out_k[i], out=res[i])).mul_(grad[i])
        return (res,)


class _Softmax:
    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, state, x: Tensor) -> Tensor:
        out, dim = torch.empty_like(x), self.dim
        if x.numel():
            for i in blocks(x, (dim,)):
                xb, ob = x[i], out[i]
                # unmasked max: a row with +inf (or all -inf) gives NaN, as the definition
                exp_(torch.sub(xb, xb.amax(dim=dim, keepdim=True), out=ob))
                ob.mul_(ob.sum(dim=dim, keepdim=True).reciprocal_())
        state.p = out.detach()
        return out

    def backward(self, state, tensors, needs, grad: Tensor):
        p, dim = state.p, self.dim
        res = torch.empty_like(p)
        for i in blocks(p, (dim,)):  # J g with J = diag(p) - p p^T:  p * g - p * <g, p>, in place
            pb, rb = p[i], res[i]
            torch.mul(grad[i], pb, out=rb)
            torch.addcmul(rb, pb, rb.sum(dim=dim, keepdim=True), value=-1, out=rb)
        return (res,)


class _LogSoftmax:
    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, state, x: Tensor) -> Tensor:
        out, dim = torch.empty_like(x), self.dim
        if x.numel():
            idx = blocks(x, (dim,))
            buf = scratch(x, idx)
            for i in idx:
                xb, ob = x[i], out[i]
                torch.sub(xb, xb.amax(dim=dim, keepdim=True), out=ob)  # unmasked max: inf gives NaN
                e = exp(ob, out=fit(buf, ob))
                ob.sub_(e.sum(dim=dim, keepdim=True).log_())
        state.out = out.detach()
        return out

    def backward(self, state, tensors, needs, grad: Tensor):
        out, dim = state.out, self.dim
        res = torch.empty_like(out)
        for i in blocks(out, (dim,)):  # g - softmax(x) * sum(g), with softmax(x) = exp(out)
            gb, rb = grad[i], res[i]
            exp(out[i], out=rb)
            torch.addcmul(gb, rb, gb.sum(dim=dim, keepdim=True), value=-1, out=rb)
        return (res,)


def logsumexp(x: Tensor, dims: tuple[int, ...], keepdim: bool) -> Tensor:
    from ..softmax import logsumexp as definition

    return run(_LogSumExp(dims, keepdim), lambda x: definition(x, dims, keepdim), x)


def softmax(x: Tensor, dim: int) -> Tensor:
    from ..softmax import softmax as definition

    return run(_Softmax(dim), lambda x: definition(x, dim), x)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    from ..softmax import log_softmax as definition

    return run(_LogSoftmax(dim), lambda x: definition(x, dim), x)
