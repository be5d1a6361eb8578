"""Scaling-law fits on a surface.

- Coverage against k (width): c(k) ~= exp(a * k**b), the exponentiated power law of Brown et al.
  (2024, "Large Language Monkeys"), fitted by least squares on pass@k at round 1 (a <= 0, b <= 0).
- Accuracy against depth: a saturating form acc(d) = A - B * exp(-(d - 1) / tau), fitted on w = 1
  majority accuracy; it needs at least 4 rounds.

Each fit reports its parameters and RMSE on the points used; predictions beyond the measured range
are labelled extrapolated.

    fit = fit_coverage(trace_surface)
    fit.predict(64)  # coverage at k = 64, extrapolated if the run had N < 64
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from widthdepth.analysis.surface import TraceSurface


@dataclass(frozen=True)
class Fit:
    name: str
    formula: str
    params: dict[str, float] = field(default_factory=dict)
    rmse: float = math.nan
    measured_up_to: int = 0
    reason: str = ""
    """Why there is no fit (empty when there is one)."""

    @property
    def ok(self) -> bool:
        return not self.reason

    def predict(self, x: float) -> float:
        if not self.ok:
            return math.nan
        p = self.params
        if self.name == "coverage":
            return float(math.exp(p["a"] * x ** p["b"]))
        return float(p["A"] - p["B"] * math.exp(-(x - 1) / p["tau"]))

    def extrapolations(self, xs: list[int]) -> list[dict]:
        return [{"x": x, "value": self.predict(x), "extrapolated": x > self.measured_up_to} for x in xs]


def _series(ts: TraceSurface, aggregator: str, d_fixed: int | None, w_fixed: int | None) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    n, depth = ts.trace.plan.chains, ts.trace.plan.rounds
    for x in range(1, (n if d_fixed else depth) + 1):
        w, d = (x, d_fixed) if d_fixed else (w_fixed, x)
        value = ts.mean(w, d, aggregator)
        if math.isfinite(value):
            xs.append(x)
            ys.append(value)
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


def fit_coverage(ts: TraceSurface, d: int = 1) -> Fit:
    from scipy.optimize import curve_fit

    formula = "coverage(k) = exp(a * k^b)"
    k, c = _series(ts, "coverage", d_fixed=d, w_fixed=None)
    if len(k) < 3:
        return Fit("coverage", formula, measured_up_to=len(k), reason=f"needs coverage at 3 or more k, has {len(k)}")
    if np.all(c <= 0) or np.all(c >= 1):
        return Fit("coverage", formula, measured_up_to=int(k.max()), reason="coverage is flat at 0 or 1")

    def model(kk: np.ndarray, a: float, b: float) -> np.ndarray:
        return np.exp(a * kk**b)

    first = min(max(c[0], 1e-3), 1 - 1e-3)
    try:
        (a, b), _ = curve_fit(model, k, c, p0=(math.log(first), -0.3), bounds=((-50.0, -5.0), (0.0, 0.0)),
                              maxfev=20_000)
    except (RuntimeError, ValueError) as exc:
        return Fit("coverage", formula, measured_up_to=int(k.max()), reason=f"did not converge ({exc})")
    rmse = float(np.sqrt(np.mean((model(k, a, b) - c) ** 2)))
    return Fit("coverage", formula, {"a": float(a), "b": float(b)}, rmse, int(k.max()))


def fit_depth(ts: TraceSurface, aggregator: str = "majority") -> Fit:
    from scipy.optimize import curve_fit

    formula = "accuracy(d) = A - B * exp(-(d - 1) / tau)"
    d, acc = _series(ts, aggregator, d_fixed=None, w_fixed=1)
    if len(d) < 4:
        return Fit("depth", formula, measured_up_to=len(d),
                   reason=f"needs 4 or more rounds for 3 parameters, has {len(d)}")

    def model(dd: np.ndarray, big_a: float, big_b: float, tau: float) -> np.ndarray:
        return big_a - big_b * np.exp(-(dd - 1) / tau)

    try:
        (big_a, big_b, tau), _ = curve_fit(model, d, acc, p0=(float(acc.max()), float(acc.max() - acc[0]), 1.0),
                                           bounds=((0.0, -1.0, 0.05), (1.0, 1.0, 100.0)), maxfev=20_000)
    except (RuntimeError, ValueError) as exc:
        return Fit("depth", formula, measured_up_to=int(d.max()), reason=f"did not converge ({exc})")
    rmse = float(np.sqrt(np.mean((model(d, big_a, big_b, tau) - acc) ** 2)))
    return Fit("depth", formula, {"A": float(big_a), "B": float(big_b), "tau": float(tau)}, rmse, int(d.max()))


def _logistic(dd: np.ndarray, low: float, high: float, critical: float, scale: float) -> np.ndarray:
    return low + (high - low) / (1.0 + np.exp(-(dd - critical) / scale))


def _fit_logistic(d: np.ndarray, acc: np.ndarray, start: tuple | None = None) -> tuple | None:
    from scipy.optimize import curve_fit

    top = float(d.max())
    guess = start or (float(acc.min()), float(acc.max()), float(d[np.argmax(np.diff(acc, prepend=acc[0]))]), 0.5)
    try:
        params, _ = curve_fit(_logistic, d, acc, p0=guess, bounds=((0.0, 0.0, 0.5, 0.05), (1.0, 1.0, 4 * top, top)),
                              maxfev=20_000)
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def _fit_saturating(d: np.ndarray, acc: np.ndarray) -> tuple | None:
    from scipy.optimize import curve_fit

    try:
        params, _ = curve_fit(lambda dd, a, b, tau: a - b * np.exp(-(dd - 1) / tau), d, acc,
                              p0=(float(acc.max()), float(acc.max() - acc[0]), 1.0),
                              bounds=((0.0, -1.0, 0.05), (1.0, 1.0, 100.0)), maxfev=20_000)
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def _held_out_rmse(d: np.ndarray, acc: np.ndarray, fit, predict) -> float:
    """Leave one depth out: each depth predicted by the law fitted to the others."""
    errors = []
    for i in range(len(d)):
        keep = np.arange(len(d)) != i
        params = fit(d[keep], acc[keep])
        if params is None:
            return math.nan
        errors.append(float(predict(d[i:i + 1], *params)[0] - acc[i]))
    return float(np.sqrt(np.mean(np.square(errors))))


@dataclass(frozen=True)
class DepthLaw:
    """The depth law chosen by held-out error: saturating exponential or threshold (logistic in d)."""

    chosen: str
    """``threshold``, ``saturating`` or "" (no fit; `reason` says why)."""
    held_out: dict[str, float] = field(default_factory=dict)
    """Leave-one-depth-out RMSE of each law."""
    critical: float = math.nan
    """The threshold law's critical depth (its midpoint)."""
    critical_interval: tuple[float, float] = (math.nan, math.nan)
    reason: str = ""


def fit_depth_law(ts: TraceSurface, aggregator: str = "majority", bootstrap: int = 200, seed: int = 0) -> DepthLaw:
    """Saturating exponential against threshold on w = 1 accuracy by depth, chosen by leave-one-depth-out
    error; the critical depth with a 95% percentile-bootstrap interval over problems."""
    d, acc = _series(ts, aggregator, d_fixed=None, w_fixed=1)
    if len(d) < 5:
        return DepthLaw("", reason=f"needs 5 or more rounds to hold one out of a 4-parameter law, has {len(d)}")
    held = {"saturating": _held_out_rmse(d, acc, _fit_saturating,
                                         lambda dd, a, b, tau: a - b * np.exp(-(dd - 1) / tau)),
            "threshold": _held_out_rmse(d, acc, _fit_logistic, _logistic)}
    full = _fit_logistic(d, acc)
    if full is None:
        return DepthLaw("saturating" if math.isfinite(held["saturating"]) else "", held,
                        reason="the threshold law did not converge")
    per_problem = np.stack([ts.accuracy[(1, int(x), aggregator)] for x in d], axis=1)
    rng = np.random.default_rng(seed)
    critical = []
    for _ in range(bootstrap):
        rows = rng.integers(0, len(per_problem), len(per_problem))
        again = _fit_logistic(d, np.nanmean(per_problem[rows], axis=0), start=full)
        if again is not None:
            critical.append(again[2])
    finite = {k: v for k, v in held.items() if math.isfinite(v)}
    chosen = min(finite, key=finite.get) if finite else ""
    interval = (float(np.percentile(critical, 2.5)), float(np.percentile(critical, 97.5))) if critical \
        else (math.nan, math.nan)
    return DepthLaw(chosen, held, full[2], interval)
