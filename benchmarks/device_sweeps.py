"""The lab sweeps on a lent GPU (issue 20), as one prepared call of the `device` tool.

The device machine has torch and numpy but not widthdepth's other dependencies (pydantic, typer, ...),
and no network; so this script loads only `widthdepth.lab` (the package's `__init__`, which imports the
runner, is bypassed) and writes each experiment's `results.jsonl` under $OUT. Back here, copy a
`results.jsonl` into a folder and run the same preset there to draw its figure and page without
training anything (the rows match on recipe and evaluation digests):

    # on the device (the `run` tool; the working tree carries src/ and this file):
    python benchmarks/device_sweeps.py --experiments depth,shape --preset gpu --seconds 520 --out runs/gpu \
        --results $OUT
    # here, for each experiment:
    mkdir -p runs/depth-gpu && cp FILES_AT/depth/results.jsonl runs/depth-gpu/
    widthdepth lab sweep --experiment depth --preset gpu --out runs/depth-gpu --device cpu

A second call resumes where the first stopped: copy the returned results into runs/gpu/EXPERIMENT/ here
and carry `runs/gpu` with the call (`carry`); rows already there are not trained again. A model in
training when `--seconds` runs out is finished first (no new one is started after), so leave a margin
under the call's limit. `size` needs the runner (its studies): not run here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class OutOfTime(Exception):
    pass


def load_lab() -> types.ModuleType:
    """`widthdepth.lab.sweep` without the package's `__init__` (its imports need what the device lacks)."""
    package = types.ModuleType("widthdepth")
    package.__path__ = [str(ROOT / "src" / "widthdepth")]
    sys.modules.setdefault("widthdepth", package)
    import widthdepth.lab.sweep as sweep

    return sweep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", default="depth,shape")
    parser.add_argument("--preset", default="gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=520.0, help="start no model after this many seconds")
    parser.add_argument("--out", required=True, help="the sweeps' folders (models, results.jsonl)")
    parser.add_argument("--results", help="where results.jsonl and the log go back (default: --out)")
    args = parser.parse_args()
    sweep = load_lab()
    import torch

    start = time.monotonic()
    log = {"torch": torch.__version__, "device": args.device, "gpu": torch.cuda.get_device_name(0)
           if torch.cuda.is_available() else None, "experiments": {}}

    def on_event(text: str) -> None:
        print(f"{time.monotonic() - start:7.1f} s  {text}", flush=True)
        if text.startswith("training") and time.monotonic() - start > args.seconds:
            raise OutOfTime(text)

    for experiment in args.experiments.split(","):
        folder = Path(args.out) / experiment
        began = time.monotonic()
        try:
            rows = sweep.run_sweep(sweep.plan_sweep(experiment, args.preset), folder, on_event, args.device)
            finished = True
        except OutOfTime:
            rows, finished = sweep.read_results(folder), False
        log["experiments"][experiment] = {"rows": len(rows), "finished": finished,
                                          "seconds": round(time.monotonic() - began, 1)}
        back = Path(args.results or args.out) / experiment
        back.mkdir(parents=True, exist_ok=True)
        if (folder / "results.jsonl").exists() and back != folder:
            shutil.copyfile(folder / "results.jsonl", back / "results.jsonl")  # models stay: 64 MiB come back
        if not finished:
            break
    Path(args.results or args.out, "device_log.json").write_text(json.dumps(log, indent=2))
    print(json.dumps(log, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
