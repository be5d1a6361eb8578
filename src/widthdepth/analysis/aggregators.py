"""Aggregators: turn the answers of w chains at round d into one answer.

- `majority`: the most frequent answer; ties go to the answer that appeared first (lowest chain).
- `best_of`: the answer with the highest verifier score; ties go to the more frequent answer, then
  to the lowest chain.
- `coverage` (the oracle): is any of the answers correct? An upper bound that needs the gold answer.
- `weighted`: votes weighted by each attempt's own confidence, exp(confidence) (the geometric-mean
  token probability for text, the answer's probability for latent reasoners); ties go to the answer
  that appeared first.
- `filtered:η` (DeepConf offline): the ceil(η·k) most confident of the k attempts (ties to the lower
  chain), then the majority among them.

Chains without an answer (no answer stated, or failed) abstain; so do attempts without a confidence
in `weighted` and `filtered`.

    >>> majority(["3", None, "5", "5", "3"])
    '3'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

AGGREGATORS = ("majority", "best_of", "coverage")
CONFIDENCE_AGGREGATORS = ("weighted", "filtered:0.5")
"""Estimated on a grid's surface where every attempt has a confidence (Monte Carlo over subsets)."""


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


def weighted(answers: Sequence[str | None], confidences: Sequence[float | None]) -> str | None:
    totals: dict[str, float] = {}
    for answer, confidence in zip(answers, confidences):
        if answer is not None and confidence is not None:
            totals[answer] = totals.get(answer, 0.0) + math.exp(confidence)
    if not totals:
        return None
    top = max(totals.values())
    return next(a for a in totals if totals[a] == top)  # dicts keep first appearance order


def filtered(answers: Sequence[str | None], confidences: Sequence[float | None], share: float) -> str | None:
    rated = [i for i, (a, c) in enumerate(zip(answers, confidences)) if a is not None and c is not None]
    if not rated:
        return None
    keep = sorted(sorted(rated, key=lambda i: -float(confidences[i]))[:math.ceil(share * len(answers))])  # type: ignore[arg-type]
    return majority([answers[i] for i in keep])


def filter_share(aggregator: str) -> float:
    """η of "filtered:η"."""
    return float(aggregator.split(":", 1)[1])
