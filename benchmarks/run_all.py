"""`make bench`: run every benchmark under benchmarks/ and print its ratios (record them in RESULTS.md)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

for path in sorted(Path(__file__).parent.glob("bench_*.py")):
    print(f"== {path.name}", flush=True)
    runpy.run_path(str(path), run_name="__main__")
sys.exit(0)
