"""`widthdepth serve`: an OpenAI-compatible endpoint that spends each request's compute by a plan.

    widthdepth serve --model llamacpp:smollm2-135m --plan parallel:4 --out runs/served
    widthdepth serve --model openai:qwen@http://127.0.0.1:8000/v1 --policy runs/x/policy.json@2e7

Any client of OpenAI's API works unchanged; a request may choose its plan (``extra_body={"widthdepth":
{"plan": "grid:4x2"}}``, ``{"budget": 2e7}`` with a policy, or ``model="grid:4x2/smollm2"``). Every
attempt goes to the folder's store as in `widthdepth run` (served traffic is data for `report` and
`allocate`). Modules: `requests` (a body, checked), `engine` (admission, one plan run per request),
`shared` (one backend for every request), `answer` (the chosen text and its cost), `app` (the routes).
"""

from __future__ import annotations

import logging
import os
import signal
import socket

from widthdepth.backends import BackendOptions, load_backend, resolve_model
from widthdepth.errors import WidthdepthError
from widthdepth.lock import folder_lock
from widthdepth.serve.engine import Engine, ServeSettings
from widthdepth.serve.requests import Limits
from widthdepth.verifiers import check_verifier_name


def serve(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8080, api_key: str | None = None,
          model_name: str | None = None, upstream_key: str | None = None, say=print) -> None:  # noqa: ANN001
    """Load the model, then answer requests until SIGTERM or Ctrl-C; in-flight requests finish first."""
    import uvicorn

    from widthdepth.serve.app import create_app

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            super().handle_exit(sig, frame)  # stop taking requests, drain the ones in flight
            if sig == signal.SIGTERM:  # a drained stop on SIGTERM is a clean exit (0), not death by the signal
                self._captured_signals.remove(sig)

    resolve_model(settings.model)
    check_verifier_name(settings.verifier)
    if api_key is not None and not api_key.strip():
        raise WidthdepthError("--api-key: empty; give a key, or leave it out to serve without one")
    _check_port(host, port)
    with folder_lock(settings.out):  # one writer per folder, as for `run`
        say(f"loading {settings.model}")
        backend = load_backend(settings.model, BackendOptions(settings.threads, settings.context_length, upstream_key))
        try:
            engine = Engine(settings, backend)
        except BaseException:
            backend.close()
            raise
        name = model_name or settings.model
        app = create_app(engine, api_key, name)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
        say(f"serving {name} on http://{host}:{port}/v1 — plan {settings.limits.plan}, store {settings.out}"
            + (", key required" if api_key else ""))
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=None)
        _Server(config).run()
        say(f"stopped; attempts are in {os.path.join(settings.out, 'widthdepth.sqlite')}")


def _check_port(host: str, port: int) -> None:
    """Fail before the model loads where the address cannot be served."""
    try:
        with socket.create_server((host, port)):
            return
    except OSError as exc:
        raise WidthdepthError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); "
                              "choose another --port") from None


__all__ = ["Engine", "Limits", "ServeSettings", "serve"]
