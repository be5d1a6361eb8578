"""The report's figures as Vega-Lite specifications (plain dicts), drawn by vega-embed in the page
(interactive: a tooltip on every cell and point, radio buttons for the aggregator, a menu for the cost
unit) or as PNG by vl-convert for papers (`report --static`).

A figure names the datasets it reads (`{"name": "cells"}`); the page keeps one copy of each
experiment's datasets (`experiment_data`) and hands it to all of that experiment's figures.

Colours are Okabe and Ito's colour-blind-safe set, and every colour that carries meaning has a shape
or a dash pattern beside it, so the figures read in greyscale too: width is blue squares and solid
lines, depth vermillion triangles and dashed lines, hybrid green diamonds and dotted lines.
"""

from __future__ import annotations

import math

import numpy as np

from widthdepth.analysis.frontier import cell_cost, frontier
from widthdepth.analysis.surface import TraceSurface
from widthdepth.analysis.verdict import UNIT_WORDS
from widthdepth.plans import short_plan

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
UNITS = ("generated_tokens", "flops", "serial_tokens")
WINNERS = ("width", "depth", "hybrid", "best", "no winner", "method")
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#000000", "#999999", "#CC79A7")
SHAPES = ("square", "triangle-up", "diamond", "circle", "circle", "cross")
DASHES = ([1, 0], [6, 3], [2, 2], [1, 0], [1, 0], [1, 0])
AGGREGATOR_NAMES = {"majority": "majority vote", "best_of": "verifier best-of", "coverage": "coverage (oracle)",
                    "weighted": "confidence-weighted vote", "filtered:0.5": "most confident half, vote"}
AGGREGATOR_COLOURS = {"majority": "#0072B2", "best_of": "#009E73", "coverage": "#E69F00", "weighted": "#CC79A7",
                      "filtered:0.5": "#56B4E9"}
AGGREGATOR_DASHES = {"majority": [1, 0], "best_of": [6, 3], "coverage": [2, 2], "weighted": [8, 2, 2, 2],
                     "filtered:0.5": [4, 4]}
WIDTH, HEIGHT = 520, 300
LINE_LEGEND = {"symbolType": "stroke", "symbolOpacity": 1, "symbolStrokeWidth": 2.5}
"""Legends of line figures show each line's colour and dash at full strength (not its pale band)."""


def rounded(value: float, digits: int = 4) -> float | None:
    """A number for the page: 4 significant digits, None (JSON null) for NaN."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def unit_param(default: str, units: tuple[str, ...] = UNITS) -> dict:
    return {"name": "unit", "value": default, "bind": {"input": "select", "options": list(units),
                                                       "labels": [UNIT_WORDS[u] for u in units], "name": "cost unit: "}}


def unit_title(prefix: str) -> dict:
    words = " : ".join(f"unit == '{u}' ? '{w}'" for u, w in UNIT_WORDS.items())
    return {"expr": f"'{prefix} (' + ({words} : unit) + ', log scale)'"}


def _tooltip_costs() -> list[dict]:
    return [{"field": "tok", "title": "generated tokens", "format": ",.4~g"},
            {"field": "flops", "title": "FLOPs", "format": ".3~s"},
            {"field": "serial", "title": "serial tokens", "format": ",.4~g"}]


def _ci(low: float, high: float) -> str:
    return "—" if not (math.isfinite(low) and math.isfinite(high)) else f"{low:.2f}–{high:.2f}"


def cell_rows(ts: TraceSurface) -> list[dict]:
    """Every cell (w, d, aggregator) with its accuracy, interval and mean cost per problem in each unit
    (verification included where the aggregator pays for it, as the frontier counts it)."""
    rows = []
    for (w, d) in ts.cost:
        for aggregator in ts.aggregators:
            accuracy = ts.mean(w, d, aggregator)
            if not math.isfinite(accuracy):
                continue
            low, high = ts.cell_interval(w, d, aggregator)
            costs = {u: cell_cost(ts, w, d, aggregator, u) for u in UNITS}
            rows.append({"w": w, "d": d, "agg": aggregator, "acc": rounded(accuracy), "ci": _ci(low, high),
                         "lo": rounded(low), "hi": rounded(high), "tok": rounded(costs["generated_tokens"]),
                         "flops": rounded(costs["flops"]), "serial": rounded(costs["serial_tokens"])})
    return rows


def frontier_rows(ts: TraceSurface) -> list[dict]:
    """The frontier of each strategy in each cost unit: budget, the best cell within it and its interval."""
    rows = []
    for unit in UNITS:
        for p in frontier(ts, unit):
            if p.cell is None:
                continue
            c = p.cell
            rows.append({"unit": unit, "strategy": p.strategy, "budget": rounded(p.budget), "acc": rounded(c.accuracy),
                         "lo": rounded(p.ci_low), "hi": rounded(p.ci_high), "ci": _ci(p.ci_low, p.ci_high),
                         "cell": f"{c.w}×{c.d} {c.aggregator}", "cost": rounded(c.cost)})
    return rows


def method_rows(comparisons: dict[str, list]) -> list[dict]:
    """unit -> MethodComparison list: one row per method and unit, with its interval and verdict."""
    rows = []
    for unit, listed in comparisons.items():
        for c in listed:
            if not (math.isfinite(c.cost) and c.cost > 0):
                continue
            rows.append({"unit": unit, "plan": short_plan(c.plan), "cost": rounded(c.cost),
                         "acc": rounded(c.accuracy), "lo": rounded(c.ci_low), "hi": rounded(c.ci_high),
                         "ci": _ci(c.ci_low, c.ci_high), "outcome": f"{c.outcome} the grid ({c.grid_cell or '—'})",
                         "held_out": (f"{c.held_out_difference:+.2f} [{c.low:+.2f}, {c.high:+.2f}]"
                                      if math.isfinite(c.held_out_difference) else "—")})
    return rows


def iso_rows(ts: TraceSurface, unit: str, levels: int = 4) -> list[dict]:
    """Lines of equal cost across the w × d grid: for a few budgets, the (fractional) depth at which each
    width's chain reaches it, by linear interpolation between rounds."""
    n, depth = ts.trace.plan.chains, ts.trace.plan.rounds
    cost = np.array([[cell_cost(ts, w, d, "majority", unit) for d in range(1, depth + 1)] for w in range(1, n + 1)])
    if n < 2 or depth < 2 or not np.isfinite(cost).all() or not cost.max() > cost.min() > 0:
        return []
    rows = []
    for level in np.geomspace(cost.min(), cost.max(), levels + 2)[1:-1]:
        for w in range(1, n + 1):
            by_round = cost[w - 1]
            if not by_round[0] <= level <= by_round[-1]:
                continue
            d = float(np.interp(level, by_round, np.arange(1, depth + 1)))
            rows.append({"level": rounded(level, 3), "w": w, "d": round(d, 3)})
    return rows


def experiment_data(ts: TraceSurface, comparisons: dict[str, list], unit: str) -> dict[str, list[dict]]:
    """One experiment's datasets, shared by its figures."""
    return {"cells": cell_rows(ts), "frontier": frontier_rows(ts), "methods": method_rows(comparisons),
            "iso": iso_rows(ts, unit)}


def chart_spec(title: str, body: dict, width: int = WIDTH, height: int = HEIGHT) -> dict:
    return {"$schema": SCHEMA, "title": {"text": title, "anchor": "start", "fontSize": 13}, "width": width,
            "height": height, "config": {"axis": {"labelFontSize": 11, "titleFontSize": 12}}, **body}


def _strategy_scales(domain: tuple[str, ...]) -> dict:
    index = [WINNERS.index(s) for s in domain]
    return {"color": {"domain": list(domain), "range": [COLOURS[i] for i in index]},
            "dash": {"domain": list(domain), "range": [DASHES[i] for i in index]}}


def frontier_chart(title: str, unit: str, has_methods: bool) -> dict:
    """Best accuracy within a budget for width, depth, hybrid and any allocation, bands of 95%; methods as
    purple crosses with their intervals; a menu switches the cost unit."""
    strategies = ("width", "depth", "hybrid", "best")
    scales = _strategy_scales(strategies)
    x = {"field": "budget", "type": "quantitative", "scale": {"type": "log"},
         "axis": {"title": unit_title("budget per problem"), "format": "~s"}}
    y = {"field": "acc", "type": "quantitative", "scale": {"domain": [0, 1]}, "title": "accuracy"}
    in_unit = {"filter": "datum.unit == unit"}
    colour = {"field": "strategy", "type": "nominal", "scale": scales["color"], "title": "strategy",
              "sort": list(strategies), "legend": LINE_LEGEND}
    layers: list[dict] = [
        {"data": {"name": "frontier"}, "transform": [in_unit, {"filter": "datum.strategy != 'best'"}],
         "mark": {"type": "area", "interpolate": "step-after", "opacity": 0.13},
         "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative", "scale": {"domain": [0, 1]}},
                      "y2": {"field": "hi"}, "color": colour}},
        {"data": {"name": "frontier"}, "transform": [in_unit],
         "mark": {"type": "line", "interpolate": "step-after", "point": {"size": 30}, "strokeWidth": 2},
         "encoding": {"x": x, "y": y, "color": colour,
                      "strokeDash": {"field": "strategy", "type": "nominal", "scale": scales["dash"], "title": "strategy",
                                     "sort": list(strategies), "legend": LINE_LEGEND},
                      "tooltip": [{"field": "strategy"}, {"field": "budget", "title": "budget", "format": ".4~s"},
                                  {"field": "cell", "title": "best cell (w×d aggregator)"},
                                  {"field": "acc", "title": "accuracy", "format": ".3f"},
                                  {"field": "ci", "title": "95% interval"},
                                  {"field": "cost", "title": "its cost", "format": ".4~s"}]}}]
    if has_methods:
        method_x = {**x, "field": "cost"}
        layers += [
            {"data": {"name": "methods"}, "transform": [in_unit], "mark": {"type": "rule", "color": COLOURS[5]},
             "encoding": {"x": method_x, "y": {"field": "lo", "type": "quantitative"}, "y2": {"field": "hi"}}},
            {"data": {"name": "methods"}, "transform": [in_unit],
             "mark": {"type": "point", "shape": "cross", "filled": True, "size": 140, "color": COLOURS[5]},
             "encoding": {"x": method_x, "y": y, "tooltip": [
                 {"field": "plan", "title": "method"}, {"field": "acc", "title": "accuracy", "format": ".3f"},
                 {"field": "ci", "title": "95% interval"}, {"field": "cost", "title": "mean cost", "format": ".4~s"},
                 {"field": "outcome", "title": "at matched cost"}, {"field": "held_out", "title": "held out"}]}}]
    return chart_spec(title, {"params": [unit_param(unit)], "layer": layers})


def heatmap_chart(title: str, aggregators: tuple[str, ...], n: int, depth: int, unit: str) -> dict:
    """Accuracy of every cell w × d for one aggregator (radio buttons), dashed lines of equal cost."""
    default = "best_of" if "best_of" in aggregators else aggregators[0]
    pick = {"name": "agg", "value": default, "bind": {"input": "radio", "options": list(aggregators),
                                                      "labels": [AGGREGATOR_NAMES.get(a, a) for a in aggregators],
                                                      "name": "aggregator: "}}
    x = {"field": "x0", "type": "quantitative", "scale": {"domain": [0.5, n + 0.5], "nice": False},
         "axis": {"title": "w (parallel chains)", "format": "d", "values": list(range(1, n + 1))}}
    y = {"field": "y0", "type": "quantitative", "scale": {"domain": [0.5, depth + 0.5], "nice": False},
         "axis": {"title": "d (sequential rounds)", "format": "d", "values": list(range(1, depth + 1))}}
    cell_tooltip = [{"field": "w", "title": "w (chains)"}, {"field": "d", "title": "d (rounds)"},
                    {"field": "agg", "title": "aggregator"}, {"field": "acc", "title": "accuracy", "format": ".3f"},
                    {"field": "ci", "title": "95% interval"}, *_tooltip_costs()]
    layers: list[dict] = [
        {"data": {"name": "cells"}, "transform": [{"filter": "datum.agg == agg"},
                                                   {"calculate": "datum.w - 0.5", "as": "x0"},
                                                   {"calculate": "datum.w + 0.5", "as": "x1"},
                                                   {"calculate": "datum.d - 0.5", "as": "y0"},
                                                   {"calculate": "datum.d + 0.5", "as": "y1"}],
         "mark": {"type": "rect", "stroke": "white", "strokeWidth": 0.5},
         "encoding": {"x": x, "x2": {"field": "x1"}, "y": y, "y2": {"field": "y1"},
                      "color": {"field": "acc", "type": "quantitative", "title": "accuracy",
                                "scale": {"scheme": "viridis", "domain": [0, 1]}},
                      "tooltip": cell_tooltip}}]
    if n * depth <= 256:
        layers.append({"data": {"name": "cells"}, "transform": [{"filter": "datum.agg == agg"}],
                       "mark": {"type": "text", "fontSize": 9},
                       "encoding": {"x": {"field": "w", "type": "quantitative"}, "y": {"field": "d", "type": "quantitative"},
                                    "text": {"field": "acc", "format": ".2f"}, "tooltip": cell_tooltip,
                                    "color": {"condition": {"test": "datum.acc < 0.6", "value": "white"}, "value": "black"}}})
    layers.append({"data": {"name": "iso"}, "mark": {"type": "line", "color": "white", "strokeDash": [5, 3],
                                                     "strokeWidth": 1.4},
                   "encoding": {"x": {"field": "w", "type": "quantitative"}, "y": {"field": "d", "type": "quantitative"},
                                "detail": {"field": "level"},
                                "tooltip": [{"field": "level", "title": f"equal cost ({UNIT_WORDS[unit]})",
                                             "format": ".4~s"}]}})
    size = (min(WIDTH, max(240, 26 * n)), min(HEIGHT, max(160, 26 * depth)))
    return chart_spec(title, {"params": [pick], "layer": layers}, *size)


def selection_chart(title: str, aggregators: tuple[str, ...], rounds: list[int], max_k: int) -> dict:
    """Accuracy against the number of chains k, per aggregator and coverage, at round 1 and the last;
    click a legend entry to show that aggregator alone."""
    domain = list(aggregators)
    colour = {"field": "agg", "type": "nominal", "title": "aggregator", "sort": domain,
              "scale": {"domain": domain, "range": [AGGREGATOR_COLOURS.get(a, "#444") for a in domain]},
              "legend": {**LINE_LEGEND, "labelExpr": " : ".join(f"datum.label == '{a}' ? '{AGGREGATOR_NAMES.get(a, a)}'"
                                                                 for a in domain) + " : datum.label"}}
    dash = {"field": "agg", "type": "nominal", "title": "aggregator", "sort": domain, "legend": colour["legend"],
            "scale": {"domain": domain, "range": [AGGREGATOR_DASHES.get(a, [1, 0]) for a in domain]}}
    x = {"field": "w", "type": "quantitative", "scale": {"type": "log", "base": 2}, "title": "k (chains, log scale)",
         "axis": {"values": [2 ** i for i in range(8) if 2 ** i <= max_k] + ([max_k] if max_k & (max_k - 1) else []),
                  "format": "d"}}
    panels = []
    for d in rounds:
        keep = [{"filter": f"datum.d == {d}"}]
        shown = {"condition": {"param": "shown", "value": 1}, "value": 0.08}
        panels.append({"title": f"round d = {d}", "width": 250, "height": 220, "layer": [
            {"data": {"name": "cells"}, "transform": keep, "mark": {"type": "area", "opacity": 0.12},
             "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative", "scale": {"domain": [0, 1]}},
                          "y2": {"field": "hi"}, "color": colour}},
            {"data": {"name": "cells"}, "transform": keep, "mark": {"type": "line", "point": True},
             "params": [{"name": "shown", "select": {"type": "point", "fields": ["agg"]}, "bind": "legend"}]
             if d == rounds[0] else [],
             "encoding": {"x": x, "y": {"field": "acc", "type": "quantitative", "title": "accuracy",
                                        "scale": {"domain": [0, 1]}},
                          "color": colour, "strokeDash": dash, "opacity": shown,
                          "tooltip": [{"field": "agg", "title": "aggregator"}, {"field": "w", "title": "k"},
                                      {"field": "acc", "title": "accuracy", "format": ".3f"},
                                      {"field": "ci", "title": "95% interval"}, *_tooltip_costs()]}}]})
    return {"$schema": SCHEMA, "title": {"text": title, "anchor": "start", "fontSize": 13}, "hconcat": panels}


def latency_chart(title: str, unit: str) -> dict:
    """Every cell's compute against its latency, coloured by accuracy (best aggregator of each cell)."""
    compute = "flops" if unit == "flops" else "tok"
    return chart_spec(title, {
        "data": {"name": "cells"},
        "transform": [{"filter": "datum.agg != 'coverage'"},
                      {"window": [{"op": "rank", "as": "rank"}], "groupby": ["w", "d"],
                       "sort": [{"field": "acc", "order": "descending"}]}, {"filter": "datum.rank == 1"}],
        "mark": {"type": "point", "filled": True, "size": 60, "stroke": "#333", "strokeWidth": 0.4},
        "encoding": {"x": {"field": "serial", "type": "quantitative", "scale": {"type": "log"},
                           "title": "latency: serial tokens per problem (log scale)", "axis": {"format": "~s"}},
                     "y": {"field": compute, "type": "quantitative", "scale": {"type": "log"},
                           "title": f"compute: {UNIT_WORDS[unit]} per problem (log scale)", "axis": {"format": "~s"}},
                     "color": {"field": "acc", "type": "quantitative", "title": "accuracy",
                               "scale": {"scheme": "viridis", "domain": [0, 1]}},
                     "tooltip": [{"field": "w", "title": "w (chains)"}, {"field": "d", "title": "d (rounds)"},
                                 {"field": "agg", "title": "best aggregator"},
                                 {"field": "acc", "title": "accuracy", "format": ".3f"},
                                 {"field": "ci", "title": "95% interval"}, *_tooltip_costs()]}}, 420, 260)


ALLOCATION_CURVES = {  # name: (colour, dash, label)
    "adaptive": ("#000000", [1, 0], "adaptive (probe + policy)"),
    "oracle": ("#CC79A7", [2, 2], "gold-binned (bins from gold pass@1, no probe)"),
    "width_majority": ("#0072B2", [1, 0], "width only, majority"),
    "width_best_of": ("#56B4E9", [6, 3], "width only, verifier best-of"),
    "depth": ("#D55E00", [6, 3], "depth only"),
    "hybrid": ("#009E73", [2, 2], "best fixed hybrid"),
    "best_fixed": ("#999999", [8, 2, 2, 2], "best fixed plan"),
}


def allocation_rows(evaluation: dict) -> list[dict]:
    """From allocation.json: each curve's points (mean cost per problem, held-out accuracy, interval)."""
    curves = {"adaptive": evaluation["adaptive"], "oracle": evaluation.get("oracle") or [], **evaluation["baselines"]}
    rows = []
    for name, points in curves.items():
        if name not in ALLOCATION_CURVES:
            continue
        for p in points or ():
            low, high = p.get("ci_low", math.nan), p.get("ci_high", math.nan)
            low, high = (math.nan if v is None else v for v in (low, high))
            rows.append({"curve": ALLOCATION_CURVES[name][2], "cost": rounded(p["cost"]), "acc": rounded(p["accuracy"]),
                         "lo": rounded(low), "hi": rounded(high), "ci": _ci(low, high)})
    return rows


def allocation_chart(evaluation: dict) -> dict:
    """Held-out accuracy against mean compute per problem: adaptive with its band, gold-binned, fixed plans."""
    labels = [label for _, _, label in ALLOCATION_CURVES.values()]
    colour = {"field": "curve", "type": "nominal", "title": None, "sort": labels,
              "scale": {"domain": labels, "range": [c for c, _, _ in ALLOCATION_CURVES.values()]},
              "legend": {**LINE_LEGEND, "orient": "bottom", "columns": 2, "labelLimit": 320}}
    dash = {"field": "curve", "type": "nominal", "title": None, "sort": labels, "legend": colour["legend"],
            "scale": {"domain": labels, "range": [d for _, d, _ in ALLOCATION_CURVES.values()]}}
    unit = UNIT_WORDS.get(evaluation["unit"], evaluation["unit"])
    x = {"field": "cost", "type": "quantitative", "scale": {"type": "log"}, "axis": {"format": "~s"},
         "title": f"mean compute per problem ({unit}, probe included, log scale)"}
    how = f"{evaluation['folds']}-fold cross-validation" if evaluation.get("folds") else "held-out split"
    return chart_spec(f"adaptive allocation ({evaluation['predictor']}, probe {evaluation['probe']}; {how})", {
        "data": {"name": "allocation"},
        "layer": [
            {"transform": [{"filter": f"datum.curve == '{labels[0]}'"}], "mark": {"type": "area", "opacity": 0.12},
             "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative", "scale": {"domain": [0, 1]}},
                          "y2": {"field": "hi"}, "color": colour}},
            {"mark": {"type": "line", "point": True, "strokeWidth": 1.8},
             "encoding": {"x": x, "y": {"field": "acc", "type": "quantitative", "scale": {"domain": [0, 1]},
                                        "title": "accuracy on held-out problems"},
                          "color": colour, "strokeDash": dash,
                          "tooltip": [{"field": "curve"}, {"field": "cost", "title": "mean compute", "format": ".4~s"},
                                      {"field": "acc", "title": "accuracy", "format": ".3f"},
                                      {"field": "ci", "title": "95% interval"}]}}]})
