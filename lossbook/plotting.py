"""The book's figure style and figure helpers.

A helper takes data and returns a ``matplotlib`` ``Figure``; it never computes a loss
(``lossbook.utils.loss_and_grad`` does that). Every chapter uses these helpers, so the whole
book shares one look.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = [
    "BOOK_STYLE",
    "PALETTE",
    "use_book_style",
    "new_figure",
    "plot_loss_and_grad",
    "plot_lines",
    "plot_heatmap",
    "plot_tree",
    "tree_of",
]

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
"""Okabe–Ito colours: distinguishable with the common forms of colour blindness."""

BOOK_STYLE = {
    "figure.figsize": (7.0, 3.2),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.autolayout": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 2.0,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "font.family": "DejaVu Sans",
}


def use_book_style() -> None:
    """Apply the book's style to every later figure (each notebook's first cell calls it).

    In a notebook it also turns on inline figures, so that a cell ending with a ``Figure``
    shows it as an image: recent ipykernel/matplotlib-inline versions register the PNG
    formatter for figures only once the inline backend is activated.
    """
    plt.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    shell = get_ipython()
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        shell.run_line_magic("matplotlib", "inline")
        plt.rcParams.update(BOOK_STYLE)  # the magic resets a few rcParams


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float | None = None, height: float | None = None,
               **kwargs):
    """A figure in the book's style: ``(fig, axes)`` like ``plt.subplots``, sized for the page."""
    w = width if width is not None else min(3.6 * ncols, 10.0)
    h = height if height is not None else 3.2 * nrows
    with plt.rc_context(BOOK_STYLE):
        # A bare Figure, not pyplot's: a notebook cell that ends with `fig` shows it exactly once
        # (pyplot would display it a second time), and nothing accumulates in pyplot's registry.
        fig = Figure(figsize=(w, h), layout="constrained")
        axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def plot_loss_and_grad(
    x,
    curves: Mapping[str, tuple[object, object]],
    *,
    xlabel: str = "error $e$",
    loss_label: str = "loss",
    grad_label: str = "gradient",
    title: str = "",
    ylim_loss: tuple[float, float] | None = None,
    ylim_grad: tuple[float, float] | None = None,
):
    """A loss and its gradient over one variable, side by side, one line per setting.

    Args:
        x: the points on the horizontal axis, shape ``(M,)``.
        curves: ``{label: (loss, grad)}``, each of shape ``(M,)`` — for example one entry per
            value of a hyper-parameter, computed with :func:`lossbook.utils.loss_and_grad`.
        xlabel, loss_label, grad_label, title: axis labels and an overall title.
        ylim_loss, ylim_grad: optional limits of the two vertical axes.

    Returns:
        The ``Figure`` (left: the loss; right: its derivative).
    """
    if not curves:
        raise ValueError("curves must contain at least one (loss, grad) pair")
    fig, (ax_l, ax_g) = new_figure(2, width=9.0, height=3.4)
    xs = _np(x)
    with plt.rc_context(BOOK_STYLE):
        for i, (label, (loss, grad)) in enumerate(curves.items()):
            color = PALETTE[i % len(PALETTE)]
            ax_l.plot(xs, _np(loss), label=label, color=color)
            ax_g.plot(xs, _np(grad), label=label, color=color)
        ax_l.set(xlabel=xlabel, ylabel=loss_label, title=loss_label)
        ax_g.set(xlabel=xlabel, ylabel=grad_label, title=grad_label)
        ax_g.axhline(0, color="0.5", lw=0.8)
        if ylim_loss:
            ax_l.set_ylim(*ylim_loss)
        if ylim_grad:
            ax_g.set_ylim(*ylim_grad)
        if len(curves) > 1:
            ax_l.legend()
        if title:
            fig.suptitle(title)
    return fig


def plot_lines(
    x,
    ys: Mapping[str, object],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    ax=None,
    styles: Sequence[str] | None = None,
    logy: bool = False,
):
    """Several curves over one shared x axis, labelled. Returns the ``Figure``."""
    if ax is None:
        fig, ax = new_figure(1, width=6.0, height=3.4)
    else:
        fig = ax.figure
    xs = _np(x)
    with plt.rc_context(BOOK_STYLE):
        for i, (label, y) in enumerate(ys.items()):
            style = styles[i] if styles else "-"
            ax.plot(xs, _np(y), style, label=label, color=PALETTE[i % len(PALETTE)])
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        if logy:
            ax.set_yscale("log")
        if len(ys) > 1:
            ax.legend()
    return fig


def plot_heatmap(
    values,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
    colorbar_label: str = "",
    cmap: str = "viridis",
    ax=None,
    **imshow_kwargs,
):
    """A matrix as an image with labelled axes and a colour bar. Returns the ``Figure``."""
    if ax is None:
        fig, ax = new_figure(1, width=6.5, height=3.8)
    else:
        fig = ax.figure
    with plt.rc_context(BOOK_STYLE):
        im = ax.imshow(_np(values), aspect="auto", cmap=cmap, origin="upper", **imshow_kwargs)
        ax.grid(False)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        if xticklabels is not None:
            ax.set_xticks(range(len(xticklabels)), xticklabels)
        if yticklabels is not None:
            ax.set_yticks(range(len(yticklabels)), yticklabels)
        cb = fig.colorbar(im, ax=ax)
        if colorbar_label:
            cb.set_label(colorbar_label)
    return fig


def plot_tree(
    paths: Sequence[Sequence[str]],
    *,
    level_titles: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    title: str = "",
    fontsize: float = 8.0,
    row_height: float = 0.25,
    gap: float = 0.5,
):
    """A left-to-right tree (a decision flowchart) drawn from its root-to-leaf paths.

    Every path is a sequence of node labels, one per level, all of the same length; paths that
    share a prefix share those nodes, so ``[("a", "x"), ("a", "y")]`` draws one node ``a`` with an
    arrow to each of ``x`` and ``y``. The leaves keep the order of ``paths`` from top to bottom (a
    little space separates the first level's subtrees) and a parent sits level with the middle of
    its leaves. Labels are drawn boxed in a monospaced font, sized so that no column overlaps the
    next: the figure grows with the tree (about ``row_height`` inches per leaf).

    Each node is a ``Text`` with ``gid`` ``"tree-node/<level>"``, and each arrow an annotation
    anchored on the parent's and the child's ``Text``, so :func:`tree_of` can read the drawn tree back.

    Args:
        paths: the root-to-leaf label sequences, shape ``(leaves, levels)``.
        level_titles: a heading per level, drawn above its column.
        groups: one name per path; the leaves are coloured by group, with a legend below the tree.
        title: a title above the tree.
        fontsize, row_height, gap: label size in points, inches per leaf, inches between columns.

    Returns:
        The ``Figure``.
    """
    paths = [tuple(p) for p in paths]
    if not paths:
        raise ValueError("paths must contain at least one root-to-leaf path")
    depth = len(paths[0])
    if depth == 0 or any(len(p) != depth for p in paths):
        raise ValueError(f"every path must have the same number (>= 1) of labels; got lengths "
                         f"{sorted({len(p) for p in paths})}")
    if level_titles is not None and len(level_titles) != depth:
        raise ValueError(f"level_titles has {len(level_titles)} entries but the paths have {depth} levels")
    if groups is not None and len(groups) != len(paths):
        raise ValueError(f"groups has {len(groups)} entries but there are {len(paths)} paths")
    # rows from the top: a leaf per path, half a row between first-level subtrees
    ys, y = [], 0.0
    for i, path in enumerate(paths):
        if i and path[0] != paths[i - 1][0]:
            y += 0.5 * row_height
        ys.append(y)
        y += row_height
    nodes: dict[tuple[str, ...], list[float]] = {}  # prefix -> the rows of its leaves, in drawing order
    for path, y in zip(paths, ys):
        for level in range(depth):
            nodes.setdefault(path[: level + 1], []).append(y)
    char, pad = 0.61 * fontsize / 72, 0.12  # a monospaced glyph's advance, and the box padding, in inches
    widths = [max(len(prefix[-1]) for prefix in nodes if len(prefix) == level + 1) * char + 2 * pad
              for level in range(depth)]
    xs = [0.15 + pad + sum(widths[:level]) + gap * level for level in range(depth)]
    width = xs[-1] + widths[-1] + 0.15
    names = list(dict.fromkeys(groups)) if groups is not None else []
    # the legend below the tree: one line if its entries fit across the figure, else two columns
    ncol = len(names) if sum(len(n) * 0.55 * fontsize / 72 + 0.5 for n in names) < width else min(2, len(names))
    header = (0.45 if level_titles else 0.15) + (0.3 if title else 0.0)
    footer = 0.1 + 0.22 * -(-len(names) // max(ncol, 1)) + (0.15 if names else 0.0)
    height = header + y + footer
    with plt.rc_context(BOOK_STYLE):
        fig = Figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)  # inches from the top
        ax.axis("off")
        colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
        leaf_group = dict(zip(paths, groups)) if groups is not None else {}
        texts = {}
        for prefix, rows in nodes.items():
            level = len(prefix) - 1
            edge = colour[leaf_group[prefix]] if prefix in leaf_group else "0.35"
            face = to_rgba(edge, 0.18) if prefix in leaf_group else "white"
            texts[prefix] = ax.text(
                xs[level], header + (rows[0] + rows[-1]) / 2 + row_height / 2, prefix[-1], ha="left", va="center",
                family="monospace", fontsize=fontsize, gid=f"tree-node/{level}",
                bbox={"boxstyle": f"round,pad={pad * 72 / fontsize / 2:.3f}", "fc": face, "ec": edge, "lw": 0.8})
            if level:
                ax.annotate("", xy=(0, 0.5), xycoords=texts[prefix], xytext=(1, 0.5), textcoords=texts[prefix[:-1]],
                            arrowprops={"arrowstyle": "-|>", "color": "0.45", "lw": 0.7, "shrinkA": 3, "shrinkB": 3,
                                        "mutation_scale": 7})
        for level, heading in enumerate(level_titles or ()):
            ax.text(xs[level], header - 0.2, heading, ha="left", va="bottom", fontsize=fontsize + 1, weight="bold")
        if title:
            ax.text(width / 2, 0.12, title, ha="center", va="top", fontsize=BOOK_STYLE["axes.titlesize"])
        if names:
            handles = [Patch(facecolor=to_rgba(colour[n], 0.18), edgecolor=colour[n], label=n) for n in names]
            fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=fontsize, frameon=False,
                       handlelength=1.2, columnspacing=1.2)
    return fig


def tree_of(fig) -> tuple[dict[int, list[str]], list[tuple[str, str]]]:
    """What a :func:`plot_tree` figure shows, read back from its artists.

    Returns ``(levels, arrows)``: the node labels of each level from top to bottom, and one
    ``(parent label, child label)`` pair per arrow drawn. A test (or a page) compares them with the
    data the tree was drawn from.
    """
    from matplotlib.text import Annotation

    ax = fig.axes[0]
    nodes = [t for t in ax.texts if (t.get_gid() or "").startswith("tree-node/")]
    levels: dict[int, list[str]] = {}
    for t in sorted(nodes, key=lambda t: t.get_position()[1]):  # the y axis counts inches from the top
        levels.setdefault(int(t.get_gid().split("/")[1]), []).append(t.get_text())
    arrows = [(a.anncoords.get_text(), a.xycoords.get_text()) for a in ax.texts if isinstance(a, Annotation)]
    return levels, arrows
