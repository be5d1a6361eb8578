"""`early:16` (adaptive self-consistency, Beta rule at 0.95, batches of 4) against the fixed majority of
16 on the same draws (early's chains are parallel:16's first chains), through widthdepth's runner:

- the built-in reasoner on the study's quick suite (chain L = 1, 2, 4, 6; subset-sum n = 6, 8, 10; the
  mix), trajectories of 8 iterations (early:16,depth=8 against grid:16x8 at d = 8);
- the built-in language model (`llamacpp:lm`) on chain L = 2, 4, 6 and subset-sum n = 6, 8 (held-out
  problems, 512 tokens).

Each with its defaults and with `batch=2,conf=0.9` (stops sooner; the same draws, nothing to generate);
on the LM also DeepConf online, `deepconf:16` (keep 0.9) and `deepconf:16,keep=0.1`: chains stopped as
they decode, so "saved" is in generated tokens (every stopped chain's tokens charged).

Per task and pooled over each suite: the share of samples saved (1 - drawn / 16), early's accuracy minus
the majority of 16 with a 95% bootstrap interval over problems (paired), and early's serial latency
against the fixed plan's (batches add up). Target: >= 40% saved with the difference's interval holding 0.

    .venv/bin/python benchmarks/bench_early.py [--problems 64] [--out runs/bench_early]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from widthdepth.analysis.aggregators import majority
from widthdepth.analysis.estimators import bootstrap_indices, percentile_interval
from widthdepth.config import make_config
from widthdepth.runner import run

REASONER = ("chain:L=1", "chain:L=2", "chain:L=4", "chain:L=6", "search:kind=subset,n=6", "search:kind=subset,n=8",
            "search:kind=subset,n=10", "mix:L=4,n=8")
LM = ("chain:L=2", "chain:L=4", "chain:L=6", "search:kind=subset,n=6", "search:kind=subset,n=8")


def interval(values: np.ndarray) -> str:
    means = values[bootstrap_indices(len(values), 2000, 0)].mean(axis=1)
    low, high = percentile_interval(means)
    return f"{values.mean():+.3f} [{low:+.3f}, {high:+.3f}]"


def measure(model: str, tasks: tuple[str, ...], fixed: str, early: str, problems: int, out: Path,
            more: tuple[str, ...] = (), **extra) -> None:
    """Early with its defaults, and with batches of 2 at confidence 0.9 (the same draws: nothing more to
    generate), and the `more` methods, against the fixed plan."""
    variant = early.replace("early:16", "early:16,batch=2,conf=0.9")
    config = make_config({"model": model, "tasks": list(tasks), "plans": [fixed, early, variant, *more],
                          "problems": problems,
                          "out": str(out), "verifier": "none", **extra})
    start = time.perf_counter()
    result = run(config)
    seconds = time.perf_counter() - start
    grids = {r.family.spec: r for r in result.plan_runs}
    print(f"\n{model}: {problems} problems per task, {seconds:.0f} s")
    for spec in dict.fromkeys(m.plan.spec for m in result.methods):
        table([m for m in result.methods if m.plan.spec == spec], grids, fixed)


def table(methods: list, grids: dict, fixed: str) -> None:
    print(f"\n{methods[0].plan.spec} against the majority of {fixed}")
    print(f"{'task':32} {'saved':>6} {'tokens':>6} {'method':>6} {'maj16':>6}  {'method - maj16 [95% CI]':26} "
          f"{'serial method/fixed':>19}")
    pooled_saved, pooled_diff, pooled_tokens, pooled_fixed_tokens = [], [], [], []
    for method in methods:
        grid = grids[method.family.spec]
        saved, diff, serial_early, serial_fixed, tokens, fixed_tokens = [], [], [], [], [], []
        for outcome in method.outcomes:
            chains = grid.chains[outcome.problem_key]
            final = [c[-1] for c in chains]
            problem = next(p for p in grid.problems if p.key == outcome.problem_key)
            fixed_right = bool(method.family.check(problem, majority([a.final_answer for a in final])))
            if "chains" in outcome.detail:  # early stopping: samples drawn
                saved.append(1 - outcome.detail["chains"] / len(chains))
            tokens.append(outcome.cost.generated_tokens)
            fixed_tokens.append(sum(a.completion_tokens for c in chains for a in c))
            diff.append(float(outcome.correct) - float(fixed_right))
            serial_early.append(outcome.cost.serial_tokens)
            serial_fixed.append(max(a.serial_tokens for a in final))
        early_acc = method.accuracy
        samples = f"{np.mean(saved):6.1%}" if saved else f"{'—':>6}"
        print(f"{method.family.spec:32} {samples} {1 - np.sum(tokens) / np.sum(fixed_tokens):6.1%} {early_acc:6.3f} "
              f"{early_acc - np.mean(diff):6.3f}  {interval(np.array(diff)):26} "
              f"{np.mean(serial_early) / np.mean(serial_fixed):19.2f}")
        pooled_saved += saved
        pooled_diff += diff
        pooled_tokens += tokens
        pooled_fixed_tokens += fixed_tokens
    samples = f"{np.mean(pooled_saved):6.1%}" if pooled_saved else f"{'—':>6}"
    print(f"{'pooled':32} {samples} {1 - np.sum(pooled_tokens) / np.sum(pooled_fixed_tokens):6.1%} {'':>6} {'':>6}  "
          f"{interval(np.array(pooled_diff)):26}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--out", default="runs/bench_early")
    parser.add_argument("--part", choices=("all", "reasoner", "lm"), default="all")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    print(f"bench_early  {time.strftime('%Y-%m-%d')}  {platform.machine()}  {platform.processor() or ''}")
    if args.part in ("all", "reasoner"):
        measure("builtin:reasoner", REASONER, "grid:16x8", "early:16,depth=8", 4 * args.problems, out / "reasoner")
    if args.part in ("all", "lm"):
        measure("llamacpp:lm", LM, "parallel:16", "early:16", args.problems, out / "lm",
                more=("deepconf:16", "deepconf:16,keep=0.1"), max_tokens=512)


if __name__ == "__main__":
    main()
