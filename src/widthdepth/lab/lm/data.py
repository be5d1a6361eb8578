"""What the built-in LM learns from: the runner's own prompts (chat, rendered as its template does)
followed by written-out reasoning, for every kind of request the text runner sends.

Written solutions (the model's answer format):

    chain     Start: 3
              Step 1: 3+4=7 -> 7
              Step 2: 7*2=14 -> 4
              Answer: 4

    subset    Need 27.
              Take 12, 27-12=15. Take 9, 15-9=6. No.
              Take 20, 27-20=7. Take 7, 7-7=0. Yes.
              Answer: 20, 7

Four kinds of example, in the proportions of `KINDS`:

- attempt: the attempt prompt -> a correct written solution (subset: up to MAX_TRIES tries, each
  subtracting numbers from the target until 0 or a dead end; "Answer: none" when none gets to 0);
- revise: the revise prompt showing a previous attempt -> a correct solution (an answer that
  checks out is kept, as one try);
- verify: the verify prompt -> "Yes" or "No" (is the proposed final answer right?);
- extend: the attempt prompt, a previous attempt and the "\\nWait," cue -> " continuing." and the
  remaining steps (an attempt cut short by its token budget) or " checking." and a correct
  solution (a finished one).

The previous attempts in revise, verify and extend examples are, half the time, the model's own
attempts sampled during training (`pool`), else synthetic ones: correct, with an arithmetic slip
that propagates, or cut short.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from widthdepth.tasks import Problem, load_task
from widthdepth.tasks.prompts import EXTEND_CUE, attempt_prompt, revise_prompt, verify_prompt

KINDS = (("attempt", 0.5), ("revise", 0.15), ("verify", 0.15), ("extend", 0.2))
CHAIN_LENGTHS = (1, 2, 3, 4, 5, 6, 7, 8)
SUBSET_SIZES = (4, 5, 6, 7, 8, 10)
CHAIN_SHARE = 0.55
"""Of the training problems, the share that are chains (the rest subset-sum)."""
MAX_TRIES = 8
"""Tries (lines) a written subset solution makes before it gives up."""
HELD_OUT_SEEDS = (0, 1, 2)
HELD_OUT_COUNT = 256
"""Problems `family.problems(256, seed)` for seeds 0-2 (what the study and the benchmark ask) are
never trained on, for every spec below but chain L=1, whose 180 possible problems are all asked."""


def spec_of(family: str, size: int) -> str:
    return f"chain:L={size}" if family == "chain" else f"search:kind=subset,n={size}"


def render_chat(content: str) -> str:
    """The chat template's rendering of one user message (tokenizer.CHAT_TEMPLATE, generation prompt on)."""
    return f"<s><|user|>\n{content}\n<|assistant|>\n"


def prompt_text(prompt) -> str:  # noqa: ANN001
    return prompt.text if prompt.text is not None else render_chat(prompt.messages[0][1])


# -- written solutions -----------------------------------------------------------------------------------
_APPLY = {"add": ("+", lambda x, c: x + c), "mul": ("*", lambda x, c: x * c), "sub": ("-", lambda x, c: x - c)}


def chain_lines(problem: Problem, slip_at: int | None = None, rng: random.Random | None = None) -> list[str]:
    """Start line, one line per step, no answer line. A slip adds ±1..3 to one step's raw result."""
    x, m = problem.structure["start"], problem.structure["size"]
    lines = [f"Start: {x}"]
    for i, (op, c) in enumerate(problem.structure["steps"], 1):
        sign, apply = _APPLY[op]
        raw = apply(x, c)
        if i == slip_at and rng is not None:
            raw += rng.choice([d for d in (-3, -2, -1, 1, 2, 3) if raw + d >= 0])
        lines.append(f"Step {i}: {x}{sign}{c}={raw} -> {raw % m}")
        x = raw % m
    return lines


def chain_solution(problem: Problem, slip_at: int | None = None, rng: random.Random | None = None) -> str:
    lines = chain_lines(problem, slip_at, rng)
    return "\n".join(lines) + f"\nAnswer: {lines[-1].rsplit(' ', 1)[-1]}"


def _take_line(takes: list[int], target: int, last: int | None = None) -> str:
    """One try: each number taken off what is still needed, "Yes." when nothing is left, else "No."
    (`last` overrides the final remainder: a slip that makes a wrong choice look right)."""
    parts, need = [], target
    for i, x in enumerate(takes, 1):
        left = last if last is not None and i == len(takes) else need - x
        parts.append(f"Take {x}, {need}-{x}={left}.")
        need = left
    return " ".join(parts) + (" Yes." if need == 0 else " No.")


def _answer(numbers: list[int]) -> str:
    """The numbers in the order they were taken (a copy; sorting them is not the model's job)."""
    return f"Answer: {', '.join(map(str, numbers))}"


def subset_try(items: list[int], target: int, first: int, rng: random.Random) -> list[int]:
    """The positions one try takes: `first`, then whatever is still needed when the list has it
    (a lookup), else a random smaller number, then the lookup again; at most three numbers."""
    taken, need = [first], target - items[first]
    while need > 0:
        free = [i for i in range(len(items)) if i not in taken]
        exact = [i for i in free if items[i] == need]
        if exact:
            return taken + exact[:1]
        smaller = [i for i in free if items[i] < need]
        if len(taken) == 2 or not smaller:
            break
        taken.append(rng.choice(smaller))
        need -= items[taken[-1]]
    return taken


def subset_solution(problem: Problem, rng: random.Random) -> str:
    """Search written out as subtractions from the target, one try a line:

        Need 27.
        Take 12, 27-12=15. Take 9, 15-9=6. No.
        Take 20, 27-20=7. Take 7, 7-7=0. Yes.
        Answer: 20, 7

    Each try starts from a number not started from before (random order), takes what is still
    needed when the list has it, else one random smaller number and looks again; "Yes." only at 0.
    After MAX_TRIES tries, or when no start is left: "Answer: none". Comparing with 0 is local and
    looking a number up in the list is a copy, so the model can learn the check; which numbers it
    starts from is where its samples differ (width) and more tries cost more tokens (depth)."""
    items, target = problem.structure["items"], problem.structure["target"]
    starts = [i for i in range(len(items)) if items[i] <= target]
    rng.shuffle(starts)
    lines = [f"Need {target}."]
    for first in starts[:MAX_TRIES]:
        numbers = [items[i] for i in subset_try(items, target, first, rng)]
        lines.append(_take_line(numbers, target))
        if sum(numbers) == target:
            return "\n".join(lines) + "\n" + _answer(numbers)
    return "\n".join(lines) + "\nAnswer: none"


def subset_flawed(problem: Problem, rng: random.Random) -> str:
    """A draft whose last subtraction is wrong and reaches 0: the usual way a subset attempt goes wrong."""
    items, target = problem.structure["items"], problem.structure["target"]
    numbers = [items[i] for i in rng.sample(range(len(items)), rng.choice((2, 3)))]
    last = None if sum(numbers) == target else 0
    return f"Need {target}.\n{_take_line(numbers, target, last)}\n{_answer(numbers)}"


def solution(problem: Problem, rng: random.Random) -> str:
    return chain_solution(problem) if problem.structure["family"] == "chain" else subset_solution(problem, rng)


# -- examples --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    kind: str
    prompt: str
    """The whole model input as text (it starts with the template's own "<s>")."""
    target: str
    """What the model should write; the end-of-text token follows it."""


@dataclass
class Owned:
    """One of the model's own attempts, sampled during training."""

    spec: str
    seed: int
    text: str


class ProblemSource:
    """Random training problems for a spec, never one of the held-out ones."""

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}

    def held_out(self, spec: str) -> set[str]:
        if spec not in self._held:
            family = load_task(spec)
            self._held[spec] = set() if spec == "chain:L=1" else {
                p.question for s in HELD_OUT_SEEDS for p in family.problems(HELD_OUT_COUNT, s)}
        return self._held[spec]

    def problem(self, spec: str, seed: int) -> Problem:
        """The training problem named by (spec, seed): deterministic; held-out questions are skipped."""
        family, held = load_task(spec), self.held_out(spec)
        for attempt in range(100):
            problem = family.problems(1, 1_000_003 + seed * 101 + attempt)[0]
            if problem.question not in held:
                return problem
        raise RuntimeError(f"no training problem for {spec} outside the held-out set")


def random_spec(rng: random.Random) -> str:
    if rng.random() < CHAIN_SHARE:
        return spec_of("chain", rng.choice(CHAIN_LENGTHS))
    return spec_of("subset", rng.choice(SUBSET_SIZES))


def answer_correct(spec: str, problem: Problem, text: str) -> bool:
    family = load_task(spec)
    return family.check(problem, family.parse(text, problem))


def _previous(problem: Problem, rng: random.Random, own: str | None) -> str:
    if own is not None:
        return own
    if problem.structure["family"] == "chain":
        roll = rng.random()
        if roll < 0.4:
            return chain_solution(problem)
        return chain_solution(problem, slip_at=rng.randint(1, len(problem.structure["steps"])), rng=rng)
    return subset_solution(problem, rng) if rng.random() < 0.4 else subset_flawed(problem, rng)


def _revised(problem: Problem, previous: str, rng: random.Random) -> str:
    """A correct solution; for subset an answer that checks out is kept."""
    if problem.structure["family"] == "chain":
        return chain_solution(problem)
    family = load_task(problem.task)
    answer = family.parse(previous, problem)
    if answer is not None and family.check(problem, answer):
        numbers, target = list(map(int, answer.split(","))), problem.structure["target"]
        return f"Need {target}.\n{_take_line(numbers, target)}\n{_answer(numbers)}"
    return subset_solution(problem, rng)


def _cut(text: str, rng: random.Random) -> str:
    """The text cut where a token budget might stop it: after a random number of characters."""
    body = text.rsplit("\nAnswer:", 1)[0]
    return body[:rng.randint(1, max(1, len(body)))]


def _continued(problem: Problem, cut: str, rng: random.Random) -> str:
    """After a cut: the remaining lines, from the first one the cut left unfinished."""
    if problem.structure["family"] == "chain":
        full = chain_solution(problem).split("\n")
        done = min(cut.count("\n"), len(full) - 1)  # whole lines written; the line in progress is redone
        return " continuing.\n" + "\n".join(full[done:])
    return " continuing.\n" + subset_solution(problem, rng)


def example(kind: str, problem: Problem, rng: random.Random, own: str | None = None) -> Example:
    family = load_task(problem.task)
    if kind == "attempt":
        return Example(kind, prompt_text(attempt_prompt(family, problem, "chat")), solution(problem, rng))
    previous = _previous(problem, rng, own)
    if kind == "verify" and family.parse(previous, problem) is not None:  # the verifier asks only with an answer
        answer = family.parse(previous, problem)
        verdict = "Yes" if family.check(problem, answer) else "No"
        return Example(kind, prompt_text(verify_prompt(family, problem, previous, answer, "chat")), verdict)
    if kind in ("revise", "verify"):
        return Example("revise", prompt_text(revise_prompt(family, problem, previous, "chat")),
                       _revised(problem, previous, rng))
    first = prompt_text(attempt_prompt(family, problem, "chat"))
    if rng.random() < 0.5 or "Answer:" not in previous:
        cut = _cut(previous, rng) if "Answer:" in previous else previous
        return Example(kind, first + cut + EXTEND_CUE, _continued(problem, cut, rng))
    return Example(kind, first + previous + EXTEND_CUE, " checking.\n" + _revised(problem, previous, rng))


def random_example(rng: random.Random, source: ProblemSource, pool: list[Owned]) -> Example:
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    if kind != "attempt" and pool and rng.random() < 0.5:
        owned = pool[rng.randrange(len(pool))]
        return example(kind, source.problem(owned.spec, owned.seed), rng, own=owned.text)
    return example(kind, source.problem(random_spec(rng), rng.getrandbits(32)), rng)
