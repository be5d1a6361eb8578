"""`beam:N,M` and `dvts:N,M` — what a step keeps (the search itself is `tree.py`).

Beam: the N best of everything there is — this step's continuations and the finished solutions kept
before — so a finished solution stays while nothing beats it, and the search ends when all N kept are
finished. DVTS: each of the N/M subtrees keeps the best of its own node's M continuations (or its
finished node), so the subtrees never collapse onto one line of reasoning.
"""

from __future__ import annotations

import numpy as np

from widthdepth.execute.tree import Node, SearchExecutor, _Tree


def best(nodes: list[Node], count: int) -> list[Node]:
    """The `count` highest scores; ties to the earlier node (a stable sort)."""
    return sorted(nodes, key=lambda n: -n.score)[:count]


class BeamExecutor(SearchExecutor):
    def select(self, tree: _Tree, children: list[list[Node]], rng: np.random.Generator) -> list[Node]:
        if self.plan.kind == "dvts":
            return [node if node.finished or not mine else best(mine, 1)[0] for node, mine in zip(tree.kept, children)]
        pool = [n for node, mine in zip(tree.kept, children) for n in ([node] if node.finished else mine)]
        return best(pool, self.plan.width) or tree.kept
