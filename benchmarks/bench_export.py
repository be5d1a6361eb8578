"""`widthdepth export` on a big store: time and peak memory, the streamed tables alone and with the
surface (which is estimated, not streamed: the analysis that issue 18 makes linear-time).

The store: the built-in reasoner, 3 tasks × 256 problems × `grid:32x12` (294,912 attempts and as many
verifications), made once (`--store` reuses one). Each measurement is a process of its own; peak memory
is its maximum resident set size.

    .venv/bin/python benchmarks/bench_export.py [--store runs/bench_export/run]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

TABLES_ONLY = """
import sys
from pathlib import Path
from widthdepth import export
from widthdepth.store import Store
store = Store.open(sys.argv[1], create=False)
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
for table in export.TABLES:
    export._write(out / f"{table}.{sys.argv[3]}", export._columns(store, table), export._chunks(store, table, export.CHUNK),
                  sys.argv[3])
"""


def measured(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        print("  (peak memory below an earlier child's: read it as at most that)")
    return seconds, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="runs/bench_export/run")
    args = parser.parse_args()
    store = Path(args.store)
    if not (store / "widthdepth.sqlite").exists():
        subprocess.run([sys.executable, "-m", "widthdepth.cli", "run", "--model", "builtin:reasoner", "--tasks",
                        "chain:L=2", "--tasks", "chain:L=4", "--tasks", "search:kind=subset,n=6", "--plan", "grid:32x12",
                        "--problems", "256", "--out", str(store)], check=True, stdout=subprocess.DEVNULL)
    size = (store / "widthdepth.sqlite").stat().st_size / 1e6
    print(f"store {store}: {size:.0f} MB")
    # tables first: RUSAGE_CHILDREN keeps the largest child's peak, so the smaller measurement goes first
    for fmt in ("csv", "parquet"):
        seconds, peak = measured([sys.executable, "-c", TABLES_ONLY, str(store), str(store.parent / f"tables-{fmt}"), fmt])
        print(f"tables only, {fmt:7}: {seconds:6.1f} s, peak {peak:6.0f} MB")
    seconds, peak = measured([sys.executable, "-m", "widthdepth.cli", "export", str(store), "--out",
                              str(store.parent / "all-parquet")])
    print(f"tables + surface, parquet: {seconds:6.1f} s, peak {peak:6.0f} MB")
    for path in sorted((store.parent / "all-parquet").iterdir()):
        print(f"  {path.name}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
