"""Text grids: every plan round by round over all problems of a task, so every request of a round
goes to the backend in one batch; a request per run of consecutive missing chains (seeds w0..w0+n-1).
"""

from __future__ import annotations

from dataclasses import dataclass

from widthdepth.attempts import Attempt, attempt_seed, attempt_status
from widthdepth.backends import Completion, GenerationRequest
from widthdepth.execute.base import Executor, PlanRun, settings_json
from widthdepth.specs import stable_hash
from widthdepth.store import now
from widthdepth.tasks import Problem
from widthdepth.tasks.prompts import Prompt


@dataclass
class _Pending:
    problem: Problem
    w0: int
    d: int
    prompt: Prompt
    parent: Attempt | None
    n: int


class TextGridExecutor(Executor):
    """Round by round over all problems: round d's requests go to the backend in one batch."""

    @property
    def style(self) -> str:
        return self.backend.info.prompt_style

    def execute(self) -> PlanRun:
        chains: dict[str, list[list[Attempt]]] = {p.key: [[] for _ in range(self.plan.chains)] for p in self.problems}
        result = PlanRun(self.family, self.plan, self.problems, chains, self.verifier.name if self.verifier else None)
        first_raw: dict[str, str] = {}
        for d in range(1, self.plan.rounds + 1):
            self.progress.describe(f"round {d}/{self.plan.rounds} {self.plan.spec} {self.family.spec}")
            pending: list[_Pending] = []
            for problem in self.problems:
                pending += self._plan_round(problem, d, chains[problem.key], first_raw)
            self._generate(pending, chains)
            if self.verifier is not None:
                self._verify(d, chains, result)
        return result

    def _lookup(self, problem: Problem, d: int, w: int, prompt: Prompt) -> Attempt | None:
        stored = self.store.get_attempt(self._key(problem, d, w, prompt))
        return stored if stored is not None and not stored.failed else None

    def _plan_round(self, problem: Problem, d: int, chains: list[list[Attempt]],
                    first_raw: dict[str, str]) -> list[_Pending]:
        pending: list[_Pending] = []
        if d == 1:
            prompt = self.plan.first_prompt(self.family, problem, self.style)
            if self.plan.mode == "extend":
                first_raw[problem.key] = prompt.text if prompt.text is not None else \
                    self.backend.render_chat(prompt.messages or ())
            missing = []
            for w in range(self.first_chain, self.plan.chains):
                stored = self._lookup(problem, 1, w, prompt)
                if stored is not None:
                    chains[w].append(stored)
                    self._count_stored(stored)
                    self.progress.advance(1)
                else:
                    missing.append(w)
            for w0, n in _runs(missing):  # one request per run of consecutive chains: seeds w0..w0+n-1
                pending.append(_Pending(problem, w0, 1, prompt, None, n))
            return pending
        for w, chain in enumerate(chains[self.first_chain:], start=self.first_chain):
            if len(chain) != d - 1 or chain[-1].failed:
                self.progress.advance(1)  # a broken chain cannot go on; a rerun retries it
                continue
            prompt = self.plan.next_prompt(self.family, problem, self.style, first_raw.get(problem.key, ""),
                                           [a.text for a in chain])
            pending += self._continue(problem, d, w, chain, prompt)
        return pending

    def _continue(self, problem: Problem, d: int, w: int, chain: list[Attempt], prompt: Prompt) -> list[_Pending]:
        """Round d of chain w: read back when stored (appended to the chain), else a request for it."""
        stored = self._lookup(problem, d, w, prompt)
        if stored is None:
            return [_Pending(problem, w, d, prompt, chain[-1], 1)]
        chain.append(stored)
        self._count_stored(stored)
        self.progress.advance(1)
        return []

    def _generate(self, pending: list[_Pending], chains: dict[str, list[list[Attempt]]]) -> None:
        if not pending:
            return
        requests = [
            GenerationRequest(prompt=p.prompt.text, messages=p.prompt.messages, n=p.n, max_tokens=self.config.max_tokens,
                              temperature=self.config.temperature, top_p=self.config.top_p, stop=p.prompt.stop,
                              seed=attempt_seed(self.seed, p.problem.key, p.d, p.w0), **self._request_extra(p.problem))
            for p in pending]
        for sample in self.backend.generate(requests):
            item = pending[sample.request_index]
            attempt = self._attempt(item, item.w0 + sample.sample_index, sample.completion)
            self.store.put_attempt(attempt)
            chains[item.problem.key][attempt.w].append(attempt)
            self.generated += 1
            self.made.add(attempt.key)
            self.progress.advance(1, sample.completion.completion_tokens)

    def _request_extra(self, problem: Problem) -> dict:
        """More request settings for a problem's samples (a subclass's; they must be in its keys too)."""
        return {}

    def _settings(self, problem: Problem, prompt: Prompt) -> str:
        return settings_json(self.config, prompt)

    def _attempt(self, item: _Pending, w: int, completion: Completion) -> Attempt:
        problem, parent, prompt = item.problem, item.parent, item.prompt
        settings = self._settings(problem, prompt)
        seed = attempt_seed(self.seed, problem.key, item.d, w)
        status = attempt_status(completion.finish_reason)
        failed = status != "ok"
        answer = None if failed else self.family.parse(completion.text, problem)
        final = answer if answer is not None or parent is None else parent.final_answer
        return Attempt(
            key=self._key(problem, item.d, w, prompt),
            model=self.backend.info.id, task=self.family.spec, problem_key=problem.key, w=w, d=item.d,
            mode="" if item.d == 1 else self.plan.mode, parent_key=parent.key if parent else None, seed=seed,
            prompt=prompt.identity(), prompt_key=stable_hash(prompt.identity()), settings=settings,
            text=completion.text, answer=answer, final_answer=None if failed else final,
            correct=None if failed else self.family.check(problem, final),
            finish_reason=completion.finish_reason, status=status, error=completion.error,
            prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
            serial_tokens=(parent.serial_tokens if parent else 0) + completion.completion_tokens,
            wall_seconds=completion.seconds, created_at=now(), confidence=completion.mean_logprob,
            lowest_confidence=completion.lowest_confidence)


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """[0, 1, 2, 5, 6] -> [(0, 3), (5, 2)]: runs of consecutive indices as (start, length)."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs
