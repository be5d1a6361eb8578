"""`mock:` — a scripted test double for unit tests. Never a default, never in the demo.

Replies are a deterministic function of (prompt, seed), so resume and caching can be tested
exactly, and every request is logged in ``calls`` for assertions.

    mock:                 "Answer: <digit from a hash of prompt and seed>"
    mock:answer=7         always "Answer: 7"
    mock:fail=0.25        a quarter of samples (chosen by seed) fail with finish_reason "error"
    MockBackend(script=lambda request, seed: "Answer: 3")   from Python
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample
from widthdepth.errors import WidthdepthError
from widthdepth.specs import stable_int

Script = Callable[[GenerationRequest, int], str]


class MockBackend:
    def __init__(self, script: Script | None = None, fail: float = 0.0, n_params: int = 1_000_000,
                 prompt_style: str = "chat", model_id: str = "mock:") -> None:
        self.script = script or _hash_digit
        self.fail = fail
        self.calls: list[GenerationRequest] = []
        self.info = ModelInfo(id=model_id, n_params=n_params, prompt_style=prompt_style,
                              shares_prompt_prefix=True, supports_raw_continuation=True,
                              context_length=100_000, description="scripted test double")

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        return "".join(f"<{role}>{content}\n" for role, content in messages) + "<assistant>"

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        for index, request in enumerate(requests):
            self.calls.append(request)
            prompt = request.prompt if request.prompt is not None else self.render_chat(request.messages or ())
            for i in range(request.n):
                seed = request.seed + i
                start = time.perf_counter()
                if stable_int("fail", prompt, seed) % 10_000 < self.fail * 10_000:
                    completion = Completion("", len(prompt.split()), 0, "error", error="scripted failure")
                else:
                    words = self.script(request, seed).split(" ")
                    text = " ".join(words[:request.max_tokens])
                    completion = Completion(
                        text=text, prompt_tokens=len(prompt.split()), completion_tokens=len(text.split()),
                        finish_reason="length" if len(words) > request.max_tokens else "stop",
                        seconds=time.perf_counter() - start,
                        first_token_logprobs=({"Yes": -0.1, "No": -2.4} if request.logprobs else {}),
                    )
                yield Sample(index, i, completion)

    def close(self) -> None:
        pass


def _hash_digit(request: GenerationRequest, seed: int) -> str:
    prompt = request.prompt if request.prompt is not None else str(request.messages)
    return f"Let me think step by step.\nAnswer: {stable_int(prompt, seed) % 10}"


def build(target: str, params: dict[str, str], options: object) -> MockBackend:
    unknown = sorted(set(params) - {"answer", "fail", "style"})
    if unknown or target:
        raise WidthdepthError(f"--model mock: unknown setting {(unknown or [target])[0]!r} (valid: answer=, fail=, style=)")
    try:
        fail = float(params.get("fail", 0.0))
    except ValueError:
        raise WidthdepthError(f"--model mock: fail={params['fail']!r} is not a number between 0 and 1") from None
    script = None
    if "answer" in params:
        fixed = params["answer"]
        script = lambda request, seed: f"Answer: {fixed}"  # noqa: E731
    style = params.get("style", "chat")
    suffix = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return MockBackend(script=script, fail=fail, prompt_style=style, model_id=f"mock:{suffix}")
