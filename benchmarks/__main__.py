"""``python -m benchmarks [--filter TEXT] [--min-run-time S] [--device DEV] [--out DIR]``."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ._harness import load_all, run, write_results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--filter", default="", help="only rows whose chapter or name contains this text")
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best median is kept")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = p.parse_args(argv)
    rows = [b for b in load_all() if a.filter in b.name or a.filter in b.chapter]
    if not rows:
        print(f"no benchmark matches {a.filter!r}")
        return 1
    results = run(rows, device=torch.device(a.device), min_run_time=a.min_run_time, rounds=a.rounds)
    write_results(results, Path(a.out))
    print(f"wrote {a.out}/benchmarks.csv, benchmarks.md and benchmarks.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
