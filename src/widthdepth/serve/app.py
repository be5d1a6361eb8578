"""The HTTP face of `widthdepth serve`: OpenAI's routes on FastAPI, in front of the engine.

    POST /v1/chat/completions   POST /v1/completions   GET /v1/models   GET /health

Errors have OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``): 400 for a request the
server will not run, 401 without the right bearer token (compared in constant time; the key is never
logged), 429 with ``Retry-After`` when every worker is busy and the queue is full, 502 when the model
gave no answer at all. A streamed request (``stream: true``) gets server-sent events: comments while
its plan runs (so a client that went away is noticed), then the chosen answer's text, the finish
reason, the usage where asked (``stream_options.include_usage``), and ``[DONE]``. A client that goes
away before its answer cancels the request's unfinished work (`shared.py`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from widthdepth.serve.engine import Busy, Engine, Job, Served
from widthdepth.serve.requests import RequestError, ServedRequest, parse_request
from widthdepth.serve.shared import Cancelled

log = logging.getLogger("widthdepth.serve")
HEARTBEAT = 1.0
"""Seconds between the comments a stream sends while its plan runs."""
POLL = 0.25
"""Seconds between looks at whether a waiting client is still there."""


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


def create_app(engine: Engine, api_key: str | None, model_name: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(engine.close)  # after the server stopped taking requests and drained them

    app = FastAPI(title="widthdepth serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    @app.exception_handler(404)
    async def not_found(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(RequestError(404, f"no route {request.method} {request.url.path} (see /v1/models, "
                                              "/v1/chat/completions, /v1/completions, /health)").body(), 404)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": engine.info.id, **engine.load}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _authorize(request, api_key)
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": int(time.time()),
                                            "owned_by": "widthdepth", "widthdepth": {"model": engine.info.id,
                                                                                     "plan": engine.settings.limits.plan}}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await _answer(request, "chat", engine, api_key, model_name)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await _answer(request, "completions", engine, api_key, model_name)

    return app


def _authorize(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not hmac.compare_digest(token.encode(), api_key.encode()):
        raise RequestError(401, "a valid API key is needed: Authorization: Bearer KEY", code="invalid_api_key")


async def _answer(request: Request, endpoint: str, engine: Engine, api_key: str | None, model_name: str) -> Response:
    """A completion: checked and admitted (or refused), then awaited — or streamed."""
    _authorize(request, api_key)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc})") from None
    served = parse_request(body, endpoint, engine.settings.limits)
    engine.check(served)
    try:
        job = engine.submit(served)
    except Busy as busy:
        error = RequestError(429, str(busy), code="rate_limit_exceeded", kind="rate_limit_error")
        return JSONResponse(error.body(), status_code=429, headers={"Retry-After": str(busy.retry_after)})
    if served.stream:
        return StreamingResponse(_events(job, served), media_type="text/event-stream")
    try:
        result = await _wait(job, request)
    except ClientGone:
        return Response(status_code=499)  # nobody reads it
    return JSONResponse(_body(served, result, model_name))


async def _wait(job: Job, request: Request) -> Served:
    """The job's result; cancels the job and raises ClientGone if the client goes away first."""
    future = asyncio.wrap_future(job.future)
    while True:
        done, _ = await asyncio.wait({future}, timeout=POLL)
        if done:
            return _result(job, future.result)
        if await request.is_disconnected():
            job.ticket.cancel()
            _log(job, "cancelled: the client went away")
            raise ClientGone


def _result(job: Job, result: Any) -> Served:
    try:
        served = result()
    except Cancelled:
        raise ClientGone from None
    except Exception as exc:  # noqa: BLE001 - the model or the store failed: the client is told, the server goes on
        _log(job, f"failed: {exc}")
        raise RequestError(500, f"the request failed: {exc}", kind="server_error") from None
    if any(c.attempt_key is None for c in served.choices):
        _log(job, "no answer: every attempt failed")
        raise RequestError(502, "the model gave no answer: every attempt of the plan failed (see the server's store)",
                           kind="server_error")
    _log(job, f"{served.usage['widthdepth']['attempts']} attempts, {served.usage['total_tokens']} tokens, "
              f"{served.seconds:.2f} s")
    return served


async def _events(job: Job, served: ServedRequest) -> AsyncIterator[str]:
    future = asyncio.wrap_future(job.future)
    try:
        while not future.done():
            yield ": running\n\n"
            await asyncio.wait({future}, timeout=HEARTBEAT)
        try:
            result = _result(job, future.result)
        except RequestError as error:
            yield f"data: {json.dumps(error.body())}\n\n"
            return
        for chunk in _chunks(served, result, job):
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        if not future.done():  # the stream was cut: the client went away
            job.ticket.cancel()
            _log(job, "cancelled: the client went away")


def _chunks(served: ServedRequest, result: Served, job: Job) -> list[dict[str, Any]]:
    chat = served.endpoint == "chat"
    head = {"id": _id(served), "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()), "model": served.model}
    out = []
    for i, choice in enumerate(result.choices):
        text = {"delta": {"role": "assistant", "content": choice.text}} if chat else {"text": choice.text, "logprobs": None}
        out.append({**head, "choices": [{"index": i, **text, "finish_reason": None}]})
        done = {"delta": {}} if chat else {"text": "", "logprobs": None}
        out.append({**head, "choices": [{"index": i, **done, "finish_reason": choice.finish_reason}]})
    if served.include_usage:
        out.append({**head, "choices": [], "usage": result.usage})
    return out


def _body(served: ServedRequest, result: Served, model_name: str) -> dict[str, Any]:
    chat = served.endpoint == "chat"
    choices = [{"index": i, "finish_reason": c.finish_reason,
                **({"message": {"role": "assistant", "content": c.text}} if chat else {"text": c.text, "logprobs": None})}
               for i, c in enumerate(result.choices)]
    return {"id": _id(served), "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": served.model, "choices": choices, "usage": result.usage}


def _id(served: ServedRequest) -> str:
    return ("chatcmpl-" if served.endpoint == "chat" else "cmpl-") + uuid.uuid4().hex[:24]


def _log(job: Job, what: str) -> None:
    log.info("%s n=%d %s", job.request.plan, job.request.n, what)
