"""`openai:` — any OpenAI-compatible server (vLLM, SGLang, llama.cpp's llama-server, Ollama, ...).

    openai:MODEL@URL                       chat endpoint, e.g. openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1
    openai:MODEL@URL,endpoint=completions  raw-text completions (few-shot prompts, extend mode)
    settings: concurrency=16  timeout=120 (seconds per request)  retries=6  n=auto|native|split
              params=7.6e9 (parameter count, for FLOPs)  api_key_env=NAME (where the key is)

Requests go through the official `openai` client (async) from one event-loop thread, at most
`concurrency` at a time. ``n > 1`` (n=auto): sent natively only where the server gives choice i of a
request with seed s exactly the sample a request of its own with seed s + i gets (vLLM's V1 engine
does; three short requests find out, once), so a resumed run that asks for some chains of a request
gets what an uninterrupted run got. Elsewhere — a server that refuses or ignores n, or seeds a request
once for all its choices — the samples are asked for one by one, sample i with seed + i, which is what
``n=split`` does from the start. ``n=native`` sends n without the check: the user vouches for the
server. The number of choices returned is always checked; missing ones are asked for one by one.

Failures: timeouts, connection errors, HTTP 408/409/429/5xx and malformed responses are retried with
exponential backoff and full jitter (``Retry-After`` honoured); a sample that still fails is
reported as a completion with ``finish_reason="error"`` and its reason. The runner stores it as
failed — never scored as a wrong answer, counted apart, retried by the next run of the same
command. Errors that retrying cannot fix (401/403: the key; 404: the model or URL) stop the run with
one line instead. The API key comes from ``--api-key``, ``$WIDTHDEPTH_API_KEY``, ``$OPENAI_API_KEY``
or the variable named by ``api_key_env``; it is never part of the model id, the store or the config.

Token counts come from the response's ``usage``; where it is absent they are estimated locally
(words and punctuation marks), and with native n the completion tokens of the request are divided
among its choices in proportion to those estimates.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample
from widthdepth.errors import WidthdepthError
from widthdepth.retry import (FATAL_STATUS, RETRYABLE_STATUS, RequestFailed, backoff_seconds, check_server_settings,
                              gave_up, retry_after_seconds, setting_number)

_DONE = object()
_PROBE_SEED = 914_227


@dataclass(frozen=True)
class ServerSettings:
    model: str
    base_url: str
    endpoint: str = "chat"
    concurrency: int = 16
    timeout: float = 120.0
    retries: int = 6
    n_mode: str = "auto"
    n_params: int = 0
    api_key_env: str = ""


def estimate_tokens(text: str) -> int:
    """A local token estimate where the server reports no usage: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


class OpenAIBackend:
    concurrent_calls = True
    """`generate` may be called from several threads at once: one event loop, one concurrency limit."""

    def __init__(self, settings: ServerSettings, api_key: str | None = None) -> None:
        import openai  # imported only when this backend is used

        self._openai = openai
        self.settings = settings
        key = (api_key or (os.environ.get(settings.api_key_env) if settings.api_key_env else None)
               or os.environ.get("WIDTHDEPTH_API_KEY") or os.environ.get("OPENAI_API_KEY")
               or "EMPTY")  # local servers accept any key
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="widthdepth-openai", daemon=True)
        self._thread.start()
        self._client = self._call(self._make_client(key))
        self._native_n: bool | None = {"native": True, "split": False}.get(settings.n_mode)  # auto: find out
        self._deciding = asyncio.Lock()
        self._slots: asyncio.Semaphore | None = None
        chat = settings.endpoint == "chat"
        self.info = ModelInfo(
            id=f"openai:{settings.model}" + ("" if chat else ",endpoint=completions"),
            n_params=settings.n_params, prompt_style="chat" if chat else "fewshot",
            shares_prompt_prefix=settings.n_mode == "native", supports_raw_continuation=not chat,
            description=f"{settings.model} at {settings.base_url} ({settings.endpoint} endpoint)")
        self._check_server()

    async def _make_client(self, key: str):  # noqa: ANN202 - the client must be made inside the loop
        return self._openai.AsyncOpenAI(api_key=key, base_url=self.settings.base_url, max_retries=0,
                                        timeout=self.settings.timeout)

    def _call(self, coroutine):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _check_server(self) -> None:
        """One cheap request before any work, so a wrong URL, model or key fails in one line."""
        probe = GenerationRequest(prompt="1", messages=(("user", "1"),), max_tokens=1, temperature=0.0)
        try:
            self._call(self._with_retries(probe, 1, 0, retries=min(self.settings.retries, 3)))
        except RequestFailed as exc:
            raise WidthdepthError(f"--model {self.info.id}@{self.settings.base_url}: {exc.reason}") from None

    # -- generation --------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        results: queue.Queue = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(self._generate_all(requests, results), self._loop)
        try:
            while True:
                item = results.get()
                if item is _DONE:
                    break
                yield item
            future.result()  # a fatal error stops the run here, after what finished was yielded
        finally:
            future.cancel()

    async def _generate_all(self, requests: Sequence[GenerationRequest], results: queue.Queue) -> None:
        if self._slots is None:  # made in the loop; one for the backend, so calls from many threads share the limit
            self._slots = asyncio.Semaphore(self.settings.concurrency)
        slots = self._slots
        tasks = [asyncio.ensure_future(self._generate_one(index, request, slots, results))
                 for index, request in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # after a fatal error: stop the rest
                task.cancel()
            results.put(_DONE)

    async def _generate_one(self, index: int, request: GenerationRequest, slots: asyncio.Semaphore,
                            results: queue.Queue) -> None:
        missing = list(range(request.n))
        if request.n > 1 and self._native_n is None:
            async with self._deciding:
                if self._native_n is None:
                    self._native_n = await self._seeds_choices_like_singles()
        if request.n > 1 and self._native_n:
            async with slots:
                samples = await self._samples(request, request.n, 0)
            for i, completion in enumerate(samples):
                results.put(Sample(index, i, completion))
            missing = missing[len(samples):]  # a server that returned fewer choices: the rest one by one
        singles = [asyncio.ensure_future(self._single(index, request, i, slots, results)) for i in missing]
        try:
            await asyncio.gather(*singles)
        finally:
            for task in singles:  # after a fatal error: stop the rest
                task.cancel()

    async def _seeds_choices_like_singles(self) -> bool:
        """n=auto: may n samples go as one request? Only where the server gives choice i exactly what a
        request of its own with seed + i gives (vLLM's V1 engine seeds its choices so), because then a
        resumed run that asks for some of the chains gets what an uninterrupted run got. Three short
        requests at temperature 1 answer it once per backend: n=2 with seed s, and seeds s and s + 1
        alone. A server that refuses or ignores n, seeds the request once (choices then depend on n),
        or gives two equal choices (nothing can be told) gets one request per sample."""
        probe = GenerationRequest(prompt="Write five random words:", messages=(("user", "Write five random words."),),
                                  max_tokens=12, temperature=1.0, top_p=1.0)
        try:
            together, _ = await self._with_retries(probe, 2, _PROBE_SEED, retries=0)
            alone = [(await self._with_retries(probe, 1, _PROBE_SEED + i, retries=1))[0][0] for i in range(2)]
        except RequestFailed as exc:
            if exc.fatal:
                raise WidthdepthError(f"--model {self.info.id}@{self.settings.base_url}: {exc.reason}") from None
            return False
        texts = [self._text(choice) for choice in together[:2]]
        return len(texts) == 2 and texts[0] != texts[1] and texts == [self._text(choice) for choice in alone]

    def _text(self, choice: object) -> str:
        return (choice.message.content or "") if self.settings.endpoint == "chat" else choice.text

    async def _single(self, index: int, request: GenerationRequest, i: int, slots: asyncio.Semaphore,
                      results: queue.Queue) -> None:
        async with slots:
            samples = await self._samples(request, 1, i)
        results.put(Sample(index, i, samples[0]))

    async def _samples(self, request: GenerationRequest, n: int, offset: int,
                       retries: int | None = None) -> list[Completion]:
        """Samples offset..offset+n-1 of `request` (seed + offset), or n failed completions. A failed
        call yields all n; a call that returns fewer choices yields what it returned (never more)."""
        start = time.perf_counter()
        try:
            choices, usage = await self._with_retries(request, n, request.seed + offset, retries)
            choices = choices[:n]
        except RequestFailed as exc:
            if exc.fatal:
                raise WidthdepthError(f"--model {self.info.id}@{self.settings.base_url}: {exc.reason}") from None
            return [Completion("", 0, 0, "error", seconds=time.perf_counter() - start, error=exc.reason)] * n
        seconds = (time.perf_counter() - start) / max(1, len(choices))
        return self._completions(request, choices, usage, seconds)

    async def _with_retries(self, request: GenerationRequest, n: int, seed: int,
                            retries: int | None = None) -> tuple[list, object]:
        openai = self._openai
        retries = self.settings.retries if retries is None else retries
        reason = ""
        for attempt in range(retries + 1):
            asked = None
            try:
                response = await self._create(request, n, seed)
            except openai.APITimeoutError:
                reason = f"no answer within {self.settings.timeout:g} s"
            except openai.APIConnectionError as exc:
                reason = f"connection failed ({_cause(exc)})"
            except openai.APIStatusError as exc:
                status = exc.status_code
                reason = f"HTTP {status}: {_message(exc)}"
                if status in FATAL_STATUS:
                    raise RequestFailed(f"{FATAL_STATUS[status]} (HTTP {status})", fatal=True) from None
                if status not in RETRYABLE_STATUS:
                    raise RequestFailed(reason) from None
                asked = retry_after_seconds(exc.response.headers)
            except (ValueError, openai.APIResponseValidationError) as exc:  # JSON that does not parse
                reason = f"malformed response ({type(exc).__name__}: {str(exc)[:80]})"
            else:
                try:
                    return self._check_choices(response)
                except (ValueError, TypeError, AttributeError) as exc:
                    reason = f"malformed response ({type(exc).__name__}: {str(exc)[:80]})"
            if attempt < retries:
                await asyncio.sleep(backoff_seconds(attempt, asked))
        raise gave_up(reason, retries + 1)

    async def _create(self, request: GenerationRequest, n: int, seed: int):  # noqa: ANN202
        common = {"model": self.settings.model, "n": n, "max_tokens": request.max_tokens,
                  "temperature": request.temperature, "top_p": request.top_p, "seed": seed}
        if request.stop:
            common["stop"] = list(request.stop)
        if self.settings.endpoint == "chat":
            if request.messages is None:
                raise RequestFailed(f"{self.info.id} is a chat endpoint: raw text prompts need endpoint=completions")
            extra = {"logprobs": True, "top_logprobs": request.logprobs} if request.logprobs else {}
            messages = [{"role": role, "content": content} for role, content in request.messages]
            return await self._client.chat.completions.create(messages=messages, **common, **extra)
        if request.prompt is None:
            raise RequestFailed(f"{self.info.id} is a completions endpoint: chat messages need endpoint=chat")
        extra = {"logprobs": request.logprobs} if request.logprobs else {}
        return await self._client.completions.create(prompt=request.prompt, **common, **extra)

    def _check_choices(self, response: object) -> tuple[list, object]:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"no choices in the response ({type(response).__name__})")
        for choice in choices:
            if self.settings.endpoint == "chat":
                message = getattr(choice, "message", None)
                if message is None or not isinstance(getattr(message, "content", None) or "", str):
                    raise ValueError("a choice without a message")
            elif not isinstance(getattr(choice, "text", None), str):
                raise ValueError("a choice without text")
        return sorted(choices, key=lambda c: getattr(c, "index", 0) or 0), getattr(response, "usage", None)

    def _completions(self, request: GenerationRequest, choices: list, usage: object, seconds: float) -> list[Completion]:
        texts = [self._text(c) for c in choices]
        estimates = [estimate_tokens(t) for t in texts]
        reported = getattr(usage, "completion_tokens", None)
        if isinstance(reported, int) and reported >= 0:
            total = max(1, sum(estimates))
            counts = [round(reported * e / total) for e in estimates] if len(choices) > 1 else [reported]
        else:
            counts = estimates
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        if not isinstance(prompt_tokens, int):
            prompt = request.prompt if request.prompt is not None else " ".join(c for _, c in request.messages or ())
            prompt_tokens = estimate_tokens(prompt)
        out = []
        for choice, text, count in zip(choices, texts, counts):
            finish = "length" if getattr(choice, "finish_reason", None) == "length" else "stop"
            out.append(Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=count,
                                  finish_reason=finish, seconds=seconds,
                                  first_token_logprobs=self._first_logprobs(choice) if request.logprobs else {}))
        return out

    def _first_logprobs(self, choice: object) -> dict[str, float]:
        logprobs = getattr(choice, "logprobs", None)
        if logprobs is None:
            return {}
        if self.settings.endpoint == "chat":
            content = getattr(logprobs, "content", None) or []
            if not content:
                return {}
            return {alt.token: float(alt.logprob) for alt in (content[0].top_logprobs or [])}
        top = getattr(logprobs, "top_logprobs", None) or []
        return {token: float(value) for token, value in (top[0] or {}).items()} if top else {}

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        raise WidthdepthError(f"{self.info.id}: the server applies its own chat template; "
                              "extend mode needs endpoint=completions")

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        text = error.get("message") if isinstance(error, dict) else error
        if text:
            return str(text)[:120]
    return str(getattr(exc, "message", exc))[:120]


def _cause(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ if cause is not None else "closed"


_SETTINGS = {"endpoint", "concurrency", "timeout", "retries", "n", "params", "api_key_env"}


def parse_settings(target: str, params: dict[str, str]) -> ServerSettings:
    spec = f"--model openai:{target}"
    check_server_settings(spec, params, _SETTINGS)
    model, at, url = target.rpartition("@")
    if not at or not model or not re.match(r"https?://[^/]+", url):
        raise WidthdepthError(f"{spec}: expected openai:MODEL@URL, e.g. openai:my-model@http://127.0.0.1:8000/v1")
    endpoint = params.get("endpoint", "chat")
    if endpoint not in ("chat", "completions"):
        raise WidthdepthError(f"{spec}: endpoint={endpoint!r} (valid: chat, completions)")
    n_mode = params.get("n", "auto")
    if n_mode not in ("auto", "native", "split"):
        raise WidthdepthError(f"{spec}: n={n_mode!r} (valid: auto, native, split)")

    return ServerSettings(model=model, base_url=url.rstrip("/"), endpoint=endpoint,
                          concurrency=int(setting_number(spec, params, "concurrency", 16, 1)),
                          timeout=float(setting_number(spec, params, "timeout", 120.0, 0.001)),
                          retries=int(setting_number(spec, params, "retries", 6, 0)), n_mode=n_mode,
                          n_params=int(setting_number(spec, params, "params", 0, 0)),
                          api_key_env=params.get("api_key_env", ""))


def build(target: str, params: dict[str, str], options: object) -> OpenAIBackend:
    settings = parse_settings(target, params)
    share = max(1, settings.concurrency // max(1, getattr(options, "replicas", 1)))  # replicas share the server
    return OpenAIBackend(replace(settings, concurrency=share), api_key=getattr(options, "api_key", None))
