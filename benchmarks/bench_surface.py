"""The whole N×D surface from ONE run: tokens generated for the full surface of grid:16x4, divided by
the tokens of that single cell (target <= 1.05), beside what running every cell separately would
cost (sum over cells of their tokens, about sum w·d / (N·D) = 21.25 times). Also the time to
estimate the surface against the time of the run. Real SmolLM2-135M through llama.cpp.

    .venv/bin/python benchmarks/bench_surface.py
"""

from __future__ import annotations

import json
import platform
import tempfile
import time

import numpy as np

from widthdepth.analysis.surface import estimate_surface
from widthdepth.analysis.traces import load_grid_traces
from widthdepth.config import RunConfig
from widthdepth.runner import run
from widthdepth.store import Store

N, D, PROBLEMS = 16, 4, 2


def main() -> dict:
    with tempfile.TemporaryDirectory() as out:
        config = RunConfig(model="llamacpp:smollm2-135m", tasks=["chain:L=2"], plans=[f"grid:{N}x{D}"],
                           problems=PROBLEMS, max_tokens=32, seed=0, out=out, threads=2, context_length=2048)
        start = time.perf_counter()
        result = run(config)
        run_seconds = time.perf_counter() - start
        store = Store.open(out)
        generated = store.db.execute("SELECT SUM(completion_tokens), COUNT(*) FROM attempts").fetchone()
        start = time.perf_counter()
        (ts,) = estimate_surface(load_grid_traces(store)).traces
        surface_seconds = time.perf_counter() - start
        store.close()
    problems = len(ts.trace.problems)
    cell = float(np.mean(ts.cost[(N, D)]["generated_tokens"])) * problems
    separately = sum(float(np.mean(ts.cost[(w, d)]["generated_tokens"])) * problems
                     for w in range(1, N + 1) for d in range(1, D + 1))
    results = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, 2 threads",
        "plan": f"grid:{N}x{D}", "problems": problems, "attempts": generated[1], "generated_in_run": generated[0],
        "largest_cell_tokens": round(cell, 1),
        "ratio_surface_over_cell": round(generated[0] / cell, 4),
        "ratio_every_cell_separately_over_cell": round(separately / cell, 2),
        "sum_wd_over_ND": round(sum(w * d for w in range(1, N + 1) for d in range(1, D + 1)) / (N * D), 2),
        "cells_estimated": len(ts.cost), "run_seconds": round(run_seconds, 1),
        "surface_seconds": round(surface_seconds, 3), "surface_over_run_time": round(surface_seconds / run_seconds, 5),
        "generated_attempts": result.generated,
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
