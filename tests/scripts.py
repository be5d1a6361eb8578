"""Scripted model behaviours for analysis tests: they read the chain problem and answer by rule."""

from __future__ import annotations

import re


def chain_gold(text: str) -> int:
    start = int(re.search(r"Start with the number (\d+)", text)[1])
    modulus = int(re.search(r"divided by (\d+)", text)[1])
    x = start
    for op, c in re.findall(r"Step \d+: (add|multiply by|subtract) (\d+)", text):
        x = {"add": x + int(c), "multiply by": x * int(c), "subtract": x - int(c)}[op] % modulus
    return x


def _parts(request) -> tuple[str, bool, int]:  # noqa: ANN001
    text = request.messages[0][1] if request.messages else request.prompt
    return text, "previous attempt" in text, len(re.findall(r"Step \d+:", text.split("A previous attempt")[0]))


def width_then_depth(request, seed: int) -> str:  # noqa: ANN001
    """L=1: a lucky half of first tries is right and revisions break it (width wins).
    L>=2: first tries are always wrong and revisions always fix them (depth wins)."""
    text, revising, steps = _parts(request)
    gold = chain_gold(text)
    if steps == 1:
        right = not revising and seed % 2 == 0
        return f"Answer: {gold if right else gold + 1 + seed % 5}"
    return f"Answer: {gold if revising else gold + 1}"


def gold_or_scatter(request, seed: int) -> str:  # noqa: ANN001
    """Problems whose start is even: always right (the vote settles at once); odd: a digit by seed."""
    text = request.messages[0][1] if request.messages else request.prompt
    gold = chain_gold(text)
    words = " ".join(["w"] * (seed % 7))  # lengths differ by seed, so batch maxima differ
    start = int(text.split("Start with the number ")[1].split()[0].rstrip("."))
    return f"{words} Answer: {gold if start % 2 == 0 else seed % 10}"


def crashing_after(script, calls: int):  # noqa: ANN001, ANN201
    """`script`, but the run dies (KeyboardInterrupt) at sample number `calls` + 1: a crash mid-run."""
    seen = []

    def crashing(request, seed: int) -> str:  # noqa: ANN001
        seen.append(seed)
        if len(seen) > calls:
            raise KeyboardInterrupt
        return script(request, seed)

    return crashing
