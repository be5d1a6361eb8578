"""The figure of a `widthdepth lab sweep` (issue 20), as Vega-Lite: accuracy against depth per chain
length with the critical-depth threshold marked (depth), or against the number of layers at one
parameter count per task (shape); 95% intervals over seeds and problems as bars.

    spec, data = sweep_figure("depth", rows)
    Path("runs/depth/figure.png").write_bytes(to_png(spec, data))
"""

from __future__ import annotations

from widthdepth.lab.sweep import THRESHOLD, summary

GROUPS = {"stack": "unique layers", "loop": "one block, looped", "anyloop": "one block, any depth",
          "steps": "same steps", "flops": "same training FLOPs"}


def sweep_points(rows: list[dict]) -> list[dict]:
    """One point per arm and task: its depth, layers, accuracy and interval."""
    points = []
    layers = {row["arm"]: row["layers"] for row in rows}
    for arm in summary(rows):
        for key, value in arm.items():
            if key.startswith(("chain ", "search ")) and not key.endswith(" ci"):
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
                 "(trained at random depths)", f"the black line: {THRESHOLD}, a chain length's critical depth is the "
                 "first depth at or above it; bars: 95% intervals over seeds and problems"]
    else:
        params = sorted({p["params"] for p in points})
        title = [f"accuracy against the number of layers, at {params[0]:,}–{params[-1]:,} parameters",
                 f"solid: {solid}, dashed: {dashed}; bars: 95% intervals over seeds and problems"]
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title, "width": 520,
            "height": 300, "data": {"name": "points"}, "layer": layers}
    return spec, {"points": points}
