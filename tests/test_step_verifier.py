"""`--verifier steps` (issue 15's exact process reward for chain): the step checker scores written
solutions, whole or cut short, in the task's own format and the built-in LM's; the run stores its
scores; families without steps are refused in one line."""

from __future__ import annotations

import random
import re

import pytest

from widthdepth.backends.mock import MockBackend
from widthdepth.closing import closing_table
from widthdepth.errors import WidthdepthError
from widthdepth.lab.lm.data import chain_solution
from widthdepth.runner import run
from widthdepth.tasks import load_task


def test_step_checker_counts_right_values_in_either_written_format():
    family = load_task("chain:L=6")
    rng = random.Random(0)
    for problem in family.problems(20, 3):
        assert family.score_steps(problem, chain_solution(problem)) == (6, 6)
        slipped = chain_solution(problem, slip_at=4, rng=rng)
        right, written = family.score_steps(problem, slipped)
        assert written == 6 and right <= 5 and right >= 3  # steps 1-3 stay right
        cut = "\n".join(chain_solution(problem).split("\n")[:3])  # Start and two steps: unfinished
        assert family.score_steps(problem, cut) == (2, 2)
        assert family.score_steps(problem, "Answer: 4") is None
    for problem in load_task("chain:L=4").problems(10, 0):  # the task's own format: "3 + 4 = 7, mod 10 gives 7"
        start, steps = problem.structure["start"], [tuple(s) for s in problem.structure["steps"]]
        solution, _ = family._solution(start, steps)
        flawed, _ = family._solution(start, steps, slip_at=1)
        assert family.score_steps(problem, solution) == (4, 4)
        assert family.score_steps(problem, flawed)[0] < 4 and "gives" in solution


def _solve(request, seed: int) -> str:
    """Writes each step; odd seeds slip at step 2 (by +1, before the modulus)."""
    question = request.messages[0][1]
    x = int(re.search(r"Start with the number (\d+)", question).group(1))
    lines = [f"Start: {x}"]
    for i, (op, c) in enumerate(re.findall(r"Step \d+: (add|multiply by) (\d+)", question), 1):
        raw = x + int(c) if op == "add" else x * int(c)
        raw += 1 if seed % 2 and i == 2 else 0
        lines.append(f"Step {i}: {raw} -> {raw % 10}")
        x = raw % 10
    return "\n".join(lines + [f"Answer: {x}"])


def test_the_run_stores_step_scores_and_best_of_prefers_the_right_chain(make_config):
    config = make_config(tasks=["chain:L=4"], plans=["parallel:2"], problems=3, verifier="steps")
    result = run(config, backend=MockBackend(script=_solve))
    plan_run = result.plan_runs[0]
    assert plan_run.verifier == "steps"
    for problem in plan_run.problems:
        scores = sorted(plan_run.verifications[a.key].score for (a,) in plan_run.chains[problem.key])
        assert scores[-1] == 1.0 and scores[0] < 1.0  # the slipped chain scores lower
        for (a,) in plan_run.chains[problem.key]:
            v = plan_run.verifications[a.key]
            assert v.verdict.endswith("steps right") and v.prompt_tokens == 0
    (row,) = closing_table(result)
    assert row.best_of == 1.0 and row.majority < 1.0  # best-of picks the right chain; the vote ties


def test_families_without_steps_are_refused(make_config):
    with pytest.raises(WidthdepthError, match=r"--verifier steps: task 'search:kind=modeq,p=13' has no step checker"):
        run(make_config(tasks=["search"], plans=["parallel:2"], verifier="steps"), backend=MockBackend())
