"""The benchmark harness: a registry of rows and the code that times them."""
from __future__ import annotations

import csv
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.utils.benchmark as tb

__all__ = ["Bench", "register", "registry", "load_all", "time_fwd_bwd", "run", "write_results"]


@dataclass
class Bench:
    """One row: lossbook's function against its reference on the same inputs.

    ``make_inputs(device)`` returns ``(args, kwargs)``; floating-point tensors in ``args`` that
    have ``requires_grad=True`` receive gradients. Both functions are called with the same
    arguments, so a row compares like with like. ``target`` is the chapter's goal for the ratio
    lossbook / reference (informative: benchmarks are not pass/fail).
    """

    name: str
    chapter: str
    size: str
    make_inputs: Callable[[torch.device], tuple[tuple, dict]]
    ours: Callable
    reference: Callable
    target: float


_ROWS: list[Bench] = []


def register(bench: Bench) -> Bench:
    if any(b.name == bench.name for b in _ROWS):
        raise ValueError(f"a benchmark named {bench.name!r} is already registered")
    _ROWS.append(bench)
    return bench


def registry() -> list[Bench]:
    return list(_ROWS)


def load_all() -> list[Bench]:
    """Import every chapter module of the ``benchmarks`` package (which registers its rows)."""
    import benchmarks

    for info in pkgutil.iter_modules(benchmarks.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"benchmarks.{info.name}")
    return registry()


def _step(fn: Callable, args: tuple, kwargs: dict, leaves: list[torch.Tensor]) -> None:
    for t in leaves:
        t.grad = None
    out = fn(*args, **kwargs)
    out.backward(torch.ones_like(out))


def time_fwd_bwd(fn: Callable, args: tuple, kwargs: dict, *, min_run_time: float) -> float:
    """Median seconds of one forward + backward of ``fn(*args, **kwargs)``."""
    leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    timer = tb.Timer(
        stmt="_step(fn, args, kwargs, leaves)",
        globals={"_step": _step, "fn": fn, "args": args, "kwargs": kwargs, "leaves": leaves},
        num_threads=torch.get_num_threads(),
    )
    return timer.blocked_autorange(min_run_time=min_run_time).median


def run(rows: list[Bench], *, device: torch.device, min_run_time: float = 1.0, rounds: int = 3,
        log: Callable[[str], None] = print) -> list[dict]:
    """Time every row, alternating lossbook and reference ``rounds`` times; keep the best median."""
    results = []
    for b in rows:
        args, kwargs = b.make_inputs(device)
        _step(b.ours, args, kwargs, [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad])
        ours, ref = float("inf"), float("inf")
        for _ in range(rounds):
            ours = min(ours, time_fwd_bwd(b.ours, args, kwargs, min_run_time=min_run_time))
            ref = min(ref, time_fwd_bwd(b.reference, args, kwargs, min_run_time=min_run_time))
        row = {
            "chapter": b.chapter,
            "name": b.name,
            "size": b.size,
            "device": str(device),
            "lossbook_ms": round(ours * 1e3, 3),
            "torch_ms": round(ref * 1e3, 3),
            "ratio": round(ours / ref, 3),
            "target": b.target,
            "meets_target": ours / ref <= b.target,
        }
        log(f"{b.chapter:>14}  {b.name:<34} {b.size:<22} lossbook {row['lossbook_ms']:>9.2f} ms   "
            f"torch {row['torch_ms']:>9.2f} ms   ratio {row['ratio']:.2f} (target ≤ {b.target})")
        results.append(row)
    return results


def write_results(results: list[dict], out_dir: Path) -> None:
    """Write ``benchmarks.csv``, ``benchmarks.md`` and ``benchmarks.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = list(results[0].keys())
    with open(out_dir / "benchmarks.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(results)
    lines = [
        f"Forward + backward, `torch {torch.__version__}`, {torch.get_num_threads()} threads, "
        f"device `{results[0]['device']}`. Ratio = lossbook / PyTorch (lower is faster).",
        "",
        "| chapter | loss | size | lossbook (ms) | PyTorch (ms) | ratio | target |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        mark = "" if r["meets_target"] else " ✗"
        lines.append(f"| {r['chapter']} | `{r['name']}` | {r['size']} | {r['lossbook_ms']:.2f} | "
                     f"{r['torch_ms']:.2f} | {r['ratio']:.2f}{mark} | ≤ {r['target']} |")
    (out_dir / "benchmarks.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    from lossbook.plotting import new_figure

    fig, ax = new_figure(1, width=7.5, height=0.35 * len(results) + 1.2)
    names = [r["name"] for r in results]
    ratios = [r["ratio"] for r in results]
    colors = ["#009E73" if r["meets_target"] else "#D55E00" for r in results]
    ax.barh(range(len(results)), ratios, color=colors)
    ax.set_yticks(range(len(results)), names)
    ax.invert_yaxis()
    ax.axvline(1.0, color="0.3", lw=1)
    ax.set(xlabel="time ratio lossbook / PyTorch (forward + backward)", title="lossbook vs PyTorch")
    fig.savefig(out_dir / "benchmarks.png")
