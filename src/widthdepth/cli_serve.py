"""`widthdepth serve`: the OpenAI-compatible endpoint (`widthdepth.serve`).

    widthdepth serve --model llamacpp:smollm2-135m --plan parallel:4 --out runs/served
    widthdepth serve --policy runs/study/policy.json@2e7 --api-key "$KEY"
"""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.terminal import errors


def _default(name: str) -> object:
    return RunConfig.model_fields[name].get_default(call_default_factory=True)


def serve_command(
    model: Annotated[str, typer.Option(help="the model to serve (see `widthdepth models`)")] = str(_default("model")),
    plan: Annotated[Optional[str], typer.Option(help="the plan of a request that names none, e.g. parallel:4, "
                                                     "grid:4x2, early:16 (default: parallel:1)")] = None,
    policy: Annotated[Optional[str], typer.Option(help="POLICY.json@BUDGET from `allocate fit`: the default plan, and "
                                                       "what a request's widthdepth.budget is spent by")] = None,
    out: Annotated[str, typer.Option(help="folder of the store every attempt goes to")] = "runs/served",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    api_key: Annotated[Optional[str], typer.Option(help="bearer token clients must send (or env WIDTHDEPTH_SERVE_KEY); "
                                                        "never logged or stored", show_default=False)] = None,
    model_name: Annotated[Optional[str], typer.Option(help="the model id /v1/models lists (default: --model)")] = None,
    verifier: Annotated[str, typer.Option(help="none (majority voting) | self | steps | reward:URL; "
                                               "best-of aggregation and search plans use it")] = "none",
    max_tokens: Annotated[int, typer.Option(help="a request's max_tokens when it gives none")] = 256,
    temperature: Annotated[float, typer.Option(help="a request's temperature when it gives none")] = 0.7,
    max_n: Annotated[int, typer.Option(help="the largest n a request may ask for")] = 8,
    max_attempts: Annotated[int, typer.Option(help="attempts one request's plan x n may take at most")] = 64,
    workers: Annotated[int, typer.Option(help="requests whose plans run at once (their samples share batches)")] = 32,
    queue: Annotated[int, typer.Option(help="requests that may wait for a worker; past that, 429")] = 64,
    threads: Annotated[int, typer.Option(help="CPU threads of a local model (0: the free cores)")] = 0,
    context_length: Annotated[int, typer.Option(help="context window of a local model, in tokens")] = 4096,
) -> None:
    """Serve a model behind an OpenAI-compatible API, spending each request's compute by a plan."""
    from widthdepth.serve import ServeSettings, serve

    if plan is not None and policy is not None:
        raise WidthdepthError("--plan and --policy: give one (a policy's budget is the default plan)")
    for name, value, low in (("--port", port, 1), ("--max-n", max_n, 1), ("--max-attempts", max_attempts, 1),
                             ("--workers", workers, 1), ("--queue", queue, 0), ("--max-tokens", max_tokens, 1)):
        if value < low or (name == "--port" and value > 65535):
            raise WidthdepthError(f"{name} {value}: must be at least {low}" + (" and at most 65535" if name == "--port" else ""))
    default = f"adaptive:{policy}" if policy is not None else (plan or "parallel:1")
    limits = _limits(default, policy, max_n, max_attempts, max_tokens, temperature)
    settings = ServeSettings(model=model, out=out, limits=limits, verifier=verifier, workers=workers, queue=queue,
                             threads=threads, context_length=context_length)
    key = api_key if api_key is not None else os.environ.get("WIDTHDEPTH_SERVE_KEY")
    serve(settings, host, port, key, model_name, say=lambda text: errors.print(text, markup=False, highlight=False))


def _limits(default: str, policy: str | None, max_n: int, max_attempts: int, max_tokens: int, temperature: float):  # noqa: ANN202
    from widthdepth.plans import load_plan
    from widthdepth.serve.requests import Limits

    option = "--policy" if policy is not None else "--plan"
    spec = load_plan(default, option=option).spec
    if not 0.0 <= temperature <= 5.0:
        raise WidthdepthError(f"--temperature {temperature}: must be from 0 to 5")
    return Limits(plan=spec, policy=policy.rpartition("@")[0] if policy is not None else None, max_n=max_n,
                  max_attempts=max_attempts, max_tokens=max_tokens, temperature=temperature)
