"""An OpenAI request body, checked and read: what to answer, with which plan, under which limits.

The plan of a request, first that applies:

1. ``"widthdepth": {"plan": "grid:4x2"}`` in the body (the openai client's ``extra_body``);
2. ``"widthdepth": {"budget": 2e7}``: the server's policy (``--policy``) at that budget;
3. a plan before the model name, as optillm does: ``"model": "grid:4x2/smollm2"``;
4. the server's default (``--plan``, or ``--policy POLICY.json@BUDGET``).

Every problem is a `RequestError` (an HTTP status and an OpenAI-style error body), raised before the
request is admitted, so a bad request costs nothing and the server keeps serving.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from widthdepth.errors import WidthdepthError
from widthdepth.plans import load_plan
from widthdepth.specs import parse_spec, stable_hash

ROLES = ("system", "developer", "user", "assistant")
UNSUPPORTED = ("tools", "functions", "tool_choice", "response_format", "logprobs", "top_logprobs", "logit_bias")


@lru_cache(maxsize=256)
def plan_of(spec: str):  # noqa: ANN201 - GridPlan | AdaptivePlan | a method's plan
    """A plan by its spec, loaded once (an adaptive plan reads its policy file): every request that names
    it shares the object. Plans are frozen; a bad spec raises every time (errors are not cached)."""
    return load_plan(spec)


class RequestError(Exception):
    """A request the server will not run: the HTTP status and what the client is told."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Limits:
    """What the server allows one request, and its defaults for what a request leaves out."""

    plan: str = "parallel:1"
    policy: str | None = None
    """The policy file a ``budget`` is spent by (``--policy``), if any."""
    max_n: int = 8
    max_attempts: int = 64
    """Attempts one request may ask for (its plan's attempts x n)."""
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95


@dataclass(frozen=True)
class ServedRequest:
    endpoint: str
    """"chat" or "completions"."""
    model: str
    """The model name as the client wrote it (echoed in the response)."""
    plan: str
    messages: tuple[tuple[str, str], ...] | None
    prompt: str | None
    n: int
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None
    stream: bool
    include_usage: bool

    @property
    def problem_key(self) -> str:
        """The request's problem: with a client seed, its content and seed (the same request again reads its
        stored attempts back); without one, fresh."""
        content = (self.messages, self.prompt, self.stop)
        salt = self.seed if self.seed is not None else uuid.uuid4().hex
        return f"served#{stable_hash(content, salt)[:20]}"


def parse_request(body: object, endpoint: str, limits: Limits) -> ServedRequest:
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    for name in UNSUPPORTED:
        if body.get(name) not in (None, False, [], {}):
            raise RequestError(400, f"{name!r} is not supported by widthdepth serve", param=name)
    messages, prompt = (_messages(body), None) if endpoint == "chat" else (None, _prompt(body))
    model = body.get("model")
    if not isinstance(model, str):
        raise RequestError(400, "'model' must be a string (see GET /v1/models)", param="model")
    n = _integer(body, "n", 1, 1, limits.max_n, f"this server allows at most {limits.max_n} (--max-n)")
    plan = _plan(body, model, limits)
    attempts = plan_of(plan).attempts_per_problem * n
    if attempts > limits.max_attempts:
        raise RequestError(400, f"plan {plan!r} x n={n} asks for {attempts} attempts; this server allows "
                                f"{limits.max_attempts} per request (--max-attempts)", param="widthdepth.plan")
    tokens_field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    options = body.get("stream_options") or {}
    return ServedRequest(
        endpoint=endpoint, model=model, plan=plan, messages=messages, prompt=prompt, n=n,
        max_tokens=_integer(body, tokens_field, limits.max_tokens, 1, 32_768),
        temperature=_number(body, "temperature", limits.temperature, 0.0, 5.0),
        top_p=_number(body, "top_p", limits.top_p, 1e-9, 1.0), stop=_stop(body),
        seed=_integer(body, "seed", None, 0, 2**31 - 1), stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")))


def _plan(body: dict, model: str, limits: Limits) -> str:
    extra = body.get("widthdepth") or {}
    if not isinstance(extra, dict):
        raise RequestError(400, "'widthdepth' must be an object: {\"plan\": \"grid:4x2\"} or {\"budget\": 2e7}",
                           param="widthdepth")
    if "plan" in extra and "budget" in extra:
        raise RequestError(400, "give widthdepth.plan or widthdepth.budget, not both", param="widthdepth")
    if "budget" in extra:
        budget = extra["budget"]
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0:
            raise RequestError(400, f"widthdepth.budget {budget!r} must be a positive number", param="widthdepth.budget")
        if limits.policy is None:
            raise RequestError(400, "this server has no policy to spend a budget by; start it with --policy "
                                    "POLICY.json@BUDGET, or ask for a plan", param="widthdepth.budget")
        return _checked(f"adaptive:{limits.policy}@{budget:g}", "widthdepth.budget")
    if "plan" in extra:
        if not isinstance(extra["plan"], str):
            raise RequestError(400, "widthdepth.plan must be a plan spec such as 'grid:4x2'", param="widthdepth.plan")
        return _checked(extra["plan"], "widthdepth.plan")
    prefix = _model_prefix(model)
    return _checked(prefix, "model") if prefix is not None else limits.plan


def _model_prefix(model: str) -> str | None:
    """The plan written before the model name (``grid:4x2/smollm2``); None for a plain model name. A
    plan's own path may hold slashes, so the first cut that makes a known plan wins."""
    from widthdepth.plans import PLANS

    if parse_spec(model).name not in PLANS or ":" not in model:
        return None
    cuts = [i for i, c in enumerate(model) if c == "/"] + [len(model)]
    for cut in cuts:
        try:
            load_plan(model[:cut])
        except WidthdepthError:
            continue
        return model[:cut]
    return model.split("/", 1)[0]  # no cut parses: _checked says why the shortest one does not


def _checked(spec: str, param: str) -> str:
    try:
        return load_plan(spec, option=param).spec
    except WidthdepthError as exc:
        raise RequestError(400, str(exc), param=param, code="unknown_plan") from None


def _messages(body: dict) -> tuple[tuple[str, str], ...]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content}", param="messages")
    out = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(400, f"messages[{i}]: a role of {', '.join(ROLES)} and a content are needed",
                               param=f"messages[{i}]")
        out.append(("system" if message["role"] == "developer" else message["role"], _text(message.get("content"), i)))
    return tuple(out)


def _text(content: object, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise RequestError(400, f"messages[{i}].content: text only (a string or text parts)", param=f"messages[{i}].content")


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise RequestError(400, "'prompt' must be one string", param="prompt")
    return prompt


def _stop(body: dict) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise RequestError(400, "'stop' must be a string or a list of up to 4 strings", param="stop")
    return tuple(stops)


def _integer(body: dict, name: str, default: int | None, low: int, high: int, why: str = "") -> Any:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(400, f"{name!r} must be a whole number from {low} to {high}, got {value!r}"
                                + (f"; {why}" if why else ""), param=name)
    return value


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(400, f"{name!r} must be a number from {low:g} to {high:g}, got {value!r}", param=name)
    return float(value)
