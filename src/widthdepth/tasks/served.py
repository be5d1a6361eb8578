"""`served`: the requests `widthdepth serve` answers, one problem each, with no gold answer.

A served problem is the request as the application wrote it: a conversation (chat completions) or
a raw prompt (completions). Round 1 sends it unchanged — the application's own system message and
instructions, nothing added; a revision round adds the previous answer as the assistant's turn and
asks to check and correct it. Answers are compared for voting the way every family compares them:
what the model marked as its answer (``Answer:`` or a box), else the last number, else the whole
text with case, spacing and punctuation ignored.

Served problems have no gold answer, so `check` knows nothing (``None``): a serve folder has costs,
agreement and verifier scores, and no accuracy.

    family = load_task("served")
    problem = family.request(messages=(("user", "What is 6 x 7?"),), prompt=None, key="served#ab12")
    prompt = attempt_prompt(family, problem, "chat")       # the conversation as it came
"""

from __future__ import annotations

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec
from widthdepth.tasks.base import Demonstration, Problem
from widthdepth.tasks.extract import answer_region, extract_number, normalize_text

REVISE_ASK = ("Check the answer above step by step. If it contains a mistake, correct it. "
              "Then give the complete corrected answer.")
_VOTE_CHARS = 200
"""Free-text answers compared for voting are cut to this many characters."""


class ServedFamily:
    spec = "served"
    answer_format = "Answer: <answer>"
    exact_checkable = False

    def problems(self, count: int, seed: int) -> list[Problem]:
        raise WidthdepthError("--tasks served: served problems are the requests `widthdepth serve` answers; "
                              "they are not generated (choose another task family)")

    def request(self, messages: tuple[tuple[str, str], ...] | None, prompt: str | None, key: str,
                stop: tuple[str, ...] = ()) -> Problem:
        """The problem of one request: its conversation, or its raw prompt, and its stop strings."""
        if messages is not None:
            question = next((content for role, content in reversed(messages) if role == "user"), messages[-1][1])
            shape = {"messages": [list(m) for m in messages]}
        else:
            question, shape = prompt or "", {"prompt": prompt or ""}
        return Problem(key=key, task=self.spec, index=0, question=question, gold=(),
                       structure={"family": "served", "L": None, "size": None, "difficulty": None, **shape,
                                  **({"stop": list(stop)} if stop else {})})

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        number = extract_number(text)
        if number is not None:
            return number
        return normalize_text(answer_region(text) or text)[:_VOTE_CHARS] or None

    def check(self, problem: Problem, answer: str | None) -> bool | None:
        return None  # no gold answer: served traffic has no accuracy

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        return None

    def demonstrations(self, count: int) -> list[Demonstration]:
        return []


def is_served(problem: Problem) -> bool:
    return problem.structure.get("family") == "served"


def conversation(problem: Problem) -> tuple[tuple[str, str], ...] | None:
    """A served problem's messages (None for a raw prompt)."""
    messages = problem.structure.get("messages")
    return tuple((role, content) for role, content in messages) if messages is not None else None


def build(spec: Spec) -> ServedFamily:
    spec.check_known(set())
    if spec.args:
        raise spec.error("takes no arguments: served problems come from requests to `widthdepth serve`")
    return ServedFamily()
