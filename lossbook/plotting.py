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
from matplotlib.figure import Figure

__all__ = [
    "BOOK_STYLE",
    "PALETTE",
    "use_book_style",
    "new_figure",
    "plot_loss_and_grad",
    "plot_lines",
    "plot_heatmap",
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
