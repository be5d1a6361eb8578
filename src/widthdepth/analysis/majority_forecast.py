"""Majority vote forecast at k samples: each problem's observed answer frequencies taken as its answer
distribution (plug-in), k answers drawn from it, the plurality wins (ties at random, as the surface's
estimator averages over chain orders; a draw with no answer votes for nothing).

A success rate is not enough for majority: whether the right answer wins depends on how the wrong
answers split. The plug-in sees only answers the run produced, so it is over-confident where the run
is short (an answer seen once in 4 looks like a quarter of the mass); its backtest says by how much.

    majority_at(frequencies_of(trace.arrays), [64, 256])
"""

from __future__ import annotations

import numpy as np


def frequencies_of(arrays, d: int = 1, chains: slice = slice(None)) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per problem with samples: (votes per distinct answer, then the samples with no answer; whether each
    answer is right)."""
    out = []
    answers, reached = arrays.answer[:, chains, d - 1], arrays.reached[:, chains, d - 1]
    right = arrays.right[:, chains, d - 1]
    for p in range(answers.shape[0]):
        mine = answers[p][reached[p]]
        if len(mine) == 0:
            continue
        labels, votes = np.unique(mine[mine >= 0], return_counts=True)
        is_right = np.array([bool(right[p][reached[p]][mine == label][0]) for label in labels], dtype=bool)
        out.append((np.append(votes, int(np.sum(mine < 0))), is_right))
    return out


def observed_majority(frequencies: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Majority accuracy of all the samples themselves (ties shared, as averaging over chain orders does)."""
    scores = []
    for votes, is_right in frequencies:
        answered = votes[:-1]
        if answered.size == 0 or answered.max() == 0:
            scores.append(0.0)
            continue
        top = answered == answered.max()
        scores.append(float(np.sum(top & is_right) / np.sum(top)))
    return float(np.mean(scores)) if scores else float("nan")


def majority_at(frequencies: list[tuple[np.ndarray, np.ndarray]], ks: list[int], draws: int = 400,
                seed: int = 0) -> list[float]:
    """The plug-in forecast of majority accuracy at each k (Monte Carlo over `draws` sets of k answers)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in ks:
        scores = []
        for votes, is_right in frequencies:
            if votes[:-1].sum() == 0:
                scores.append(0.0)
                continue
            drawn = rng.multinomial(k, votes / votes.sum(), size=draws)[:, :-1].astype(float)
            jitter = rng.random(drawn.shape) * 0.5  # breaks ties at random without changing any order
            winner = np.argmax(drawn + jitter, axis=1)
            won = drawn.max(axis=1) > 0
            scores.append(float(np.mean(is_right[winner] & won)))
        out.append(float(np.mean(scores)) if scores else float("nan"))
    return out
