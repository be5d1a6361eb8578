"""`search`: many candidate answers, possibly several valid ones, and a cheap exact verifier.

Two kinds; ``size`` is the structure dial (a larger search space):

    search                       kind=modeq: find x in 0..p-1 with (x*x + a*x) mod p = y, p=13
    search:kind=modeq,p=29
    search:kind=subset,n=6       choose numbers from a list of n that add up to a target

One-shot success is modest (a blind guess at modeq hits about 2 in p), so coverage from independent
tries matters, and every candidate can be checked without knowing the gold answer (`verify`).
"""

from __future__ import annotations

import itertools
import random

from widthdepth.specs import Spec, stable_int
from widthdepth.tasks.base import Demonstration, Problem, in_gold
from widthdepth.tasks.extract import extract_number, extract_number_list

_PRIMES = [p for p in range(5, 200) if all(p % q for q in range(2, int(p**0.5) + 1))]


class ModEqFamily:
    answer_format = "Answer: <number>"
    exact_checkable = True

    def __init__(self, p: int) -> None:
        self.p = p
        self.spec = f"search:kind=modeq,p={p}"

    def _instance(self, rng: random.Random) -> tuple[int, int]:
        a = rng.randrange(1, self.p)
        y = (lambda x: (x * x + a * x) % self.p)(rng.randrange(self.p))  # y has at least one solution
        return a, y

    def _f(self, a: int, x: int) -> int:
        return (x * x + a * x) % self.p

    def _question(self, a: int, y: int) -> str:
        return (f"Find a whole number x between 0 and {self.p - 1} such that (x*x + {a}*x) mod {self.p} = {y}. "
                f"Several values of x may work; give one of them.")

    def problems(self, count: int, seed: int) -> list[Problem]:
        out = []
        for index in range(count):
            a, y = self._instance(random.Random(stable_int(self.spec, seed, index)))
            solutions = tuple(str(x) for x in range(self.p) if self._f(a, x) == y)
            out.append(Problem(
                key=f"{self.spec}#seed={seed}#{index}", task=self.spec, index=index,
                question=self._question(a, y), gold=solutions,
                structure={"family": "search", "kind": "modeq", "L": 1, "size": self.p,
                           "difficulty": round(self.p / len(solutions), 3), "a": a, "y": y,
                           "solutions": len(solutions)},
            ))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        return extract_number(text)

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        if answer is None or not answer.lstrip("-").isdigit() or not 0 <= int(answer) < self.p:
            return False
        return self._f(problem.structure["a"], int(answer)) == problem.structure["y"]

    def demonstrations(self, count: int) -> list[Demonstration]:
        demos = []
        for index in range(count):
            rng = random.Random(stable_int(self.spec, "demonstration", index))
            a, y = self._instance(rng)
            tries = rng.sample(range(self.p), self.p)
            lines, wrong = [], None
            for x in tries:
                value = self._f(a, x)
                lines.append(f"Try x = {x}: {x}*{x} + {a}*{x} = {x * x + a * x}, mod {self.p} gives {value}.")
                if value == y:
                    lines.append(f"This matches {y}.\nAnswer: {x}")
                    break
                wrong = x
            flawed = None
            if wrong is not None:
                flawed = (f"Try x = {wrong}: {wrong}*{wrong} + {a}*{wrong} = {wrong * wrong + a * wrong}, "
                          f"mod {self.p} gives {y}.\nThis matches {y}.\nAnswer: {wrong}")
            demos.append(Demonstration(self._question(a, y), "\n".join(lines), flawed))
        return demos


class SubsetFamily:
    answer_format = "Answer: <numbers separated by commas>"
    exact_checkable = True

    def __init__(self, n: int) -> None:
        self.n = n
        self.spec = f"search:kind=subset,n={n}"

    def _instance(self, rng: random.Random) -> tuple[list[int], int]:
        items = [rng.randint(1, 20) for _ in range(self.n)]
        chosen = rng.sample(items, rng.randint(2, max(2, min(3, self.n))))
        return items, sum(chosen)

    def _question(self, items: list[int], target: int) -> str:
        return (f"Choose some of the numbers {', '.join(map(str, items))} (each at most once) so that they add up "
                f"to {target}. Several choices may work; give one of them as a list of numbers.")

    def _valid(self, items: list[int], target: int, chosen: list[int]) -> bool:
        pool = list(items)
        for x in chosen:
            if x not in pool:
                return False
            pool.remove(x)
        return bool(chosen) and sum(chosen) == target

    def problems(self, count: int, seed: int) -> list[Problem]:
        out = []
        for index in range(count):
            items, target = self._instance(random.Random(stable_int(self.spec, seed, index)))
            gold = sorted({",".join(map(str, sorted(c))) for r in range(1, self.n + 1)
                           for c in itertools.combinations(items, r) if sum(c) == target})
            out.append(Problem(
                key=f"{self.spec}#seed={seed}#{index}", task=self.spec, index=index,
                question=self._question(items, target), gold=tuple(gold),
                structure={"family": "search", "kind": "subset", "L": 1, "size": self.n,
                           "difficulty": round(2**self.n / len(gold), 3), "items": items, "target": target,
                           "solutions": len(gold)},
            ))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        numbers = extract_number_list(text)
        return ",".join(map(str, sorted(numbers))) if numbers else None

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        if not answer:
            return False
        chosen = [int(x) for x in answer.split(",")]
        return self._valid(problem.structure["items"], problem.structure["target"], chosen)

    def demonstrations(self, count: int) -> list[Demonstration]:
        demos = []
        for index in range(count):
            rng = random.Random(stable_int(self.spec, "demonstration", index))
            items, target = self._instance(rng)
            best = next(c for r in range(1, self.n + 1) for c in itertools.combinations(items, r) if sum(c) == target)
            sums = " + ".join(map(str, best))
            solution = f"{sums} = {target}, and each number is in the list.\nAnswer: {', '.join(map(str, best))}"
            wrong = list(best[:-1]) + [best[-1] + 1]
            flawed = f"{' + '.join(map(str, wrong))} = {target}.\nAnswer: {', '.join(map(str, wrong))}"
            demos.append(Demonstration(self._question(items, target), solution, flawed))
        return demos


def build(spec: Spec) -> ModEqFamily | SubsetFamily:
    spec.check_known({"kind", "p", "n"})
    if spec.args:
        raise spec.error(f"unexpected argument {spec.args[0]!r}; use search:kind=modeq,p=13")
    kind = spec.params.get("kind", "modeq")
    if kind == "modeq":
        if "n" in spec.params:
            raise spec.error("n= belongs to kind=subset; modeq takes p=")
        p = spec.int_param("p", 13, minimum=5, maximum=199)
        if p not in _PRIMES:
            raise spec.error(f"p={p} is not prime (try {min(_PRIMES, key=lambda q: abs(q - p))})")
        return ModEqFamily(p)
    if kind == "subset":
        if "p" in spec.params:
            raise spec.error("p= belongs to kind=modeq; subset takes n=")
        return SubsetFamily(spec.int_param("n", 6, minimum=2, maximum=14))
    raise spec.error(f"unknown kind {kind!r} (valid: modeq, subset)")
