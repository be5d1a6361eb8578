"""`widthdepth.load(DIR)`: a run's attempts and surface as pandas DataFrames, straight from the store.

    results = widthdepth.load("runs/demo")
    results.attempts.groupby(["task", "d"]).correct.mean()
    results.surface.query("aggregator == 'majority' and d == 1")
    results.verdict("serial_tokens").sentences()
    results.methods.groupby(["task", "plan"]).correct.mean()      # early:, beam:, particles:, ...
    results.against_grid("flops")                               # each method against the grid
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widthdepth.analysis.methods import MethodComparison, compare_methods, group_points, methods_for
from widthdepth.analysis.surface import Surface, estimate_surface
from widthdepth.analysis.traces import GridTrace, load_grid_traces
from widthdepth.analysis.verdict import Verdict, build_verdict
from widthdepth.store import Store


@dataclass
class Results:
    folder: Path
    attempts: Any
    """pandas.DataFrame: one row per stored attempt (every column of the store's attempts table)."""
    surface: Any
    """pandas.DataFrame: one row per (task, plan, w, d, aggregator): accuracy, 95% CI, mean costs."""
    traces: list[GridTrace]
    estimated: Surface
    methods: Any = None
    """pandas.DataFrame: one row per method point (problem x method run): answer, correct, and each cost."""
    points: dict = field(default_factory=dict, repr=False)

    def verdict(self, unit: str = "generated_tokens") -> Verdict:
        return build_verdict(self.estimated, unit)

    def against_grid(self, unit: str = "generated_tokens") -> list[MethodComparison]:
        """Each method against the grid of its experiment at matched `unit` (as in the report)."""
        return [c for ts in self.estimated.traces for c in compare_methods(ts, methods_for(ts, self.points), unit)]


def load(folder: str | Path) -> Results:
    import pandas as pd

    folder = Path(folder)
    store = Store.open(folder, create=False)
    try:
        attempts = pd.DataFrame([a.to_row() for a in store.attempts()])
        traces = load_grid_traces(store)
        stored = store.method_points()
        points = group_points(stored)
    finally:
        store.close()
    estimated = estimate_surface(traces)
    rows = [{**{k: v for k, v in p.items() if k != "cost"}, **p["cost"]} for p in stored]
    return Results(folder, attempts, estimated.frame(), traces, estimated, pd.DataFrame(rows), points)
