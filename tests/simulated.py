"""Simulated studies for the verdict's statistics: traces of attempts drawn by rule, estimated by the
real surface code (`estimate_surface`) and judged by the real verdict.

A problem has a per-attempt chance p of being right (drawn from Beta(2, 2)); `rule(p, w, d, rng)`
returns the chance for chain w, round d (0-based), so a task where depth helps raises it with d.
With `null=True` an answer is right ("r") or wrong ("x") and verifier scores are uninformative: with
p symmetric about 1/2 and the same chance every round, every cell (w, d) and aggregator then has the
same expected accuracy, 1/2 (majority's gain on problems with p > 1/2 is its loss on those below),
while the cells of one problem stay as correlated as a real run's (a null study). Otherwise wrong
answers scatter over three strings and the verifier scores right answers higher on average.
"""

from __future__ import annotations

import numpy as np

from widthdepth.analysis.surface import Surface, estimate_surface
from widthdepth.analysis.traces import GridTrace, ProblemTrace
from widthdepth.attempts import Attempt, Verification
from widthdepth.plans import GridPlan


def _attempt(key: str, task: str, problem: str, w: int, d: int, answer: str, correct: bool) -> Attempt:
    return Attempt(key, "sim", task, problem, w, d + 1, "revise", None, 0, "", "p", "", "", answer, answer, correct,
                   "stop", "ok", None, 50, 100, 100 * (d + 1), 0.0, "")


def simulated_trace(rng: np.random.Generator, task: str, problems: int, n: int, depth: int, rule,
                    null: bool) -> GridTrace:
    structure = {"family": task.split(":")[0], "L": float(task.split("=")[-1])}
    traces, verifications = [], {}
    for i in range(problems):
        p, key, chains = rng.beta(2, 2), f"{task}#{i}", []
        for w in range(n):
            chain = []
            for d in range(depth):
                right = bool(rng.random() < rule(p, w, d, rng))
                if null:
                    answer, score = ("r" if right else "x"), float(rng.random())
                else:
                    answer = "r" if right else f"x{rng.integers(3)}"
                    score = float(np.clip(rng.normal(0.65 if right else 0.35, 0.2), 0, 1))
                a = _attempt(f"{key}/{w}/{d}", task, key, w, d, answer, right)
                chain.append(a)
                verifications[a.key] = Verification(a.key, "sim", score, "", 0, 0, "", "", 0.0, "")
            chains.append(chain)
        gold = frozenset({"r"})
        traces.append(ProblemTrace(key, i, gold, structure, chains))
    return GridTrace("sim", task, GridPlan(n, depth), 0, {}, traces, 0, False, verifier="sim",
                     loaded_verifications=verifications)


def simulated_study(seed: int, tasks: dict[str, object], problems: int = 64, n: int = 16, depth: int = 8,
                    null: bool = False) -> Surface:
    rng = np.random.default_rng(seed)
    return estimate_surface([simulated_trace(rng, task, problems, n, depth, rule, null)
                             for task, rule in tasks.items()])


def same_every_round(p, w, d, rng):
    return p


def depth_composes(p, w, d, rng):
    """Each round adds a step of a chain: chances climb with the rounds."""
    return min(1.0, p * 0.3 + 0.12 * d)


def revisions_hurt(p, w, d, rng):
    """Each revision round halves the chance: width is the way to spend compute."""
    return p * 0.5 ** d


def depth_climbs(p, w, d, rng):
    """Each round completes a step: chances climb steeply with the rounds, and width cannot make up for it."""
    return min(1.0, 0.1 * p + 0.25 * d)
