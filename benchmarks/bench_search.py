"""Search against the grid at matched compute and latency, through widthdepth's runner and the report's
own comparison (`analysis.methods`): each method's accuracy [95% bootstrap over problems] at its mean
cost, the grid's best cell within that cost, and the held-out paired difference (the grid's cell chosen
on the other half of the problems), in generated tokens, FLOPs and serial tokens. Then the compute each
method needs over the compute the grid's best cell needs for the method's accuracy (> 1: the grid is
cheaper), whichever way it falls.

- the built-in language model (`llamacpp:lm`) on chain L = 6 and 8 (held-out problems, 256 tokens),
  `--verifier steps` (the exact step checker, a process reward of this synthetic task): grid 16x1
  against beam:4,4, dvts:16,4 and particles:16 (16 continuations a step, like 16 chains);
- the built-in latent reasoner on subset-sum n = 10 and the mix (256 problems), 8 iterations: grid
  32x8 against particles, beam and dvts at 8, 16 and 32 rows (choosing by the exact checker on
  subset-sum, by the verifier head on the mix), and for each kind the compute its cheapest size needs
  to reach the grid's best accuracy over what the grid's best cell costs.

    .venv/bin/python benchmarks/bench_search.py [--problems 64] [--out runs/bench_search]
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import time
from pathlib import Path

import numpy as np

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


def report(out: Path, units: tuple[str, ...] = UNITS) -> None:
    store = Store.open(out)
    surface = estimate_surface(load_grid_traces(store))
    points = method_points(store)
    store.close()
    for ts in surface.traces:
        print(f"\n{ts.trace.task} (grid {ts.trace.plan.spec}, {len(ts.trace.problems)} problems)")
        for unit in units:
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
    parser.add_argument("--part", choices=("all", "lm", "latent"), default="all")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    print(f"bench_search  {time.strftime('%Y-%m-%d')}  {platform.machine()}")
    if args.part == "latent":
        latent(out / "reasoner", 4 * args.problems)
        return
    config = make_config({"model": "llamacpp:lm", "tasks": ["chain:L=6", "chain:L=8"], "verifier": "steps",
                          "plans": ["parallel:16", "beam:4,4", "dvts:16,4", "particles:16"], "problems": args.problems,
                          "max_tokens": 256, "out": str(out / "lm")})
    start = time.perf_counter()
    run(config)
    print(f"llamacpp:lm run: {time.perf_counter() - start:.0f} s")
    report(out / "lm")
    if args.part == "all":
        latent(out / "reasoner", 4 * args.problems)


LATENT_METHODS = {"particles": ["particles:8,steps=8", "particles:16,steps=8", "particles:32,steps=8"],
                  "beam": ["beam:2,4,steps=8", "beam:4,4,steps=8", "beam:8,4,steps=8"],
                  "dvts": ["dvts:8,4,steps=8", "dvts:16,4,steps=8", "dvts:32,4,steps=8"]}


def latent(out: Path, problems: int) -> None:
    config = make_config({"model": "builtin:reasoner", "tasks": ["search:kind=subset,n=10", "mix:L=4,n=8"],
                          "plans": ["grid:32x8", *[p for ps in LATENT_METHODS.values() for p in ps]],
                          "problems": problems, "out": str(out)})
    start = time.perf_counter()
    run(config)
    print(f"\nbuiltin:reasoner run: {time.perf_counter() - start:.0f} s")
    report(out, units=("flops",))
    store = Store.open(out)
    surface = estimate_surface(load_grid_traces(store))
    points = method_points(store)
    store.close()
    for ts in surface.traces:
        top = max(cells(ts, "flops"), key=lambda c: (round(c.accuracy, 12), -c.cost))
        print(f"\n{ts.trace.task}: the grid's best {top.w}×{top.d} {top.aggregator} {top.accuracy:.3f} at {top.cost:.3g} FLOPs")
        methods = {m.plan.split(",step=")[0]: m for m in methods_for(ts, points)}
        for kind, plans in LATENT_METHODS.items():
            sizes = sorted((methods[p] for p in plans), key=lambda m: m.mean_cost("flops"))
            reached = [m for m in sizes if float(np.nanmean(m.correct)) >= top.accuracy - 1e-12]
            if reached:
                cost = reached[0].mean_cost("flops")
                print(f"  {kind}: {reached[0].plan.split(',step=')[0]} reaches it at {cost:.3g} FLOPs: "
                      f"{cost / top.cost:.2f}x the grid's")
            else:
                best = max(sizes, key=lambda m: float(np.nanmean(m.correct)))
                print(f"  {kind}: no size reaches it (best {best.plan.split(',step=')[0]} "
                      f"{float(np.nanmean(best.correct)):.3f} at {best.mean_cost('flops'):.3g} FLOPs)")

if __name__ == "__main__":
    main()
