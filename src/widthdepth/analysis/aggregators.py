"""Aggregators: turn the answers of w chains at round d into one answer.

- `majority`: the most frequent answer; ties go to the answer that appeared first (lowest chain).
- `best_of`: the answer with the highest verifier score; ties go to the more frequent answer, then
  to the lowest chain.
- `coverage` (the oracle): is any of the answers correct? An upper bound that needs the gold answer.

Chains without an answer (no answer stated, or failed) abstain.

    >>> majority(["3", None, "5", "5", "3"])
    '3'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

AGGREGATORS = ("majority", "best_of", "coverage")


def majority(answers: Sequence[str | None]) -> str | None:
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == top)


def best_of(answers: Sequence[str | None], scores: Sequence[float | None]) -> str | None:
    counts = Counter(a for a in answers if a is not None)
    best: tuple[float, int, int] | None = None
    choice = None
    for w, (answer, score) in enumerate(zip(answers, scores)):
        if answer is None or score is None or score != score:  # no answer, or no score (None or NaN)
            continue
        rank = (score, counts[answer], -w)
        if best is None or rank > best:
            best, choice = rank, answer
    return choice


def coverage(correct: Sequence[bool | None]) -> bool:
    return any(bool(c) for c in correct)
