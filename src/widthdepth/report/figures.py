"""The report's figures, each a PNG (bytes) drawn with matplotlib's Agg backend.

- `frontier_figure`: accuracy against budget for width-only, depth-only, hybrid and the best
  allocation, with 95% bootstrap bands.
- `heatmap_figure`: the w × d accuracy grid with iso-cost contours.
- `phase_figure`: structure value on x, budget on y, colour = depth share of the best allocation.
- `selection_figure`: coverage (pass@k) beside majority@k and verifier@k on the same samples.
- `latency_figure`: the compute-versus-latency frontier.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from widthdepth.analysis.frontier import STRATEGIES, budgets_for, cells, frontier  # noqa: E402
from widthdepth.analysis.surface import TraceSurface  # noqa: E402
from widthdepth.analysis.verdict import UNIT_WORDS  # noqa: E402

COLOURS = {"width": "#1f77b4", "depth": "#d62728", "hybrid": "#2ca02c", "best": "#222222",
           "majority": "#1f77b4", "best_of": "#2ca02c", "coverage": "#ff7f0e", "weighted": "#9467bd",
           "filtered:0.5": "#8c564b"}
NAMES = {"majority": "majority@k", "best_of": "verifier best-of@k", "coverage": "coverage (pass@k, oracle)",
         "weighted": "confidence-weighted vote@k", "filtered:0.5": "most confident half, then vote@k (DeepConf)"}


def _png(fig) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


METHOD_MARKERS = "oDs^vP*X"


def frontier_figure(ts: TraceSurface, unit: str = "generated_tokens", methods: list | None = None) -> bytes:
    """The frontier of each strategy; `methods` (MethodComparison) drawn as markers with their intervals."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    points = frontier(ts, unit)
    for strategy in STRATEGIES:
        chosen = [p for p in points if p.strategy == strategy and p.cell is not None]
        if not chosen:
            continue
        x = [p.budget for p in chosen]
        y = [p.cell.accuracy for p in chosen]
        style = dict(color=COLOURS[strategy], where="post", lw=2.2 if strategy == "best" else 1.6,
                     ls="--" if strategy == "best" else "-")
        ax.step(x, y, label=f"{strategy}" + (" (any w×d)" if strategy == "best" else ""), **style)
        if strategy != "best":
            ax.fill_between(x, [p.ci_low for p in chosen], [p.ci_high for p in chosen], step="post",
                            color=COLOURS[strategy], alpha=0.12)
    for i, m in enumerate(c for c in methods or () if math.isfinite(c.cost) and c.cost > 0):
        ax.errorbar([m.cost], [m.accuracy], yerr=[[m.accuracy - m.ci_low], [m.ci_high - m.accuracy]], ls="none",
                    marker=METHOD_MARKERS[i % len(METHOD_MARKERS)], ms=7, capsize=3, color="#9467bd", label=m.plan)
    ax.set_xscale("log")
    ax.set_xlabel(f"budget per problem ({UNIT_WORDS[unit]})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{ts.trace.task}: best accuracy within budget")
    ax.grid(alpha=0.3)
    _legend(ax, 8, "upper left")
    return _png(fig)


def _mean(values: np.ndarray) -> float:
    """The mean over the problems that have the value (NaN where none has: a partial run)."""
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def _legend(ax: plt.Axes, fontsize: int, loc: str) -> None:
    if ax.get_legend_handles_labels()[0]:  # nothing drawn (a partial run): no empty legend
        ax.legend(fontsize=fontsize, loc=loc)


def heatmap_figure(ts: TraceSurface, aggregator: str, unit: str = "generated_tokens") -> bytes:
    n, depth = ts.trace.plan.chains, ts.trace.plan.rounds
    grid = np.array([[ts.mean(w, d, aggregator) for w in range(1, n + 1)] for d in range(1, depth + 1)])
    cost = np.array([[_mean(ts.cost[(w, d)][unit]) for w in range(1, n + 1)] for d in range(1, depth + 1)])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * n + 2.5), max(3.0, 0.45 * depth + 2.0)))
    image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto",
                      extent=(0.5, n + 0.5, 0.5, depth + 0.5))
    if n <= 16 and depth <= 16:
        for d in range(depth):
            for w in range(n):
                if math.isfinite(grid[d, w]):
                    ax.text(w + 1, d + 1, f"{grid[d, w]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[d, w] < 0.6 else "black")
    if n > 1 and depth > 1 and np.isfinite(cost).all() and cost.max() > cost.min() > 0:
        levels = np.geomspace(cost.min(), cost.max(), 6)[1:-1]
        contour = ax.contour(np.arange(1, n + 1), np.arange(1, depth + 1), cost, levels=levels, colors="white",
                             linewidths=0.9, linestyles="dashed")
        ax.clabel(contour, fmt=lambda v: f"{v:,.0f}", fontsize=7)
    ax.set_xlabel("w (parallel chains)")
    ax.set_ylabel("d (sequential rounds)")
    ax.set_xticks(range(1, n + 1))
    ax.set_yticks(range(1, depth + 1))
    ax.set_title(f"{ts.trace.task}: {NAMES.get(aggregator, aggregator)}\n(dashed: iso-cost, {UNIT_WORDS[unit]})",
                 fontsize=9)
    fig.colorbar(image, ax=ax, label="accuracy")
    return _png(fig)


def phase_figure(members: list[TraceSurface], unit: str = "generated_tokens") -> bytes:
    members = sorted(members, key=lambda t: t.structure)
    budgets = budgets_for([c.cost for ts in members for c in cells(ts, unit)], points=10)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(members) + 2.5), 4.0))
    scatter = None
    for i, ts in enumerate(members):
        points = [p for p in frontier(ts, unit, budgets) if p.strategy == "best" and p.cell is not None]
        if points:
            scatter = ax.scatter([i] * len(points), [p.budget for p in points], c=[p.cell.depth_share for p in points],
                                 cmap="coolwarm", vmin=0, vmax=1, s=260, marker="s")
            for p in points:
                ax.text(i + 0.22, p.budget, f"{p.cell.w}×{p.cell.d}", fontsize=7, va="center")
    ax.set_xticks(range(len(members)))
    ax.set_xticklabels([t.trace.task for t in members], rotation=15, fontsize=8)
    ax.set_xlim(-0.6, len(members) - 0.2)
    ax.set_yscale("log")
    ax.set_xlabel("task structure (ordered by structure value)")
    ax.set_ylabel(f"budget ({UNIT_WORDS[unit]})")
    ax.set_title("phase diagram: best allocation per structure and budget", fontsize=10)
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="depth share of best allocation (0 width, 1 depth)")
    return _png(fig)


def selection_figure(ts: TraceSurface) -> bytes:
    rounds = sorted({1, ts.trace.plan.rounds})
    fig, axes = plt.subplots(1, len(rounds), figsize=(5.2 * len(rounds), 3.8), squeeze=False)
    ks = list(range(1, ts.trace.plan.chains + 1))
    for ax, d in zip(axes[0], rounds):
        for aggregator in ts.aggregators:
            known = [k for k in ks if math.isfinite(ts.mean(k, d, aggregator))]  # a partial run lacks some cells
            if not known:
                continue
            bands = [ts.cell_interval(k, d, aggregator) for k in known]
            ax.plot(known, [ts.mean(k, d, aggregator) for k in known], marker="o", ms=3, color=COLOURS.get(aggregator),
                    label=NAMES.get(aggregator, aggregator))
            ax.fill_between(known, [b[0] for b in bands], [b[1] for b in bands], color=COLOURS.get(aggregator),
                            alpha=0.12)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (chains)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{ts.trace.task}, round d={d}", fontsize=9)
        ax.grid(alpha=0.3)
        _legend(ax, 7, "upper left")
    return _png(fig)


def latency_figure(ts: TraceSurface) -> bytes:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.9))
    for strategy in ("width", "depth", "best"):
        points = [p for p in frontier(ts, "serial_tokens") if p.strategy == strategy and p.cell is not None]
        if points:
            left.step([p.budget for p in points], [p.cell.accuracy for p in points], where="post",
                      color=COLOURS[strategy], label=strategy, ls="--" if strategy == "best" else "-")
    left.set_xscale("log")
    left.set_xlabel("latency budget (serial tokens)")
    left.set_ylabel("accuracy")
    left.set_ylim(-0.02, 1.02)
    left.grid(alpha=0.3)
    _legend(left, 8, "upper left")
    left.set_title("iso-latency: best accuracy within a latency budget", fontsize=9)
    latency = {(c.w, c.d): c for c in cells(ts, "serial_tokens")}
    compute = {(c.w, c.d, c.aggregator): c for c in cells(ts, "generated_tokens")}
    xs, ys, colours = [], [], []
    for (w, d, aggregator), c in compute.items():
        xs.append(latency[(w, d)].cost)
        ys.append(c.cost)
        colours.append(c.accuracy)
    points = right.scatter(xs, ys, c=colours, cmap="viridis", vmin=0, vmax=1, s=22)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("serial tokens (latency)")
    right.set_ylabel("generated tokens (compute)")
    right.set_title("every cell: compute against latency, colour = accuracy", fontsize=9)
    right.grid(alpha=0.3)
    fig.colorbar(points, ax=right, label="accuracy")
    return _png(fig)


ALLOCATION_STYLE = {
    "adaptive": ("#000000", "-", "adaptive (probe + policy)"),
    "oracle": ("#9467bd", ":", "gold-binned (bins from gold pass@1, no probe)"),
    "width_majority": ("#1f77b4", "-", "width only, majority"),
    "width_best_of": ("#17becf", "-", "width only, verifier best-of"),
    "depth": ("#d62728", "-", "depth only"),
    "hybrid": ("#2ca02c", "-", "best fixed hybrid"),
    "best_fixed": ("#7f7f7f", "--", "best fixed plan"),
}


def allocation_figure(evaluation: dict) -> bytes:
    """Held-out accuracy against mean compute per problem: adaptive (with its 95% band), gold-binned
    allocation, and the Pareto curves of fixed plans (width, depth, hybrid, any)."""
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    curves = {"adaptive": evaluation["adaptive"], "oracle": evaluation["oracle"], **evaluation["baselines"]}
    for name, points in curves.items():
        if not points or name not in ALLOCATION_STYLE:
            continue
        colour, style, label = ALLOCATION_STYLE[name]
        x = [p["cost"] for p in points]
        y = [p["accuracy"] for p in points]
        marker = "o" if name in ("adaptive", "oracle") else "."
        ax.plot(x, y, color=colour, ls=style, marker=marker, ms=4, lw=2.2 if name == "adaptive" else 1.4, label=label)
        if name == "adaptive":
            ax.fill_between(x, [p["ci_low"] for p in points], [p["ci_high"] for p in points], color=colour, alpha=0.12)
    ax.set_xscale("log")
    ax.set_xlabel(f"mean compute per problem ({UNIT_WORDS.get(evaluation['unit'], evaluation['unit'])}), probe included")
    ax.set_ylabel("accuracy on held-out problems")
    ax.set_ylim(-0.02, 1.02)
    how = f"{evaluation['folds']}-fold cross-validation" if evaluation.get("folds") else "held-out split"
    ax.set_title(f"adaptive allocation ({evaluation['predictor']}, probe {evaluation['probe']}; {how})", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(ax, 7, "lower right")
    return _png(fig)
