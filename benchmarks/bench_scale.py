"""How run, store and report grow with the number of attempts: 10⁴, 10⁵, 10⁶ (and 10⁷ with --sizes).

Each size is the full study's 12 tasks under `grid:32x12` on the built-in reasoner with as many problems
per task as make the size (2 problems: 9,216 attempts; 22: 101,376; 217: 999,936 — the full preset
has 256). For each: `widthdepth run` (generation, then its report), the store's bytes per attempt, and
`widthdepth report` on the folder alone — with its default workers and with `--workers 1` — each in a
process of its own (wall seconds; peak resident memory of the process and its workers together). The
growth exponent of each measure is the slope of log(measure) against log(attempts) between the two
largest sizes (1: linear).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 2,22,217] [--out runs/bench_scale]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = ["chain:L=1", "chain:L=2", "chain:L=3", "chain:L=4", "chain:L=6", "chain:L=8", "search:kind=subset,n=6",
         "search:kind=subset,n=8", "search:kind=subset,n=10", "search:kind=subset,n=12", "mix:L=4,n=8",
         "mix:L=8,n=10"]
GRID = "grid:32x12"


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of a command run in a process of its own; the memory is the peak
    of the sum over the process and its children (the report's workers), sampled every 20 ms."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a full pipe would stall the command
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            sys.exit(f"{' '.join(command)} failed:\n{errors.read()[-2000:]}")
    return seconds, peak / 1024


def tree_rss(root: int) -> int:
    """Resident kilobytes of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree, grew = tree | more, bool(more)
    total = 0
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total


def measure(problems: int, out: Path) -> dict[str, float]:
    folder = out / f"p{problems}"
    shutil.rmtree(folder, ignore_errors=True)
    widthdepth = [sys.executable, "-m", "widthdepth.cli"]
    tasks = [arg for task in TASKS for arg in ("--tasks", task)]
    run_s, run_mb = timed([*widthdepth, "run", "--model", "builtin:reasoner", *tasks, "--plan", GRID,
                           "--problems", str(problems), "--out", str(folder)])
    report_s, report_mb = timed([*widthdepth, "report", str(folder)])
    alone_s, alone_mb = timed([*widthdepth, "report", "--workers", "1", str(folder)])
    store = folder / "widthdepth.sqlite"
    import sqlite3

    with sqlite3.connect(store) as db:
        attempts = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    size = store.stat().st_size
    return {"problems": problems, "attempts": attempts, "run_s": run_s, "run_mb": run_mb, "report_s": report_s,
            "report_mb": report_mb, "alone_s": alone_s, "alone_mb": alone_mb, "store_mb": size / 1e6,
            "bytes_per_attempt": size / attempts, "report_html_mb": (folder / "report.html").stat().st_size / 1e6}


def exponent(rows: list[dict[str, float]], key: str) -> float:
    a, b = rows[-2], rows[-1]
    return math.log(b[key] / a[key]) / math.log(b["attempts"] / a["attempts"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,22,217", help="problems per task, comma-separated")
    parser.add_argument("--out", default="runs/bench_scale")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}; {len(TASKS)} tasks x {GRID}")
    print(f"{'attempts':>10} {'run s':>8} {'run MB':>8} {'report s':>9} {'report MB':>10} {'1 proc s':>9} "
          f"{'1 proc MB':>10} {'store MB':>9} {'B/attempt':>10} {'html MB':>8}")
    rows = []
    for problems in (int(s) for s in args.sizes.split(",")):
        row = measure(problems, out)
        rows.append(row)
        print(f"{row['attempts']:>10,} {row['run_s']:>8.1f} {row['run_mb']:>8.0f} {row['report_s']:>9.1f} "
              f"{row['report_mb']:>10.0f} {row['alone_s']:>9.1f} {row['alone_mb']:>10.0f} {row['store_mb']:>9.1f} {row['bytes_per_attempt']:>10.0f} "
              f"{row['report_html_mb']:>8.2f}", flush=True)
    if len(rows) >= 2:
        print("growth exponents between the two largest sizes (1 = linear): " + ", ".join(
            f"{key} {exponent(rows, key):.2f}" for key in ("run_s", "report_s", "report_mb", "alone_s", "alone_mb",
                                                          "store_mb")))


if __name__ == "__main__":
    main()
