"""``checker=math``: answers compared as mathematics, with HuggingFace's math-verify (LaTeX and plain
expressions parsed to sympy, ``\\boxed{}`` found, equivalence checked with its own timeouts).

    >>> checker = MathChecker()
    >>> checker.parse("so the probability is\\nAnswer: $0.5$") == checker.gold("\\\\frac{1}{2}")
    True
    >>> checker.equal(checker.parse("Answer: $(x+1)^2$"), checker.gold("x^2 + 2x + 1"))
    True

The canonical form (what majority voting groups by) is the LaTeX of a normalised sympy value:
decimals become exact fractions (``0.5`` -> ``\\frac{1}{2}``; a percentage stays one, ``50\\%``),
numbers are simplified (``\\sqrt{12}`` -> ``2 \\sqrt{3}``, ``1/\\sqrt2`` -> ``\\frac{\\sqrt{2}}{2}``),
expressions with variables are put over one denominator with expanded polynomials (``(x+1)^2`` ->
``x^{2} + 2 x + 1``), set elements sorted, and ``x = 5`` or ``f(x) = 2x`` become their right-hand
side. A value with a power above 1000 or a power tower is kept as parsed (normalising it would build
millions of digits) and equals only itself. An answer of words only (``yes``, ``\\text{Paris}``) is
compared as text. Equal canonical strings are equal answers; different ones are still compared by
math-verify (``equal``), decimals as decimals, so a rounded ``0.333333`` and ``\\frac13`` vote apart
but are judged equal, as math-verify judges them (to 6 decimal places). A gold answer math-verify
cannot read (``(B)``, ``yes``) is compared as text. Timeouts (math-verify's, by SIGALRM) apply in
the main thread; elsewhere a check runs without one.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import math_verify
import sympy
from sympy.core.function import AppliedUndef

from widthdepth.tasks.extract import answer_region, last_boxed, normalize_text

_SECONDS = 5


def _timeout() -> int | None:
    return _SECONDS if threading.current_thread() is threading.main_thread() else None


_BIGGEST_POWER = 1000
"""Normalising is skipped for a value with an integer power beyond this, or a power tower: simplify and
cancel would build a number or polynomial of millions of digits or terms, in C, past any timeout."""


def _small(value) -> bool:
    """Safe to simplify (and to hand to math-verify's comparison)."""
    if not isinstance(value, sympy.Basic):
        return True
    for power in value.atoms(sympy.Pow):
        exponent = power.exp
        if exponent.is_Number:
            if abs(exponent) > _BIGGEST_POWER:
                return False
        elif not exponent.free_symbols and (exponent.atoms(sympy.Pow) or any(
                abs(n) > _BIGGEST_POWER for n in exponent.atoms(sympy.Integer))):
            return False  # a tower such as 9^{9^{9}}, or an exponent that is a big number unevaluated
    return True


def _normal(value):
    if not _small(value):
        return value
    if isinstance(value, sympy.Eq) and (isinstance(value.lhs, sympy.Symbol) or value.lhs.atoms(AppliedUndef)):
        value = value.rhs  # "x = 5" and "f^{-1}(x) = ..." answer with their right-hand side
    if isinstance(value, sympy.FiniteSet):
        return sympy.FiniteSet(*(_normal(v) for v in value))
    if isinstance(value, sympy.Tuple):
        return sympy.Tuple(*(_normal(v) for v in value))
    if isinstance(value, sympy.Expr):
        value = value.xreplace({f: sympy.Rational(str(f)) for f in value.atoms(sympy.Float)})
        value = sympy.cancel(value) if value.free_symbols else sympy.simplify(value)
    return value


@lru_cache(maxsize=8192)
def _parsed(latex: str) -> tuple:
    try:
        return tuple(math_verify.parse(latex, parsing_timeout=_timeout()))
    except Exception:  # math-verify raises on some malformed input despite raise_on_error=False
        return ()


@lru_cache(maxsize=8192)
def canonical(region: str) -> str | None:
    """The canonical LaTeX of the first value math-verify reads in `region`, or None. A percentage stays
    one (``50\\%``): math-verify equates 50% with both 50 and 1/2, so it must not vote as either."""
    parsed = _parsed(region)
    if not parsed:
        return None
    value = parsed[0]
    if isinstance(value, str):
        return normalize_text(value) or None
    percent = "%" in region and isinstance(value, sympy.Expr)
    try:
        return sympy.latex(_normal(value * 100 if percent else value)) + ("\\%" if percent else "")
    except Exception:  # simplification failed: the value as parsed
        return sympy.latex(value)


def _decimals(parsed: tuple) -> list:
    """Parsed values with fractions over a power of ten (decimals, as the canonical form wrote them) as
    floats again, so math-verify compares them with its own rounding (``0.333333`` equals ``\\frac13``)."""
    out = []
    for value in parsed:
        if isinstance(value, sympy.Rational) and not isinstance(value, sympy.Integer) and _power_of_ten(value.q):
            value = sympy.Float(value, 30)
        out.append(value)
    return out


def _power_of_ten(n: int) -> bool:
    while n % 10 == 0:
        n //= 10
    return n == 1


def _words(region: str) -> str | None:
    """The words of an answer that is only words (``yes``, ``\\text{Paris}``), else None: math-verify
    would read ``yes`` as the product y·e·s."""
    core = re.sub(r"\\(?:text|textbf|mathrm)\{([^{}]*)\}", r"\1", region).strip(" $.")
    return normalize_text(core) if re.fullmatch(r"[A-Za-z]{2,}(?:[ '-][A-Za-z]+)*", core) else None


def _delimited(region: str) -> str:
    """A bare answer region (``\\frac{14}{3}``, ``0.5``) as LaTeX math, so math-verify reads it whole."""
    return region if "$" in region or "\\(" in region or "\\[" in region else f"${region}$"


class MathChecker:
    name, answer_format = "math", "Answer: <answer>"

    def gold(self, raw: str) -> str:
        region = last_boxed(raw) or raw.strip()  # a MATH solution field: the boxed answer
        return _words(region) or canonical(_delimited(region)) or normalize_text(region)

    def parse(self, text: str) -> str | None:
        region = answer_region(text)
        if region is not None:
            return _words(region) or canonical(_delimited(region)) or normalize_text(region) or None
        return canonical(text)

    def equal(self, answer: str, gold: str) -> bool:
        if answer == gold:
            return True
        if _words(answer) or _words(gold):
            return False  # words are compared as text: as math, "no" would equal "on"
        gold_value, answer_value = _parsed(_delimited(gold)), _parsed(_delimited(answer))
        if not gold_value or not answer_value or not all(_small(v) for v in gold_value + answer_value):
            return False
        try:
            return bool(math_verify.verify(_decimals(gold_value), _decimals(answer_value), timeout_seconds=_timeout()))
        except Exception:
            return False
