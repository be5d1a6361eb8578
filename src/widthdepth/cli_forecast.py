"""`widthdepth forecast DIR --to K`: coverage at K samples, and samples for a target coverage, from a run.

    widthdepth forecast runs/study --to 1024
    widthdepth forecast runs/search --to 4096 --target 0.95 --model beta

Per grid experiment of the run (round 1): each model of the problems' success rates, its forecast at K
with a 95% interval, the samples it says reach the target, and its backtest (fitted on the run's first
N/4 and N/8 chains, scored against pass@N on all N): how far to trust it. See
`widthdepth.analysis.forecast` and `widthdepth.analysis.backtest`.
"""

from __future__ import annotations

import math
from typing import Annotated, Optional

import typer

from widthdepth.errors import WidthdepthError
from widthdepth.terminal import console, print_table


def _k(x: float) -> str:
    return "over 1,000,000" if x == math.inf else ("—" if not math.isfinite(x) else f"{x:,.0f}")


def _backtest(summary, model: str) -> str:
    parts = [f"{b.error:+.3f} from {b.fitted_on}{' (outside)' if b.covered is False else ''}"
             for b in summary.backtests if b.model == model and math.isfinite(b.error)]
    return ", ".join(parts) or "—"


def forecast_command(
    folder: Annotated[str, typer.Argument(help="a run's output folder (holds widthdepth.sqlite)")],
    to: Annotated[int, typer.Option("--to", min=1, help="the number of samples K to forecast coverage at")],
    target: Annotated[float, typer.Option(min=0.0, max=1.0, help="coverage to find the samples for")] = 0.9,
    model: Annotated[Optional[str], typer.Option(help="one model: beta | beta2 | npmle | brown (default: all, the "
                                                     "best backtest marked)")] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="bootstrap resamples of problems per interval")] = 200,
) -> None:
    """Coverage at K samples and samples for a target coverage, each forecast with its backtest error."""
    from widthdepth.analysis.backtest import summarise
    from widthdepth.analysis.forecast import MODELS
    from widthdepth.analysis.traces import open_traces

    if model is not None and model not in MODELS:
        raise WidthdepthError(f"--model {model!r}: unknown coverage model (valid: {', '.join(MODELS)})")
    models = (model,) if model else MODELS
    with console.status("reading the run"):
        traces = [t for t in open_traces(folder) if t.arrays.shape[1] >= 2]
    if not traces:
        raise WidthdepthError(f"{folder}: no grid run with 2 or more chains per problem to forecast from; run a "
                              "parallel:N or grid:NxD plan first")
    for trace in traces:
        with console.status(f"fitting {trace.task} {trace.plan.spec}"):
            summary = summarise(trace.arrays, [to], target, models, bootstrap, backtest_bootstrap=bootstrap)
        best = summary.best()
        rows = []
        for name, result in summary.forecasts.items():
            k = summary.samples.get(name, (math.nan, math.nan, math.nan))
            rows.append([name + (" *" if name == best and len(models) > 1 else ""),
                         f"{result.values[0]:.3f} [{result.low[0]:.3f}, {result.high[0]:.3f}]"
                         if math.isfinite(result.values[0]) else "—",
                         f"{_k(k[0])} [{_k(k[1])}, {_k(k[2])}]", _backtest(summary, name)])
        print_table(f"{trace.task} · {trace.plan.spec}: {summary.chains} chains, pass@{summary.chains} "
                    f"{summary.observed:.3f}",
                    ["model", f"coverage at {to:,}", f"samples for {target:.0%}",
                     f"backtest error at {summary.chains}"],
                    rows, legend="95% intervals from a bootstrap over problems; backtest: forecast at N from the "
                                 "first chains minus pass@N on all, '(outside)' where its interval missed; "
                                 "* the smallest mean backtest error")
        if summary.majority:
            tests = ", ".join(f"{f - summary.majority_observed:+.3f} from {m}" for m, f in summary.majority_backtests)
            console.print(f"majority vote at {to:,} (plug-in: each problem's answer frequencies): "
                          f"{summary.majority[0]:.3f}; observed at {summary.chains}: "
                          f"{summary.majority_observed:.3f}; backtest error at {summary.chains}: {tests or '—'}",
                          highlight=False)
