"""Search against the grid at matched compute and latency, through widthdepth's runner and the report's
own comparison (`analysis.methods`): each method's accuracy [95% bootstrap over problems] at its mean
cost, the grid's best cell within that cost, and the held-out paired difference (the grid's cell chosen
on the other half of the problems), in generated tokens, FLOPs and serial tokens. Then the compute each
method needs over the compute the grid's best cell needs for the method's accuracy (> 1: the grid is
cheaper), whichever way it falls.

- the built-in language model (`llamacpp:lm`) on chain L = 6 and 8 (held-out problems, 256 tokens),
  `--verifier steps` (the exact step checker, a process reward of this synthetic task): grid 16x1
  against beam:4,4, dvts:16,4 and particles:16 (16 continuations a step, like 16 chains).

    .venv/bin/python benchmarks/bench_search.py [--problems 64] [--out runs/bench_search]
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import time
from pathlib import Path

from widthdepth.analysis.frontier import cells
from widthdepth.analysis.methods import compare, method_points, methods_for
from widthdepth.analysis.surface import estimate_surface
from widthdepth.analysis.traces import load_grid_traces
from widthdepth.config import make_config
from widthdepth.runner import run
from widthdepth.store import Store

UNITS = ("generated_tokens", "flops", "serial_tokens")


def cheapest_grid_cost(ts, unit: str, accuracy: float) -> float:  # noqa: ANN001
    """The least a grid cell costs that reaches `accuracy` (inf when none does)."""
    return min((c.cost for c in cells(ts, unit) if c.accuracy >= accuracy - 1e-12), default=math.inf)


def report(out: Path) -> None:
    store = Store.open(out)
    surface = estimate_surface(load_grid_traces(store))
    points = method_points(store)
    store.close()
    for ts in surface.traces:
        print(f"\n{ts.trace.task} (grid {ts.trace.plan.spec}, {len(ts.trace.problems)} problems)")
        for unit in UNITS:
            print(f"  matched {unit}:")
            for method in methods_for(ts, points):
                c = compare(ts, method, unit)
                need = cheapest_grid_cost(ts, unit, c.accuracy)
                ratio = c.cost / need if math.isfinite(need) and need > 0 else math.inf
                print(f"    {c.sentence()}; compute over the grid's for that accuracy: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--out", default="runs/bench_search")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    print(f"bench_search  {time.strftime('%Y-%m-%d')}  {platform.machine()}")
    config = make_config({"model": "llamacpp:lm", "tasks": ["chain:L=6", "chain:L=8"], "verifier": "steps",
                          "plans": ["parallel:16", "beam:4,4", "dvts:16,4", "particles:16"], "problems": args.problems,
                          "max_tokens": 256, "out": str(out / "lm")})
    start = time.perf_counter()
    run(config)
    print(f"llamacpp:lm run: {time.perf_counter() - start:.0f} s")
    report(out / "lm")


if __name__ == "__main__":
    main()
