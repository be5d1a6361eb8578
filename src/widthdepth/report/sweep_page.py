"""The page of a `widthdepth lab sweep` (issue 20): `DIR/report.html`, one self-contained file — what the
experiment tests, its figure, every arm's accuracy with its interval, and the experiment's answer (the
critical depths, or the exchange rate between model size and inference compute with links to the
side-by-side report and each size's own report).

    write_sweep_page("runs/depth", "depth", "quick", rows, png)
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from widthdepth.report.compare import ExchangeRate, rates_html
from widthdepth.report.page import CSS
from widthdepth.report.sweep import contrast_lines, critical_lines, summary_table

CLAIMS = {
    "shape": "Deep and thin against wide at one parameter count (MobileLLM: deeper wins at 125M–350M, credited to "
             "layers composing abstractions). Stacks of unique layers from a few wide ones to many thin ones, trained "
             "on the same data for the same steps, and again for the same training FLOPs. If the mechanism holds, "
             "depth helps on chains (composition) more than on search. By design, a chain position attends to itself "
             "and the one before, so each layer carries information one step: a stack with fewer layers than a chain "
             "has steps cannot solve it, and the telling comparison is among the shapes deep enough.",
    "depth": "Capabilities that appear at a critical depth (1000-layer RL: new behaviours past depth thresholds). "
             "Unique stacks of increasing depth on chains of increasing length L: a chain length's critical depth is "
             "the smallest depth from which every deeper one reaches the threshold; beside them, one shared block "
             "looped to the same depth (recurrent depth: the same FLOPs at a fraction of the parameters), trained at "
             "that depth, and one trained at random depths and read at each. By design, each layer carries "
             "information one chain step (attention to the position before), so a chain of L steps needs about L "
             "layers: a critical depth below L is impossible, and the question is how far above L it lies.",
    "size": "Inference compute against model size (Snell et al. 2024: a smaller model with more test-time compute "
            "matches a much larger one on easy and medium problems, not on the hardest). The reasoner trained at "
            "several widths with one recipe, each run on the same study grid, compared at matched inference FLOPs "
            "and at matched total FLOPs (training spread over the queries served).",
    "thought": "Test-time optimisation against parameters (latent-thought models, Kong et al. 2025: accuracy scales "
               "with inference steps and latent size, beyond parameter count). The latent-thought model trained at "
               "several decoder widths and latent sizes with one recipe, each run on one grid of restarts (width) x "
               "inference steps (depth) on few-shot rules, compared at matched inference and total FLOPs.",
    "memory": "Sleep-style consolidation against parameters (accuracy grows with the passes that consolidate an "
              "evicted context into fast weights, more so on harder questions). The fast-weight memory trained at "
              "several embedding sizes with one recipe, each run on one grid of copies (width) x consolidation "
              "passes (depth) on recall questions of 1 to 4 hops, compared at matched inference and total FLOPs.",
}


def write_sweep_page(folder: str | Path, experiment: str, preset: str, rows: list[dict], png: bytes,
                     rates: list[ExchangeRate] | None = None, command: str = "") -> Path:
    """`command`: the command that made the folder, as shown (default: its experiment, preset and folder)."""
    columns, table = summary_table(rows)
    counts = sorted({int(row[columns.index("seeds")]) for row in table})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    command = command or f"widthdepth lab sweep --experiment {experiment} --preset {preset} --out {folder}"
    devices = sorted({row.get("device", "cpu") for row in rows} | {row.get("trained_on", "cpu") for row in rows})
    body = [f"<h1>widthdepth lab sweep: {html.escape(experiment)} ({html.escape(preset)})</h1>",
            f"<p class='meta'><code>{html.escape(command)}</code> · {len(table)} arms × {seeds} seed"
            f"{'s' if seeds != '1' else ''} · trained and run on {html.escape(', '.join(devices))} · results in "
            "<code>results.jsonl</code></p>",
            f"<p>{html.escape(CLAIMS[experiment])}</p>",
            f"<figure><img alt='{html.escape(experiment)} sweep' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode()}'></figure>"]
    if experiment == "depth":
        body.append("<h2>Critical depths</h2><p class='meta'>The smallest depth from which every deeper one evaluated "
                    "reaches the threshold (a depth that reaches it and a deeper one that falls back below is named, "
                    "not counted); the interval draws the same problems and seeds for every depth</p>"
                    "<ul class='answer'>"
                    + "".join(f"<li>{html.escape(line)}</li>" for line in critical_lines(rows)) + "</ul>")
    if experiment == "shape":
        lines = contrast_lines(rows)
        body.append("<h2>Deep and thin against wide</h2><p class='meta'>The deepest stack's accuracy minus the "
                    "widest's (95% interval: seeds drawn for each, problems drawn once for both), and the number of "
                    f"layers that did best. Each interval is 95% on its own: among {len(lines)} of them, about "
                    f"{len(lines) / 20:.1f} would exclude 0 by chance alone</p><ul class='answer'>"
                    + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
    if rates:
        body.append(rates_html(rates))
        body.append("<p>The sizes side by side, every frontier in every cost unit: <a href='compare.html'>"
                    "compare.html</a>; each size's own study report: "
                    + ", ".join(f"<a href='runs/{html.escape(r['arm'])}/report.html'>{html.escape(r['arm'])}</a>"
                                for r in rows) + ".</p>")
    how = ("one restart (copy) after the recipe's deepest step count; 95% intervals over problems"
           if experiment in ("thought", "memory") else "chains read from one sampled trajectory at the arm's depth, "
           "search as coverage of the trajectories; 95% intervals resample seeds and problems (with a few seeds "
           "the seed part is rough: a bootstrap over 2 or 3 values understates their spread)")
    body.append("<h2>Accuracy per arm</h2><p class='meta'>Each task: fresh problems the same for every arm; "
                f"{how}.</p><table><tr>"
                + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in table)
                + "</table>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>widthdepth lab sweep: {html.escape(experiment)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>")
    path = Path(folder) / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
