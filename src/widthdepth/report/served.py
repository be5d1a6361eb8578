"""The report of a serve folder (`widthdepth serve --out`): what serving cost, per plan, and how much
each plan's attempts agreed — the views that need no gold answer.

Served problems have no gold answers, so accuracy, the frontier, the verdict and a policy's held-out
judging do not apply; the page says so first, and says where they come from instead.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.plans import short_plan
from widthdepth.report.page import CSS, Figures

GOLD_FREE = ("Served problems have no gold answers, so this page shows what serving cost and how far each "
             "plan's attempts agreed with the answer sent back (a gold-free confidence) — not accuracy. The "
             "frontier, the verdict and a policy's held-out judging need gold answers: measure plans with "
             "<code>widthdepth run</code> on a task that has them (your own data: <code>jsonl:</code>), fit the "
             "policy with <code>widthdepth allocate fit</code> there, and serve it with <code>--policy</code>.")


def served_rows(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per plan: requests by how they ended, latency percentiles, mean cost, mean agreement."""
    rows = []
    for plan in sorted({r["plan"] for r in requests}):
        mine = [r for r in requests if r["plan"] == plan]
        ok = [r for r in mine if r["status"] == "ok"]
        seconds = np.array([r["seconds"] for r in ok]) if ok else np.array([np.nan])
        agreement = [r["agreement"] for r in ok if r["agreement"] is not None]

        def mean(field: str, inner: bool = False) -> float:
            values = [(r["usage"]["widthdepth"] if inner else r["usage"])[field] for r in ok]
            return float(np.mean(values)) if values else float("nan")

        rows.append({
            "plan": short_plan(plan), "requests": len(mine), "ok": len(ok),
            "cancelled": sum(r["status"] == "cancelled" for r in mine), "failed": sum(r["status"] == "failed" for r in mine),
            "p50_s": float(np.percentile(seconds, 50)), "p90_s": float(np.percentile(seconds, 90)),
            "p99_s": float(np.percentile(seconds, 99)), "prompt_tokens": mean("prompt_tokens"),
            "completion_tokens": mean("completion_tokens"), "flops": mean("flops", inner=True),
            "serial_tokens": mean("serial_tokens", inner=True), "attempts": mean("attempts", inner=True),
            "agreement": float(np.mean(agreement)) if agreement else float("nan"),
            "unanimous": float(np.mean([a == 1.0 for a in agreement])) if agreement else float("nan")})
    return rows


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "—"
        return f"{value:.3g}" if abs(value) >= 1e4 else f"{value:.2f}" if value % 1 else f"{value:.0f}"
    return html.escape(str(value))


HEADS = [("plan", "plan"), ("requests", "requests"), ("ok", "answered"), ("cancelled", "cancelled"),
         ("failed", "failed"), ("p50_s", "p50 s"), ("p99_s", "p99 s"), ("attempts", "attempts"),
         ("prompt_tokens", "prompt tok."), ("completion_tokens", "generated tok."), ("flops", "FLOPs"),
         ("serial_tokens", "serial tok."), ("agreement", "agreement"), ("unanimous", "unanimous")]
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def render_served(requests: list[dict[str, Any]], store_path: str, static: bool = False) -> str:
    rows = served_rows(requests)
    models = sorted({r["model"] for r in requests})
    span = f"{requests[0]['received_at'][:19]} to {requests[-1]['received_at'][:19]} UTC" if requests else ""
    counts = {s: sum(r["status"] == s for r in requests) for s in ("ok", "cancelled", "failed")}
    figures = Figures(static)
    figures.data["served"] = {"served": [
        {"plan": short_plan(r["plan"]), "seconds": round(r["seconds"], 4), "generated_tokens": r["usage"]["completion_tokens"],
         "status": r["status"]} for r in requests]}
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "width": 520, "height": 300,
            "data": {"name": "served"}, "mark": {"type": "point", "filled": True, "opacity": 0.7},
            "encoding": {"x": {"field": "generated_tokens", "type": "quantitative", "title": "generated tokens (request)"},
                         "y": {"field": "seconds", "type": "quantitative", "title": "latency (s)"},
                         "color": {"field": "plan", "type": "nominal", "scale": {"range": OKABE_ITO}},
                         "shape": {"field": "status", "type": "nominal"},
                         "tooltip": [{"field": f} for f in ("plan", "status", "generated_tokens", "seconds")]}}
    table = ("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for _, h in HEADS) + "</tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{_cell(row[k])}</td>" for k, _ in HEADS) + "</tr>" for row in rows)
             + "</tbody></table>")
    body = ["<h1>widthdepth report — served traffic</h1>",
            f"<p class='meta'>store <code>{html.escape(store_path)}</code>; model{'s' if len(models) > 1 else ''} "
            f"{html.escape(', '.join(models))}; {span}.</p>",
            f"<p class='answer'>{len(requests)} requests: {counts['ok']} answered, {counts['cancelled']} cancelled by "
            f"their client (what they generated is charged), {counts['failed']} failed.</p>",
            f"<p class='warning'>{GOLD_FREE}</p>", "<h2>Per plan</h2>", table,
            "<p class='meta'>Latency: from admission to the answer (queueing included); costs are means over answered "
            "requests, in the units of every report (a shared prompt counted once where the model evaluates it once); "
            "agreement: the share of a grid plan's final answers equal to the one sent back (unanimous: all of "
            "them).</p>",
            figures.figure(spec, "served", "latency against generated tokens per request",
                           "Each request: what it generated and how long it took, by plan.")]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>widthdepth report — served</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body>{''.join(body)}{figures.scripts()}</body></html>")


def write_served_report(folder: Path, requests: list[dict[str, Any]], static: bool = False) -> dict[str, Path]:
    import csv

    paths = {"report": folder / "report.html", "served": folder / "served.csv"}
    paths["report"].write_text(render_served(requests, str(folder), static), encoding="utf-8")
    rows = served_rows(requests)
    with paths["served"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["plan"])
        writer.writeheader()
        writer.writerows(rows)
    return paths
