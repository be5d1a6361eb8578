"""The report's forecasts: coverage extrapolated from per-problem success counts, each model's backtest
error beside it, and the depth law chosen by held-out error with its critical depth."""

from __future__ import annotations

import html
import math

from widthdepth.analysis.backtest import summarise
from widthdepth.analysis.fits import fit_depth_law
from widthdepth.analysis.surface import TraceSurface

REPORT_BOOTSTRAP = 50  # resamples per forecast in a report (`widthdepth forecast` uses more)
TARGET = 0.9
WORDS = {"beta": "beta-binomial", "beta2": "mixture of two betas", "npmle": "nonparametric (EM)",
         "brown": "exp(a·k^b) (Brown et al.)"}


def _share(value: float, low: float = math.nan, high: float = math.nan) -> str:
    if not math.isfinite(value):
        return "—"
    interval = f" [{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"{value:.3f}{interval}"


def _samples(k: tuple[float, float, float] | None) -> str:
    if k is None:
        return "—"
    def one(x: float) -> str:
        return "over 1,000,000" if x == math.inf else ("—" if not math.isfinite(x) else f"{x:,.0f}")
    return f"{one(k[0])} [{one(k[1])}, {one(k[2])}]"


def coverage_section(ts: TraceSurface) -> str:
    arrays = ts.trace.arrays
    chains = arrays.shape[1]
    if chains < 8:
        return (f"<p class='meta'>Coverage forecasts need 8 or more chains (a backtest fits on N/4 ≥ 2 of them); "
                f"this run has {chains}.</p>")
    summary = summarise(arrays, to=[2 * chains, 4 * chains], target=TARGET, bootstrap=REPORT_BOOTSTRAP)
    if not math.isfinite(summary.observed):
        return (f"<p class='meta'>Coverage forecasts: no problem has all {chains} chains at round 1 "
                "(failed attempts).</p>")
    best = summary.best()
    divisors = sorted({chains // b.fitted_on for b in summary.backtests})
    head = ("<tr><th>model of the success rates</th>"
            f"<th>coverage at {2 * chains}</th><th>at {4 * chains}</th><th>samples for {TARGET:.0%}</th>"
            + "".join(f"<th>backtest error at {chains} from {chains // d}</th>" for d in divisors) + "</tr>")
    rows = []
    for model, result in summary.forecasts.items():
        errors = {chains // b.fitted_on: b.error for b in summary.backtests if b.model == model}
        mark = " (best backtest)" if model == best else ""
        rows.append(f"<tr><td style='text-align:left'>{html.escape(WORDS[model])}{mark}</td>"
                    f"<td>{_share(result.values[0], result.low[0], result.high[0])}</td>"
                    f"<td>{_share(result.values[1], result.low[1], result.high[1])}</td>"
                    f"<td>{_samples(summary.samples.get(model))}</td>"
                    + "".join(f"<td>{errors[d]:+.3f}</td>" if math.isfinite(errors.get(d, math.nan))
                              else "<td>—</td>" for d in divisors) + "</tr>")
    majority = ""
    if summary.majority:
        observed = summary.majority_observed
        tests = ", ".join(f"{value - observed:+.3f} from {m}" for m, value in summary.majority_backtests)
        majority = (f"<p class='meta'>Majority vote, forecast with each problem's observed answer frequencies as its "
                    f"answer distribution (plug-in; a success rate alone cannot say how wrong answers split): "
                    f"{summary.majority[0]:.3f} at {2 * chains}, {summary.majority[1]:.3f} at {4 * chains} "
                    f"(observed at {chains}: {summary.majority_observed:.3f}; backtest error at {chains}: {tests}). "
                    "Best-of with an exact verifier is coverage; with an imperfect one it needs the scores and is "
                    "not forecast.</p>")
    return (f"<p class='meta'>Coverage (any of k samples right, round 1) forecast beyond the run's {chains} chains "
            f"(observed pass@{chains}: {summary.observed:.3f}). Each model is a distribution of the problems' "
            "success rates p fitted to their success counts; coverage at k is the mean of 1 − (1 − p)^k. "
            f"Backtest: the model fitted on each problem's first {' (or '.join(str(chains // d) for d in divisors)}"
            f"{')' * (len(divisors) - 1)} chains, its "
            f"forecast at {chains} minus pass@{chains} on all of them: trust an extrapolation no further than "
            "its backtest. 95% intervals: bootstrap over problems.</p>"
            f"<table>{head}{''.join(rows)}</table>{majority}")


def depth_section(ts: TraceSurface) -> str:
    law = fit_depth_law(ts, bootstrap=REPORT_BOOTSTRAP)
    if not law.chosen:
        return f"<p class='meta'>Depth law: not chosen — {html.escape(law.reason)}.</p>"
    held = ", ".join(f"{name} {rmse:.3f}" for name, rmse in law.held_out.items() if math.isfinite(rmse))
    critical = "" if not math.isfinite(law.critical) else (
        f"; the threshold law's critical depth: {law.critical:.1f} "
        f"[{law.critical_interval[0]:.1f}, {law.critical_interval[1]:.1f}]")
    return (f"<p class='meta'>Depth law (w = 1, majority): {html.escape(law.chosen)} chosen by leave-one-depth-out "
            f"error ({held}){critical}.</p>")
