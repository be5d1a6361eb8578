"""Answer extraction from model text, the same rule for every model and task family.

The rule, in order:

1. the last line that contains ``Answer:`` (any case, markdown bold allowed, e.g. ``**Final answer:** 7``);
   the text after the colon is the answer region;
2. otherwise the last ``\\boxed{...}`` (nested braces allowed);
3. otherwise the whole text.

Numbers: inside an ``Answer:`` line or a box the answer is the first number after the last ``=``
(``Answer: 3 + 4 = 7`` gives 7, ``Answer: 7 (mod 10)`` gives 7); in the whole-text fallback it is the
last number. Thousands separators are dropped (``1,234`` -> 1234) and ``5.0`` becomes ``5``.

    >>> extract_number("so x is 4.\\nAnswer: x = 12")
    '12'
    >>> extract_number("The result is \\\\boxed{1,234}.")
    '1234'
    >>> extract_number("first 3 then 9")
    '9'
"""

from __future__ import annotations

import re

_ANSWER_LINE = re.compile(r"answer\s*[*_]*\s*(?:is)?\s*[:：]", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def answer_region(text: str) -> str | None:
    """The text the model marked as its answer, or None when it marked nothing."""
    for line in reversed(text.splitlines()):
        matches = list(_ANSWER_LINE.finditer(line))
        if matches:
            region = line[matches[-1].end():].strip().strip("*_ ").strip()
            if region:
                return region
    boxed = last_boxed(text)
    return boxed


def last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    begin = i
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[begin:i - 1].strip() if depth == 0 else None


def canonical_number(raw: str) -> str | None:
    cleaned = raw.replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def extract_number(text: str) -> str | None:
    """The model's numeric answer as a canonical string, or None."""
    region = answer_region(text)
    if region is not None:
        region = region.rsplit("=", 1)[-1]
        numbers = _NUMBER.findall(region)
        return canonical_number(numbers[0]) if numbers else None
    numbers = _NUMBER.findall(text)
    return canonical_number(numbers[-1]) if numbers else None


def extract_number_list(text: str) -> list[int] | None:
    """Whole numbers the model gave as its answer (an ``Answer:`` line or box, else the last line with numbers)."""
    region = answer_region(text)
    if region is None:
        lines = [line for line in text.splitlines() if re.search(r"\d", line)]
        if not lines:
            return None
        region = lines[-1]
    numbers = re.findall(r"-?\d+", region.replace(",", " "))
    return [int(n) for n in numbers] if numbers else None


def normalize_text(text: str) -> str:
    """Case- and punctuation-insensitive form for comparing free-text answers."""
    return re.sub(r"[^\w]+", " ", text.casefold()).strip()
