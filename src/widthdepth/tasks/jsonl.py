r"""`jsonl:PATH`: the user's own problems, one JSON object per line.

    jsonl:data/gsm8k_test.jsonl                         GSM8K: "question", "answer" ending "#### 42"
    jsonl:data/math500.jsonl,checker=math               MATH-500: "problem", "answer" (or "solution")
    jsonl:data/mine.jsonl,question=q,answer=a,shots=2   your own field names
    jsonl:data/mc.jsonl,checker=regex:\(([A-E])\)       a pattern takes the rest of the spec: last

Without question= / answer=, the first row's fields are searched for the usual names (question,
problem, Problem; answer, Answer, final_answer, solution). Gold answers in GSM8K form (reasoning,
then ``#### 42``) are reduced to what follows ``####``; a MATH solution to its last ``\boxed{}``
(with checker=math). ``checker=`` is one of `widthdepth.tasks.checkers` (number, text, math,
regex:PATTERN); without it, numbers when every gold answer is one, else text. The canonical answer
of the checker is what majority voting groups by. ``shots=K`` uses the first K rows as worked examples for few-shot
(base model) prompts and never asks them as problems, whatever the model, so every model sees the
same problems. Problems are the following rows in file order; blank lines are skipped. The file
must be UTF-8 (a byte-order mark is accepted). A problem's identity is its line and its content: a
line edited between runs is a new problem.
"""

from __future__ import annotations

import json
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec, parse_spec, stable_hash
from widthdepth.tasks.base import Demonstration, Problem, in_gold
from widthdepth.tasks.checkers import make_checker
from widthdepth.tasks.extract import canonical_number


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a line that is not a UTF-8 JSON object is an error
    naming file:line."""
    rows = []
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            where = f"{path}:{lineno}"
            try:  # a UTF-8 byte-order mark (as some editors write) is not part of the first line
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise WidthdepthError(f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                                      "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WidthdepthError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                                      "each line must be one JSON object") from None
            if not isinstance(row, dict):
                raise WidthdepthError(f"{where}: expected a JSON object, got {type(row).__name__}")
            rows.append((lineno, row))
    if not rows:
        raise WidthdepthError(f"{path}: no problems (the file has no JSON lines)")
    return rows


def final_part(raw: object) -> str:
    """A gold answer's final part: what follows GSM8K's ``####``, else the whole text."""
    text = str(raw)
    return (text.rsplit("####", 1)[1] if "####" in text else text).strip()


# Field names recognised when question= / answer= are not given, in order of preference:
# GSM8K (question, answer with "#### 42"), MATH-500 (problem, solution, answer), AIME sets (problem or
# Problem, answer or Answer).
QUESTION_FIELDS = ("question", "problem", "Problem", "Question")
ANSWER_FIELDS = ("answer", "Answer", "final_answer", "solution", "Solution")


def _field(row: dict, given: str | None, known: tuple[str, ...], option: str, where: str) -> str:
    if given is not None:
        return given
    for name in known:
        if name in row:
            return name
    fields = ", ".join(sorted(row)) or "none"
    raise WidthdepthError(f"{where}: no {option} field among {', '.join(known)} (fields: {fields}); "
                          f"name it with {option}=FIELD")


class JsonlFamily:
    exact_checkable = False

    def __init__(self, path: Path, fields: tuple[str | None, str | None], shots: int, spec: str,
                 checker: str | None) -> None:
        self.path, self.shots, self.spec = path, shots, spec
        rows = read_jsonl(path)
        where = f"{path}:{rows[0][0]}"
        self.question_field = _field(rows[0][1], fields[0], QUESTION_FIELDS, "question", where)
        self.answer_field = _field(rows[0][1], fields[1], ANSWER_FIELDS, "answer", where)
        self.rows = self._checked(rows)
        if len(self.rows) <= shots:
            raise WidthdepthError(f"{path}: {len(self.rows)} rows, but shots={shots} leaves no problems")
        if checker is None:  # numbers when every gold answer is one, else text (checker=math is never guessed)
            numeric = all(canonical_number(final_part(r[self.answer_field])) is not None for _, r in self.rows)
            checker = "number" if numeric else "text"
        self.checker = make_checker(checker)
        self.answer_format = self.checker.answer_format
        self.golds = [self._gold(lineno, row) for lineno, row in self.rows]

    def _checked(self, rows: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        for lineno, row in rows:
            for option, field in (("question", self.question_field), ("answer", self.answer_field)):
                if field not in row:
                    fields = ", ".join(sorted(row)) or "none"
                    raise WidthdepthError(f"{self.path}:{lineno}: no field {field!r} (fields: {fields}); "
                                          f"name the {option} field with {option}=FIELD")
        return rows

    def _gold(self, lineno: int, row: dict) -> str:
        try:
            return self.checker.gold(final_part(row[self.answer_field]))
        except ValueError as exc:
            raise WidthdepthError(f"{self.path}:{lineno}: {exc}") from None

    def problems(self, count: int, seed: int) -> list[Problem]:
        # File order, not seeded: the same file gives the same problems in every study.
        out = []
        chosen = list(zip(self.rows, self.golds))[self.shots:self.shots + count]
        for index, ((lineno, row), gold) in enumerate(chosen):
            question = str(row[self.question_field])
            out.append(Problem(
                # the content is part of the identity: a line edited between runs is a new problem, so
                # its attempts are not reused and it is never scored against the old gold answer
                key=f"{self.spec}#{lineno}#{stable_hash(question, gold)[:12]}", task=self.spec, index=index,
                question=question, gold=(gold,),
                structure={"family": "jsonl", "L": row.get("steps"), "size": None,
                           "difficulty": row.get("difficulty"), "line": lineno},
            ))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        return self.checker.parse(text)

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer) or (answer is not None and self.checker.equal(answer, problem.gold[0]))

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        return None

    def demonstrations(self, count: int) -> list[Demonstration]:
        demos = []
        for _, row in self.rows[:min(count, self.shots)]:
            answer = str(row[self.answer_field])
            reasoning, _, final = answer.rpartition("####")
            solution = f"{reasoning.strip()}\nAnswer: {final.strip()}" if reasoning else f"Answer: {answer.strip()}"
            demos.append(Demonstration(str(row[self.question_field]), solution.strip()))
        return demos


def split_regex(spec: Spec) -> tuple[Spec, str | None]:
    """A ``checker=regex:PATTERN`` takes the rest of the spec (commas included): the spec without it,
    and the checker's name."""
    head, marker, pattern = spec.text.partition(",checker=regex:")
    if not marker:
        return spec, spec.params.get("checker")
    return parse_spec(head, option=spec.option), "regex:" + pattern


def build(spec: Spec) -> JsonlFamily:
    text = spec.text
    spec, checker = split_regex(spec)
    spec.check_known({"question", "answer", "shots", "checker"})
    if len(spec.args) != 1:
        raise spec.error("expected one file path, e.g. jsonl:data/problems.jsonl")
    path = Path(spec.args[0]).expanduser()
    if not path.is_file():
        raise spec.error(f"no such file {str(path)!r}")
    shots = spec.int_param("shots", 0, minimum=0, maximum=16)
    return JsonlFamily(path, (spec.params.get("question"), spec.params.get("answer")), shots, text, checker)
