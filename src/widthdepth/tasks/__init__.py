"""Task families. A new family is one module with ``build(spec)`` plus one line in `FAMILIES`.

    >>> family = load_task("chain:L=2")
    >>> family.problems(1, seed=0)[0].structure["L"]
    2
"""

from __future__ import annotations

import importlib

from widthdepth.errors import WidthdepthError
from widthdepth.specs import parse_spec
from widthdepth.tasks.base import Demonstration, Problem, TaskFamily

FAMILIES: dict[str, tuple[str, str]] = {
    # name: (module, one-line description)
    "chain": ("widthdepth.tasks.chain", "compositional: L dependent add/multiply steps modulo m (chain:L=4,m=10)"),
    "search": ("widthdepth.tasks.search", "many valid answers, exact verifier (search:kind=modeq,p=13 | kind=subset,n=6)"),
    "rule": ("widthdepth.tasks.rule", "few-shot induction: k examples of a hidden rule of L operations mod m (rule:L=2,k=3)"),
    "recall": ("widthdepth.tasks.recall", "a long context of facts, then h hops along them (recall:n=32,h=2)"),
    "mix": ("widthdepth.tasks.mix", "chain and search problems interleaved (mix:L=4,n=8 | mix:L=4,kind=modeq,p=13)"),
    "jsonl": ("widthdepth.tasks.jsonl", "your data: jsonl:PATH,question=FIELD,answer=FIELD,"
                                        "checker=number|text|math|regex:P (GSM8K, MATH-500, AIME fields understood)"),
    "code": ("widthdepth.tasks.code", "programs run against their tests in a sandbox: "
                                      "code:PATH,timeout=S,memory=MB (HumanEval, MBPP layouts understood)"),
    "served": ("widthdepth.tasks.served", "requests answered by `widthdepth serve`, no gold answers (made by the server)"),
}


def load_task(text: str, option: str = "--tasks") -> TaskFamily:
    spec = parse_spec(text, option=option)
    if spec.name not in FAMILIES:
        raise WidthdepthError(f"{option} {text!r}: unknown task family {spec.name!r} "
                              f"(valid: {', '.join(f for f in FAMILIES if f != 'served')})")
    module = importlib.import_module(FAMILIES[spec.name][0])
    return module.build(spec)


__all__ = ["FAMILIES", "Demonstration", "Problem", "TaskFamily", "load_task"]
