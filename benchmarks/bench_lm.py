"""The shipped built-in LM (`llamacpp:lm`), measured through widthdepth's own runner on held-out
problems (seed 0: `lab train-lm` never trains on them; chain L=1 has only 180 problems and is the
exception), every effect with a 95% bootstrap interval over problems:

1. one sample at a generous budget (512 tokens) on chain L = 1, 2, 4, 6, 8 and subset-sum n = 6, 8;
2. majority over 16 samples against one sample (grid 16x2, round 1), and "any of the 16 right"
   (for subset-sum this is best-of-16 by the family's exact gold-free checker; for chains an oracle);
3. a revision round against none (round 2 against round 1 of the same chains);
4. budget forcing: one attempt cut at 32 / 64 / 128 / 256 tokens, and extend chains of 32-token
   rounds continued after "Wait," (1 / 2 / 4 / 8 rounds = the same 32..256 tokens);
5. tokens/s through llama.cpp (batched) and through `hf:`, the same run interleaved, best of two.

    .venv/bin/python benchmarks/bench_lm.py [--problems 100] [--out runs/bench_lm]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from widthdepth.analysis.estimators import bootstrap_indices, majority_at_k, percentile_interval
from widthdepth.analysis.traces import open_traces
from widthdepth.config import make_config
from widthdepth.runner import run

CHAINS = ("chain:L=1", "chain:L=2", "chain:L=4", "chain:L=6", "chain:L=8")
SUBSETS = ("search:kind=subset,n=6", "search:kind=subset,n=8")
MODEL = "llamacpp:lm"


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% bootstrap interval of per-problem values."""
    means = values[bootstrap_indices(len(values), 2000, 0)].mean(axis=1)
    low, high = percentile_interval(means)
    return float(values.mean()), low, high


def fmt(triple: tuple[float, float, float], signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{triple[0]:{sign}.3f} [{triple[1]:{sign}.3f}, {triple[2]:{sign}.3f}]"


def traces(out: Path) -> dict:
    return {t.task: t for t in open_traces(out)}


def width_and_revision(out: Path, problems: int) -> dict:
    config = make_config({"model": MODEL, "tasks": list(CHAINS + SUBSETS), "plans": ["grid:16x2"], "problems": problems,
                          "max_tokens": 512, "out": str(out / "grid"), "verifier": "none"})
    run(config)
    rows = {}
    for task, trace in traces(out / "grid").items():
        one, maj, revised, best = [], [], [], []
        for p in trace.problems:
            first = [c[0] for c in p.chains]
            one.append(np.mean([bool(a.correct) for a in first]))
            maj.append(majority_at_k([a.final_answer for a in first], p.gold, 16))
            best.append(float(any(bool(a.correct) for a in first)))
            revised.append(np.mean([bool(c[1].correct) for c in p.chains if len(c) > 1]))
        one, maj, revised, best = np.array(one), np.array(maj), np.array(revised), np.array(best)
        rows[task] = {"one": interval(one), "maj16": interval(maj), "maj16_minus_one": interval(maj - one),
                      "any16": interval(best),
                      "revised": interval(revised), "revised_minus_one": interval(revised - one)}
    return rows


def budgets(out: Path, problems: int) -> dict:
    rows: dict = {}
    for tokens in (32, 64, 128, 256):
        config = make_config({"model": MODEL, "tasks": ["chain:L=4", "chain:L=8"], "plans": ["grid:4x1"],
                              "problems": problems, "max_tokens": tokens, "out": str(out / f"cut{tokens}"),
                              "verifier": "none"})
        run(config)
        for task, trace in traces(out / f"cut{tokens}").items():
            values = np.array([np.mean([bool(c[0].correct) for c in p.chains]) for p in trace.problems])
            rows.setdefault(task, {})[f"one attempt, {tokens} tokens"] = interval(values)
    config = make_config({"model": MODEL, "tasks": ["chain:L=4", "chain:L=8"], "plans": ["grid:4x8,mode=extend"],
                          "problems": problems, "max_tokens": 32, "out": str(out / "extend"), "verifier": "none"})
    run(config)
    for task, trace in traces(out / "extend").items():
        for rounds in (1, 2, 4, 8):
            values = np.array([np.mean([bool(c[rounds - 1].correct) for c in p.chains if len(c) >= rounds])
                               for p in trace.problems])
            rows[task][f"extend, {rounds} x 32 tokens"] = interval(values)
    return rows


def speed(out: Path) -> dict:
    """Generated tokens per second of the same run (chain L=4, 32 problems, 16 samples each), interleaved."""
    best: dict[str, float] = {}
    for trial in range(2):
        for model in (MODEL, "hf:lm"):
            folder = out / f"speed-{model.split(':')[0]}-{trial}"
            shutil.rmtree(folder, ignore_errors=True)
            config = make_config({"model": model, "tasks": ["chain:L=4"], "plans": ["grid:16x1"], "problems": 32,
                                  "max_tokens": 256, "out": str(folder), "verifier": "none", "threads": 2})
            start = time.perf_counter()
            run(config)
            seconds = time.perf_counter() - start
            tokens = sum(a.completion_tokens for t in open_traces(folder) for p in t.problems for c in p.chains for a in c)
            best[model] = max(best.get(model, 0.0), tokens / seconds)
    return best


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--out", default="runs/bench_lm")
    args = parser.parse_args()
    out = Path(args.out)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.node()}",
              "problems": args.problems, "width_and_revision": width_and_revision(out, args.problems),
              "budgets": budgets(out, args.problems), "tokens_per_second": speed(out)}
    print(f"{'task':26} {'one sample':24} {'maj@16':24} {'maj@16 - one':26} {'any of 16':24} "
          f"{'revised - one':26}")
    for task, row in result["width_and_revision"].items():
        print(f"{task:26} {fmt(row['one']):24} {fmt(row['maj16']):24} {fmt(row['maj16_minus_one'], True):26} "
              f"{fmt(row['any16']):24} {fmt(row['revised_minus_one'], True):26}")
    for task, row in result["budgets"].items():
        for label, triple in row.items():
            print(f"{task:26} {label:26} {fmt(triple)}")
    speeds = result["tokens_per_second"]
    print("tokens/s: " + ", ".join(f"{m} {v:.0f}" for m, v in speeds.items()) +
          f"; llama.cpp / hf = {speeds[MODEL] / speeds['hf:lm']:.2f}x")
    (out / "bench_lm.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
