"""The figure of a `widthdepth lab sweep` (issue 20), as Vega-Lite: accuracy against depth per chain
length with the critical-depth threshold marked (depth), or against the number of layers at one
parameter count per task (shape); 95% intervals over seeds and problems as bars.

    spec, data = sweep_figure("depth", rows)
    Path("runs/depth/figure.png").write_bytes(to_png(spec, data))
"""

from __future__ import annotations

from widthdepth.lab.sweep_stats import FAMILIES, THRESHOLD, critical_depths, first_reached, summary

GROUPS = {"stack": "unique layers", "loop": "one block, looped", "anyloop": "one block, any depth",
          "steps": "same steps", "flops": "same training FLOPs"}


def sweep_points(rows: list[dict]) -> list[dict]:
    """One point per arm and task: its depth, layers, accuracy and interval."""
    points = []
    layers = {row["arm"]: row["layers"] for row in rows}
    for arm in summary(rows):
        for key, value in arm.items():
            if key.split(" ")[0] in FAMILIES and not key.endswith(" ci"):
                family, size = key.split()
                low, high = arm[f"{key} ci"]
                points.append({"arm": arm["arm"], "group": GROUPS.get(arm["group"], arm["group"]),
                               "depth": arm["depth"], "layers": layers[arm["arm"]], "params": arm["params"],
                               "task": f"{family} {'L' if family == 'chain' else 'n'}={size}",
                               "accuracy": value, "low": low, "high": high})
    return points


def sweep_figure(experiment: str, rows: list[dict]) -> tuple[dict, dict[str, list[dict]]]:
    """(Vega-Lite spec, its datasets) of a sweep's rows."""
    points = sweep_points(rows)
    x_field, x_title = ("depth", "depth (layers applied)") if experiment == "depth" else ("layers", "unique layers")
    x = {"field": x_field, "type": "quantitative", "scale": {"type": "log", "base": 2}, "title": x_title,
         "axis": {"values": sorted({p[x_field] for p in points})}}
    y = {"field": "accuracy", "type": "quantitative", "scale": {"domain": [0, 1]}, "title": "accuracy"}
    color = {"field": "task", "type": "nominal", "title": "task"}
    solid, dashed, dotted = ((GROUPS["stack"], GROUPS["loop"], GROUPS["anyloop"]) if experiment == "depth"
                             else (GROUPS["steps"], GROUPS["flops"], ""))
    dash = {"field": "group", "scale": {"domain": [solid, dashed, dotted], "range": [[1, 0], [6, 3], [1, 3]]},
            "legend": None}
    layers: list[dict] = [
        {"mark": {"type": "line", "point": True}, "encoding": {"x": x, "y": y, "color": color, "strokeDash": dash}},
        {"mark": {"type": "rule", "opacity": 0.5}, "encoding": {"x": x, "y": {"field": "low", "type": "quantitative"},
                                                                "y2": {"field": "high"}, "color": color}},
    ]
    if experiment == "depth":
        layers.append({"data": {"values": [{"threshold": THRESHOLD}]}, "mark": {"type": "rule", "color": "black"},
                       "encoding": {"y": {"field": "threshold", "type": "quantitative"}}})
        title = [f"accuracy against depth: solid: {solid}, dashed: {dashed} (trained at that depth), dotted: {dotted} "
                 "(trained at random depths)", f"the black line: {THRESHOLD}; a chain length's critical depth is the "
                 "first depth from which every deeper one is at or above it",
                 "bars: 95% intervals over seeds and problems"]
    else:
        params = sorted({p["params"] for p in points})
        title = [f"accuracy against the number of layers, at {params[0]:,}–{params[-1]:,} parameters",
                 f"solid: {solid}, dashed: {dashed}; bars: 95% intervals over seeds and problems"]
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title, "width": 520,
            "height": 300, "data": {"name": "points"}, "layer": layers}
    return spec, {"points": points}


def size_figure(runs: list, queries: float) -> tuple[dict, dict[str, list[dict]]]:  # runs: report.compare.Run
    """Each size's frontier (best accuracy within a budget, any w × d and aggregator) per task, against
    total FLOPs per problem: inference plus the model's training over `queries` queries."""
    from widthdepth.analysis.frontier import frontier

    points = [{"size": run.label, "task": task, "flops": p.budget + run.training_flops / queries,
               "accuracy": p.cell.accuracy} for run in runs for task, ts in run.traces.items()
              for p in frontier(ts, "flops") if p.strategy == "best" and p.cell is not None]
    sizes = [run.label for run in runs]
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"name": "points"},
            "title": [f"best accuracy within a budget of total FLOPs per problem (inference + training over "
                      f"{queries:,.0f} queries), per model size", "a smaller model left of a larger one at the "
                      "same accuracy is cheaper; a line that stops below another never reaches its accuracy"],
            "facet": {"field": "task", "type": "nominal", "title": None, "sort": list(dict.fromkeys(
                p["task"] for p in points))}, "columns": 4,
            "spec": {"width": 200, "height": 150, "mark": {"type": "line", "interpolate": "step-after", "point": True},
                     "encoding": {"x": {"field": "flops", "type": "quantitative", "scale": {"type": "log"},
                                        "title": "total FLOPs per problem", "axis": {"format": "~s", "tickCount": 4}},
                                  "y": {"field": "accuracy", "type": "quantitative", "scale": {"domain": [0, 1]}},
                                  "color": {"field": "size", "type": "nominal", "sort": sizes, "title": "model"}}}}
    return spec, {"points": points}


def summary_table(rows: list[dict]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(columns, rows) of a sweep's accuracies with their 95% intervals, one row per arm (an arm that is another
    one's model read at the same depth says so)."""
    arms = summary(rows)
    scores = [key for key in arms[0] if key.split(" ")[0] in FAMILIES and not key.endswith(" ci")]
    same = _same_models(rows)
    return (("arm", "params", "depth", "seeds", "train FLOPs", *scores),
            [(a["arm"] + (f" (= {same[a['arm']]})" if a["arm"] in same else ""), f"{a['params']:,}", str(a["depth"]),
              str(a["seeds"]), f"{a['training_flops']:.3g}",
              *(f"{a[k]:.2f} [{a[k + ' ci'][0]:.2f}, {a[k + ' ci'][1]:.2f}]" for k in scores)) for a in arms])


def _same_models(rows: list[dict]) -> dict[str, str]:
    """Arm -> the first arm with the same models read at the same depth (depth 1: a stack of one layer is the
    looped block run once)."""
    first: dict[tuple, str] = {}
    same = {}
    for row in rows:
        key = (row.get("recipe"), row.get("depth"))
        if row.get("recipe") is None or row["arm"] == first.setdefault(key, row["arm"]):
            continue
        same[row["arm"]] = first[key]
    return same


def critical_lines(rows: list[dict]) -> list[str]:
    """Per depth arm group, each chain length's critical depth and its 95% interval, as a line ("none up to D":
    not held at the deepest depth evaluated; a depth that reached the threshold and lost it deeper is named)."""
    order = ("stack", "loop", "anyloop")
    lines = []
    for group in sorted({row["group"] for row in rows if row["group"] in order}, key=order.index):
        deepest = max(row["depth"] for row in rows if row["group"] == group)
        reached = first_reached(rows, group)

        def shown(depth: int | None, length: str) -> str:
            lost = reached[length] is not None and reached[length] != depth
            return ((f"none up to {deepest}" if depth is None else str(depth))
                    + (f" (reached at {reached[length]}, lost deeper)" if lost else ""))

        lines.append(f"critical depth ({group}, accuracy >= {THRESHOLD} from there on) [95% interval]: " + ", ".join(
            f"L={length}: {shown(point, length)} [{'none' if low is None else low}, {'none' if high is None else high}]"
            for length, (point, low, high) in critical_depths(rows, group).items()))
    return lines


def contrast_lines(rows: list[dict]) -> list[str]:
    """The shape experiment's answer per group and task: deepest against widest, the difference and its
    95% interval, and which wins (neither where the interval holds 0)."""
    from widthdepth.lab.sweep_stats import shape_contrasts

    groups = {"steps": "same steps", "flops": "same training FLOPs"}
    return [f"{groups.get(c['group'], c['group'])}, {c['task']}: {c['deep']} layers against {c['wide']}: "
            f"{c['difference']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]: "
            + {"deep": "deep and thin wins", "wide": "wide wins", "neither": "neither, within the noise"}[c["winner"]]
            + f"; best: {c['best']} layers ({c['best_accuracy']:.2f})" for c in shape_contrasts(rows)]
