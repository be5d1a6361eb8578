"""`self`: LLM self-verification. The model is shown the problem and the solution and asked whether
the final answer is correct; greedy decoding, a few tokens. A solution without an answer yet (a
partial solution in a search) is asked about instead: "Is every step so far correct?", so `self`
scores partial solutions too (a process reward from the model itself).

The score is P(yes) / (P(yes) + P(no)) from the first generated token's top log-probabilities when
the backend reports them (a graded score that ranks candidates), else 1 / 0 / 0.5 from the text.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from widthdepth.attempts import Verification
from widthdepth.backends.base import Backend, Completion, GenerationRequest
from widthdepth.errors import WidthdepthError
from widthdepth.store import now
from widthdepth.tasks.base import TaskFamily
from widthdepth.tasks.prompts import partial_verify_prompt, verify_prompt
from widthdepth.verifiers.base import VerifyItem

MAX_TOKENS = 4
PARTIAL_MODES = ("beam", "dvts", "particles")
"""Attempts of a search: their solution may be unfinished, and is asked about so far."""
TOP_LOGPROBS = 20


def yes_no_score(completion: Completion) -> tuple[float, str]:
    words = completion.text.strip().lstrip("*").lower()
    verdict = "yes" if words.startswith("yes") else "no" if words.startswith("no") else "unclear"
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in completion.first_token_logprobs.items():
        word = token.strip().strip("*").lower()
        label = "yes" if word and "yes".startswith(word) else "no" if word and "no".startswith(word) else None
        if label:
            mass[label] += math.exp(logprob)
    if mass["yes"] + mass["no"] > 0:
        return mass["yes"] / (mass["yes"] + mass["no"]), verdict
    return {"yes": 1.0, "no": 0.0}.get(verdict, 0.5), verdict


class SelfVerifier:
    scores_partial = True

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = f"self:{backend.info.id}"
        self.n_params = backend.info.n_params

    def verify(self, items: Sequence[VerifyItem]) -> Iterator[tuple[int, Verification]]:
        style = self.backend.info.prompt_style
        prompts, requests, positions = [], [], []
        for index, item in enumerate(items):
            answer = item.attempt.final_answer
            if answer is None and (item.attempt.mode not in PARTIAL_MODES or not item.solution.strip()):
                yield index, Verification(item.attempt.key, self.name, None, "no answer", 0, 0, "", "", 0.0, now())
                continue
            prompt = verify_prompt(item.family, item.problem, item.solution, answer, style) if answer is not None \
                else partial_verify_prompt(item.family, item.problem, item.solution, style)
            prompts.append(prompt)
            positions.append(index)
            requests.append(GenerationRequest(
                prompt=prompt.text, messages=prompt.messages, n=1, max_tokens=MAX_TOKENS, temperature=0.0,
                stop=prompt.stop, seed=0, logprobs=TOP_LOGPROBS))
        for sample in self.backend.generate(requests):
            index = positions[sample.request_index]
            completion = sample.completion
            if completion.finish_reason in ("error", "cancelled"):
                continue  # left unverified: a rerun tries again
            score, verdict = yes_no_score(completion)
            yield index, Verification(
                attempt_key=items[index].attempt.key, verifier=self.name, score=score, verdict=verdict,
                prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                prompt=prompts[sample.request_index].identity(), text=completion.text,
                wall_seconds=completion.seconds, created_at=now())


def build(name: str, family: TaskFamily, backend: Backend, option: str, api_key: str | None = None) -> SelfVerifier:
    if backend.info.latent:
        raise WidthdepthError(f"{option} self: {backend.info.id} reads problems, not text; use --verifier latent")
    return SelfVerifier(backend)
