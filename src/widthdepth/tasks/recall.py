"""`recall`: a long context of facts, then a question that follows them — n links "a -> b" of one hidden
chain of n + 1 distinct entities (numbers 0..63), listed in shuffled order, and the question: starting
at x, where do h links lead?

    recall:n=32,h=1          32 facts, a 1-hop question
    recall:n=32,h=4          the same kind of context, 4 hops: every hop must be recalled right

The chain is there so that every h-hop question has one answer; the shuffle so that the answer is
never next to the question. ``h`` is the structure dial (dependent recalls); ``n`` the context's size.
The built-in memory model reads the facts only through its fast weights (`builtin:memory`): the context
is consolidated into them, then the question is answered from them alone.
"""

from __future__ import annotations

import random

from widthdepth.specs import Spec, stable_int
from widthdepth.tasks.base import Demonstration, Problem, in_gold
from widthdepth.tasks.extract import extract_number

ENTITIES = 64


def draw_links(rng: random.Random, links: int) -> tuple[list[int], list[tuple[int, int]]]:
    """A chain of `links` + 1 distinct entities and its links in shuffled order."""
    chain = rng.sample(range(ENTITIES), links + 1)
    facts = [(chain[i], chain[i + 1]) for i in range(links)]
    rng.shuffle(facts)
    return chain, facts


class RecallFamily:
    answer_format = "Answer: <number>"
    exact_checkable = False

    def __init__(self, links: int, hops: int) -> None:
        self.links, self.hops = links, hops
        self.spec = f"recall:n={links},h={hops}"

    def _draw(self, rng: random.Random) -> tuple[list[int], list[tuple[int, int]], int]:
        chain, facts = draw_links(rng, self.links)
        return chain, facts, rng.randrange(self.links - self.hops + 1)

    def _question(self, facts: list[tuple[int, int]], start: int) -> str:
        lines = ["Each fact below says which number comes right after another in a hidden sequence."]
        lines += [f"{a} -> {b}" for a, b in facts]
        lines.append(f"Starting at {start}, follow {self.hops} fact{'s' if self.hops > 1 else ''}. Where do you end?")
        return "\n".join(lines)

    def problems(self, count: int, seed: int) -> list[Problem]:
        out = []
        for index in range(count):
            chain, facts, at = self._draw(random.Random(stable_int(self.spec, seed, index)))
            out.append(Problem(
                key=f"{self.spec}#seed={seed}#{index}", task=self.spec, index=index,
                question=self._question(facts, chain[at]), gold=(str(chain[at + self.hops]),),
                structure={"family": "recall", "L": self.hops, "size": self.links, "difficulty": self.hops,
                           "links": [list(f) for f in facts], "start": chain[at], "hops": self.hops},
            ))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        return extract_number(text)

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        return None  # checking means following the facts again: no cheaper gold-free check

    def demonstrations(self, count: int) -> list[Demonstration]:
        demos = []
        for index in range(count):
            chain, facts, at = self._draw(random.Random(stable_int(self.spec, "demonstration", index)))
            path = chain[at:at + self.hops + 1]
            steps = [f"{a} -> {b}" for a, b in zip(path, path[1:])]
            wrong = (path[-1] + 1) % ENTITIES
            solution = "Following the facts: " + ", ".join(steps) + f".\nAnswer: {path[-1]}"
            flawed = "Following the facts: " + ", ".join(steps[:-1] + [f"{path[-2]} -> {wrong}"]) + f".\nAnswer: {wrong}"
            demos.append(Demonstration(self._question(facts, chain[at]), solution, flawed))
        return demos


def build(spec: Spec) -> RecallFamily:
    spec.check_known({"n", "h"})
    if spec.args:
        raise spec.error(f"unexpected argument {spec.args[0]!r}; use recall:n=32,h=2")
    links = spec.int_param("n", 32, minimum=1, maximum=ENTITIES - 1)
    hops = spec.int_param("h", 1, minimum=1, maximum=links)
    return RecallFamily(links, hops)
