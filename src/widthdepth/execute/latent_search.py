"""Search inside the built-in latent reasoner (`lab/search.py`): `steps=D` iterations of R trajectories per
problem, and after each iteration the verifier head's scores choose which states go on.

- ``beam:N,M``: R = N x M rows; the N best rows go on, each continued M times (fresh noise each);
- ``dvts:N,M``: R = N rows in N/M subtrees of M; each subtree's best row goes on, M times;
- ``particles:N``: R = N rows resampled with probabilities proportional to the odds of their scores.

Scores are the verifier head's, or, where the run's verifier is the task's exact checker (`exact`:
search), that checker's 1 or 0 for each row's answer. The answer is the best-scoring row's at the last
iteration (ties: the more frequent answer, then the lower row). Every row of every iteration is an attempt in the store (`d` the iteration, `w` the row,
`parent_key` the row it continued), with its head score as a verification; a search costs what a
grid of R trajectories x D iterations costs (exact FLOPs; choosing is free), and D serial iterations.
Chunks of problems whose outcomes are stored are read back; the others are searched again, which
gives the same rows (every draw is seeded by problem, iteration and row).
"""

from __future__ import annotations

import time
from typing import cast

import numpy as np

from widthdepth.analysis.aggregators import best_of
from widthdepth.attempts import Attempt, Verification, attempt_seed
from widthdepth.backends.base import LatentBackend
from widthdepth.cost import Cost
from widthdepth.execute.base import Executor, MethodRun, Outcome, settings_json
from widthdepth.execute.latent import LATENT_CHUNK
from widthdepth.execute.particles import resampling_weights
from widthdepth.plans.search import SearchPlan
from widthdepth.specs import stable_hash, stable_int
from widthdepth.store import now
from widthdepth.tasks import Problem
from widthdepth.tasks.prompts import Prompt


class LatentSearchExecutor(Executor):
    plan: SearchPlan

    @property
    def rows(self) -> int:
        return self.plan.width * self.plan.expand if self.plan.kind == "beam" else self.plan.width

    def scores(self, problem: Problem, head: list[float], answers: list[str]) -> list[float]:
        """What the search chooses by: the exact checker's verdicts where the run uses it, else the head's."""
        if self._verifier_name != "exact":
            return head
        return [1.0 if a and self.family.verify(problem, a) else 0.0 for a in answers]

    def select(self, problem: Problem, t: int, scores: list[float]) -> list[int]:
        """The row each row of iteration t + 2 continues, from the scores at iteration t + 1."""
        plan, order = self.plan, sorted(range(len(scores)), key=lambda r: -scores[r])  # stable: ties to lower rows
        if plan.kind == "beam":
            return [r for r in sorted(order[:plan.width]) for _ in range(plan.expand)]
        if plan.kind == "dvts":
            groups = [range(g * plan.expand, (g + 1) * plan.expand) for g in range(plan.width // plan.expand)]
            return [max(group, key=lambda r: (scores[r], -r)) for group in groups for _ in group]
        rng = np.random.default_rng(stable_int(self.seed, problem.key, plan.kind, t + 1))
        return sorted(rng.choice(len(scores), size=len(scores), p=resampling_weights(scores)).tolist())

    def execute(self) -> MethodRun:
        run_key, _ = self.experiment(self._verifier_name)
        stored = {p["problem_key"]: p for p in self.store.method_points(run_key)}
        outcomes: list[Outcome] = []
        self.progress.describe(f"{self.plan.spec} ({self.rows} trajectories x {self.plan.steps} iterations) "
                               f"{self.family.spec}")
        for start in range(0, len(self.problems), LATENT_CHUNK):
            chunk = self.problems[start:start + LATENT_CHUNK]
            self.progress.add_total(len(chunk) * self.rows * self.plan.steps)
            if all(p.key in stored for p in chunk):
                outcomes += [_outcome(stored[p.key]) for p in chunk]
                self.reused += len(chunk) * self.rows * self.plan.steps
                self.progress.advance(len(chunk) * self.rows * self.plan.steps)
                continue
            outcomes += self._search(chunk)
        return self.record(MethodRun(self.family, self.plan, self.problems, outcomes, self._verifier_name))

    @property
    def _verifier_name(self) -> str:
        exact = self.verifier is not None and self.verifier.name == "exact"
        return "exact" if exact else f"latent:{self.backend.info.id}"

    def _search(self, chunk: list[Problem]) -> list[Outcome]:
        seeds = [attempt_seed(self.seed, p.key, 1, 0) for p in chunk]
        by_index = {i: p for i, p in enumerate(chunk)}
        begin = time.perf_counter()
        nodes = cast(LatentBackend, self.backend).search([p.structure for p in chunk], self.rows, self.plan.steps,
                                                         seeds, lambda i, t, s, a: self.select(by_index[i], t, self.scores(by_index[i], s, a)))
        seconds = (time.perf_counter() - begin) / max(1, len(chunk) * self.rows * self.plan.steps)
        return [self._store_tree(problem, tree, seconds) for problem, tree in zip(chunk, nodes)]

    def _store_tree(self, problem: Problem, tree: list, seconds: float) -> Outcome:
        prompt = Prompt(text=problem.question)
        settings = settings_json(self.config, prompt)
        keys: list[list[str]] = []
        attempts, verifications, last_scores = [], [], []
        for t, row_nodes in enumerate(tree):
            last_scores = self.scores(problem, [n.score for n in row_nodes], [n.answer for n in row_nodes])
            keys.append([])
            for r, node in enumerate(row_nodes):
                parent = None if node.parent is None else keys[t - 1][node.parent]
                seed = stable_int(attempt_seed(self.seed, problem.key, 1, 0), t, r)
                key = stable_hash(self.backend.info.id, problem.key, self.plan.spec, settings, r, t + 1, seed, parent)
                keys[t].append(key)
                answer = node.answer or None
                attempt = Attempt(
                    key=key, model=self.backend.info.id, task=self.family.spec, problem_key=problem.key, w=r, d=t + 1,
                    mode=self.plan.kind, parent_key=parent, seed=seed, prompt=prompt.identity(),
                    prompt_key=stable_hash(prompt.identity()), settings=settings,
                    text=f"iteration {t + 1}: Answer: {answer.replace(',', ', ') if answer else 'none'}",
                    answer=answer, final_answer=answer, correct=self.family.check(problem, answer), finish_reason="stop",
                    status="ok", error=None, prompt_tokens=len(problem.question.split()), completion_tokens=1,
                    serial_tokens=t + 1, wall_seconds=seconds, created_at=now(), flops=float(node.flops),
                    confidence=round(float(node.log_probability), 6))
                attempts.append(attempt)
                verifications.append(Verification(key, self._verifier_name, round(last_scores[r], 6), "scored", 0, 0,
                                                  "", "", 0.0, now()))
            self.progress.advance(len(row_nodes), len(row_nodes))
        self.generated += len(attempts)
        self.store.put_tree(attempts, verifications)
        last = tree[-1]
        answer = best_of([n.answer or None for n in last], last_scores)
        flops = float(sum(n.flops for row_nodes in tree for n in row_nodes))
        rows = len(last)
        cost = Cost(prompt_tokens=rows * len(problem.question.split()), generated_tokens=rows * len(tree), flops=flops,
                    serial_tokens=len(tree), wall_seconds=seconds * rows * len(tree))
        chosen = next(r for r, n in enumerate(last) if (n.answer or None) == answer) if answer is not None else 0
        return Outcome(problem.key, answer, bool(self.family.check(problem, answer)), cost, rows * len(tree),
                       {"steps": len(tree), "chosen": keys[-1][chosen], "score": round(last_scores[chosen], 6)})


def _outcome(point: dict) -> Outcome:
    """An outcome read back from the store's method points."""
    return Outcome(point["problem_key"], point["answer"], point["correct"], Cost(**point["cost"]), point["attempts"],
                   point["detail"])
