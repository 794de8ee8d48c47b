"""Benchmarks of the language-model chapter: the LM head and its loss, forward + backward, float32.

Two kinds of measurement:

* time rows for the shared table (``python -m benchmarks --filter llm``): lossbook's chunked
  ``linear_cross_entropy`` against torch's chunked path (target ≤ 1.1×) and against the naive
  ``cross_entropy(input @ W.T, target)`` (target ≤ 1.3×);
* the memory/time table of the chapter (``python -m benchmarks.llm [--out DIR]``): every method in a
  fresh subprocess, its peak memory measured as the growth of the process's maximum RSS across
  one forward + backward, after the inputs exist (the kernel's high-water mark is first reset to
  the current RSS, so nothing before the call counts; ``ru_maxrss`` growth where that is missing); then the wall and CPU
  seconds of ``--repeats`` further calls (best). Writes ``llm_memory.csv`` and ``llm_memory.md``.

Sizes: N = 4096 tokens, D = 1024, V = 65,536 (one float32 ``(N, V)`` logits tensor is 1 GiB).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import lossbook

from ._harness import Bench, register

N, D, V = 4096, 1024, 65_536
SIZE = f"N={N}, D={D}, V={V:,} f32"


def _inputs(n=N, d=D, v=V):
    def make(device):
        g = torch.Generator().manual_seed(0)
        # scaled in place: a temporary of W's size would raise the process's RSS high-water mark
        x = torch.randn(n, d, generator=g).div_(d**0.5).to(device).requires_grad_(True)
        w = torch.randn(v, d, generator=g).mul_(0.02).to(device).requires_grad_(True)
        t = torch.randint(0, v, (n,), generator=g).to(device)
        return (x, w, t), {}
    return make


def naive_lossbook(x, w, t):
    return lossbook.cross_entropy(x @ w.T, t)


def naive_torch(x, w, t):
    return F.cross_entropy(x @ w.T, t)


def chunked_torch(x, w, t):
    return F.linear_cross_entropy(x, w, t, options=torch.nn.LinearCrossEntropyOptions())


def chunked_lossbook(x, w, t):
    return lossbook.linear_cross_entropy(x, w, t)


METHODS = {
    "naive: lossbook.cross_entropy(x @ W.T)": naive_lossbook,
    "naive: F.cross_entropy(x @ W.T)": naive_torch,
    "torch chunked: F.linear_cross_entropy(options=...)": chunked_torch,
    "lossbook.linear_cross_entropy (chunked)": chunked_lossbook,
}

register(Bench("linear_cross_entropy vs torch chunked", "llm", SIZE, _inputs(), chunked_lossbook, chunked_torch,
               target=1.1))
register(Bench("linear_cross_entropy vs naive", "llm", SIZE, _inputs(), chunked_lossbook, naive_torch, target=1.3))


# --------------------------------------------------------------------------------------------
# the memory table: one fresh process per method


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure_one(method: str, threads: int = 2, size: tuple[int, int, int] = (N, D, V), repeats: int = 1) -> dict:
    """In this (fresh) process: peak RSS growth of one forward + backward, then the best of ``repeats`` timings
    (wall and CPU seconds)."""
    torch.set_num_threads(threads)
    fn = METHODS[method]
    (x, w, t), _ = _inputs(*size)(torch.device("cpu"))
    _, peak = lossbook.llm.peak_rss_growth(lambda: fn(x, w, t).backward())  # also the warm-up
    if peak is None:  # no /proc/self/clear_refs: the growth of ru_maxrss, without resetting it first
        before = _max_rss_bytes()
        fn(x, w, t).backward()
        peak = _max_rss_bytes() - before
    wall, cpu = [], []
    for _ in range(repeats):
        x.grad = w.grad = None
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(x, w, t).backward()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    # on a shared machine the CPU time of this process (all its threads) varies far less than the wall time
    return {"method": method, "peak_mb": round(peak / 2**20, 1), "seconds": round(min(wall), 3),
            "cpu_seconds": round(min(cpu), 3)}


def write_table(rows: list[dict], out: Path, *, threads: int, size: tuple[int, int, int]) -> None:
    """``llm_memory.csv`` and ``llm_memory.md`` in ``out``: the measured rows, with their ratios to
    torch's naive path (``F.cross_entropy(x @ W.T)``, the reference of the memory and time targets)
    and to torch's chunked path."""
    rows = [{k: r[k] for k in ("method", "peak_mb", "seconds", "cpu_seconds")} for r in rows]
    naive = next(r for r in rows if r["method"].startswith("naive: F."))
    torch_chunked = next(r for r in rows if r["method"].startswith("torch chunked"))
    for r in rows:
        r["memory_vs_torch_naive"] = round(r["peak_mb"] / naive["peak_mb"], 3)
        r["time_vs_torch_chunked"] = round(r["seconds"] / torch_chunked["seconds"], 3)
        r["cpu_vs_torch_chunked"] = round(r["cpu_seconds"] / torch_chunked["cpu_seconds"], 3)
        r["cpu_vs_torch_naive"] = round(r["cpu_seconds"] / naive["cpu_seconds"], 3)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "llm_memory.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    n, d, v = size
    lines = [f"`linear_cross_entropy` forward + backward, N={n}, D={d}, V={v:,} f32, torch {torch.__version__}, "
             f"{threads} threads, "
             f"CPU. Peak = growth of the process's max RSS in a fresh subprocess per method.", "",
             "| method | peak (MB) | wall s | CPU s | memory / torch naive | CPU time / torch chunked | "
             "CPU time / torch naive |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['method']} | {r['peak_mb']:.0f} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
              f"{r['memory_vs_torch_naive']:.3f} | {r['cpu_vs_torch_chunked']:.2f} | {r['cpu_vs_torch_naive']:.2f} |"
              for r in rows]
    (out / "llm_memory.md").write_text("\n".join(lines) + "\n")


def memory_table(out: Path, threads: int = 2, size: tuple[int, int, int] = (N, D, V), repeats: int = 1) -> list[dict]:
    rows = []
    for method in METHODS:
        cmd = [sys.executable, "-m", "benchmarks.llm", "--one", method, "--threads", str(threads),
               "--size", *map(str, size), "--repeats", str(repeats)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ))
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{row['method']:<52} peak {row['peak_mb']:>8.1f} MB   {row['seconds']:>7.2f} s wall   "
              f"{row['cpu_seconds']:>7.2f} s CPU", flush=True)
        rows.append(row)
    write_table(rows, out, threads=threads, size=size)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.llm", description=__doc__)
    p.add_argument("--one", help="measure one method in this process and print a JSON line")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, nargs=3, default=[N, D, V], metavar=("N", "D", "V"),
                   help="tokens, hidden size, vocabulary (smaller for a smoke run)")
    p.add_argument("--repeats", type=int, default=1, help="timed calls after the measured first one")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(measure_one(a.one, a.threads, tuple(a.size), a.repeats)))
        return 0
    memory_table(Path(a.out), a.threads, tuple(a.size), a.repeats)
    print(f"wrote {a.out}/llm_memory.csv and llm_memory.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
