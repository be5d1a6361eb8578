"""`rule`: few-shot induction of a hidden rule — k input/output examples of an unknown sequence of L
operations (add or multiply by a constant, modulo m), then a new input whose output is asked for.

    rule:L=2,k=3            a rule of 2 operations modulo 10, shown on 3 examples
    rule:L=4,k=2,m=7,ops=add+mul+sub

Nothing is computed step by step from the question: the rule has to be inferred from the examples,
which may fit several rules. The question states the prior (L operations, which kinds, constants 1 to
9), and each problem carries the Bayes-optimal answer under it and the posterior probability of the
gold, computed exactly (integer counts of operation sequences, propagated through the L operations as
a distribution over functions) — so the share of problems with `bayes == gold` is the best any reader
who knows the prior can do on these problems: the ceiling the README's tables quote.
"""

from __future__ import annotations

import random
from functools import lru_cache

from widthdepth.specs import Spec, stable_int
from widthdepth.tasks.base import Demonstration, Problem, in_gold
from widthdepth.tasks.chain import OPERATIONS
from widthdepth.tasks.extract import extract_number

MAX_MODULUS = 16
"""The prior over functions is a table over m^m possible maps, kept small by composition (affine maps
stay affine); larger m would also leave the built-in thought model's vocabulary."""


def apply_rule(steps: list[tuple[str, int]], x: int, modulus: int) -> int:
    for op, c in steps:
        x = OPERATIONS[op][2](x, c) % modulus
    return x


def draw_rule(rng: random.Random, length: int, shots: int, modulus: int, ops: tuple[str, ...] = ("add", "mul")
              ) -> tuple[list[tuple[str, int]], list[tuple[int, int]], int]:
    """A rule of `length` operations, `shots` examples of it on distinct inputs, and a query input unlike
    theirs: as `rule:` problems are drawn (the built-in thought model trains on the same draws)."""
    steps = [(rng.choice(ops), rng.randint(1, 9)) for _ in range(length)]
    inputs = rng.sample(range(modulus), shots + 1)
    return steps, [(x, apply_rule(steps, x, modulus)) for x in inputs[:-1]], inputs[-1]


@lru_cache(maxsize=64)
def function_prior(length: int, modulus: int, ops: tuple[str, ...]) -> dict[tuple[int, ...], int]:
    """Each function of 0..m-1 (its table of outputs) with the number of operation sequences that compute
    it, of the (9 |ops|)^L that `problems` draws from uniformly (integers: ties stay exact)."""
    prior = {tuple(range(modulus)): 1}
    moves = [(op, c) for op in ops for c in range(1, 10)]
    for _ in range(length):
        after: dict[tuple[int, ...], int] = {}
        for table, count in prior.items():
            for op, c in moves:
                image = tuple(OPERATIONS[op][2](y, c) % modulus for y in table)
                after[image] = after.get(image, 0) + count
        prior = after
    return prior


def posterior_answers(prior: dict[tuple[int, ...], int], examples: list[tuple[int, int]],
                      query: int) -> dict[int, int]:
    """How many of the sequences that fit the examples give each output at `query` (the posterior,
    unnormalised and exact)."""
    mass: dict[int, int] = {}
    for table, count in prior.items():
        if all(table[x] == y for x, y in examples):
            mass[table[query]] = mass.get(table[query], 0) + count
    return mass


class RuleFamily:
    answer_format = "Answer: <number>"
    exact_checkable = False

    def __init__(self, length: int, shots: int, modulus: int, ops: tuple[str, ...]) -> None:
        self.length, self.shots, self.modulus, self.ops = length, shots, modulus, ops
        self.spec = f"rule:L={length},k={shots},m={modulus}" + ("" if ops == ("add", "mul") else f",ops={'+'.join(ops)}")

    def _draw(self, rng: random.Random) -> tuple[list[tuple[str, int]], list[tuple[int, int]], int]:
        return draw_rule(rng, self.length, self.shots, self.modulus, self.ops)

    def _question(self, examples: list[tuple[int, int]], query: int) -> str:
        kinds = " or ".join({"add": "adding", "mul": "multiplying by", "sub": "subtracting"}[op] for op in self.ops)
        lines = [f"A hidden rule turns a number into another number: {self.length} operation"
                 f"{'s' if self.length > 1 else ''} in a row, each {kinds} a constant from 1 to 9, each result "
                 f"replaced by its remainder when divided by {self.modulus}. Examples of the rule:"]
        lines += [f"{x} -> {y}" for x, y in examples]
        lines.append(f"What does the rule give for {query}?")
        return "\n".join(lines)

    def problems(self, count: int, seed: int) -> list[Problem]:
        prior = function_prior(self.length, self.modulus, self.ops)
        out = []
        for index in range(count):
            steps, examples, query = self._draw(random.Random(stable_int(self.spec, seed, index)))
            gold = apply_rule(steps, query, self.modulus)
            posterior = posterior_answers(prior, examples, query)
            bayes = max(sorted(posterior), key=lambda y: posterior[y])  # ties (exact): the smallest output
            share = posterior[gold] / sum(posterior.values())
            out.append(Problem(
                key=f"{self.spec}#seed={seed}#{index}", task=self.spec, index=index,
                question=self._question(examples, query), gold=(str(gold),),
                structure={"family": "rule", "L": self.length, "size": self.modulus, "k": self.shots,
                           "difficulty": round(1 - share, 4), "ops": list(self.ops), "examples": [list(e) for e in examples],
                           "query": query, "steps": [[op, c] for op, c in steps], "bayes": str(bayes),
                           "posterior": round(share, 6)},
            ))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        return extract_number(text)

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        return None  # the examples may fit several rules: no answer can be checked without the gold

    def demonstrations(self, count: int) -> list[Demonstration]:
        demos = []
        for index in range(count):
            rng = random.Random(stable_int(self.spec, "demonstration", index))
            steps, examples, query = self._draw(rng)
            demos.append(Demonstration(self._question(examples, query), self._solution(steps, examples, query),
                                       self._solution(steps, examples, query, slip=True)))
        return demos

    def _solution(self, steps: list[tuple[str, int]], examples: list[tuple[int, int]], query: int,
                  slip: bool = False) -> str:
        rule = ", then ".join(OPERATIONS[op][0].format(c=c) for op, c in steps)
        lines = [f"A rule that fits: {rule} (mod {self.modulus})."]
        lines += [f"Check: {x} gives {y}." for x, y in examples]
        answer = (apply_rule(steps, query, self.modulus) + (1 if slip else 0)) % self.modulus  # the draft's slip
        lines += [f"So {query} gives {answer}.", f"Answer: {answer}"]
        return "\n".join(lines)


def build(spec: Spec) -> RuleFamily:
    spec.check_known({"L", "k", "m", "ops"})
    if spec.args:
        raise spec.error(f"unexpected argument {spec.args[0]!r}; use rule:L=2,k=3,m=10")
    length = spec.int_param("L", 2, minimum=1, maximum=16)
    modulus = spec.int_param("m", 10, minimum=2, maximum=MAX_MODULUS)
    shots = spec.int_param("k", 3, minimum=1, maximum=modulus - 1)
    ops = tuple(spec.params.get("ops", "add+mul").split("+"))
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise spec.error(f"unknown operation {unknown[0]!r} in ops (valid: {', '.join(OPERATIONS)}; join with '+')")
    return RuleFamily(length, shots, modulus, ops)
