"""The JSONL layouts of code benchmarks, read into one form: question, program prefix, test steps.

- HumanEval: ``prompt`` (signature and docstring), ``test`` (defines ``check(candidate)``),
  ``entry_point``, ``canonical_solution`` (the body). Each statement of ``check`` that contains an
  ``assert`` is one test, run with ``candidate`` bound to the entry point; other statements are setup.
- MBPP: ``text``, ``test_list`` (assert lines, each a test), ``test_setup_code``, ``code``. The question
  shows the tests (the benchmark's own prompt form), so the model knows the function's name.
- Your own: ``prompt`` (or ``question``), ``tests`` (a list of assert lines, or Python code whose
  top-level statements with an ``assert`` are the tests), optional ``entry_point`` and ``solution``.
  Name other fields with ``prompt=``, ``tests=``, ``entry_point=``, ``solution=``.

    >>> layout_of({"text": "Add one.", "test_list": ["assert inc(1) == 2"]}, {})
    'mbpp'
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
from dataclasses import dataclass

from widthdepth.tasks.sandbox import Step

LAYOUTS = {
    "humaneval": ("prompt", "test", "entry_point"),
    "mbpp": ("text", "test_list"),
    "plain": ("prompt|question", "tests"),
}


@dataclass(frozen=True)
class CodeItem:
    question: str
    steps: tuple[Step, ...]
    prefix: str = ""
    """Code the completion continues (HumanEval's prompt), put before a completion that lacks the entry point."""
    entry_point: str | None = None
    bind: tuple[tuple[str, str], ...] = ()
    solution: str | None = None
    """A correct program, for few-shot demonstrations."""

    @property
    def tests(self) -> int:
        return sum(1 for s in self.steps if s.kind == "test")


def layout_of(row: dict, named: dict[str, str]) -> str:
    """The layout a row is in; ValueError listing the known ones when none fits."""
    if named.get("tests") or named.get("prompt"):
        return "plain"
    if all(f in row for f in LAYOUTS["humaneval"]):
        return "humaneval"
    if all(f in row for f in LAYOUTS["mbpp"]):
        return "mbpp"
    if "tests" in row and ("prompt" in row or "question" in row):
        return "plain"
    fields = ", ".join(sorted(row)) or "none"
    raise ValueError(f"unknown layout (fields: {fields}); expected HumanEval (prompt, test, entry_point), "
                     "MBPP (text, test_list) or prompt/question with tests; name yours with prompt=FIELD,tests=FIELD")


def read_item(row: dict, layout: str, named: dict[str, str]) -> CodeItem:
    """A row as a `CodeItem`; ValueError (missing field, test code that does not parse) with a reason."""
    if layout == "humaneval":
        return _humaneval(row)
    if layout == "mbpp":
        return _mbpp(row)
    return _plain(row, named)


def _text(row: dict, field: str) -> str:
    if field not in row:
        raise ValueError(f"no field {field!r} (fields: {', '.join(sorted(row)) or 'none'})")
    value = row[field]
    if not isinstance(value, str):
        raise ValueError(f"field {field!r} should be text, got {type(value).__name__}")
    return value


def _humaneval(row: dict) -> CodeItem:
    prompt, test, entry = _text(row, "prompt"), _text(row, "test"), _text(row, "entry_point")
    tree = _parsed(test, "test")
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None or not check.args.args:
        raise ValueError("field 'test' defines no check(candidate) function")
    alias = check.args.args[0].arg
    steps = [Step("setup", test)] + [Step("test" if _asserts(s) else "setup", _segment(test, s)) for s in check.body]
    if not any(s.kind == "test" for s in steps) or not all(_compiles(s.code) for s in steps):
        steps = [Step("setup", test), Step("test", f"check({alias})")]  # one test: the whole check
    question = f"Complete this Python function.\n\n```python\n{prompt.rstrip()}\n```"
    solution = prompt + row["canonical_solution"] if isinstance(row.get("canonical_solution"), str) else None
    return CodeItem(question, tuple(steps), prefix=prompt, entry_point=entry, bind=((alias, entry),),
                    solution=solution)


def _mbpp(row: dict) -> CodeItem:
    tests = _lines(row, "test_list")
    setup = row.get("test_setup_code") or ""
    if not isinstance(setup, str):
        raise ValueError(f"field 'test_setup_code' should be text, got {type(setup).__name__}")
    steps = ([Step("setup", setup)] if setup.strip() else []) + [Step("test", t) for t in tests]
    question = f"{_text(row, 'text').strip()}\nYour code should pass these tests:\n\n" + "\n".join(tests)
    return CodeItem(question, tuple(steps), entry_point=_called(tests[0]),
                    solution=row["code"] if isinstance(row.get("code"), str) else None)


def _plain(row: dict, named: dict[str, str]) -> CodeItem:
    prompt_field = named.get("prompt") or ("prompt" if "prompt" in row else "question")
    tests_field = named.get("tests", "tests")
    question = _text(row, prompt_field)
    raw = row.get(tests_field)
    if isinstance(raw, str):
        tree = _parsed(raw, tests_field)
        steps = [Step("test" if _asserts(s) else "setup", _segment(raw, s)) for s in tree.body]
    else:
        steps = [Step("test", t) for t in _lines(row, tests_field)]
    if not any(s.kind == "test" for s in steps):
        raise ValueError(f"field {tests_field!r} has no assert: nothing would be checked")
    entry_field = named.get("entry_point", "entry_point")
    entry = row.get(entry_field) if isinstance(row.get(entry_field), str) else None
    solution_field = named.get("solution", "solution")
    solution = row.get(solution_field) if isinstance(row.get(solution_field), str) else None
    first_test = next(s.code for s in steps if s.kind == "test")
    return CodeItem(question, tuple(steps), entry_point=entry or _called(first_test), solution=solution)


def _lines(row: dict, field: str) -> list[str]:
    value = row.get(field)
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise ValueError(f"field {field!r} should be a non-empty list of test lines (assert ...)")
    for test in value:
        _parsed(test, field)
    return value


def _parsed(code: str, field: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        raise ValueError(f"field {field!r} is not valid Python (line {exc.lineno}: {exc.msg})") from None


def _asserts(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def _segment(code: str, node: ast.stmt) -> str:
    """A statement's own source, dedented (a statement of a function body keeps its inner indentation)."""
    return textwrap.dedent(ast.get_source_segment(code, node, padded=True) or "")


def _compiles(code: str) -> bool:
    """A step cut out of ``check`` that compiles alone (a ``return``, or a string continued at column 0,
    does not)."""
    try:
        compile(code, "tests.py", "exec")
        return True
    except SyntaxError:
        return False


def _called(test: str) -> str | None:
    """The function a test calls first, builtins and methods skipped: ``assert set(common(a, b)) == ...``
    -> common; ``assert math.isclose(area(2), 4)`` -> area."""
    for match in re.finditer(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", test.removeprefix("assert")):
        name = match.group(1)
        if not hasattr(builtins, name) and not re.search(rf"\b{name}\s*\.\s*\w+\s*\(", test):
            return name
    return None
