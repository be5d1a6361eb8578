"""Latent grids: a built-in reasoner answers a whole W trajectories x D iterations grid of a chunk of
problems in one pass (`LatentBackend.sample_grid`).
"""

from __future__ import annotations

import time
from typing import cast

from widthdepth.attempts import Attempt, attempt_seed
from widthdepth.backends.base import LatentBackend
from widthdepth.execute.base import Executor, PlanRun, settings_json
from widthdepth.specs import stable_hash
from widthdepth.store import now
from widthdepth.tasks import Problem
from widthdepth.tasks.prompts import Prompt

LATENT_CHUNK = 64
"""Problems per batch for latent reasoners (fixed, so a resumed run recomputes the same batches)."""


class LatentGridExecutor(Executor):
    def execute(self) -> PlanRun:
        result = PlanRun(self.family, self.plan, self.problems, {p.key: [[] for _ in range(self.plan.chains)]
                                                                 for p in self.problems},
                         self.verifier.name if self.verifier else None)
        return self._execute_latent(result)

    def _execute_latent(self, result: PlanRun) -> PlanRun:
        from widthdepth.verifiers.latent import LatentVerifier

        latent_verifier = self.verifier if isinstance(self.verifier, LatentVerifier) else None
        n, depth, first = self.plan.chains, self.plan.rounds, self.first_chain
        self.progress.describe(f"{self.plan.spec} ({n} trajectories x {depth} iterations) {self.family.spec}")
        # Fixed chunks in problem order: a resumed run recomputes exactly the batches it lost.
        for start in range(0, len(self.problems), LATENT_CHUNK):
            chunk = self.problems[start:start + LATENT_CHUNK]
            plan = {(p.key, w, d): self._latent_key(p, w, d) for p in chunk for w in range(first, n)
                    for d in range(1, depth + 1)}
            stored = {k: self.store.get_attempt(key) for k, key in plan.items()}
            complete = all(a is not None and not a.failed for a in stored.values()) and (
                latent_verifier is None or all(self.store.get_verification(a.key, latent_verifier.name)
                                               for a in stored.values() if a is not None))
            grid = None if complete else self._sample_latent(chunk)
            for i, problem in enumerate(chunk):
                for w in range(first, n):
                    parent = None
                    for d in range(1, depth + 1):
                        attempt = stored[(problem.key, w, d)]
                        if attempt is None or attempt.failed:
                            assert grid is not None
                            attempt = self._latent_attempt(problem, w, d, grid[0][i][w - first][d - 1], grid[1],
                                                            parent)
                            self.store.put_attempt(attempt)
                            self.generated += 1
                            self.made.add(attempt.key)
                        else:
                            self._count_stored(attempt)
                        if latent_verifier is not None and grid is not None:
                            latent_verifier.record(attempt.key, grid[0][i][w - first][d - 1].score)
                        result.chains[problem.key][w].append(attempt)
                        parent = attempt
                self.progress.advance((n - first) * depth, (n - first) * depth)
            if self.verifier is not None:
                for d in range(1, depth + 1):
                    self._verify(d, {p.key: result.chains[p.key] for p in chunk}, result)
        return result

    def _latent_key(self, problem: Problem, w: int, d: int) -> str:
        return self._key(problem, d, w, Prompt(text=problem.question))

    def _sample_latent(self, chunk: list[Problem]) -> tuple[list, float]:
        ws = range(self.first_chain, self.plan.chains)
        seeds = [[attempt_seed(self.seed, p.key, 1, w) for w in ws] for p in chunk]
        start = time.perf_counter()
        grid = cast(LatentBackend, self.backend).sample_grid([p.structure for p in chunk], len(ws), self.plan.rounds, seeds)
        per_attempt = (time.perf_counter() - start) / (len(chunk) * len(ws) * self.plan.rounds)
        return grid, per_attempt

    def _latent_attempt(self, problem: Problem, w: int, d: int, sampled, seconds: float,  # noqa: ANN001
                        parent: Attempt | None) -> Attempt:
        prompt = Prompt(text=problem.question)
        settings = settings_json(self.config, prompt)
        answer = sampled.answer or None
        return Attempt(
            key=self._latent_key(problem, w, d), model=self.backend.info.id, task=self.family.spec,
            problem_key=problem.key, w=w, d=d, mode="" if d == 1 else "latent",
            parent_key=parent.key if parent else None, seed=attempt_seed(self.seed, problem.key, d, w),
            prompt=prompt.identity(), prompt_key=stable_hash(prompt.identity()), settings=settings,
            text=sampled.text, answer=answer, final_answer=answer, correct=self.family.check(problem, answer),
            finish_reason="stop", status="ok", error=None, prompt_tokens=len(problem.question.split()),
            completion_tokens=1, serial_tokens=d, wall_seconds=seconds, created_at=now(), flops=float(sampled.flops),
            confidence=round(float(sampled.log_probability), 6))
