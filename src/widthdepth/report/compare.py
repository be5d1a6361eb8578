"""`widthdepth report A B [...]`: runs side by side — e.g. SmolLM2-135M against Gemma-3-270M, or two
reasoner sizes — on the tasks they share: each run's frontier overlaid in one cost unit, and the
exchange rate between model size and inference compute (Snell et al. 2024): how many times the
FLOPs the smaller model needs to match the larger one's accuracy.

The rate at an accuracy level a is cost_small(a) / cost_large(a), where cost(a) is the cheapest
mean cost per problem of any cell (w, d, aggregator) that reaches a, on all problems: a point
estimate read off each run's surface (each frontier's 95% band is in the figure). Levels are the
larger model's frontier accuracies; a level the smaller model never reaches is counted as such. In
FLOPs (≈ 2 × parameters × tokens) the rate splits into a per-token factor (the parameters' ratio)
and a tokens factor (how many more tokens the smaller model spends). Where the runs' training FLOPs
are known (`widthdepth lab sweep --experiment size`), the rate is also given in total FLOPs: each
problem's inference plus the model's training spread over a stated number of queries (Snell et al.'s
inference-to-pretraining ratio): cost(a) + training / queries.

    paths = write_comparison(["runs/smollm2", "runs/gemma"], out="runs/smollm2")
"""

from __future__ import annotations

import html
import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from widthdepth.analysis.frontier import Cell, cells, frontier
from widthdepth.analysis.surface import TraceSurface, estimate_surface
from widthdepth.analysis.traces import open_traces
from widthdepth.analysis.verdict import UNIT_WORDS
from widthdepth.errors import WidthdepthError
from widthdepth.jsonsafe import json_safe
from widthdepth.report import charts
from widthdepth.report.page import CSS, Figures

RUN_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
RUN_DASHES = ([1, 0], [6, 3], [2, 2], [8, 2, 2, 2], [4, 4], [1, 0], [6, 3])


@dataclass(frozen=True)
class Run:
    folder: str
    label: str
    model: str
    n_params: int
    traces: dict[str, TraceSurface]
    """task -> the run's experiment on it (its largest grid where it has several)."""
    training_flops: float = 0.0
    """The model's training FLOPs, where known (0: not known, and not counted)."""


@dataclass(frozen=True)
class ExchangeRate:
    task: str
    unit: str
    small: str
    large: str
    levels: int
    """Accuracy levels of the larger model's frontier."""
    reached: int
    """Of those, how many the smaller model reaches at some cost."""
    median: float
    low: float
    high: float
    """The median rate over the levels both reach, and its range."""
    best_large: float
    best_small: float
    param_factor: float
    """The smaller model's parameters over the larger's: its cost per token, relative (FLOPs only)."""
    queries: float = math.inf
    """Total FLOPs: the training FLOPs are spread over this many queries (inf: inference only)."""

    def sentence(self) -> str:
        head = f"{self.task}: {self.small} against {self.large}"
        if not self.reached:
            return (f"{head}: the smaller model reaches none of the larger one's accuracy levels (best "
                    f"{self.best_small:.2f} against {self.best_large:.2f}).")
        unit = UNIT_WORDS[self.unit] if math.isinf(self.queries) else \
            f"total FLOPs (inference + training spread over {self.queries:,.0f} queries)"
        text = (f"{head}: the smaller model reaches the larger one's accuracy at {self.median:.2g}× its "
                f"{unit} (median over {self.reached} accuracy levels both reach, "
                f"{self.low:.2g}–{self.high:.2g}×)")
        if self.unit == "flops" and self.param_factor > 0 and math.isinf(self.queries):
            text += (f"; per token it costs {self.param_factor:.2g}× (parameters), so it spends "
                     f"{self.median / self.param_factor:.2g}× the tokens")
        missed = self.levels - self.reached
        if missed:
            text += (f"; {missed} of the larger model's {self.levels} levels it never reaches (its best "
                     f"{self.best_small:.2f} against {self.best_large:.2f})")
        return text + "."


def _cheapest(candidates: list[Cell], accuracy: float) -> float:
    costs = [c.cost for c in candidates if c.accuracy >= accuracy - 1e-12]
    return min(costs) if costs else math.inf


def exchange_rate(task: str, small: Run, large: Run, unit: str, queries: float = math.inf) -> ExchangeRate:
    """The rate in `unit`; with finite `queries` (FLOPs only), in total FLOPs: each cell's cost plus the
    model's training FLOPs over `queries` (a constant per model, so the cheapest cell stays the cheapest)."""
    if not math.isinf(queries) and unit != "flops":
        raise ValueError("training is spread over queries in FLOPs only")
    ours, theirs = cells(small.traces[task], unit), cells(large.traces[task], unit)
    levels = sorted({p.cell.accuracy for p in frontier(large.traces[task], unit)
                     if p.strategy == "best" and p.cell is not None and p.cell.accuracy > 0})
    spread = (0.0, 0.0) if math.isinf(queries) else (small.training_flops / queries, large.training_flops / queries)
    rates = [(_cheapest(ours, a) + spread[0]) / (_cheapest(theirs, a) + spread[1]) for a in levels]
    finite = [r for r in rates if math.isfinite(r)]
    best = [max((c.accuracy for c in cs), default=math.nan) for cs in (theirs, ours)]
    return ExchangeRate(task, unit, small.label, large.label, len(levels), len(finite),
                        statistics.median(finite) if finite else math.nan, min(finite, default=math.nan),
                        max(finite, default=math.nan), best[0], best[1],
                        small.n_params / large.n_params if large.n_params else math.nan, queries)


def load_run(folder: str, labels: set[str], model: str | None = None) -> Run:
    """A folder's run (`model`: only that model's experiments, where the store holds others)."""
    traces = [t for t in open_traces(folder) if model is None or t.model == model]
    if not traces:
        raise WidthdepthError(f"{folder}: the store holds no finished grid to compare; run `widthdepth run --out "
                              f"{folder}` first")
    surface = estimate_surface(traces)
    chosen: dict[str, TraceSurface] = {}
    for ts in surface.traces:  # a task run under several grids: the largest
        size = ts.trace.plan.chains * ts.trace.plan.rounds
        held = chosen.get(ts.trace.task)
        if held is None or size > held.trace.plan.chains * held.trace.plan.rounds:
            chosen[ts.trace.task] = ts
    models = sorted({ts.trace.model for ts in surface.traces})
    model = models[0]
    label = model.split("@")[0] if len(models) == 1 else f"{Path(folder).name} ({len(models)} models)"
    if label in labels:
        label = f"{label} ({Path(folder).name})"
    n_params = next(ts.trace.n_params for ts in surface.traces if ts.trace.model == model)
    return Run(folder, label, model, n_params, chosen)


def run_rows(runs: list[Run], task: str) -> list[dict]:
    rows = []
    for run in runs:
        for unit in charts.UNITS:
            for p in frontier(run.traces[task], unit):
                if p.strategy == "best" and p.cell is not None:
                    rows.append({"unit": unit, "run": run.label, "budget": charts.rounded(p.budget),
                                 "acc": charts.rounded(p.cell.accuracy), "lo": charts.rounded(p.ci_low),
                                 "hi": charts.rounded(p.ci_high), "cell": f"{p.cell.w}×{p.cell.d} {p.cell.aggregator}"})
    return rows


def overlay_chart(title: str, labels: list[str]) -> dict:
    """Each run's best frontier (any w × d) with its 95% band, in the unit chosen in the menu."""
    colour = {"field": "run", "type": "nominal", "title": "run", "sort": labels,
              "scale": {"domain": labels, "range": list(RUN_COLOURS[:len(labels)])}, "legend": charts.LINE_LEGEND}
    dash = {**colour, "scale": {"domain": labels, "range": list(RUN_DASHES[:len(labels)])}}
    x = {"field": "budget", "type": "quantitative", "scale": {"type": "log"},
         "axis": {"title": charts.unit_title("budget per problem"), "format": "~s"}}
    return charts.chart_spec(title, {
        "params": [charts.unit_param("flops")], "data": {"name": "runs"},
        "transform": [{"filter": "datum.unit == unit"}],
        "layer": [
            {"mark": {"type": "area", "interpolate": "step-after", "opacity": 0.13},
             "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative", "scale": {"domain": [0, 1]}},
                          "y2": {"field": "hi"}, "color": colour}},
            {"mark": {"type": "line", "interpolate": "step-after", "point": True, "strokeWidth": 2},
             "encoding": {"x": x, "y": {"field": "acc", "type": "quantitative", "title": "accuracy (best w × d)",
                                        "scale": {"domain": [0, 1]}}, "color": colour, "strokeDash": dash,
                          "tooltip": [{"field": "run"}, {"field": "budget", "format": ".4~s"},
                                      {"field": "cell", "title": "best cell"},
                                      {"field": "acc", "title": "accuracy", "format": ".3f"}]}}]})


def write_comparison(folders: list[str], out: str | None = None, static: bool = False) -> dict[str, Path]:
    """Write OUT/compare.html and OUT/compare.json (OUT: the first folder unless given)."""
    runs: list[Run] = []
    for folder in folders:
        runs.append(load_run(folder, {r.label for r in runs}))
    return write_runs(runs, out or folders[0], static)


def common_tasks(runs: list[Run]) -> list[str]:
    common = [t for t in runs[0].traces if all(t in r.traces for r in runs[1:])]
    if not common:
        raise WidthdepthError(f"{', '.join(r.folder for r in runs)}: no task is in every run (tasks: "
                              + "; ".join(f"{r.folder}: {', '.join(r.traces)}" for r in runs)
                              + "); run the same --tasks in each")
    return common


def size_rates(runs: list[Run], queries: float = math.inf) -> list[ExchangeRate]:
    """Each smaller run against the largest, per common task: in FLOPs and generated tokens, and in total
    FLOPs where `queries` is finite and every run's training FLOPs are known."""
    by_size = sorted(runs, key=lambda r: r.n_params, reverse=True)
    units: list[tuple[str, float]] = [("flops", math.inf), ("generated_tokens", math.inf)]
    if not math.isinf(queries) and all(r.training_flops > 0 for r in runs):
        units.append(("flops", queries))
    return [exchange_rate(t, r, by_size[0], u, q) for t in common_tasks(runs) for r in by_size[1:] for u, q in units]


def rate_table(rates: list[ExchangeRate]) -> list[tuple[str, ...]]:
    """A table row per task and smaller size: the rate in inference FLOPs and in total FLOPs."""
    def shown(rate: ExchangeRate | None) -> str:
        if rate is None:
            return "—"
        if not rate.reached:
            return f"never (best {rate.best_small:.2f} vs {rate.best_large:.2f})"
        text = f"{rate.median:.2g}× [{rate.low:.2g}, {rate.high:.2g}]"
        return text + (f", {rate.levels - rate.reached} of {rate.levels} never" if rate.reached < rate.levels else "")

    keyed = {(r.task, r.small, math.isinf(r.queries)): r for r in rates if r.unit == "flops"}
    return [(task, f"{small} vs {large}", shown(keyed.get((task, small, True))), shown(keyed.get((task, small, False))))
            for task, small, large in dict.fromkeys((r.task, r.small, r.large) for r in rates)]


def rates_html(rates: list[ExchangeRate]) -> str:
    """The FLOPs rates as a table (a row per task and smaller model; total FLOPs where known), then in words."""
    flops = [r for r in rates if r.unit == "flops"]
    total = any(not math.isinf(r.queries) for r in flops)
    queries = next((r.queries for r in flops if not math.isinf(r.queries)), math.inf)
    head = ["task", "smaller against larger", "× the FLOPs (median [range] over the levels)"]
    head += [f"× the total FLOPs (training over {queries:,.0f} queries)"] if total else []
    rows = [row if total else row[:3] for row in rate_table(flops)]
    text = ("<h2>Model size against inference compute</h2><p>How many times the larger model's FLOPs the smaller "
            "one needs to reach the larger one's accuracy: below 1, the smaller model is cheaper at that accuracy; "
            "\"n of m never\": accuracy levels of the larger model the smaller one never reaches, at any cost.</p>"
            "<table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows)
            + "</table><details><summary>In words</summary><ul class='answer'>"
            + "".join(f"<li>{html.escape(r.sentence())}</li>" for r in flops) + "</ul></details>")
    return text + ("<p class='meta'>Rates are point estimates read off each run's surface (all problems): at each "
                   "accuracy level of the larger model's frontier, the smaller model's cheapest cell reaching it over "
                   "the larger model's. In FLOPs (≈ 2 × parameters × tokens) a rate is the parameters' ratio times "
                   "the tokens' ratio; in total FLOPs each cell also carries its model's training FLOPs over the "
                   "queries. The figures' bands are 95% bootstrap intervals over problems.</p>")


def write_runs(runs: list[Run], out: str | Path, static: bool = False,
               rates: list[ExchangeRate] | None = None) -> dict[str, Path]:
    """Write OUT/compare.html and OUT/compare.json for `runs`, with `rates` (default: `size_rates(runs)`)."""
    common = common_tasks(runs)
    rates = size_rates(runs) if rates is None else rates
    figures = Figures(static)
    labels = [r.label for r in runs]
    body = ["<h1>widthdepth: runs side by side</h1>",
            "<table><tr><th>run</th><th>folder</th><th>model</th><th>parameters</th><th>training FLOPs</th></tr>"
            + "".join(f"<tr><td>{html.escape(r.label)}</td><td><code>{html.escape(r.folder)}</code></td>"
                      f"<td>{html.escape(r.model)}</td><td>{r.n_params:,}</td>"
                      f"<td>{f'{r.training_flops:.3g}' if r.training_flops else 'not known'}</td></tr>"
                      for r in runs) + "</table>",
            rates_html(rates)]
    for i, task in enumerate(common):
        key = f"t{i}"
        figures.data[key] = {"runs": run_rows(runs, task)}
        body.append(figures.figure(overlay_chart(f"{task}: best accuracy within a budget, per run", labels), key,
                                   f"frontiers {task}", "Each run's best accuracy within the budget (any w × d and "
                                   "aggregator), 95% bands; choose the cost unit above the figure."))
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>widthdepth: runs side by side</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}{figures.scripts()}</body></html>")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"compare": folder / "compare.html", "rates": folder / "compare.json"}
    paths["compare"].write_text(page, encoding="utf-8")
    record = {"runs": [{"folder": r.folder, "label": r.label, "model": r.model, "n_params": r.n_params,
                        "training_flops": r.training_flops} for r in runs],
              "tasks": common, "rates": [{**asdict(r), "sentence": r.sentence()} for r in rates]}
    paths["rates"].write_text(json.dumps(json_safe(record), indent=2, allow_nan=False), encoding="utf-8")
    return paths
