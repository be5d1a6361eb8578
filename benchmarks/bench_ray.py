"""`--executor ray` against the local executor at equal resources, and one driver's ceiling.

Overhead: the same run on this machine's 2 cores three ways — local (one process, `--threads 0`), Ray
with one replica holding 2 CPUs, Ray with two replicas of 1 CPU each (a replica's threads = its CPUs) —
on two workloads: the built-in reasoner's quick study run (8 tasks x grid:16x8, early:16, particles:16;
64 problems each) and SmolLM2 `parallel:16` (chain:L=2, 4 problems, 64 tokens at most). Each side is
timed from `runner.run` in to out in a fresh folder, the model's loading inside (local: in this process;
Ray: in the replicas). The Ray cluster (`ray.init(num_cpus=2)`) is started once, before any clock; its
start-up is reported apart. Sides interleaved, ROUNDS times; the best of each reported. Every side must
leave the same store (checked), and the reasoner's report the same surface.csv and verdict.json.
Target: Ray's overhead against local at equal resources <= 10%.

Driver ceiling: `mock:` (a backend that answers at once), `parallel:16` on chain:L=2, on 2 replicas:
the driver process's CPU seconds per attempt over the run (`time.process_time`: prefetch, receiving
parts, applying them to SQLite, the progress relay) — one core full at 1 / that rate — against the
same run on the local executor (the store's own cost per attempt in one process).

    .venv/bin/python benchmarks/bench_ray.py
"""

from __future__ import annotations

import csv
import filecmp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
os.environ.pop("RAY_ADDRESS", None)

import ray  # noqa: E402

from widthdepth.config import make_config  # noqa: E402
from widthdepth.runner import run  # noqa: E402
from widthdepth.store import Store  # noqa: E402
from widthdepth.study import StudyConfig, study_run_config  # noqa: E402

ROUNDS = 2
SIDES = {"local": {"executor": "local"}, "ray 1x2": {"executor": "ray", "replicas": 1, "replica_cpus": 2},
         "ray 2x1": {"executor": "ray", "replicas": 2, "replica_cpus": 1}}
REASONER = study_run_config(StudyConfig(preset="quick")).model_dump()
SMOLLM2 = {"model": "llamacpp:smollm2-135m", "tasks": ["chain:L=2"], "plans": ["parallel:16"], "problems": 4,
           "max_tokens": 64}
MOCK = {"model": "mock:", "tasks": ["chain:L=2"], "plans": ["parallel:16"], "problems": 2000, "verifier": "none"}


def snapshot(folder: Path) -> dict:
    store = Store.open(folder, create=False)
    try:
        return store.snapshot()
    finally:
        store.close()


def timed(values: dict, folder: Path) -> tuple[float, float, int]:
    """(wall seconds, this process's CPU seconds, attempts generated) of one run into a fresh folder."""
    shutil.rmtree(folder, ignore_errors=True)
    config = make_config({**values, "out": str(folder)})
    start, cpu = time.perf_counter(), time.process_time()
    result = run(config)
    return time.perf_counter() - start, time.process_time() - cpu, result.generated


def overhead(name: str, values: dict, root: Path) -> dict[str, float]:
    best: dict[str, float] = {}
    for round_ in range(ROUNDS):
        for side, options in SIDES.items():
            wall, cpu, generated = timed({**values, **options}, root / name / side)
            best[side] = min(best.get(side, float("inf")), wall)
            print(f"  {name} round {round_ + 1} {side}: {wall:.2f} s ({generated} attempts; this process's CPU "
                  f"{cpu:.1f} s)", flush=True)
    stores = {side: snapshot(root / name / side) for side in SIDES}
    assert all(s == stores["local"] for s in stores.values()), f"{name}: the sides' stores differ"
    return best


def same_report(folders: list[Path]) -> bool:
    """The same verdict.json, and surface.csv but for its measured wall_seconds column."""
    for folder in folders:
        subprocess.run([sys.executable, "-m", "widthdepth.cli", "report", str(folder)], check=True,
                       capture_output=True)

    def surface(folder: Path) -> list[dict]:
        with open(folder / "surface.csv", newline="") as f:
            return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in csv.DictReader(f)]

    return all(filecmp.cmp(folders[0] / "verdict.json", other / "verdict.json", shallow=False)
               and surface(other) == surface(folders[0]) for other in folders[1:])


def ceiling(root: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    for side, options in (("local", SIDES["local"]), ("ray 2x1", SIDES["ray 2x1"])):
        best = (float("inf"), 0.0, 0)
        for _ in range(ROUNDS):
            best = min(best, timed({**MOCK, **options}, root / "mock" / side))
        wall, cpu, attempts = best
        figures[f"{side} attempts/s"] = attempts / wall
        figures[f"{side} driver CPU us/attempt"] = cpu / attempts * 1e6
    return figures


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        start = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning",
                 _temp_dir=tempfile.mkdtemp(prefix="wdray", dir="/tmp"))
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Ray {ray.__version__}; "
              f"cluster start {time.perf_counter() - start:.2f} s", flush=True)
        results = {"reasoner": overhead("reasoner", REASONER, root), "smollm2": overhead("smollm2", SMOLLM2, root)}
        print("reasoner report identical on every side:",
              same_report([root / "reasoner" / side for side in SIDES]), flush=True)
        for name, best in results.items():
            print(f"{name}: " + ", ".join(f"{side} {wall:.2f} s ({wall / best['local']:.3f}x local)"
                                          for side, wall in best.items()), flush=True)
        for key, value in ceiling(root).items():
            print(f"mock parallel:16 x {MOCK['problems']}: {key} {value:,.1f}", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
