"""How problems become prompts, for instruct models (``chat``) and base models (``fewshot``).

Four kinds of prompt, each for both styles:

- attempt: solve the problem;
- revise: show the problem and the previous round's attempt, ask for a check and an improved answer;
- extend: continue the previous attempt after a "Wait," cue (budget forcing; raw text only);
- verify: ask whether a proposed solution is correct (LLM self-verification).

Few-shot prompts use worked examples made by the task family (never the problem itself). A served
problem (`widthdepth serve`) is the application's own conversation or prompt: it is sent as it came,
and revised with the previous answer as the assistant's turn (`served_prompt`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from widthdepth.tasks.base import Problem, TaskFamily
from widthdepth.tasks.served import REVISE_ASK, conversation, is_served

SHOTS = 2
EXTEND_CUE = "\nWait,"
_FEWSHOT_STOP = ("\nQuestion:", "\n\n\n")
_MAX_SHOWN_CHARS = 2000  # a runaway previous attempt must not blow the context


@dataclass(frozen=True)
class Prompt:
    """Either chat messages (instruct models) or raw text (base models, continuations)."""

    messages: tuple[tuple[str, str], ...] | None = None
    text: str | None = None
    stop: tuple[str, ...] = ()

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages or ()]

    def identity(self) -> str:
        """The exact model input, as one string, for keys and the store."""
        if self.messages is not None:
            return json.dumps(self.as_messages(), ensure_ascii=False)
        return self.text or ""


def _final_ask(family: TaskFamily) -> str:
    """How the answer is to be written: a family's own `final_instruction` (code: a code block), else
    the ``Answer:`` line."""
    own = getattr(family, "final_instruction", None)
    return own or f"Then write the final answer on its own line as '{family.answer_format}'."


def _instruction(family: TaskFamily) -> str:
    own = getattr(family, "final_instruction", None)
    if own:
        return f"Think step by step. {own}"
    return f"Think step by step, then write the final answer on its own line as '{family.answer_format}'."


def _stop(family: TaskFamily) -> tuple[str, ...]:
    """Few-shot stops; programs hold blank lines, so a family may stop only at the next question."""
    return getattr(family, "fewshot_stop", _FEWSHOT_STOP)


def _shown(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_SHOWN_CHARS else "..." + text[-_MAX_SHOWN_CHARS:]


def served_prompt(problem: Problem, previous: str | None = None, ask: str = REVISE_ASK) -> Prompt:
    """A served problem as it came (`previous` None), or with the previous answer and `ask` after it:
    as the assistant's turn and the user's next one in a conversation, as text after a raw prompt."""
    stop = tuple(problem.structure.get("stop") or ())
    messages = conversation(problem)
    if previous is None:
        return Prompt(messages=messages, stop=stop) if messages is not None else \
            Prompt(text=problem.structure["prompt"], stop=stop)
    if messages is not None:
        return Prompt(messages=messages + (("assistant", _shown(previous)), ("user", ask)), stop=stop)
    return Prompt(text=f"{problem.structure['prompt']}{_shown(previous)}\n\n{ask}\n", stop=stop)


def attempt_prompt(family: TaskFamily, problem: Problem, style: str) -> Prompt:
    if is_served(problem):
        return served_prompt(problem)
    if style == "chat":
        return Prompt(messages=(("user", f"{problem.question}\n\n{_instruction(family)}"),))
    parts = [f"Solve each problem. {_instruction(family)}\n"]
    parts += [f"Question: {d.question}\nSolution: {d.solution}\n" for d in family.demonstrations(SHOTS)]
    parts.append(f"Question: {problem.question}\nSolution:")
    return Prompt(text="\n".join(parts), stop=_stop(family))


def _checked_demonstrations(family: TaskFamily) -> list[str]:
    """Worked revisions for few-shot revise prompts: every other one starts from a flawed draft."""
    out = []
    for i, d in enumerate(family.demonstrations(SHOTS)):
        draft = d.flawed_solution if i % 2 == 0 and d.flawed_solution else d.solution
        out.append(f"Question: {d.question}\nPrevious attempt: {draft}\nChecked solution: {d.solution}\n")
    return out


def revise_prompt(family: TaskFamily, problem: Problem, previous: str, style: str) -> Prompt:
    if is_served(problem):
        return served_prompt(problem, previous)
    ask = ("Check the previous attempt step by step. If it contains a mistake, correct it. "
           f"{_final_ask(family)}")
    if style == "chat":
        content = f"{problem.question}\n\nA previous attempt:\n---\n{_shown(previous)}\n---\n\n{ask}"
        return Prompt(messages=(("user", content),))
    parts = [f"Each question comes with a previous attempt. {ask}\n"]
    parts += _checked_demonstrations(family)
    parts.append(f"Question: {problem.question}\nPrevious attempt: {_shown(previous)}\nChecked solution:")
    return Prompt(text="\n".join(parts), stop=_stop(family))


def _judged_demonstrations(family: TaskFamily) -> list[tuple[str, str, str]]:
    """Worked examples for a judge: (question, solution, "Yes" | "No"), every other one flawed where the
    family has a flawed solution to show."""
    return [(d.question, *((d.flawed_solution, "No") if i % 2 == 0 and d.flawed_solution else (d.solution, "Yes")))
            for i, d in enumerate(family.demonstrations(SHOTS))]


def partial_verify_prompt(family: TaskFamily, problem: Problem, partial: str, style: str) -> Prompt:
    """Ask whether an unfinished solution is right so far (self-verification as a process reward)."""
    ask = "Is every step so far correct? Reply with Yes or No."
    if style == "chat":
        content = f"Problem:\n{problem.question}\n\nAn unfinished solution:\n{_shown(partial)}\n\n{ask}"
        return Prompt(messages=(("user", content),))
    parts = ["Decide whether each unfinished solution is correct so far.\n"]
    for question, shown, verdict in _judged_demonstrations(family):
        lines = shown.splitlines()
        parts.append(f"Question: {question}\nUnfinished solution: {chr(10).join(lines[:max(1, len(lines) - 1)])}\n"
                     f"Correct so far: {verdict}\n")
    parts.append(f"Question: {problem.question}\nUnfinished solution: {_shown(partial)}\nCorrect so far:")
    return Prompt(text="\n".join(parts), stop=("\n",))


def refine_prompt(family: TaskFamily, problem: Problem, previous: str, others: list[str | None], style: str) -> Prompt:
    """Revise with the other chains' answers in view (aggregation across chains, mixture-of-agents style)."""
    said = ", ".join(a if a is not None else "no answer" for a in others) or "none"
    ask = ("Other attempts answered: " + said + ". Check the previous attempt step by step, with those answers "
           "in mind. If it contains a mistake, correct it. "
           f"{_final_ask(family)}")
    if is_served(problem):
        return served_prompt(problem, previous, f"Other attempts answered: {said}. {REVISE_ASK}")
    if style == "chat":
        content = f"{problem.question}\n\nA previous attempt:\n---\n{_shown(previous)}\n---\n\n{ask}"
        return Prompt(messages=(("user", content),))
    parts = ["Each question comes with a previous attempt and the answers of other attempts. Check the previous "
             "attempt, correct it if needed, and write the final answer.\n"]
    parts += _checked_demonstrations(family)
    parts.append(f"Question: {problem.question}\nPrevious attempt: {_shown(previous)}\nOther attempts answered: "
                 f"{said}\nChecked solution:")
    return Prompt(text="\n".join(parts), stop=_stop(family))


def extend_prompt(first_round_text: str, chain_texts: list[str]) -> Prompt:
    """Round d of an extend chain: the round-1 raw prompt, every earlier round's text, then the cue."""
    return Prompt(text=first_round_text + "".join(chain_texts) + EXTEND_CUE)


def verify_prompt(family: TaskFamily, problem: Problem, solution: str, answer: str, style: str) -> Prompt:
    ask = f"Is the final answer {answer} correct? Reply with Yes or No."
    if style == "chat":
        content = f"Problem:\n{problem.question}\n\nProposed solution:\n{_shown(solution)}\n\n{ask}"
        return Prompt(messages=(("user", content),))
    parts = ["Decide whether each proposed solution is correct.\n"]
    for question, shown, verdict in _judged_demonstrations(family):
        parts.append(f"Question: {question}\nProposed solution: {shown}\nCorrect: {verdict}\n")
    parts.append(f"Question: {problem.question}\nProposed solution: {_shown(solution)}\nCorrect:")
    return Prompt(text="\n".join(parts), stop=("\n",))
