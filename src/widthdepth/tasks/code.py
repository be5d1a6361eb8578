"""`code:PATH`: programming problems checked by running their tests (HumanEval, MBPP or your own layout).

    code:data/humaneval.jsonl
    code:data/mbpp.jsonl,timeout=10,memory=1024
    code:data/mine.jsonl,prompt=task,tests=checks,entry_point=fn

The answer is the program in the completion: the last fenced Python block that defines the entry
point (else the last one; else the text from its first ``def``/``import``/``class`` line), after the
problem's prefix (HumanEval's prompt, so its imports and helpers are there; a function written again
replaces the stub; a base model's bare continuation completes it, cut at its first line at column 0).
Each program runs in `widthdepth.tasks.sandbox`: a fresh subprocess per check, with time, memory, file
and process limits. A crash, a timeout or a loop is a failed test, never a failed run.

The canonical answer is the tests' outcomes, e.g. ``3/5 PPFPT`` (P passed, F failed, E error,
T out of time), so majority voting groups programs that behave alike on the tests, and a program is
correct when every test passes. The tests are also the gold-free verifier (``exact``, as in Large
Language Monkeys): with it, verifier best-of reaches coverage (pass@k). Options: ``timeout`` (seconds
per program, all its tests included; default 5), ``memory`` (MiB, default 512), ``shots`` (worked
examples from the first rows' solutions, for base models). Rows are identified by line and content.
"""

from __future__ import annotations

import re
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec, stable_hash
from widthdepth.tasks.base import Demonstration, Problem, in_gold
from widthdepth.tasks.code_layouts import CodeItem, layout_of, read_item
from widthdepth.tasks.jsonl import read_jsonl
from widthdepth.tasks.sandbox import Limits, Sandbox

_FENCE = re.compile(r"^[ \t]*```[ \t]*([^\n`]*)\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = {"", "py", "python", "python3"}
_CODE_START = re.compile(r"^(?:def|class|import|from|@)\b", re.MULTILINE)


def extract_program(text: str, entry_point: str | None, prefix: str = "") -> str | None:
    """The program a completion gives, or None when it holds no code. Fenced blocks count when their tag
    is python, py or none (a ```text block of example output does not)."""
    blocks = [body for tag, body in _FENCE.findall(text) if tag.strip().lower() in _PYTHON_TAGS and body.strip()]
    if blocks:
        defining = [b for b in blocks if defines(b, entry_point)]
        code = (defining or blocks)[-1]
    else:
        start = _CODE_START.search(text)
        if prefix and not (start and defines(text, entry_point)):
            # a continuation of the function the prompt began: its body, up to the first line at column 0
            code = re.split(r"\n(?=\S)", text, maxsplit=1)[0]
        elif start is None:
            return None
        else:
            code = text[start.start():]
    if not code.strip():
        return None
    # the prompt's imports and helpers first, always; a function the model wrote again replaces its stub
    return (prefix + "\n" if prefix else "") + code.rstrip() + "\n"


def defines(code: str, name: str | None) -> bool:
    return bool(name) and re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", code, re.MULTILINE) \
        is not None


def signature(letters: str) -> str:
    """``PPFPT`` -> ``3/5 PPFPT``: the canonical answer."""
    return f"{letters.count('P')}/{len(letters)} {letters}"


class CodeFamily:
    exact_checkable = True
    answer_format = "a single ```python code block holding the whole program"
    final_instruction = ("Write the complete solution, imports included, as one Python code block "
                         "(```python ... ```) at the end of your reply.")
    fewshot_stop = ("\nQuestion:",)  # programs hold blank lines: stop only at the next question

    def __init__(self, path: Path, named: dict[str, str], shots: int, spec: str, limits: Limits) -> None:
        self.path, self.shots, self.spec = path, shots, spec
        rows = read_jsonl(path)
        try:
            layout = layout_of(rows[0][1], named)
        except ValueError as exc:
            raise WidthdepthError(f"{path}:{rows[0][0]}: {exc}") from None
        self.items: list[tuple[int, CodeItem]] = []
        for lineno, row in rows:
            try:
                self.items.append((lineno, read_item(row, layout, named)))
            except ValueError as exc:
                raise WidthdepthError(f"{path}:{lineno}: {exc} ({layout} layout)") from None
        if len(self.items) <= shots:
            raise WidthdepthError(f"{path}: {len(self.items)} rows, but shots={shots} leaves no problems")
        self.layout = layout
        self.sandbox = Sandbox(limits)  # checks once that programs can run here at all
        self._by_key: dict[str, CodeItem] = {}

    def problems(self, count: int, seed: int) -> list[Problem]:
        # File order, not seeded: the same file gives the same problems in every study.
        out = []
        for index, (lineno, item) in enumerate(self.items[self.shots:self.shots + count]):
            steps = [[s.kind, s.code] for s in item.steps]
            key = f"{self.spec}#{lineno}#{stable_hash(item.question, steps, item.prefix, item.bind)[:12]}"
            self._by_key[key] = item
            out.append(Problem(
                key=key, task=self.spec, index=index, question=item.question, gold=(signature("P" * item.tests),),
                structure={"family": "code", "L": None, "size": item.tests, "difficulty": None, "line": lineno,
                           "entry_point": item.entry_point}))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        if problem is None:
            return None
        if problem.key not in self._by_key:
            self.problems(len(self.items), seed=0)  # keys come from the file alone
        item = self._by_key.get(problem.key)
        if item is None:
            return None  # not one of this family's problems: no tests to run
        program = extract_program(text, item.entry_point, item.prefix)
        if program is None:
            return None
        return signature(self.sandbox.run(program, list(item.steps), dict(item.bind)))

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        return None if answer is None else in_gold(problem, answer)

    def demonstrations(self, count: int) -> list[Demonstration]:
        return [Demonstration(item.question, f"```python\n{item.solution.rstrip()}\n```")
                for _, item in self.items[:min(count, self.shots)] if item.solution]


def build(spec: Spec) -> CodeFamily:
    spec.check_known({"prompt", "tests", "entry_point", "solution", "shots", "timeout", "memory"})
    if len(spec.args) != 1:
        raise spec.error("expected one file path, e.g. code:data/humaneval.jsonl")
    path = Path(spec.args[0]).expanduser()
    if not path.is_file():
        raise spec.error(f"no such file {str(path)!r}")
    limits = Limits(seconds=spec.int_param("timeout", 5, minimum=1, maximum=600),
                    memory_mb=spec.int_param("memory", 512, minimum=64, maximum=65_536))
    named = {k: spec.params[k] for k in ("prompt", "tests", "entry_point", "solution") if k in spec.params}
    return CodeFamily(path, named, spec.int_param("shots", 0, minimum=0, maximum=16), spec.text, limits)
