r"""Fast path of the overlap losses' counts (``lossbook.segmentation._counts``) after a softmax.

The definition takes :math:`p = \mathrm{softmax}(x)` over the channels, then
:math:`TP = \sum_i p_i y_i` and :math:`\sum_i p_i` per sample and class, and lets autograd walk
back through five nodes, three of which write a gradient the size of the input. Every overlap loss
is a function :math:`L(TP, \textstyle\sum p)` of these sums, so its gradient with respect to
:math:`p` is one affine map of the target per sample and class,

.. math::
    d_i = \frac{\partial L}{\partial p_i} = \frac{\partial L}{\partial TP}\, y_i + \frac{\partial L}{\partial \sum p},

and the softmax Jacobian turns it into :math:`\partial L / \partial x = p \odot (d - \langle d, p\rangle_c)`.
The forward's :math:`p \odot y` (needed for :math:`TP`) is kept and becomes that gradient in place,
:math:`p \odot d = L_{TP}\,(p \odot y) + L_{\Sigma p}\, p`: the backward allocates nothing the size of
the input and never reads the target.
"""
from __future__ import annotations

from torch import Tensor

from . import run
from .softmax import _Softmax

__all__ = ["softmax_counts"]


class _SoftmaxCounts:
    def __init__(self, dims: tuple[int, ...]):
        self.dims = dims

    def forward(self, state, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        p = _Softmax(1).forward(state, x)  # keeps state.p for the backward
        state.py = p * y  # kept: the backward turns it into the gradient in place
        return state.py.sum(self.dims), p.sum(self.dims)

    def backward(self, state, tensors, needs, g_tp: Tensor, g_sp: Tensor):
        p = state.p
        _, y = tensors
        kept = [1 if d in self.dims else n for d, n in enumerate(p.shape)]
        g_tp, g_sp = g_tp.reshape(kept), g_sp.reshape(kept)
        gx = gy = None
        if needs[1]:
            gy = p * g_tp
        if needs[0]:
            # p * dL/dp = L_TP (p y) + L_Σp p, from the forward's p y (a second backward of the
            # same graph, with retain_graph=True, finds it used and recomputes it)
            py, state.py = (state.py if state.py is not None else p * y), None
            d = py.mul_(g_tp).addcmul_(p, g_sp)
            gx = d.addcmul_(p, d.sum(1, keepdim=True), value=-1)  # p * (dL/dp - <dL/dp, p>)
        return gx, gy


def _definition(x: Tensor, y: Tensor, dims: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    from ..segmentation import _softmax

    p = _softmax(x, 1)
    return (p * y).sum(dims), p.sum(dims)  # as in _tp_fp_fn


def softmax_counts(x: Tensor, y: Tensor, dims: list[int]) -> tuple[Tensor, Tensor]:
    """``(TP, Σp)`` over ``dims`` for ``p = softmax(x, 1)`` and a one-hot ``y`` of ``x``'s shape."""
    dims = tuple(dims)
    return run(_SoftmaxCounts(dims), lambda x, y: _definition(x, y, dims), x, y)
