"""`chain`: compositional arithmetic, where every step needs the previous result.

A start value and L operations (add or multiply by a constant, modulo m). ``L`` is the structure
dial: ``chain:L=1`` is an independent short problem, ``chain:L=8`` a long dependent chain.

    chain:L=4            4 operations modulo 10
    chain:L=6,m=7,ops=add+mul+sub
"""

from __future__ import annotations

import random
import re

from widthdepth.specs import Spec, stable_int
from widthdepth.tasks.base import Demonstration, Problem, in_gold
from widthdepth.tasks.extract import extract_number

OPERATIONS = {
    "add": ("add {c}", "{x} + {c} = {raw}", lambda x, c: x + c),
    "mul": ("multiply by {c}", "{x} * {c} = {raw}", lambda x, c: x * c),
    "sub": ("subtract {c}", "{x} - {c} = {raw}", lambda x, c: x - c),
}


_STEP_LINE = re.compile(r"^\s*Step\s+(\d+)\s*:(.*)$", re.MULTILINE)
_NUMBER = re.compile(r"-?\d+")


class ChainFamily:
    answer_format = "Answer: <number>"
    exact_checkable = False

    def __init__(self, length: int, modulus: int, ops: tuple[str, ...]) -> None:
        self.length, self.modulus, self.ops = length, modulus, ops
        self.spec = f"chain:L={length},m={modulus}" + ("" if ops == ("add", "mul") else f",ops={'+'.join(ops)}")

    def _steps(self, rng: random.Random) -> tuple[int, list[tuple[str, int]]]:
        start = rng.randrange(self.modulus)
        return start, [(rng.choice(self.ops), rng.randint(1, 9)) for _ in range(self.length)]

    def _question(self, start: int, steps: list[tuple[str, int]]) -> str:
        lines = [
            f"Start with the number {start}. Apply the operations below in order. After every operation, "
            f"replace the number by its remainder when divided by {self.modulus}.",
        ]
        lines += [f"Step {i}: {OPERATIONS[op][0].format(c=c)}" for i, (op, c) in enumerate(steps, 1)]
        lines.append("What is the final number?")
        return "\n".join(lines)

    def _solution(self, start: int, steps: list[tuple[str, int]], slip_at: int | None = None) -> tuple[str, int]:
        x, lines = start, [f"Start: {start}"]
        for i, (op, c) in enumerate(steps, 1):
            raw = OPERATIONS[op][2](x, c)
            if i == slip_at:
                raw += 1  # the flawed draft's arithmetic slip
            value = raw % self.modulus
            lines.append(f"Step {i}: {OPERATIONS[op][1].format(x=x, c=c, raw=raw)}, mod {self.modulus} gives {value}")
            x = value
        lines.append(f"Answer: {x}")
        return "\n".join(lines), x

    def problems(self, count: int, seed: int) -> list[Problem]:
        out = []
        for index in range(count):
            rng = random.Random(stable_int(self.spec, seed, index))
            start, steps = self._steps(rng)
            _, gold = self._solution(start, steps)
            out.append(Problem(
                key=f"{self.spec}#seed={seed}#{index}", task=self.spec, index=index,
                question=self._question(start, steps), gold=(str(gold),),
                structure={"family": "chain", "L": self.length, "size": self.modulus,
                           "difficulty": self.length, "steps": [[op, c] for op, c in steps], "start": start},
            ))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        return extract_number(text)

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        return None  # checking a chain means redoing it: there is no cheaper gold-free check

    def step_values(self, problem: Problem) -> list[int]:
        """The true value after each step."""
        x, values = problem.structure["start"], []
        for op, c in problem.structure["steps"]:
            x = OPERATIONS[op][2](x, c) % self.modulus
            values.append(x)
        return values

    def score_steps(self, problem: Problem, text: str) -> tuple[int, int] | None:
        """An exact process reward for a written (possibly unfinished) solution: how many of its
        ``Step i:`` lines end in the true value after step i, of how many it wrote; None when it wrote
        none. Needs the problem's own steps, so it is an oracle of this synthetic task, free of cost."""
        values, right, written = self.step_values(problem), 0, 0
        for match in _STEP_LINE.finditer(text):
            index, numbers = int(match.group(1)), _NUMBER.findall(match.group(2))
            written += 1
            right += bool(numbers) and 1 <= index <= len(values) and int(numbers[-1]) == values[index - 1]
        return (right, written) if written else None

    def demonstrations(self, count: int) -> list[Demonstration]:
        demos = []
        for index in range(count):
            rng = random.Random(stable_int(self.spec, "demonstration", index))
            start, steps = self._steps(rng)
            solution, _ = self._solution(start, steps)
            flawed, _ = self._solution(start, steps, slip_at=rng.randint(1, len(steps)))
            demos.append(Demonstration(self._question(start, steps), solution, flawed))
        return demos


def build(spec: Spec) -> ChainFamily:
    spec.check_known({"L", "m", "ops"})
    if spec.args:
        raise spec.error(f"unexpected argument {spec.args[0]!r}; use chain:L=4,m=10")
    length = spec.int_param("L", 4, minimum=1, maximum=64)
    modulus = spec.int_param("m", 10, minimum=2, maximum=10_000)
    ops = tuple(spec.params.get("ops", "add+mul").split("+"))
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise spec.error(f"unknown operation {unknown[0]!r} in ops (valid: {', '.join(OPERATIONS)}; join with '+')")
    return ChainFamily(length, modulus, ops)
