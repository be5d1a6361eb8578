"""`mix`: compositional and search problems interleaved in one task (even indices chain, odd search).

    mix                       chain:L=4 with search:kind=subset,n=8
    mix:L=6,n=10
    mix:L=4,kind=modeq,p=13   the search half as modular equations (for LLMs)

A mixed task is where no single allocation is best for every problem: the case for per-problem
(adaptive) allocation. Each problem keeps its own family's structure, answer format and checks.
"""

from __future__ import annotations

from widthdepth.specs import Spec
from widthdepth.tasks import chain, search
from widthdepth.tasks.base import Demonstration, Problem, in_gold


class MixFamily:
    answer_format = "Answer: <a number, or numbers separated by commas>"
    exact_checkable = False  # only the search half has a gold-free check

    def __init__(self, chain_family: chain.ChainFamily, search_family: search.ModEqFamily | search.SubsetFamily) -> None:
        self.parts = (chain_family, search_family)
        length, tail = chain_family.spec.split(":", 1)[1], search_family.spec.split(":", 1)[1]
        self.spec = f"mix:{length},{tail}"

    def _part(self, problem: Problem):  # noqa: ANN202
        return self.parts[0] if problem.structure.get("family") == "chain" else self.parts[1]

    def problems(self, count: int, seed: int) -> list[Problem]:
        halves = [part.problems((count + 1 - i) // 2, seed) for i, part in enumerate(self.parts)]
        out = []
        for index in range(count):
            inner = halves[index % 2][index // 2]
            out.append(Problem(key=f"{self.spec}#seed={seed}#{index}", task=self.spec, index=index,
                               question=inner.question, gold=inner.gold, structure=inner.structure))
        return out

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        return (self._part(problem) if problem is not None else self.parts[0]).parse(text)

    def check(self, problem: Problem, answer: str | None) -> bool:
        return in_gold(problem, answer)

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        return self._part(problem).verify(problem, answer)

    def demonstrations(self, count: int) -> list[Demonstration]:
        first, second = (part.demonstrations((count + 1) // 2) for part in self.parts)
        return [d for pair in zip(first, second) for d in pair][:count]


def build(spec: Spec) -> MixFamily:
    spec.check_known({"L", "m", "ops", "kind", "n", "p"})
    if spec.args:
        raise spec.error(f"unexpected argument {spec.args[0]!r}; use mix:L=4,n=8")
    chain_params = {k: v for k, v in spec.params.items() if k in ("L", "m", "ops")}
    search_params = {"kind": spec.params.get("kind", "subset"),
                     **{k: v for k, v in spec.params.items() if k in ("n", "p")}}
    if search_params["kind"] == "subset":
        search_params.setdefault("n", "8")
    chain_params.setdefault("L", "4")

    def sub(name: str, params: dict[str, str]) -> Spec:
        # a part's errors name the user's own spec (mix:L=100), not the part's (chain:L=100)
        return Spec(name=name, params=dict(params), text=spec.text, option=spec.option)

    return MixFamily(chain.build(sub("chain", chain_params)), search.build(sub("search", search_params)))
