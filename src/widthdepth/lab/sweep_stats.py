"""The statistics of a `widthdepth lab sweep` (issue 20): each arm's accuracy per task with a 95% interval
from a crossed bootstrap (seeds and problems drawn independently: every seed answers the same problems),
each chain length's critical depth with its interval, and the shape experiment's contrast — the deepest
stack against the widest, per task, with the interval of the difference (problems drawn once for both
arms: they answer the same problems).

    arms = summary(rows)
    critical_depths(rows, "stack")      # {"4": (4, 2, 8), ...}: point, 95% interval
"""

from __future__ import annotations

import zlib

import numpy as np

THRESHOLD = 0.9
"""A chain length's critical depth: the smallest depth from which every deeper one's accuracy (mean over seeds)
reaches this."""


RESAMPLES = 2000
"""Bootstrap draws for the intervals (seeded: the same rows give the same intervals)."""


def _hits(runs: list[dict], family: str, key: str) -> np.ndarray:
    """(seeds, problems) 0/1 of one arm on one task."""
    return np.array([[c == "1" for c in r[family][key]] for r in runs], dtype=float)


def _draws(hits: np.ndarray, rng: np.random.Generator, problem_counts: np.ndarray | None = None,
           seed_counts: np.ndarray | None = None) -> np.ndarray:
    """`RESAMPLES` accuracies, seeds and problems drawn with replacement independently (the problems are
    the same for every seed: a crossed bootstrap), as weights: seed counts @ hits @ problem counts (given:
    the same draws for another arm)."""
    seeds, problems = hits.shape
    if seed_counts is None:
        seed_counts = _seed_draws(seeds, rng)
    if problem_counts is None:
        problem_counts = _problem_draws(problems, rng)
    return np.einsum("bs,sp,bp->b", seed_counts, hits, problem_counts) / (seeds * problems)


FAMILIES = ("chain", "search", "rule", "recall")
"""The task families a sweep's rows may hold (rule and recall: the thought and memory sweeps)."""


def summary(rows: list[dict]) -> list[dict]:
    """Per arm: each task's accuracy (mean over seeds and problems) and its 95% interval ("... ci"),
    resampling seeds and problems."""
    arms: dict[str, list[dict]] = {}
    for row in rows:
        arms.setdefault(row["arm"], []).append(row)
    out = []
    for name, runs in arms.items():
        first = runs[0]
        scores: dict[str, object] = {}
        for family in FAMILIES:
            for key in first.get(family, {}):
                hits = _hits(runs, family, key)
                rng = np.random.default_rng(zlib.crc32(f"{family} {key}".encode()))  # the same rows: the same interval
                scores[f"{family} {key}"] = float(hits.mean())
                scores[f"{family} {key} ci"] = tuple(float(x) for x in np.quantile(_draws(hits, rng), [0.025, 0.975]))
        out.append({"arm": name, "group": first["group"], "params": first["params"], "depth": first["depth"],
                    "training_flops": sum(r["training_flops"] for r in runs) / len(runs), "seeds": len(runs), **scores})
    return out


def critical_depths(rows: list[dict], group: str, threshold: float = THRESHOLD) -> dict[str, tuple]:
    """Per chain length, the smallest depth of `group` from which every deeper one evaluated reaches
    `threshold` (accuracy as a mean over seeds; None: the deepest does not — a depth that reaches it and a
    deeper one that falls back is not a critical depth), and its 95% interval (None: beyond the deepest) over
    bootstrap draws shared by every depth: the same problems, and the same seeds (seed s of every arm sees the
    same training batches; an `anyloop` arm's depths are one model per seed)."""
    runs: dict[int, list[dict]] = {}
    for row in rows:
        if row["group"] == group:
            runs.setdefault(row["depth"], []).append(row)
    depths = sorted(runs)
    if not depths:
        return {}
    rng, found = np.random.default_rng(0), {}
    for length in runs[depths[0]][0]["chain"]:
        hits = [_hits(runs[d], "chain", length) for d in depths]
        problems = _problem_draws(hits[0].shape[1], rng)
        seed_draws: dict[int, np.ndarray] = {}
        for h in hits:
            if len(h) not in seed_draws:
                seed_draws[len(h)] = _seed_draws(len(h), rng)
        point = _sustained(np.array([[h.mean() >= threshold] for h in hits]), depths)[0]
        reached = np.array([_draws(h, rng, problems, seed_draws[len(h)]) >= threshold for h in hits])
        first = _sustained(reached, depths)
        low, high = (float(q) for q in np.quantile(first, [0.025, 0.975], method="lower"))
        found[length] = (None if point == np.inf else int(point), None if low == np.inf else int(low),
                         None if high == np.inf else int(high))
    return found


def first_reached(rows: list[dict], group: str, threshold: float = THRESHOLD) -> dict[str, int | None]:
    """Per chain length, the smallest depth of `group` whose mean accuracy reaches `threshold`, held deeper
    or not (where it differs from the critical depth, a deeper model fell back below the threshold)."""
    runs: dict[int, list[dict]] = {}
    for row in rows:
        if row["group"] == group:
            runs.setdefault(row["depth"], []).append(row)
    lengths = next(iter(runs.values()))[0]["chain"] if runs else {}
    return {length: next((d for d in sorted(runs) if _hits(runs[d], "chain", length).mean() >= threshold), None)
            for length in lengths}


def _sustained(reached: np.ndarray, depths: list[int]) -> np.ndarray:
    """Per column of `reached` (depths, draws): the smallest depth from which every deeper one is True
    (inf: the deepest is not)."""
    held = np.flip(np.logical_and.accumulate(np.flip(reached, 0), 0), 0)  # held[i]: reached at i and deeper
    return np.where(held[-1], np.array(depths, dtype=float)[held.argmax(0)], np.inf)


def _seed_draws(seeds: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(seeds, [1 / seeds] * seeds, size=RESAMPLES)


def _problem_draws(problems: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(problems, [1 / problems] * problems, size=RESAMPLES)


def shape_contrasts(rows: list[dict]) -> list[dict]:
    """Per group (same steps, same FLOPs) and task: the deepest stack's accuracy minus the widest's, with
    its 95% interval; `winner` "deep", "wide", or "neither" where the interval holds 0; and `best`, the
    number of layers with the highest accuracy (the two ends can hide a peak between them)."""
    out = []
    for group in dict.fromkeys(row["group"] for row in rows):
        runs: dict[int, list[dict]] = {}
        for row in rows:
            if row["group"] == group:
                runs.setdefault(row["layers"], []).append(row)
        wide, deep = runs[min(runs)], runs[max(runs)]
        for family in ("chain", "search"):
            for key in deep[0][family]:
                a, b = _hits(deep, family, key), _hits(wide, family, key)
                rng = np.random.default_rng(zlib.crc32(f"{group} {family} {key}".encode()))
                problems = _problem_draws(a.shape[1], rng)
                difference = _draws(a, rng, problems) - _draws(b, rng, problems)
                low, high = (float(q) for q in np.quantile(difference, [0.025, 0.975]))
                means = {n: float(_hits(r, family, key).mean()) for n, r in sorted(runs.items())}
                best = max(means, key=means.__getitem__)  # the fewest layers among equals
                out.append({"group": group, "task": f"{family} {key}", "deep": max(runs), "wide": min(runs),
                            "difference": float(a.mean() - b.mean()), "low": low, "high": high,
                            "winner": "deep" if low > 0 else "wide" if high < 0 else "neither",
                            "best": best, "best_accuracy": means[best]})
    return out


__all__ = ["RESAMPLES", "THRESHOLD", "critical_depths", "first_reached", "shape_contrasts", "summary"]
