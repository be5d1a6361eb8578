"""What every search over partial solutions shares (`beam.py`, `particles.py` choose what to keep).

Each step, every kept unfinished node of every problem is continued (one request per node, its
continuations seeded consecutively), the continuations are scored by the verifier, and the method's
`select` keeps some. Every continuation is an attempt in the store: its text is the step, `d` the
step, `w` its place among the step's continuations, `parent_key` the node it continued. Keys and
seeds follow from the tree, so a rerun reads back what is stored and generates the rest: a killed
search resumes to the same store. Selection ties go to the lower index; random draws (resampling)
come from a generator seeded by the problem and step.

What a problem costs: every continuation and every verification; its latency is the steps one after
another, each as long as its longest continuation (a step waits for all of them and their scores).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass, replace

import numpy as np

from widthdepth.analysis.aggregators import best_of
from widthdepth.attempts import Attempt, Verification, attempt_key, attempt_seed, attempt_status
from widthdepth.backends import Completion, GenerationRequest
from widthdepth.cost import VerificationCost, cell_cost
from widthdepth.execute.base import Executor, MethodRun, Outcome, attempt_counts
from widthdepth.execute.text import _runs
from widthdepth.plans.search import SearchPlan
from widthdepth.specs import stable_hash, stable_int
from widthdepth.store import now
from widthdepth.tasks import Problem
from widthdepth.tasks.extract import answer_region
from widthdepth.tasks.prompts import Prompt, attempt_prompt
from widthdepth.verifiers import VerifyItem

UNSCORED = 0.5
"""The score of a partial solution the verifier cannot score yet (no step written): no evidence."""


@dataclass(frozen=True)
class Node:
    """A partial (or finished) solution: the attempt that wrote its last step, and what it adds up to."""

    attempt: Attempt
    solution: str
    """Every step so far, joined by the delimiter."""
    score: float
    finished: bool
    group: int = 0
    """The subtree it belongs to (dvts); 0 elsewhere."""
    tokens: int = 0
    """Tokens generated along its path."""


@dataclass
class _Tree:
    problem: Problem
    base: str
    """The raw prompt a solution continues."""
    stop: tuple[str, ...]
    """The prompt's own stop strings (the step delimiter is added to them)."""
    kept: list[Node]
    spent: list[Attempt]
    verifications: list[Verification]
    serial: float = 0.0
    steps: int = 0
    failed: bool = False
    """A continuation failed for good (server error): the problem is left for a rerun, not scored."""


class SearchExecutor(Executor):
    plan: SearchPlan

    @abstractmethod
    def select(self, tree: _Tree, children: list[list[Node]], rng: np.random.Generator) -> list[Node]:
        """The nodes kept after a step: `children[i]` are the continuations of `tree.kept[i]` (none when
        it was finished)."""

    def choose(self, tree: _Tree) -> Node:
        """The node whose answer the method gives: the best score; ties to the more frequent answer."""
        answers = [self._answer(tree.problem, n) for n in tree.kept]
        pick = best_of(answers, [n.score for n in tree.kept])
        return next((n for n, a in zip(tree.kept, answers) if a == pick and pick is not None), tree.kept[0])

    def execute(self) -> MethodRun:
        trees = [self._start(p) for p in self.problems]
        for step in range(1, self.plan.steps + 1):
            active = [t for t in trees if not t.failed and any(not n.finished for n in t.kept)]
            if not active:
                break
            self.progress.describe(f"{self.plan.spec} step {step}: {len(active)} problems searching, {self.family.spec}")
            children = self._expand(active, step)
            for tree in (t for t in active if not t.failed):
                rng = np.random.default_rng(stable_int(self.seed, tree.problem.key, self.plan.kind, step))
                tree.kept = self.select(tree, children[tree.problem.key], rng)
                tree.steps = step
        outcomes = [self._outcome(t) for t in trees if not t.failed]
        return self.record(MethodRun(self.family, self.plan, self.problems, outcomes, self.verifier.name
                                     if self.verifier else None))

    def _start(self, problem: Problem) -> _Tree:
        prompt = attempt_prompt(self.family, problem, self.backend.info.prompt_style)
        base = prompt.text if prompt.text is not None else self.backend.render_chat(prompt.messages or ())
        root = Attempt(key="", model="", task="", problem_key=problem.key, w=0, d=0, mode="", parent_key=None, seed=0,
                       prompt="", prompt_key="", settings="", text="", answer=None, final_answer=None, correct=None,
                       finish_reason="", status="ok", error=None, prompt_tokens=0, completion_tokens=0,
                       serial_tokens=0, wall_seconds=0.0, created_at="")
        return _Tree(problem, base, prompt.stop, [Node(root, "", UNSCORED, False, g) for g in range(self.plan.slots)],
                     [], [])

    def _prompt(self, tree: _Tree, node: Node) -> Prompt:
        sofar = node.solution + self.plan.delimiter if node.solution else ""
        return Prompt(text=tree.base + sofar, stop=tuple(tree.stop) + (self.plan.delimiter,))

    def _settings(self, prompt: Prompt) -> str:
        return json.dumps({"max_tokens": self.plan.step_tokens, "temperature": self.config.temperature,
                           "top_p": self.config.top_p, "stop": list(prompt.stop)}, sort_keys=True)

    def _expand(self, trees: list[_Tree], step: int) -> dict[str, list[list[Node]]]:
        """Continue every kept unfinished node: stored continuations are read back, the rest generated."""
        k = self.plan.expand
        got: dict[tuple[str, int], Attempt] = {}
        pending: list[tuple[_Tree, int, int, int, Prompt]] = []  # tree, node index, first w, count, prompt
        for tree in trees:
            for i, node in enumerate(tree.kept):
                if node.finished:
                    continue
                prompt = self._prompt(tree, node)
                missing = []
                for w in range(i * k, (i + 1) * k):
                    stored = self.store.get_attempt(self._key(tree.problem, step, w, prompt))
                    if stored is not None and not stored.failed:
                        got[(tree.problem.key, w)] = stored
                        self._count_stored(stored)
                    else:
                        missing.append(w)
                # one request per run of consecutive missing continuations (a crash may leave gaps:
                # the batched decoder stores samples as they finish, not in order)
                pending += [(tree, i, w0, n, prompt) for w0, n in _runs(missing)]
        self.progress.add_total(sum(not n.finished for t in trees for n in t.kept) * k)
        self.progress.advance(len(got))
        self._generate(pending, step, got)
        return self._score(trees, step, got)

    def _key(self, problem: Problem, step: int, w: int, prompt: Prompt) -> str:  # type: ignore[override]
        return attempt_key(self.backend.info.id, problem.key, prompt.identity(), self._settings(prompt), w, step,
                           attempt_seed(self.seed, problem.key, step, w))

    def _generate(self, pending: list, step: int, got: dict[tuple[str, int], Attempt]) -> None:
        requests = [GenerationRequest(prompt=prompt.text, messages=None, n=n, max_tokens=self.plan.step_tokens,
                                      temperature=self.config.temperature, top_p=self.config.top_p, stop=prompt.stop,
                                      seed=attempt_seed(self.seed, tree.problem.key, step, w0))
                    for tree, _, w0, n, prompt in pending]
        for sample in self.backend.generate(requests) if requests else ():
            tree, i, w0, _, prompt = pending[sample.request_index]
            attempt = self._attempt(tree, tree.kept[i], step, w0 + sample.sample_index, prompt, sample.completion)
            self.store.put_attempt(attempt)
            self.generated += 1
            self.made.add(attempt.key)
            self.progress.advance(1, sample.completion.completion_tokens)
            if attempt.failed:
                tree.failed = True
            else:
                got[(tree.problem.key, attempt.w)] = attempt

    def _attempt(self, tree: _Tree, parent: Node, step: int, w: int, prompt: Prompt, completion: Completion) -> Attempt:
        status = attempt_status(completion.finish_reason)
        failed = status != "ok"
        solution = self._join(parent.solution, completion.text)
        finished = not failed and self._finished(solution, completion.text, parent.tokens + completion.completion_tokens)
        answer = self.family.parse(solution, tree.problem) if finished else None
        return Attempt(
            key=self._key(tree.problem, step, w, prompt), model=self.backend.info.id, task=self.family.spec,
            problem_key=tree.problem.key, w=w, d=step, mode=self.plan.kind, parent_key=parent.attempt.key or None,
            seed=attempt_seed(self.seed, tree.problem.key, step, w), prompt=prompt.identity(),
            prompt_key=stable_hash(prompt.identity()), settings=self._settings(prompt), text=completion.text,
            answer=answer, final_answer=answer, correct=None if failed else bool(finished and self.family.check(
                tree.problem, answer)), finish_reason=completion.finish_reason, status=status,
            error=completion.error, prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            serial_tokens=parent.attempt.serial_tokens + completion.completion_tokens, wall_seconds=completion.seconds,
            created_at=now(), confidence=completion.mean_logprob)

    def _join(self, solution: str, step_text: str) -> str:
        return f"{solution}{self.plan.delimiter}{step_text}" if solution else step_text

    def _finished(self, solution: str, step_text: str, tokens: int) -> bool:
        """The solution states an answer, the step added nothing, or the path used --max-tokens."""
        return answer_region(solution) is not None or not step_text.strip() or tokens >= self.config.max_tokens

    def _score(self, trees: list[_Tree], step: int, got: dict[tuple[str, int], Attempt]) -> dict[str, list[list[Node]]]:
        assert self.verifier is not None
        k, out, items, where = self.plan.expand, {}, [], {}
        scores: dict[str, Verification] = {}
        for tree in trees:
            for i, node in enumerate(tree.kept):
                for w in range(i * k, (i + 1) * k) if not node.finished else ():
                    attempt = got.get((tree.problem.key, w))
                    if attempt is None:
                        continue
                    stored = self.store.get_verification(attempt.key, self.verifier.name)
                    if stored is not None:
                        scores[attempt.key] = stored
                    else:
                        where[attempt.key] = len(items)
                        items.append(VerifyItem(tree.problem, self.family, attempt, self._join(node.solution, attempt.text)))
        for _, verification in self.verifier.verify(items):
            self.store.put_verification(verification)
            scores[verification.attempt_key] = verification
        for tree in (t for t in trees if not t.failed):
            children: list[list[Node]] = []
            longest = checking = 0
            for i, node in enumerate(tree.kept):
                mine = [got[(tree.problem.key, w)] for w in range(i * k, (i + 1) * k)
                        if not node.finished and (tree.problem.key, w) in got]
                children.append([self._node(node, a, scores.get(a.key)) for a in mine])
                tree.spent += mine
                checked = [scores[a.key] for a in mine if a.key in scores]
                tree.verifications += checked
                longest = max([longest] + [a.completion_tokens for a in mine])
                checking = max([checking] + [v.completion_tokens for v in checked])
            tree.serial += longest + checking  # the step waits for its longest continuation, then its scores
            out[tree.problem.key] = children
        return out

    def _node(self, parent: Node, attempt: Attempt, verification: Verification | None) -> Node:
        solution = self._join(parent.solution, attempt.text)
        score = verification.score if verification is not None and verification.score is not None else UNSCORED
        tokens = parent.tokens + attempt.completion_tokens
        return Node(attempt, solution, float(score), self._finished(solution, attempt.text, tokens), parent.group, tokens)

    def _answer(self, problem: Problem, node: Node) -> str | None:
        return self.family.parse(node.solution, problem) if node.solution else None

    def _outcome(self, tree: _Tree) -> Outcome:
        chosen = self.choose(tree)
        answer = self._answer(tree.problem, chosen)
        info = self.backend.info
        cost = cell_cost([attempt_counts(a) for a in tree.spent], [], [VerificationCost(v.prompt_tokens,
                         v.completion_tokens) for v in tree.verifications], info.n_params, info.shares_prompt_prefix,
                         self.verifier.n_params if self.verifier else 0)
        detail = {"steps": tree.steps, "finished": sum(n.finished for n in tree.kept), "chosen": chosen.attempt.key,
                  "score": chosen.score}
        return Outcome(tree.problem.key, answer, bool(self.family.check(tree.problem, answer)),
                       replace(cost, serial_tokens=tree.serial), len(tree.spent), detail)
