"""The its-hub side of `bench_peers.py`, run by the Python of its-hub's own venv (never imported by
widthdepth): SelfConsistency, BestOfN and ParticleFiltering on the given prompts, against the given
OpenAI-compatible server, each problem's chosen response written out with its wall time.

    VENV/bin/python its_hub_side.py SPEC.json OUT.jsonl

SPEC: {"url", "model", "budget", "max_tokens", "temperature", "max_steps", "algorithms": [names],
       "problems": [{"key", "prompt", "values"}]}, where values are the chain's true value after each
step: the reward models below are widthdepth's exact step checker, written against its-hub's own
reward-model interfaces (share of "Step i:" lines ending in the true value; an outcome reward scores
the whole solution, a process reward the steps so far).
"""

from __future__ import annotations

import json
import re
import sys
import time

from its_hub import BestOfN, SelfConsistency
from its_hub.api import AbstractOutcomeRewardModel, AbstractProcessRewardModel
from its_hub.core.algorithms.particle_gibbs import ParticleFiltering
from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel
from its_hub.core.lms.step_generation import StepGeneration

STEP = re.compile(r"Step (\d+):([^\n]*)")


def step_share(values: list[int], text: str) -> float:
    written = right = 0
    for index, rest in STEP.findall(text):
        numbers = re.findall(r"\d+", rest)
        written += 1
        i = int(index)
        right += bool(numbers) and 1 <= i <= len(values) and int(numbers[-1]) == values[i - 1]
    return right / written if written else 0.5


def answer_of(text: str) -> str:
    found = re.findall(r"Answer:\s*(-?\d+)", text)
    return found[-1] if found else text.strip()[-8:]


class StepChecker(AbstractOutcomeRewardModel, AbstractProcessRewardModel):
    def __init__(self, values: list[int]) -> None:
        self.values = values

    def _text(self, item) -> str:  # noqa: ANN001 - a conversation or a response string
        if isinstance(item, str):
            return item
        last = item[-1]
        return last.content if hasattr(last, "content") else last["content"]

    def score(self, messages, steps=None, **kwargs):  # noqa: ANN001, ANN201
        if steps is not None:  # process reward: (prompt, [partial responses])
            return [step_share(self.values, s) for s in steps]
        if messages and isinstance(messages[0], list):  # a batch of conversations
            return [step_share(self.values, self._text(m)) for m in messages]
        return step_share(self.values, self._text(messages))

    async def ascore(self, messages, steps=None, **kwargs):  # noqa: ANN001, ANN201
        return self.score(messages, steps, **kwargs)


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    lm = OpenAICompatibleLanguageModel(endpoint=spec["url"], api_key="none", model_name=spec["model"],
                                       max_completion_tokens=spec["max_tokens"], temperature=spec["temperature"])
    with open(sys.argv[2], "w") as out:
        for problem in spec["problems"]:
            checker = StepChecker(problem["values"])
            algorithms = {
                "self_consistency": lambda: SelfConsistency(answer_of),
                "best_of_n": lambda: BestOfN(checker),
                "particle_filtering": lambda: ParticleFiltering(StepGeneration(
                    max_steps=spec["max_steps"], step_token="\n", temperature=spec["temperature"]), checker),
            }
            for name in spec["algorithms"]:
                algorithm = algorithms[name]()
                start = time.perf_counter()
                try:
                    response = algorithm.infer(lm, problem["prompt"], spec["budget"])
                    text, error = response["content"] if isinstance(response, dict) else str(response), None
                except Exception as exc:  # noqa: BLE001 - reported per problem, the run goes on
                    text, error = "", f"{type(exc).__name__}: {str(exc)[:200]}"
                out.write(json.dumps({"key": problem["key"], "algorithm": name, "text": text, "error": error,
                                      "seconds": time.perf_counter() - start}) + "\n")
                out.flush()


if __name__ == "__main__":
    main()
