"""The report's budget: size and time to write on the quick study, and time to open a big study.

- Quick study (built-in reasoner, `widthdepth study --preset quick`): `report.html` written
  interactively (Vega-Lite; as `widthdepth report` writes it, and with `workers=1`) and `--static`
  (PNG), interleaved three times each, best time kept; optionally beside the report of an older
  commit on the same store (`--baseline REV`: run from a git worktree, the same work: estimate the
  surface, write the page). Targets: ≤ 2 MB and ≤ 10 s.
- Big study: 10 tasks × `grid:32x12` (64 problems each, the reasoner), opened in headless Chromium
  three times: the navigation's load event and the time until the top screen's figures are drawn
  (the page draws the rest as they scroll into view). Target: opens in under 2 s.

    .venv/bin/python benchmarks/bench_report.py [--out runs/bench_report] [--baseline 140a3ad]
        [--baseline-store runs/quick-before-009]   # the same study's store as that commit wrote it
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from widthdepth.report import write_report
from widthdepth.study import StudyConfig, run_study

BIG_TASKS = ["chain:L=1", "chain:L=2", "chain:L=3", "chain:L=4", "chain:L=6", "chain:L=8", "search:kind=subset,n=6",
             "search:kind=subset,n=8", "search:kind=subset,n=10", "mix:L=4,n=8"]
BASELINE_SCRIPT = ("import sys, time; from widthdepth.report import write_report; t = time.perf_counter(); "
                   "write_report(sys.argv[1]); print(time.perf_counter() - t)")


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def baseline_time(rev: str, folder: Path) -> float:
    """Write the report of `folder` with the code of commit `rev` (its own worktree, this venv)."""
    root = Path(tempfile.mkdtemp()) / "base"
    subprocess.run(["git", "worktree", "add", "--detach", str(root), rev], check=True, capture_output=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(root / "src")}
        done = subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, str(folder)], env=env, check=True,
                              capture_output=True, text=True)
        return float(done.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(root)], check=False, capture_output=True)


def quick(out: Path, baseline: str | None, baseline_store: Path | None = None) -> None:
    folder = out / "quick"
    if not (folder / "widthdepth.sqlite").exists():
        run_study(StudyConfig(out=str(folder)))
    times: dict[str, list[float]] = {"interactive": [], "one process": [], "static": [], "baseline": []}
    sizes: dict[str, int] = {}
    copy = out / "quick-baseline"
    for _ in range(3):  # interleaved: the machine's speed drifts
        times["interactive"].append(timed(lambda: write_report(folder)))
        sizes["interactive"] = (folder / "report.html").stat().st_size
        times["one process"].append(timed(lambda: write_report(folder, workers=1)))  # no workers started
        sizes["one process"] = (folder / "report.html").stat().st_size
        times["static"].append(timed(lambda: write_report(folder, static=True)))
        sizes["static"] = (folder / "report.html").stat().st_size
        if baseline:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(baseline_store or folder, copy)
            times["baseline"].append(baseline_time(baseline, copy))
            sizes["baseline"] = (copy / "report.html").stat().st_size
    write_report(folder)  # leave the interactive one
    for kind, values in times.items():
        if values:
            print(f"quick study report, {kind:>11}: best {min(values):6.1f} s of {len(values)} "
                  f"({', '.join(f'{v:.1f}' for v in values)}), {sizes[kind] / 1e6:.2f} MB")


def big(out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    folder = out / "big"
    if not (folder / "report.html").exists():
        run_study(StudyConfig(out=str(folder), overrides={"tasks": BIG_TASKS, "plans": ["grid:32x12"], "problems": 64}))
    size = (folder / "report.html").stat().st_size
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tempfile.mkdtemp()}",
                 "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)
    try:
        for attempt in range(3):
            driver.get("about:blank")
            start = time.perf_counter()
            driver.get((folder / "report.html").resolve().as_uri())
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(
                "return document.querySelectorAll('div.chart.drawn').length >= 1;"))
            drawn = time.perf_counter() - start
            load = driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd;")
            charts = driver.execute_script("return document.querySelectorAll('div.chart').length;")
            print(f"big study ({len(BIG_TASKS)} tasks × grid:32x12, {size / 1e6:.2f} MB, {charts} figures), open "
                  f"{attempt + 1}: load event {load / 1000:.2f} s, first figure drawn {drawn:.2f} s after the request")
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench_report")
    parser.add_argument("--baseline", default=None, help="a commit whose report code to time on the same store")
    parser.add_argument("--baseline-store", default=None, help="the quick study's folder as written before the "
                        "store's last migration (a commit from before it cannot read the converted store)")
    parser.add_argument("--part", choices=("all", "quick", "big"), default="all")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()}, {os.cpu_count()} cores")
    if args.part in ("all", "quick"):
        quick(out, args.baseline, Path(args.baseline_store) if args.baseline_store else None)
    if args.part in ("all", "big"):
        big(out)


if __name__ == "__main__":
    main()
