"""Is the surface from ONE grid:NxD run what running each cell separately would give?

The surface estimates every cell (w, d) of a grid run from that run's own attempts (exact subset
estimators). This benchmark checks it against cells actually run on their own:

1. the built-in reasoner (`builtin:reasoner`, shipped checkpoint) on chain:L=4 and
   search:kind=subset,n=8, 400 problems each: one grid:16x4 run (seed 0), then six cells
   (1x1, 4x1, 1x4, 2x2, 8x2, 16x4) each run as its own grid:wxd plan on the SAME problems with its
   own run seed (1..6), so every attempt is a fresh sample (the attempt seed is
   `trace.attempt_seed(run seed, problem, d, w)`: the grid's seed would reuse the grid's attempts).
   Per cell and aggregator (majority, best_of where a verifier scores, coverage), the surface's
   estimate against the separate run's accuracy with its 95% Wilson interval over problems (per-problem
   values in [0, 1] have variance <= p(1-p), so Wilson is conservative where a tie scores a fraction),
   and, sharper, the paired difference (estimate - separate, per problem) with a 95% bootstrap
   interval over problems. Mean cost per problem (generated tokens, FLOPs, serial tokens) likewise,
   with a 95% bootstrap interval over problems (the reasoner's cost depends only on the problem's
   shape, so here it is the same for every problem and its interval is a point). Target: every
   estimate inside the separate run's interval. At 16x4 the "estimate" is the grid run itself: that
   row compares two runs of one plan, i.e. the seed-to-seed noise the other rows are judged against.
2. SmolLM2-135M through llama.cpp (chain:L=2, 8 problems, max 32 tokens; skipped with --skip-llm):
   one grid:4x2 run, then 1x1, 2x2 and 4x1 run separately the same way; mean generated tokens per
   problem, estimate against separate run (95% bootstrap interval over problems). Its accuracy is ~0,
   so only cost is compared.

Also reported, and labelled as what they are: tokens of the grid run / estimated tokens of its own
largest cell (1.00 by construction: the largest cell IS the run — a design property, not a measurement);
Σ w·d / (N·D), what running every cell separately costs relative to the largest cell (arithmetic);
and the measured time to estimate the surface against the time of the run.

Measured 2026-12-02 on the 2-core machine while other jobs loaded it: 9 min 49 s in all, about 2 min
for the reasoner part (SmolLM2 takes the rest; --skip-llm leaves it out).

    .venv/bin/python benchmarks/bench_surface.py [--skip-llm]
"""

from __future__ import annotations

import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from widthdepth.analysis.surface import TraceSurface, estimate_surface
from widthdepth.analysis.traces import load_grid_traces
from widthdepth.config import RunConfig
from widthdepth.runner import prepare, run
from widthdepth.store import Store

REASONER = {"model": "builtin:reasoner", "tasks": ["chain:L=4", "search:kind=subset,n=8"], "problems": 400,
            "grid": (16, 4), "cells": [(1, 1), (4, 1), (1, 4), (2, 2), (8, 2), (16, 4)]}
SMOLLM2 = {"model": "llamacpp:smollm2-135m", "tasks": ["chain:L=2"], "problems": 8, "grid": (4, 2),
           "cells": [(1, 1), (2, 2), (4, 1)], "max_tokens": 32, "threads": 2, "context_length": 2048}
GRID_SEED = 0
COSTS = ("generated_tokens", "flops", "serial_tokens")
Z = 1.959964
RESAMPLES, RESAMPLE_SEED = 2000, 7


class _ProblemsOfSeed:
    """A task family whose problems are always those of one seed, whatever the run's seed: a separate
    run then answers the grid run's problems, while its own seed still seeds every attempt."""

    def __init__(self, family, seed: int) -> None:  # noqa: ANN001
        self._family, self._seed = family, seed

    def problems(self, count: int, seed: int):  # noqa: ANN201, ARG002
        return self._family.problems(count, self._seed)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._family, name)


def _run_grid(setup: dict, plan: str, seed: int, out: Path) -> dict:
    """Run one grid plan on the setup's problems (those of GRID_SEED) with run seed `seed`, then
    estimate its surface; both timed."""
    options = {k: setup[k] for k in ("max_tokens", "threads", "context_length") if k in setup}
    config = RunConfig(model=setup["model"], tasks=setup["tasks"], plans=[plan], problems=setup["problems"],
                       seed=seed, out=str(out), **options)
    prepared = prepare(config)
    prepared.families = [_ProblemsOfSeed(f, GRID_SEED) for f in prepared.families]
    start = time.perf_counter()
    result = run(prepared)
    run_seconds = time.perf_counter() - start
    start = time.perf_counter()
    store = Store.open(out)
    try:
        surfaces = {t.trace.task: t for t in estimate_surface(load_grid_traces(store)).traces}
    finally:
        store.close()
    return {"surfaces": surfaces, "run_seconds": run_seconds, "surface_seconds": time.perf_counter() - start,
            "generated": result.generated, "reused": result.reused}


def _attempt_keys(surface: TraceSurface) -> set[str]:
    return {a.key for p in surface.trace.problems for chain in p.chains for a in chain}


def _wilson(p: float, n: int) -> tuple[float, float]:
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def _bootstrap(values: np.ndarray) -> tuple[float, float]:
    rng = np.random.default_rng(RESAMPLE_SEED)
    means = values[rng.integers(0, len(values), size=(RESAMPLES, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _inside(value: float, low: float, high: float) -> bool:
    slack = 1e-9 * max(1.0, abs(value))  # a cost that is the same for every problem has a point interval
    return low - slack <= value <= high + slack


def _compare(estimate: np.ndarray, separate: np.ndarray, wilson: bool) -> dict:
    """Estimate vs separate run, per problem over the same problems (both defined)."""
    both = np.isfinite(estimate) & np.isfinite(separate)
    estimate, separate = estimate[both], separate[both]
    mean_est, mean_sep = float(estimate.mean()), float(separate.mean())
    low, high = _wilson(mean_sep, len(separate)) if wilson else _bootstrap(separate)
    diff_low, diff_high = _bootstrap(estimate - separate)
    return {"estimate": _round(mean_est), "separate": _round(mean_sep), "interval": [_round(low), _round(high)],
            "inside": _inside(mean_est, low, high), "difference": _round(mean_est - mean_sep),
            "difference_interval": [_round(diff_low), _round(diff_high)],
            "difference_covers_0": _inside(0.0, diff_low, diff_high), "problems": int(both.sum())}


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _cell_checks(grid: TraceSurface, separate: TraceSurface, w: int, d: int, costs: tuple[str, ...],
                 accuracy: bool) -> dict:
    checks = {}
    if accuracy:
        for aggregator in grid.aggregators:
            checks[aggregator] = _compare(grid.accuracy[(w, d, aggregator)],
                                          separate.accuracy[(w, d, aggregator)], wilson=True)
    for cost in costs:
        checks[cost] = _compare(grid.cost[(w, d)][cost], separate.cost[(w, d)][cost], wilson=False)
    return checks


def _design_figures(grid: dict, n: int, d: int) -> dict:
    """Tokens of the run vs its own largest cell (equal by construction), the arithmetic of running
    every cell separately, and the measured time to estimate the surface (all tasks together)."""
    surfaces = list(grid["surfaces"].values())
    run_tokens = sum(a.completion_tokens for s in surfaces for p in s.trace.problems for c in p.chains for a in c)

    def tokens(w: int, r: int) -> float:
        return sum(float(np.mean(s.cost[(w, r)]["generated_tokens"])) * len(s.trace.problems) for s in surfaces)

    cell = tokens(n, d)
    every_cell = sum(tokens(w, r) for w in range(1, n + 1) for r in range(1, d + 1))
    return {
        "generated_in_run": run_tokens, "largest_cell_tokens_estimated": round(cell, 1),
        "design_property_run_tokens_over_largest_cell": round(run_tokens / cell, 4),
        "computed_every_cell_separately_over_largest_cell": round(every_cell / cell, 2),
        "computed_sum_wd_over_ND": round(sum(w * r for w in range(1, n + 1) for r in range(1, d + 1)) / (n * d), 2),
        "measured_run_seconds": round(grid["run_seconds"], 1),
        "measured_surface_seconds": round(grid["surface_seconds"], 3),
        "measured_surface_over_run_time": round(grid["surface_seconds"] / grid["run_seconds"], 5),
    }


def measure(setup: dict, folder: Path, accuracy: bool, costs: tuple[str, ...]) -> dict:
    n, d = setup["grid"]
    grid = _run_grid(setup, f"grid:{n}x{d}", GRID_SEED, folder / "grid")
    grid_keys = set().union(*(_attempt_keys(s) for s in grid["surfaces"].values()))
    cells, runs = [], []
    for seed, (w, r) in enumerate(setup["cells"], start=1):
        separate = _run_grid(setup, f"grid:{w}x{r}", seed, folder / f"cell{w}x{r}")
        shared = set().union(*(_attempt_keys(s) for s in separate["surfaces"].values())) & grid_keys
        runs.append({"cell": f"{w}x{r}", "seed": seed, "generated": separate["generated"],
                     "reused": separate["reused"], "attempts_shared_with_grid_run": len(shared),
                     "seconds": round(separate["run_seconds"], 1)})
        for task, surface in grid["surfaces"].items():
            cells.append({"task": task, "cell": f"{w}x{r}",
                          **_cell_checks(surface, separate["surfaces"][task], w, r, costs, accuracy)})
    first = next(iter(grid["surfaces"].values()))
    checks = [v for c in cells for v in c.values() if isinstance(v, dict)]
    return {
        "model": first.trace.model, "tasks": list(grid["surfaces"]), "problems_per_task": len(first.trace.problems),
        "grid": f"grid:{n}x{d}", "verifiers": {t: s.trace.verifier for t, s in grid["surfaces"].items()},
        "separate_runs": runs, "cells": cells, "checks": len(checks),
        "estimates_inside": sum(c["inside"] for c in checks),
        "outside": [f"{c['task']} {c['cell']} {k}" for c in cells for k, v in c.items()
                    if isinstance(v, dict) and not v["inside"]],
        "paired_differences_covering_0": sum(c["difference_covers_0"] for c in checks),
        "target_every_estimate_inside_met": all(c["inside"] for c in checks),
        **_design_figures(grid, n, d),
    }


def main(skip_llm: bool = False) -> dict:
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, 2 threads",
                     "accuracy_interval": "Wilson 95% over problems", "cost_interval": "bootstrap 95% over problems",
                     "difference_interval": "paired bootstrap 95% over problems"}
    with tempfile.TemporaryDirectory() as out:
        results["reasoner"] = measure(REASONER, Path(out) / "reasoner", accuracy=True, costs=COSTS)
        if not skip_llm:
            results["smollm2"] = measure(SMOLLM2, Path(out) / "smollm2", accuracy=False,
                                         costs=("generated_tokens",))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(skip_llm="--skip-llm" in sys.argv[1:])
