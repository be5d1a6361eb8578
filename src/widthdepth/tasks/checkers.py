"""How a `jsonl:` answer is read and compared: ``checker=number|text|math|regex:PATTERN``.

Every checker turns the gold answer and the model's text into one *canonical* string. Majority
voting and the surface estimators group answers by that string, so the canonical form decides
what votes together (``math``: ``0.5``, ``\\frac12`` and ``50\\%`` are all ``\\frac{1}{2}``).

    >>> NumberChecker().parse("so 1,234.0 in all\\nAnswer: 1234")
    '1234'
    >>> RegexChecker(r"\\(([A-E])\\)").parse("I pick (C) because ...")
    'c'
    >>> TextChecker().gold("  The Nile! ")
    'the nile'

- ``number``: the number after the last ``=`` of the ``Answer:`` line or box, else the text's last
  number; ``1,234`` == ``1234.0``. Gold answers must be numbers.
- ``text``: case, spacing and punctuation ignored.
- ``math`` (`widthdepth.tasks.mathcheck`): LaTeX and expressions compared as mathematics.
- ``regex:PATTERN``: the answer is the last match of PATTERN (its first group, if it has one) in the
  ``Answer:`` line, box, or else the whole text, compared as text; the gold answer is read with the
  same pattern where it matches. PATTERN takes the rest of the spec, commas included, so it comes last:
  ``jsonl:mc.jsonl,checker=regex:\\(([A-E])\\)``.
"""

from __future__ import annotations

import re
from typing import Protocol

from widthdepth.errors import WidthdepthError
from widthdepth.tasks.extract import answer_region, canonical_number, extract_number, normalize_text


class Checker(Protocol):
    name: str
    answer_format: str
    """What the final line should hold, shown to the model."""

    def gold(self, raw: str) -> str:
        """The canonical gold answer; raises ValueError with a reason when `raw` cannot be one."""
        ...

    def parse(self, text: str) -> str | None:
        """The canonical answer in model text, or None."""
        ...

    def equal(self, answer: str, gold: str) -> bool:
        """Is the canonical `answer` the canonical `gold`? (Beyond string equality for ``math``.)"""
        ...


class NumberChecker:
    name, answer_format = "number", "Answer: <number>"

    def gold(self, raw: str) -> str:
        number = canonical_number(raw.strip())
        if number is None:
            raise ValueError(f"gold answer {raw.strip()[:40]!r} is not a number (use checker=text or checker=math)")
        return number

    def parse(self, text: str) -> str | None:
        return extract_number(text)

    def equal(self, answer: str, gold: str) -> bool:
        return answer == gold


class TextChecker:
    name, answer_format = "text", "Answer: <answer>"

    def gold(self, raw: str) -> str:
        return normalize_text(raw)

    def parse(self, text: str) -> str | None:
        region = answer_region(text)
        return normalize_text(region) if region else None

    def equal(self, answer: str, gold: str) -> bool:
        return answer == gold


class RegexChecker:
    name, answer_format = "regex", "Answer: <answer>"

    def __init__(self, pattern: str) -> None:
        try:
            self.pattern = re.compile(pattern)
        except re.error as exc:
            raise WidthdepthError(f"checker=regex:{pattern}: not a regular expression ({exc})") from None

    def _match(self, text: str) -> str | None:
        matches = list(self.pattern.finditer(text))
        if not matches:
            return None
        last = matches[-1]
        found = last.group(1) if self.pattern.groups else last.group(0)
        return normalize_text(found) if found is not None else None

    def gold(self, raw: str) -> str:
        return self._match(raw) or normalize_text(raw)

    def parse(self, text: str) -> str | None:
        region = answer_region(text)
        return (self._match(region) if region else None) or self._match(text)

    def equal(self, answer: str, gold: str) -> bool:
        return answer == gold


CHECKERS = ("number", "text", "math", "regex:PATTERN")


def make_checker(name: str) -> Checker:
    if name == "number":
        return NumberChecker()
    if name == "text":
        return TextChecker()
    if name == "math":
        from widthdepth.tasks.mathcheck import MathChecker  # math-verify and sympy load only when asked for
        return MathChecker()
    if name.startswith("regex:") and len(name) > len("regex:"):
        return RegexChecker(name[len("regex:"):])
    raise WidthdepthError(f"checker={name!r}: unknown checker (valid: {', '.join(CHECKERS)})")
