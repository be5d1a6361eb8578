"""Problems and the task-family protocol.

A task family turns a spec such as ``chain:L=4`` into deterministic problems. Each problem carries
its question, gold answer(s), ``structure`` metadata, and the family checks answers for it.

To add a family: write one module with a factory ``build(spec: Spec) -> TaskFamily`` and add one line
to ``FAMILIES`` in ``widthdepth/tasks/__init__.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Problem:
    """One question of a task family."""

    key: str
    """Unique and stable: task spec, seed and index, e.g. ``chain:L=4#seed=0#3``."""
    task: str
    index: int
    question: str
    gold: tuple[str, ...]
    """Accepted answers in canonical form (several for problems with many valid answers)."""
    structure: dict[str, Any] = field(default_factory=dict)
    """``family``, ``L`` (dependent steps), ``size``, ``difficulty`` and family-specific facts."""

    def to_row(self) -> dict[str, Any]:
        return {
            "key": self.key, "task": self.task, "idx": self.index, "question": self.question,
            "gold": json.dumps(list(self.gold)), "structure": json.dumps(self.structure, sort_keys=True),
        }


def in_gold(problem: Problem, answer: str | None) -> bool:
    """The usual check: the canonical answer is one of the problem's accepted answers."""
    return answer is not None and answer in problem.gold


@dataclass(frozen=True)
class Demonstration:
    """A worked example for few-shot prompts: a correct solution and, where the family can make one,
    a flawed draft (used to show base models what a revision looks like)."""

    question: str
    solution: str
    flawed_solution: str | None = None


class TaskFamily(Protocol):
    spec: str
    """Canonical spec text, e.g. ``chain:L=4,m=10``."""
    answer_format: str
    """What the final line should hold, shown to the model: ``Answer: <number>``."""
    exact_checkable: bool
    """True when `verify` can check an answer without the gold answer (a cheap exact verifier)."""

    def problems(self, count: int, seed: int) -> list[Problem]: ...

    def parse(self, text: str, problem: Problem | None = None) -> str | None:
        """The canonical answer in model text, or None when there is none (`problem` is for families
        whose answer form differs by problem, such as mix)."""
        ...

    def check(self, problem: Problem, answer: str | None) -> bool | None:
        """Is `answer` (canonical) correct for `problem`? Uses the gold answer; None where the problem
        has none (served traffic)."""
        ...

    def verify(self, problem: Problem, answer: str | None) -> bool | None:
        """A gold-free exact check where the family has one (search), else None."""
        ...

    def demonstrations(self, count: int) -> list[Demonstration]: ...
