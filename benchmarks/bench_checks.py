"""Checks per second: `checker=math` (math-verify) and `code:` (a sandboxed subprocess per check), and
the sandbox's overhead per check against running the same program and tests in this process.

    .venv/bin/python benchmarks/bench_checks.py

Inputs are the shipped examples: the 44 hand-judged replies of examples/math-answers.jsonl and the 12
correct programs of examples/code-replies.jsonl. Caches are cleared before every pass, so each check
is done cold (a run sees mostly distinct answers). The sides of the overhead ratio run interleaved,
five passes each, and the median pass is kept (throughput drifts here by up to 1.5x in minutes).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from widthdepth.tasks import load_task
from widthdepth.tasks.code import extract_program
from widthdepth.tasks.mathcheck import _parsed, canonical

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PASSES = 5


def math_pass(family, cases) -> float:
    canonical.cache_clear()
    _parsed.cache_clear()
    start = time.perf_counter()
    for problem, reply in cases:
        family.check(problem, family.parse(reply, problem))
    return time.perf_counter() - start


def in_process(program: str, item) -> str:
    """The same job as the sandbox's, run here with no isolation: the reference side of the ratio."""
    namespace = {"__name__": "__solution__"}
    exec(compile(program, "solution.py", "exec"), namespace)
    for alias, name in item.bind:
        namespace[alias] = namespace[name]
    letters = ""
    for step in item.steps:
        try:
            exec(compile(step.code, "tests.py", "exec"), namespace)
            letter = "P"
        except AssertionError:
            letter = "F"
        if step.kind == "test":
            letters += letter
    return letters


def code_pass(family, jobs, sandboxed: bool) -> float:
    family.sandbox._seen.clear()
    start = time.perf_counter()
    for program, item in jobs:
        letters = family.sandbox.run(program, list(item.steps), dict(item.bind)) if sandboxed \
            else in_process(program, item)
        assert set(letters) == {"P"}, letters
    return time.perf_counter() - start


def main() -> None:
    math = load_task(f"jsonl:{EXAMPLES / 'math.jsonl'},checker=math")
    problems = {p.structure["line"]: p for p in math.problems(100, seed=0)}
    answers = [json.loads(line) for line in (EXAMPLES / "math-answers.jsonl").read_text().splitlines()]
    cases = [(problems[a["line"]], a["reply"]) for a in answers]
    math_pass(math, cases)  # imports and sympy's first-use caches, not part of a check
    math_times = [math_pass(math, cases) for _ in range(PASSES)]

    code = load_task(f"code:{EXAMPLES / 'code.jsonl'}")
    items = {p.structure["line"]: code._by_key[p.key] for p in code.problems(100, seed=0)}
    replies = [json.loads(line) for line in (EXAMPLES / "code-replies.jsonl").read_text().splitlines()]
    jobs = [(extract_program(r["reply"], items[r["line"]].entry_point), items[r["line"]])
            for r in replies if r["why"] == "a correct program"]
    sandboxed, local = [], []
    for _ in range(PASSES):  # interleaved
        sandboxed.append(code_pass(code, jobs, True))
        local.append(code_pass(code, jobs, False))

    math_s, box_s, local_s = (statistics.median(t) for t in (math_times, sandboxed, local))
    print(f"math checks (parse + check, cold): {len(cases)} in {math_s:.3f} s = {len(cases) / math_s:.1f} checks/s")
    print(f"code checks (sandboxed, sequential): {len(jobs)} in {box_s:.3f} s = {len(jobs) / box_s:.1f} checks/s, "
          f"{1000 * box_s / len(jobs):.1f} ms each")
    print(f"same programs and tests in-process: {1000 * local_s / len(jobs):.3f} ms each")
    print(f"sandbox overhead per check: {1000 * (box_s - local_s) / len(jobs):.1f} ms "
          f"(sandboxed / in-process = {box_s / local_s:.0f}x)")


if __name__ == "__main__":
    main()
