"""`particles:N` — particle filtering over steps (the search itself is `tree.py`).

Each step every unfinished particle is continued once; then N particles are drawn with replacement
from all of them (finished ones included, which stay finished), each with probability proportional to
the odds of its score, s / (1 - s) — a softmax over the scores' logits, scores clipped to
[1e-7, 1 - 1e-7] — the weighting of its-hub's particle filtering. The answer is the particle with the
best score.
"""

from __future__ import annotations

import numpy as np

from widthdepth.execute.tree import Node, SearchExecutor, _Tree

CLIP = 1e-7


def resampling_weights(scores: list[float]) -> np.ndarray:
    """Softmax of logit(score): proportional to the odds s / (1 - s)."""
    s = np.clip(np.asarray(scores, dtype=float), CLIP, 1 - CLIP)
    logits = np.log(s / (1 - s))
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


class ParticleExecutor(SearchExecutor):
    def select(self, tree: _Tree, children: list[list[Node]], rng: np.random.Generator) -> list[Node]:
        population = [n for node, mine in zip(tree.kept, children) for n in ([node] if node.finished else mine)]
        if not population:
            return tree.kept
        picks = rng.choice(len(population), size=self.plan.width, p=resampling_weights([n.score for n in population]))
        return [population[i] for i in sorted(picks)]
