"""`jsonl:PATH`: the user's own problems, one JSON object per line.

    jsonl:data/gsm8k_test.jsonl                         fields "question" and "answer"
    jsonl:data/mine.jsonl,question=problem,answer=solution,shots=2

Gold answers in GSM8K form (reasoning, then ``#### 42``) are reduced to what follows ``####``.
Numeric gold answers are compared as numbers (``1,234`` == ``1234.0``), others as text with case,
spacing and punctuation ignored. ``shots=K`` uses the first K rows as worked examples for few-shot
(base model) prompts and never asks them as problems, whatever the model, so every model sees the
same problems. Problems are the following rows in file order; blank lines are skipped. The file
must be UTF-8 (a byte-order mark is accepted). A problem's identity is its line and its content: a
line edited between runs is a new problem.
"""

from __future__ import annotations

import json
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec, stable_hash
from widthdepth.tasks.base import Demonstration, Problem, in_gold
from widthdepth.tasks.extract import answer_region, canonical_number, extract_number, normalize_text


def gold_answer(raw: object) -> str:
    text = str(raw)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    text = text.strip()
    number = canonical_number(text)
    return number if number is not None else normalize_text(text)


class JsonlFamily:
    exact_checkable = False
    def __init__(self, path: Path, question_field: str, answer_field: str, shots: int, spec: str) -> None:
        self.path, self.question_field, self.answer_field, self.shots, self.spec = (
            path, question_field, answer_field, shots, spec)
        self.rows = self._load()
        if len(self.rows) <= shots:
            raise WidthdepthError(f"{path}: {len(self.rows)} rows, but shots={shots} leaves no problems")
        self.numeric = all(canonical_number(gold_answer(r[self.answer_field])) is not None for _, r in self.rows)
        self.answer_format = "Answer: <number>" if self.numeric else "Answer: <answer>"

    def _load(self) -> list[tuple[int, dict]]:
        rows = []
        with self.path.open("rb") as handle:
            for lineno, raw in enumerate(handle, 1):
                where = f"{self.path}:{lineno}"
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
                for option, field in (("question", self.question_field), ("answer", self.answer_field)):
                    if field not in row:
                        fields = ", ".join(sorted(row)) or "none"
                        raise WidthdepthError(f"{where}: no field {field!r} (fields: {fields}); "
                                              f"name the {option} field with {option}=FIELD")
                rows.append((lineno, row))
        return rows

    def problems(self, count: int, seed: int) -> list[Problem]:
        # File order, not seeded: the same file gives the same problems in every study.
        out = []
        for index, (lineno, row) in enumerate(self.rows[self.shots:self.shots + count]):
            question, gold = str(row[self.question_field]), gold_answer(row[self.answer_field])
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
        if self.numeric:
            return extract_number(text)
        region = answer_region(text)
        return normalize_text(region) if region else None

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

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


def build(spec: Spec) -> JsonlFamily:
    spec.check_known({"question", "answer", "shots"})
    if len(spec.args) != 1:
        raise spec.error("expected one file path, e.g. jsonl:data/problems.jsonl")
    path = Path(spec.args[0]).expanduser()
    if not path.is_file():
        raise spec.error(f"no such file {str(path)!r}")
    shots = spec.int_param("shots", 0, minimum=0, maximum=16)
    return JsonlFamily(path, spec.params.get("question", "question"), spec.params.get("answer", "answer"),
                       shots, spec.text)
