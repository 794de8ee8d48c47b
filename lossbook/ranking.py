r"""Ranking and metric-learning losses: margins, triplets with mining, contrastive and InfoNCE losses.

Four functions keep PyTorch's names and semantics exactly (``margin_ranking_loss``,
``cosine_embedding_loss``, ``triplet_margin_loss``, ``triplet_margin_with_distance_loss``).
The others follow pytorch-metric-learning (PML), with mining kept apart from the loss as PML
keeps its miners apart: :func:`batch_hard_triplets` says *which* triplets, the losses say what to
do with them.

Three private building blocks carry the numerics:

* :func:`_distance_matrix`, every pairwise distance of a batch, from a Gram matrix of the
  *centred* embeddings accumulated in float64, so that large-norm embeddings keep their small
  distances (``torch.cdist``'s matrix-product path turns a true distance of 0.011 at norm 1000
  into 0.0 in float32);
* :func:`_safe_sqrt`, a square root whose gradient at 0 is 0, not ``0 * inf = nan`` (the
  convention of ``torch.cdist``);
* :func:`_masked_logsumexp`, a log-sum-exp over the entries a mask keeps, in plain autograd
  operations (so ``torch.func`` and double backward work), ``-inf`` for an empty row with a
  zero, not NaN, gradient.

Every loss over a set of pairs or triplets returns a 0 that is still connected to the graph when
the set is empty, so ``embeddings.grad`` is zeros, not ``None``.

Chapter: ranking
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._reduction import check_reduction, reduce
from ._validation import (
    check_floating,
    check_ndim,
    check_positive,
    check_tensor,
    format_shape,
    warn_pitfall,
)

__all__ = [
    "margin_ranking_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "contrastive_loss",
    "batch_hard_triplets",
    "batch_hard_triplet_loss",
    "batch_all_triplet_loss",
    "nt_xent_loss",
    "supervised_contrastive_loss",
    "info_nce_loss",
]

_COSINE_EPS = 1e-12  # ATen's EPSILON in cosine_embedding_loss (added to each squared norm)


# --------------------------------------------------------------------------------------------
# building blocks


def _skip_value_checks(*tensors: Tensor) -> bool:
    """Data-dependent checks are skipped while tracing (torch.compile) or under vmap."""
    if torch.compiler.is_compiling():
        return True
    return any(torch._C._functorch.is_batchedtensor(t) for t in tensors)


def _pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6) -> Tensor:
    """``torch.pairwise_distance``: the p-norm of ``x1 - x2 + eps`` over the last dimension."""
    return torch.linalg.vector_norm(x1 - x2 + eps, ord=p, dim=-1)


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt(x) for x >= 0 whose gradient at x = 0 is 0 (the double ``where`` keeps inf out of backward)."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def _row_distance(x1: Tensor, x2: Tensor, squared: bool) -> Tensor:
    """Euclidean distance (or its square) between matching rows, from the exact differences."""
    d2 = (x1 - x2).pow(2).sum(-1)
    return d2 if squared else _safe_sqrt(d2)


def _distance_matrix(x: Tensor, squared: bool = False) -> Tensor:
    r"""All pairwise Euclidean distances of the rows of ``x`` (or their squares), ``(N, N)``.

    :math:`d_{ij}^2 = \|c_i\|^2 + \|c_j\|^2 - 2\,c_i \cdot c_j` with :math:`c = x - \bar x` in
    float64. Distances do not change when every row is shifted, and centring removes the large
    common offset that makes the expansion cancel; float64 keeps the rest of the cancellation
    below the input's precision for float32/float16 embeddings. The diagonal is exactly 0.
    """
    xd = x.to(torch.promote_types(x.dtype, torch.float64))
    c = xd - xd.mean(dim=0, keepdim=True)
    sq = c.pow(2).sum(1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * (c @ c.T)).clamp_min(0)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    d2 = d2.masked_fill(eye, 0)
    return (d2 if squared else _safe_sqrt(d2)).to(x.dtype)


def _normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Rows scaled to unit L2 norm, ``x / max(||x||, eps)`` (as PML's cosine similarity does)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(eps)


def _masked_logsumexp(x: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """log Σ exp(x) along ``dim`` over the entries where ``mask`` is True; ``-inf`` for an empty row.

    Max-shifted like :func:`lossbook.logsumexp`, but an empty row (an anchor with no negative) gets
    a zero gradient through the "double where", where a log-sum-exp of all ``-inf`` (lossbook's and
    PyTorch's) has the gradient ``0 / 0 = NaN``.
    """
    if mask is not None:
        x = x.masked_fill(~mask, float("-inf"))
    m = x.amax(dim=dim, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    total = (x - m).exp().sum(dim=dim)
    nonempty = total > 0
    safe = torch.where(nonempty, total, torch.ones_like(total))
    return torch.where(nonempty, safe.log() + m.squeeze(dim), torch.full_like(total, float("-inf")))


def _check_embeddings(embeddings: Tensor, labels: Tensor, fn: str) -> None:
    check_floating(embeddings, "embeddings")
    check_ndim(embeddings, "embeddings", (2,), expected="2-D (N, D)")
    check_tensor(labels, "labels")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{fn}: labels must hold integer class ids (e.g. torch.long), got {labels.dtype}")
    check_ndim(labels, "labels", (1,), expected="1-D (N,)")
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"{fn}: labels has {labels.shape[0]} entries but embeddings has {embeddings.shape[0]} rows; "
            "there must be one label per embedding"
        )


def _pair_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(positive, negative)`` boolean ``(N, N)`` masks: same label but not self; different label."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _zero(x: Tensor) -> Tensor:
    """A 0 that is still connected to the graph of ``x`` (``x.grad`` becomes zeros, not None)."""
    return x.sum() * 0


# --------------------------------------------------------------------------------------------
# PyTorch's four


def margin_ranking_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    r"""Margin ranking loss: ``input1`` should rank above ``input2`` by a margin when ``target`` is 1.

    .. math::
        \ell_n = \max\big(0,\ -y_n\,(x_{1,n} - x_{2,n}) + \Delta\big)

    It is the pairwise form of learning to rank (RankNet's pairs with a hinge instead of a
    logistic loss): :math:`y = 1` asks for :math:`x_1 \ge x_2 + \Delta`, :math:`y = -1` for the
    reverse.

    Shape:
        - input1, input2, target: ``(*)``, the same number of dimensions (broadcastable).
        - output: the broadcast shape for ``'none'``, ``()`` otherwise.

    Args:
        input1, input2: the scores of the two items of each pair.
        target: :math:`+1` if the first should rank higher, :math:`-1` otherwise.
        margin: :math:`\Delta \ge 0`, the gap asked for.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> margin_ranking_loss(torch.tensor([0.8, 0.1]), torch.tensor([0.5, 0.3]),
        ...                     torch.tensor([1.0, 1.0]), margin=0.1)
        tensor(0.1500)

    Same name, signature and semantics as ``torch.nn.functional.margin_ranking_loss`` (the
    deprecated ``size_average``/``reduce`` are left out).

    Chapter: ranking
    """
    for t, name in ((input1, "input1"), (input2, "input2"), (target, "target")):
        check_tensor(t, name)
    check_reduction(reduction)
    if not (input1.dim() == input2.dim() == target.dim()):
        raise ValueError(
            f"margin_ranking_loss: input1 {format_shape(input1)}, input2 {format_shape(input2)} and target "
            f"{format_shape(target)} must have the same number of dimensions"
        )
    loss = (-target * (input1 - input2) + margin).clamp_min(0)
    return reduce(loss, reduction)


def cosine_embedding_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    r"""Cosine embedding loss: similar pairs should point the same way, dissimilar ones apart.

    .. math::
        \ell_n = \begin{cases} 1 - \cos(x_{1,n}, x_{2,n}) & y_n = 1 \\
        \max\big(0,\ \cos(x_{1,n}, x_{2,n}) - \Delta\big) & y_n = -1 \end{cases}
        \qquad \cos(a, b) = \frac{a \cdot b}{\sqrt{(\|a\|^2 + \epsilon)(\|b\|^2 + \epsilon)}}

    with :math:`\epsilon = 10^{-12}` as in PyTorch. A target other than :math:`\pm 1` costs 0.
    Since the cosine lies in :math:`[-1, 1]`, a margin in about :math:`[0, 0.5]` makes sense:
    :math:`\Delta = 0` asks dissimilar pairs to be at least orthogonal, and :math:`\Delta < 0`
    pushes them towards opposite directions.

    Shape:
        - input1, input2: ``(N, D)`` with target ``(N,)``; or ``(D,)`` with target ``()``.
        - output: ``(N,)`` (or ``()``) for ``'none'``, ``()`` otherwise.

    Args:
        input1, input2: the two embeddings of each pair.
        target: :math:`+1` (similar) or :math:`-1` (dissimilar).
        margin: :math:`\Delta \in [-1, 1]`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> cosine_embedding_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]), torch.tensor([1.0]))
        tensor(0.2929)

    Same name, signature and semantics as ``torch.nn.functional.cosine_embedding_loss``.

    Chapter: ranking
    """
    for t, name in ((input1, "input1"), (input2, "input2"), (target, "target")):
        check_tensor(t, name)
    check_reduction(reduction)
    if target.dim() not in (0, 1):
        raise ValueError(f"cosine_embedding_loss: target has shape {format_shape(target)}; expected (N,) or ()")
    want = 2 if target.dim() == 1 else 1
    if input1.dim() != want or input2.dim() != want:
        raise ValueError(
            f"cosine_embedding_loss: a {target.dim()}-D target needs {want}-D inputs, got input1 "
            f"{format_shape(input1)} and input2 {format_shape(input2)}"
        )
    dim = target.dim()
    dot = (input1 * input2).sum(dim)
    cos = dot / ((input1 * input1).sum(dim) + _COSINE_EPS).mul((input2 * input2).sum(dim) + _COSINE_EPS).sqrt()
    zeros = torch.zeros_like(cos)
    loss = torch.where(target == 1, 1 - cos, zeros) + torch.where(target == -1, (cos - margin).clamp_min(0), zeros)
    return reduce(loss, reduction)


def _check_triplet_args(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float, reduction: str) -> None:
    for t, name in ((anchor, "anchor"), (positive, "positive"), (negative, "negative")):
        check_tensor(t, name)
    check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if not (anchor.dim() == positive.dim() == negative.dim()):
        raise ValueError(
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, "
            f"but got: anchor {anchor.dim()}D, positive {positive.dim()}D, and negative {negative.dim()}D inputs"
        )
    try:
        torch.broadcast_shapes(anchor.shape, positive.shape, negative.shape)
    except RuntimeError:
        raise ValueError(
            f"anchor {format_shape(anchor)}, positive {format_shape(positive)} and negative "
            f"{format_shape(negative)} do not broadcast to one shape; they must be (N, D) (or (D,)) each"
        ) from None


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    r"""Triplet margin loss: the anchor must be closer to the positive than to the negative by a margin.

    .. math::
        \ell_n = \max\big(0,\ d(a_n, p_n) - d(a_n, n_n) + \Delta\big), \qquad
        d(x, y) = \|x - y + \epsilon\|_p

    The distances are **not squared** (unlike FaceNet's formula), so :math:`\Delta` is in units of
    distance. With ``swap=True`` the negative distance is :math:`\min(d(a, n), d(p, n))`
    (Balntas et al., 2016).

    Shape:
        - anchor, positive, negative: ``(N, D)`` or ``(D,)``, the same number of dimensions.
        - output: ``(N,)`` (or ``()``) for ``'none'``, ``()`` otherwise.

    Args:
        anchor, positive, negative: the embeddings of the triplets.
        margin: :math:`\Delta > 0`.
        p: the norm of the distance.
        eps: added to the difference before the norm, as ``pairwise_distance`` does.
        swap: use the distance swap.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> triplet_margin_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]),
        ...                     torch.tensor([[1.5, 0.0]]), eps=0.0)
        tensor(0.5000)

    Same name, signature and semantics as ``torch.nn.functional.triplet_margin_loss``.

    Chapter: ranking
    """
    _check_triplet_args(anchor, positive, negative, margin, reduction)
    d_pos = _pairwise_distance(anchor, positive, p, eps)
    d_neg = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = torch.minimum(d_neg, _pairwise_distance(positive, negative, p, eps))
    return reduce((margin + d_pos - d_neg).clamp_min(0), reduction)


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: Callable[[Tensor, Tensor], Tensor] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    r"""Triplet margin loss with any distance: :math:`\max(0, d(a, p) - d(a, n) + \Delta)`.

    .. math::
        \ell_n = \max\big(0,\ d(a_n, p_n) - d(a_n, n_n) + \Delta\big)

    ``distance_function(x, y)`` maps two ``(N, D)`` batches to ``(N,)`` non-negative distances
    (default: ``pairwise_distance``, p = 2, eps = 1e-6, which makes this ``triplet_margin_loss``);
    e.g. ``lambda x, y: 1 - cosine_similarity(x, y)``. ``swap`` as in
    :func:`triplet_margin_loss`.

    Shape:
        - anchor, positive, negative: ``(N, D)`` or ``(D,)``, the same number of dimensions.
        - output: ``(N,)`` (or ``()``) for ``'none'``, ``()`` otherwise.

    Args:
        anchor, positive, negative: the embeddings of the triplets.
        distance_function: the distance, or ``None`` for the Euclidean one.
        margin: :math:`\Delta > 0`.
        swap: use the distance swap.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> l1 = lambda x, y: (x - y).abs().sum(-1)
        >>> triplet_margin_with_distance_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]]),
        ...                                   torch.tensor([[1.0, 0.0]]), distance_function=l1)
        tensor(2.)

    Same name, signature and semantics as ``torch.nn.functional.triplet_margin_with_distance_loss``.

    Chapter: ranking
    """
    _check_triplet_args(anchor, positive, negative, margin, reduction)
    distance = _pairwise_distance if distance_function is None else distance_function
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = torch.minimum(d_neg, distance(positive, negative))
    return reduce((margin + d_pos - d_neg).clamp_min(0), reduction)


# --------------------------------------------------------------------------------------------
# pairs with a margin


def contrastive_loss(
    input1: Tensor, input2: Tensor, target: Tensor, *, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    r"""Contrastive (pair) loss: similar pairs pay their squared distance, dissimilar ones until the margin.

    .. math::
        \ell_n = y_n\,D_n^2 + (1 - y_n)\,\max(0,\ \Delta - D_n)^2, \qquad
        D_n = \|x_{1,n} - x_{2,n} + \epsilon\|_2

    with :math:`y = 1` for a similar pair, :math:`0` for a dissimilar one and ``pairwise_distance``'s
    :math:`\epsilon = 10^{-6}`. The margin only acts on dissimilar pairs: a similar pair is pulled
    together at any distance, a dissimilar pair is pushed only while it is closer than
    :math:`\Delta` (otherwise every pair would be pushed apart forever and the embedding would
    expand without bound). Hadsell et al. (2006) write the same loss with factors :math:`\tfrac12`
    and the opposite labels (:math:`Y = 0` similar); this follows the now common 1 = similar.

    Shape:
        - input1, input2: ``(N, D)`` with target ``(N,)``; or ``(D,)`` with target ``()``.
        - output: ``(N,)`` (or ``()``) for ``'none'``, ``()`` otherwise.

    Args:
        input1, input2: the two embeddings of each pair.
        target: 1 (similar) or 0 (dissimilar), integer, boolean or floating.
        margin: :math:`\Delta > 0`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> contrastive_loss(torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.5, 0.0]]),
        ...                  torch.tensor([1, 0]))
        tensor(0.6250)

    Beyond PyTorch (which has no contrastive pair loss).

    Chapter: ranking
    """
    check_floating(input1, "input1")
    check_floating(input2, "input2")
    check_tensor(target, "target")
    check_reduction(reduction)
    check_positive(margin, "margin")
    if target.is_complex():
        raise TypeError(f"target must be 0/1 (integer, boolean or floating), got {target.dtype}")
    if input1.shape != input2.shape or input1.dim() not in (1, 2) or target.shape != input1.shape[:-1]:
        raise ValueError(
            f"contrastive_loss: input1 {format_shape(input1)}, input2 {format_shape(input2)} and target "
            f"{format_shape(target)} do not match; expected (N, D), (N, D) and (N,) (or (D,), (D,) and ())"
        )
    if not _skip_value_checks(target) and target.numel() and bool(((target != 0) & (target != 1)).any()):
        bad = target[(target != 0) & (target != 1)].flatten()[0].item()
        raise ValueError(
            f"contrastive_loss: target must be 1 (similar) or 0 (dissimilar), got {bad}; "
            "for ±1 labels use (target + 1) / 2"
        )
    d = _pairwise_distance(input1, input2)
    y = target.to(d.dtype)
    loss = y * d.pow(2) + (1 - y) * (margin - d).clamp_min(0).pow(2)
    return reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# triplets from a batch: mining kept apart from the loss


def _hardest(d: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per anchor: the farthest positive, the nearest negative, and whether it has both."""
    pos, neg = _pair_masks(labels)
    hardest_pos = d.masked_fill(~pos, float("-inf")).argmax(dim=1)
    hardest_neg = d.masked_fill(~neg, float("inf")).argmin(dim=1)
    return hardest_pos, hardest_neg, pos.any(dim=1) & neg.any(dim=1)


def batch_hard_triplets(embeddings: Tensor, labels: Tensor, *, squared: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    r"""Batch-hard mining: for every anchor, its farthest positive and its nearest negative.

    .. math::
        p^*(a) = \arg\max_{p:\,y_p = y_a,\ p \ne a} d(a, p), \qquad
        n^*(a) = \arg\min_{n:\,y_n \ne y_a} d(a, n)

    Anchors without a positive or without a negative are left out. The distances are exact
    Euclidean distances (see ``_distance_matrix``); ``squared`` does not change the choice and
    is accepted for symmetry with the losses. Equal to PML's ``BatchHardMiner`` with
    ``LpDistance(normalize_embeddings=False)`` on ordinary inputs (a tie may pick either index).

    Shape:
        - embeddings: ``(N, D)``; labels: ``(N,)`` integer class ids.
        - output: three ``(K,)`` long tensors ``(anchor, positive, negative)``, ``K <= N``.

    Args:
        embeddings: one embedding per row.
        labels: the class of each row; same class = positive.
        squared: mine on squared distances (the same triplets).

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
        >>> batch_hard_triplets(x, torch.tensor([0, 0, 1, 1]))
        (tensor([0, 1, 2, 3]), tensor([1, 0, 3, 2]), tensor([2, 2, 1, 1]))

    Chapter: ranking
    """
    _check_embeddings(embeddings, labels, "batch_hard_triplets")
    with torch.no_grad():
        pos, neg, valid = _hardest(_distance_matrix(embeddings.detach(), squared), labels)
    anchors = valid.nonzero().squeeze(1)
    return anchors, pos[anchors], neg[anchors]


def batch_hard_triplet_loss(
    embeddings: Tensor, labels: Tensor, *, margin: float = 1.0, squared: bool = False, soft: bool = False
) -> Tensor:
    r"""Batch-hard triplet loss (Hermans et al., 2017): each anchor against its hardest positive and negative.

    .. math::
        L = \frac{1}{|A|} \sum_{a \in A} \max\big(0,\ d(a, p^*(a)) - d(a, n^*(a)) + \Delta\big)

    over the anchors :math:`A` that have a positive and a negative (:func:`batch_hard_triplets`),
    with Euclidean distances (squared if ``squared``). ``soft=True`` replaces the hinge by
    :math:`\mathrm{softplus}(d(a, p^*) - d(a, n^*))` and ignores :math:`\Delta` (the soft-margin
    variant of Hermans et al.). The mean is over all those anchors, zero-loss ones included; PML's
    default ``AvgNonZeroReducer`` would average only the anchors whose loss is above 0. With no
    valid anchor the loss is a 0 still connected to the graph.

    Shape:
        - embeddings: ``(N, D)``; labels: ``(N,)`` integer class ids.
        - output: ``()``.

    Args:
        embeddings: one embedding per row.
        labels: the class of each row.
        margin: :math:`\Delta`.
        squared: use squared distances (FaceNet's form; :math:`\Delta` is then in squared units).
        soft: the soft-margin variant.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
        >>> batch_hard_triplet_loss(x, torch.tensor([0, 0, 1, 1]))
        tensor(0.)

    Chapter: ranking
    """
    _check_embeddings(embeddings, labels, "batch_hard_triplet_loss")
    with torch.no_grad():  # which triplets: no gradient flows through the choice
        pos, neg, valid = _hardest(_distance_matrix(embeddings.detach(), squared), labels)
    d_ap = _row_distance(embeddings, embeddings[pos], squared)  # exact, and only 2N distances carry grad
    d_an = _row_distance(embeddings, embeddings[neg], squared)
    loss = torch.logaddexp(d_ap - d_an, torch.zeros_like(d_ap)) if soft else (d_ap - d_an + margin).clamp_min(0)
    return (loss * valid).sum() / valid.sum().clamp_min(1)


def _batch_all_sums_dense(d: Tensor, pos: Tensor, neg: Tensor, margin: float) -> tuple[Tensor, Tensor, Tensor]:
    """The definition: (Σ loss, #loss > 0, #valid) over every (a, p, n), from an (N, N, N) tensor."""
    valid = pos.unsqueeze(2) & neg.unsqueeze(1)  # (a, p, n)
    loss = (d.unsqueeze(2) - d.unsqueeze(1) + margin).clamp_min(0) * valid
    return loss.sum(), (loss > 0).sum(), valid.sum()


def _batch_all_sums_sorted(d: Tensor, pos: Tensor, neg: Tensor, margin: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""The same three sums in :math:`O(N^2 \log N)`: for each (a, p), the active negatives are those
    with :math:`d_{an} < d_{ap} + \Delta`; after sorting each anchor's negative distances they are a
    prefix, so :math:`\sum_n [d_{ap} - d_{an} + \Delta]_+ = k\,(d_{ap} + \Delta) - \sum_{i<k} d_{a(i)}`
    with :math:`k` from ``searchsorted`` and the sum from a cumulative sum (autograd flows through
    the sort and the cumulative sum)."""
    neg_sorted, _ = d.masked_fill(~neg, float("inf")).sort(dim=1)
    finite = torch.where(torch.isinf(neg_sorted), torch.zeros_like(neg_sorted), neg_sorted)
    prefix = torch.cat([torch.zeros_like(finite[:, :1]), finite.cumsum(dim=1)], dim=1)  # (N, N + 1)
    threshold = d + margin  # (a, p)
    k = torch.searchsorted(neg_sorted.detach(), threshold.detach().contiguous(), side="left")  # #{n: d_an < t}
    per_pair = (k * threshold - prefix.gather(1, k)) * pos
    n_valid = (pos.sum(1) * neg.sum(1)).sum()
    return per_pair.sum(), (k * pos).sum(), n_valid


def batch_all_triplet_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    margin: float = 1.0,
    squared: bool = False,
    reduction: str = "mean_nonzero",
) -> Tensor:
    r"""Batch-all triplet loss: every valid (anchor, positive, negative) of the batch.

    .. math::
        \ell_{apn} = \max\big(0,\ d(a, p) - d(a, n) + \Delta\big), \qquad
        y_p = y_a,\ p \ne a,\ y_n \ne y_a

    ``reduction='mean_nonzero'`` (the default) averages the triplets whose loss is above 0 (PML's
    ``AvgNonZeroReducer``; 0 when none is): averaging over all valid triplets instead dilutes the
    loss with the many easy triplets that already satisfy the margin. ``'mean'`` does that
    anyway, ``'sum'`` sums, ``'none'`` returns one loss per valid triplet (ordered by anchor,
    positive, negative). The sums are computed without forming the :math:`N^3` tensor (see
    ``_batch_all_sums_sorted``, tested equal to ``_batch_all_sums_dense``).

    Shape:
        - embeddings: ``(N, D)``; labels: ``(N,)`` integer class ids.
        - output: ``(T,)`` for ``'none'`` (T valid triplets), ``()`` otherwise.

    Args:
        embeddings: one embedding per row.
        labels: the class of each row.
        margin: :math:`\Delta`.
        squared: use squared Euclidean distances.
        reduction: ``'mean_nonzero'`` | ``'mean'`` | ``'sum'`` | ``'none'``.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [1.5], [3.0]])
        >>> batch_all_triplet_loss(x, torch.tensor([0, 0, 1, 1]))  # 5 active triplets, sum 5.5
        tensor(1.1000)

    Chapter: ranking
    """
    _check_embeddings(embeddings, labels, "batch_all_triplet_loss")
    check_reduction(reduction, ("mean_nonzero", "mean", "sum", "none"))
    d = _distance_matrix(embeddings, squared)
    pos, neg = _pair_masks(labels)
    if reduction == "none":
        valid = pos.unsqueeze(2) & neg.unsqueeze(1)
        return (d.unsqueeze(2) - d.unsqueeze(1) + margin).clamp_min(0)[valid]
    total, active, n_valid = _batch_all_sums_sorted(d, pos, neg, margin)
    if reduction == "sum":
        return total
    return total / (active if reduction == "mean_nonzero" else n_valid).clamp_min(1)


# --------------------------------------------------------------------------------------------
# temperature-scaled contrastive losses


def _check_temperature(temperature: float) -> None:
    check_positive(temperature, "temperature")
    if temperature < 0.02:
        warn_pitfall(
            f"temperature={temperature} makes the logits up to {1 / temperature:.0f}: exp() of them overflows "
            "float32 unless it is max-shifted (lossbook's is), and the gradient goes to the single hardest "
            "negative; SimCLR/SupCon use 0.05-0.5",
            stacklevel=5,  # the caller of the loss, not the loss
        )


def _similarities(embeddings: Tensor, labels: Tensor, temperature: float, fn: str) -> tuple[Tensor, Tensor, Tensor]:
    """Checked inputs -> (cosine similarities / τ, positive mask, negative mask), all (N, N)."""
    _check_embeddings(embeddings, labels, fn)
    _check_temperature(temperature)
    z = _normalize(embeddings)
    return z @ z.T / temperature, *_pair_masks(labels)


def nt_xent_loss(embeddings: Tensor, labels: Tensor, *, temperature: float = 0.07) -> Tensor:
    r"""NT-Xent (SimCLR): each positive pair against the anchor's negatives, by a softmax over cosines.

    .. math::
        \ell_{ap} = -\log \frac{e^{s_{ap}/\tau}}{e^{s_{ap}/\tau} + \sum_{n:\,y_n \ne y_a} e^{s_{an}/\tau}},
        \qquad s_{ij} = \frac{x_i \cdot x_j}{\|x_i\|\,\|x_j\|}

    averaged over every ordered positive pair :math:`(a, p)`, :math:`y_p = y_a`, :math:`p \ne a`.
    In SimCLR the labels are the index of the source image, so each row's only positive is the
    other view; with class labels the other positives are neither in the numerator nor the
    denominator. No positive pair, or no negative pair, in the batch gives a connected 0.

    Shape:
        - embeddings: ``(N, D)``; labels: ``(N,)`` integer ids (equal ids = positive pair).
        - output: ``()``.

    Args:
        embeddings: one embedding per row (normalised inside).
        labels: which rows are positive pairs of each other.
        temperature: :math:`\tau > 0`.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> nt_xent_loss(x, torch.tensor([0, 0, 0, 1]), temperature=0.5)
        tensor(0.5777)

    Equal to PML's ``NTXentLoss(temperature)`` (Chen et al., 2020).

    Chapter: ranking
    """
    s, pos, neg = _similarities(embeddings, labels, temperature, "nt_xent_loss")
    neg_lse = _masked_logsumexp(s, neg, dim=1)  # log Σ_n e^{s_an}, -inf if a has no negative
    loss = (torch.logaddexp(s, neg_lse.unsqueeze(1)) - s) * pos
    value = loss.sum() / pos.sum().clamp_min(1)
    return torch.where(pos.any() & neg.any(), value, _zero(embeddings))


def supervised_contrastive_loss(embeddings: Tensor, labels: Tensor, *, temperature: float = 0.1) -> Tensor:
    r"""Supervised contrastive loss (Khosla et al., 2020, :math:`\mathcal L^{sup}_{out}`).

    .. math::
        \ell_a = -\frac{1}{|P(a)|} \sum_{p \in P(a)} \log
        \frac{e^{s_{ap}/\tau}}{\sum_{k \ne a} e^{s_{ak}/\tau}}, \qquad
        L = \frac{1}{|\{a : P(a) \ne \emptyset\}|} \sum_{a:\,P(a) \ne \emptyset} \ell_a

    with cosine similarities :math:`s` and :math:`P(a)` the other samples of :math:`a`'s class.
    The anchor itself is **excluded from the denominator** (with it, the largest logit
    :math:`1/\tau` dominates every row), and anchors without positives are left out of the mean
    (not counted as 0). No negative pair in the batch gives a connected 0, as in PML.

    Shape:
        - embeddings: ``(N, D)``; labels: ``(N,)`` integer class ids.
        - output: ``()``.

    Args:
        embeddings: one embedding per row (normalised inside).
        labels: the class of each row.
        temperature: :math:`\tau > 0`.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> supervised_contrastive_loss(x, torch.tensor([0, 0, 0, 1]), temperature=0.5)
        tensor(1.1625)

    Equal to PML's ``SupConLoss(temperature)`` (whose ``AvgNonZeroReducer`` also drops an anchor
    whose loss is exactly 0, which only happens when it has no negative).

    Chapter: ranking
    """
    s, pos, neg = _similarities(embeddings, labels, temperature, "supervised_contrastive_loss")
    log_prob = s - _masked_logsumexp(s, pos | neg, dim=1).unsqueeze(1)  # the denominator skips k = a
    n_pos = pos.sum(1)
    per_anchor = -(log_prob * pos).sum(1) / n_pos.clamp_min(1)
    has_pos = n_pos > 0
    value = (per_anchor * has_pos).sum() / has_pos.sum().clamp_min(1)
    return torch.where(pos.any() & neg.any(), value, _zero(embeddings))


def info_nce_loss(
    query: Tensor,
    positive_key: Tensor,
    negative_keys: Tensor | None = None,
    *,
    temperature: float = 0.1,
    reduction: str = "mean",
) -> Tensor:
    r"""InfoNCE (van den Oord et al., 2018) in MoCo's form: pick the positive key among the negatives.

    .. math::
        \ell_n = -\log \frac{e^{\hat q_n \cdot \hat k^+_n/\tau}}
        {e^{\hat q_n \cdot \hat k^+_n/\tau} + \sum_{m} e^{\hat q_n \cdot \hat k^-_m/\tau}}

    with L2-normalised vectors (cosine similarities). ``negative_keys`` ``(M, D)`` are shared by
    every query (MoCo's queue). Without them, the other rows' positive keys are the negatives
    (in-batch negatives, as in CLIP's one direction), so the loss is the cross-entropy of the
    :math:`N \times N` similarity matrix with the diagonal as the target class:
    ``cross_entropy(q̂ k̂ᵀ / τ, arange(N))``. An empty batch gives a connected 0.

    Shape:
        - query, positive_key: ``(N, D)``; negative_keys: ``(M, D)`` or ``None``.
        - output: ``(N,)`` for ``'none'``, ``()`` otherwise.

    Args:
        query: the queries.
        positive_key: the positive key of each query.
        negative_keys: keys that are negatives for every query, or ``None``.
        temperature: :math:`\tau > 0`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Example:
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> info_nce_loss(q, q, temperature=1.0)
        tensor(0.3133)

    Follows the ``info-nce-pytorch`` package's convention (``negative_mode='unpaired'``).

    Chapter: ranking
    """
    check_floating(query, "query")
    check_floating(positive_key, "positive_key")
    check_ndim(query, "query", (2,), expected="2-D (N, D)")
    check_reduction(reduction)
    check_positive(temperature, "temperature")
    if positive_key.shape != query.shape:
        raise ValueError(
            f"positive_key has shape {format_shape(positive_key)} but query has shape {format_shape(query)}; "
            "each query needs one positive key of the same size"
        )
    if query.shape[0] == 0:  # no pair at all: a connected 0 (an empty tensor for 'none')
        zero = _zero(query) + _zero(positive_key)
        return zero.expand(0) if reduction == "none" else zero
    q, k = _normalize(query), _normalize(positive_key)
    if negative_keys is None:
        logits = q @ k.T / temperature  # row n: its own key (the diagonal) against the others
        positive = logits.diagonal()
    else:
        check_floating(negative_keys, "negative_keys")
        if negative_keys.dim() != 2 or negative_keys.shape[1] != query.shape[1]:
            raise ValueError(
                f"negative_keys has shape {format_shape(negative_keys)}; expected (M, {query.shape[1]}), "
                "keys of the queries' size shared by every query"
            )
        positive = (q * k).sum(1) / temperature
        logits = torch.cat([positive.unsqueeze(1), q @ _normalize(negative_keys).T / temperature], dim=1)
    return reduce(_masked_logsumexp(logits, dim=1) - positive, reduction)
