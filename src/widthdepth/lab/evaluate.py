"""Quick checks of a trained reasoner: chain accuracy by length and iteration, search coverage by
number of trajectories. Used by `widthdepth lab eval` and by the training sanity tests.

    report = evaluate(model, problems=300, seed=1)
"""

from __future__ import annotations

import random

from widthdepth.lab.model import LatentReasoner
from widthdepth.lab.sampling import sample_grid
from widthdepth.lab.tokens import random_chain, random_subset


def chain_accuracy(model: LatentReasoner, length: int, problems: int, iterations: int, seed: int) -> list[float]:
    """Accuracy of one trajectory at each iteration 1..iterations on fresh chains of `length` steps."""
    rng = random.Random(seed * 1000 + length)
    encoded = [random_chain(rng, length) for _ in range(problems)]
    grid = sample_grid(model, encoded, 1, iterations, [[seed * 7919 + i] for i in range(problems)])
    return [sum(g[0][d].answer == str(e.values[-1]) for g, e in zip(grid, encoded)) / problems
            for d in range(iterations)]


def search_coverage(model: LatentReasoner, items: int, problems: int, trajectories: int, iterations: int,
                    seed: int) -> list[float]:
    """Coverage (any trajectory valid) at k = 1..trajectories, at the last iteration."""
    rng = random.Random(seed * 1000 + items)
    encoded = [random_subset(rng, items) for _ in range(problems)]
    seeds = [[seed * 104729 + i * trajectories + w for w in range(trajectories)] for i in range(problems)]
    grid = sample_grid(model, encoded, trajectories, iterations, seeds)

    hits = [[subset_valid(e, g[w][-1].answer) for w in range(trajectories)] for g, e in zip(grid, encoded)]
    return [sum(any(h[:k]) for h in hits) / problems for k in range(1, trajectories + 1)]


def subset_valid(problem, answer: str) -> bool:  # noqa: ANN001 - an Encoded subset-sum problem
    """Is `answer` (comma-separated items) a non-empty sub-multiset of the problem's items hitting its target?"""
    chosen = [int(x) for x in answer.split(",")] if answer else []
    pool = list(problem.items)
    for x in chosen:
        if x not in pool:
            return False
        pool.remove(x)
    return bool(chosen) and sum(chosen) == problem.target


def evaluate(model: LatentReasoner, problems: int = 300, seed: int = 1) -> dict:
    return {
        "chain_accuracy_by_iteration": {length: chain_accuracy(model, length, problems, 10, seed)
                                        for length in (1, 2, 4, 6, 8)},
        "search_coverage_by_k": {n: search_coverage(model, n, problems, 16, 6, seed) for n in (6, 8, 10)},
    }
