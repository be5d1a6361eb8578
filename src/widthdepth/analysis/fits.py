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
