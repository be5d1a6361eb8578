"""Forecast error at k = N from N/16 samples, each coverage model against Brown's exp(a·k^b), and how
often each interval covers what was observed; and the depth laws' held-out error on chains.

    .venv/bin/python benchmarks/bench_forecast.py            # about 15 minutes on 2 cores

Coverage: the built-in reasoner on subset-sum search (n = 8 and 10), 512 problems, `parallel:256`, two
run seeds (131,072 attempts per task and seed; the runs are kept in runs/bench-forecast/ and reused).
Each run's 256 chains are cut into 16 disjoint blocks of 16; a backtest fits a model on one block
and forecasts coverage at 256, against pass@256 on all 256 chains: 16 × 2 × 2 = 64 backtests per model.
Targets (issue 23): the best model's mean absolute error at most a third of Brown's, and its 95%
interval covering the observed value in at least 90% of the backtests.

Depth: `grid:1x16` on chain L = 4 and L = 6 (512 problems): the saturating exponential against the
threshold law by leave-one-depth-out error, and the critical depth with its interval.

With `--smollm` (about 15 more minutes): SmolLM2-135M on chain L = 1, 48 problems, `parallel:32`,
max 128 tokens; backtests from the first 2 (N/16) and 8 (N/4) chains to k = 32.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from widthdepth.analysis.backtest import backtest
from widthdepth.analysis.fits import fit_depth_law
from widthdepth.analysis.forecast import MODELS, counts_of, pass_at_k
from widthdepth.analysis.surface import estimate_trace_surface
from widthdepth.analysis.traces import open_traces
from widthdepth.config import RunConfig
from widthdepth.runner import run

OUT = Path("runs/bench-forecast")
TASKS = ("search:kind=subset,n=8", "search:kind=subset,n=10")
SEEDS = (0, 1)
CHAINS, BLOCK, PROBLEMS = 256, 16, 512


def traces_of(folder: Path, tasks: tuple[str, ...], plan: str, seed: int) -> list:
    started = time.perf_counter()
    run(RunConfig(model="builtin:reasoner", tasks=list(tasks), plans=[plan], problems=PROBLEMS, seed=seed,
                  out=str(folder)))
    print(f"  {folder}: run (or reuse) in {time.perf_counter() - started:.0f} s", flush=True)
    return open_traces(folder)


def coverage_backtests() -> None:
    errors: dict[str, list[float]] = {m: [] for m in MODELS}
    covered: dict[str, list[bool]] = {m: [] for m in MODELS}
    for seed in SEEDS:
        for trace in traces_of(OUT / f"search-seed{seed}", TASKS, f"parallel:{CHAINS}", seed):
            arrays = trace.arrays
            observed = pass_at_k(counts_of(arrays), CHAINS)
            first = pass_at_k(counts_of(arrays, chains=slice(0, BLOCK)), BLOCK)
            print(f"  {trace.task} seed {seed}: pass@{BLOCK} {first:.3f} (first block), pass@{CHAINS} {observed:.3f}")
            for block in range(CHAINS // BLOCK):
                for result in backtest(arrays, (CHAINS // BLOCK,), MODELS, bootstrap=100, block=block):
                    errors[result.model].append(result.error)
                    covered[result.model].append(bool(result.covered))
    brown = statistics.mean(abs(e) for e in errors["brown"])
    print(f"coverage at {CHAINS} from {BLOCK} samples, {len(errors['beta'])} backtests per model:")
    for model in MODELS:
        mean_abs = statistics.mean(abs(e) for e in errors[model])
        print(f"  {model:6s} mean |error| {mean_abs:.4f} (mean error {statistics.mean(errors[model]):+.4f}, "
              f"worst {max(errors[model], key=abs):+.4f}); / brown {mean_abs / brown:.3f}; "
              f"interval covers observed in {sum(covered[model])}/{len(covered[model])} "
              f"= {sum(covered[model]) / len(covered[model]):.2f}")


def depth_laws() -> None:
    for trace in traces_of(OUT / "chains", ("chain:L=4", "chain:L=6"), "grid:1x16", 0):
        law = fit_depth_law(estimate_trace_surface(trace), bootstrap=200)
        held = ", ".join(f"{name} {rmse:.3f}" for name, rmse in law.held_out.items())
        print(f"  {trace.task}: held-out RMSE {held}; chosen {law.chosen}; critical depth {law.critical:.2f} "
              f"[{law.critical_interval[0]:.2f}, {law.critical_interval[1]:.2f}]")


def smollm_backtests() -> None:
    folder = OUT / "smollm"
    started = time.perf_counter()
    run(RunConfig(model="llamacpp:smollm2-135m", tasks=["chain:L=1"], plans=["parallel:32"], problems=48, seed=0,
                  max_tokens=128, out=str(folder)))
    print(f"  {folder}: run (or reuse) in {time.perf_counter() - started:.0f} s", flush=True)
    (trace,) = open_traces(folder)
    arrays = trace.arrays
    print(f"  chain:L=1: pass@2 {pass_at_k(counts_of(arrays), 2):.3f}, pass@32 {pass_at_k(counts_of(arrays), 32):.3f}")
    for result in backtest(arrays, (16, 4), MODELS, bootstrap=200):
        print(f"  {result.model:6s} from {result.fitted_on:2d}: forecast {result.forecast:.3f} "
              f"[{result.low:.3f}, {result.high:.3f}], observed {result.observed:.3f}, error {result.error:+.3f}")


if __name__ == "__main__":
    import sys

    started = time.perf_counter()
    coverage_backtests()
    print("depth laws (w = 1, majority):")
    depth_laws()
    if "--smollm" in sys.argv:
        print("SmolLM2-135M:")
        smollm_backtests()
    print(f"total {time.perf_counter() - started:.0f} s")
