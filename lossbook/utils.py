"""Helpers the book uses in every chapter: device choice, seeding, showing lossbook's source."""
from __future__ import annotations

import contextlib
import inspect
import os
import random
import re
import textwrap
from collections.abc import Callable

import torch

__all__ = ["default_device", "seed_everything", "show_source", "loss_and_grad", "single_cpu_thread", "progress",
           "chapter_of", "torch_loss_coverage"]


def default_device() -> torch.device:
    """The device the book's notebooks run on.

    ``LOSSBOOK_DEVICE`` wins when it is set (``cpu``, ``cuda``, ``cuda:1``, ``mps``); otherwise
    CUDA if available, then Apple's MPS, then the CPU. Asking for a device that is not there
    raises a ``RuntimeError`` rather than silently falling back.
    """
    name = os.environ.get("LOSSBOOK_DEVICE", "").strip()
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"LOSSBOOK_DEVICE={name!r} but CUDA is not available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"LOSSBOOK_DEVICE={name!r} but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy (if installed) and PyTorch (CPU and CUDA); return a seeded CPU generator.

    The returned generator lets a notebook draw data that does not depend on how many random
    numbers earlier cells consumed.
    """
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency of the book, not of the package
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def _source_of(fn: Callable, docstring: bool) -> str:
    target = inspect.unwrap(fn)
    if isinstance(target, type) and issubclass(target, torch.autograd.Function):
        source = inspect.getsource(target)
    else:
        source = inspect.getsource(target)
    source = textwrap.dedent(source)
    if not docstring:
        doc = inspect.getdoc(target)
        if doc:
            import ast

            tree = ast.parse(source)
            node = tree.body[0]
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
                lines = source.splitlines()
                del lines[first.lineno - 1 : first.end_lineno]
                source = "\n".join(lines) + "\n"
    return source


def show_source(fn: Callable | str, *, docstring: bool = True):
    """Display the real source of a lossbook function, syntax-highlighted, in a notebook.

    The book never pastes a copy of the package's code: it shows it with this function, so
    what the reader sees is what the tests check. Returns an ``IPython.display.Code`` object
    (plain text outside a notebook). ``docstring=False`` hides the docstring to keep long
    functions short. ``fn`` may also be a dotted name such as ``"lossbook.softmax._row_max"``:
    a module's private helper, whose module is hidden behind a public function of the same name
    (``lossbook.softmax`` is the function), needs no import plumbing in the notebook.
    """
    import importlib

    from IPython.display import Code

    if isinstance(fn, str):
        module_name, _, attr = fn.rpartition(".")
        fn = getattr(importlib.import_module(module_name), attr)

    module = getattr(inspect.unwrap(fn), "__module__", "") or ""
    if not module.startswith("lossbook"):
        raise ValueError(
            f"show_source displays lossbook's own code; {getattr(fn, '__qualname__', fn)!r} "
            f"comes from {module or 'an unknown module'!r}"
        )
    return Code(_source_of(fn, docstring), language="python")


def loss_and_grad(fn: Callable, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate an element-wise loss ``fn(x)`` and its derivative by autograd, at every point of ``x``.

    ``fn`` must map a 1-D tensor to per-element losses of the same shape (``reduction='none'``).
    Returns ``(loss, dloss/dx)``, both detached. This is what ``plot_loss_and_grad`` draws.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of x (e.g. lambda x: loss(x, target, reduction='none')), "
                        f"got {type(fn).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"a tensor of dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a floating-point tensor (e.g. torch.linspace(-3, 3, 200)), got {got}")
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"fn must return a tensor of per-element losses, got {type(loss).__name__}")
    if loss.shape != x.shape:
        raise ValueError(
            f"fn must return one loss per element of x (shape {tuple(x.shape)}), got shape "
            f"{tuple(loss.shape)}; use reduction='none'"
        )
    if not loss.requires_grad:
        raise ValueError("fn's result does not depend differentiably on x (it does not require grad): "
                         "compute the loss from x with tensor operations, without .detach(), .item() or "
                         "integer casts")
    (grad,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
    if grad is None:  # the result requires grad through something else than x
        grad = torch.zeros_like(x)
    return loss.detach(), grad.detach()


@contextlib.contextmanager
def single_cpu_thread():
    """Run a block with PyTorch limited to one CPU thread, then restore the previous setting.

    The book's training demos use models with a few thousand parameters. On a CPU, splitting
    such small matrix products across threads costs more in synchronisation than it saves, and
    on a busy 2-core machine it can make a loop 10-50x slower. On CUDA this changes nothing
    that matters (only host-side work uses CPU threads).

    Example:
        >>> with single_cpu_thread():
        ...     pass  # train a tiny model here
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _RunSummary:
    """What :func:`progress` returns in a book build: no bar, one line per run when it ends.

    It iterates like a tqdm bar and accepts the calls the book makes on one (``set_postfix``,
    ``set_description``, ``update``, ``close``), so a notebook needs no second code path.
    """

    def __init__(self, iterable=None, desc: str | None = None, total: int | None = None, **_ignored):
        self.iterable, self.desc, self.postfix, self.n = iterable, desc, "", 0
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self._closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1
        self.close()

    def __len__(self) -> int:
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        name = f"{self.desc}: " if self.desc else ""
        tail = f" ({self.postfix})" if self.postfix else ""
        print(f"{name}{self.n} steps{tail}")


def progress(iterable=None, **kwargs):
    """A ``tqdm`` progress bar for the book's training loops.

    In Jupyter with ``ipywidgets`` installed (Colab, most JupyterLab set-ups) it is tqdm's widget
    bar; otherwise it is tqdm's text bar, without the ``IProgress not found`` warning that
    ``tqdm.auto`` prints when ``ipywidgets`` is missing. Keyword arguments go to ``tqdm``.

    When the book is built (``scripts/book.sh`` and ``scripts/test.sh`` set
    ``LOSSBOOK_PROGRESS=summary``), a bar would land in the page as frozen debris after the
    results it preceded; there each run prints one line when it ends instead: its description,
    its number of steps and its last ``set_postfix`` values.

    Example:
        >>> for step in progress(range(3), desc="train"):
        ...     pass
    """
    if os.environ.get("LOSSBOOK_PROGRESS") == "summary":
        return _RunSummary(iterable, **kwargs)

    import importlib.util

    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

        kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, **kwargs)


def chapter_of(fn: Callable) -> str | None:
    """The chapter a lossbook function is taught in: the ``Chapter: <label>`` line of its docstring.

    The label is the chapter's folder under ``book/`` (``cross-entropy`` and ``cross_entropy`` alike).
    """
    found = re.findall(r"^\s*Chapter:\s*(\S+)\s*$", inspect.getdoc(fn) or "", flags=re.M)
    return found[-1].replace("-", "_") if found else None


def torch_loss_coverage() -> list[dict]:
    """Every loss class of ``torch.nn``, its functional form, and whether (and where) lossbook has it.

    Generated from ``torch.nn`` and ``lossbook.__all__`` each time it is called, so that the book's
    coverage table cannot drift from the installed PyTorch or from the package. A class's functional
    form is the ``torch.nn.functional`` call its ``forward`` makes (``None`` for
    ``AdaptiveLogSoftmaxWithLoss``, which has none).

    Returns:
        One dict per class, sorted by name: ``{"module": "CrossEntropyLoss", "function": "cross_entropy",
        "in_lossbook": True, "chapter": "cross_entropy"}``.

    Example:
        >>> rows = torch_loss_coverage()
        >>> next(r for r in rows if r["module"] == "MSELoss")["chapter"]
        'regression'
    """
    import lossbook

    building_blocks = {"log_softmax", "softmax", "linear"}
    rows = []
    for name in sorted(dir(torch.nn)):
        cls = getattr(torch.nn, name)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module) and name.endswith(("Loss", "WithLoss"))):
            continue
        calls = re.findall(r"F\.(\w+)\(", inspect.getsource(cls.forward))
        function = next((c for c in calls if c not in building_blocks), None)
        ours = function in lossbook.__all__ if function else False
        rows.append({"module": name, "function": function, "in_lossbook": ours,
                     "chapter": chapter_of(getattr(lossbook, function)) if ours else None})
    return rows
