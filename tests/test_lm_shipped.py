"""The shipped built-in LM (issue 14): one set of weights under three names, the same text from
llama.cpp and transformers, and a model that really reasons in writing — right often enough to
matter, wrong in varied ways when sampled."""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytest.importorskip("transformers", reason="the hf extra (transformers, gguf) is not installed")
pytestmark = pytest.mark.model

from widthdepth.backends import BackendOptions, GenerationRequest, load_backend  # noqa: E402
from widthdepth.backends.embedded import EMBEDDED, SHIPPED_LM  # noqa: E402
from widthdepth.lab.lm.train import PRESETS  # noqa: E402
from widthdepth.tasks import load_task  # noqa: E402
from widthdepth.tasks.prompts import attempt_prompt, verify_prompt  # noqa: E402

OPTIONS = BackendOptions(threads=2, context_length=1024)


def requests(temperature: float = 0.0, n: int = 1):
    out = []
    for spec in ("chain:L=4", "search:kind=subset,n=6"):
        family = load_task(spec)
        for problem in family.problems(3, 0):
            prompt = attempt_prompt(family, problem, "chat")
            out.append(GenerationRequest(prompt=None, messages=prompt.messages, n=n, max_tokens=200,
                                         temperature=temperature, top_p=1.0, seed=3))
    family = load_task("chain:L=2")
    problem = family.problems(1, 0)[0]
    written = "Start: 1\nStep 1: 1+2=3 -> 3\nStep 2: 3*3=9 -> 9\nAnswer: 9"
    prompt = verify_prompt(family, problem, written, "9", "chat")
    out.append(GenerationRequest(prompt=None, messages=prompt.messages, n=1, max_tokens=4, temperature=0.0, seed=0))
    return out


def texts(backend, reqs):
    by = {}
    for sample in backend.generate(reqs):
        by[(sample.request_index, sample.sample_index)] = sample.completion.text
    return [by[k] for k in sorted(by)]


def test_three_names_one_model_and_the_same_greedy_text():
    llama, builtin, hf = (load_backend(m, OPTIONS) for m in ("llamacpp:lm", "builtin:lm", "hf:lm"))
    try:
        digest = EMBEDDED["lm"].identity().split("@")[1]
        assert llama.info.id == builtin.info.id == f"llamacpp:lm@{digest}" and hf.info.id == f"hf:lm@{digest}"
        assert llama.info.n_params == hf.info.n_params and llama.info.prompt_style == "chat"
        reqs = requests()
        a, b, c = texts(llama, reqs), texts(builtin, reqs), texts(hf, reqs)
        assert a == b == c
        assert all("Answer:" in t for t in a[:-1]) and a[-1].strip() in ("Yes", "No")
    finally:
        for backend in (llama, builtin, hf):
            backend.close()


def test_the_shipped_model_reasons_in_writing_and_errs_in_varied_ways():
    backend = load_backend("llamacpp:lm", OPTIONS)
    try:
        family = load_task("chain:L=2")
        problems = family.problems(40, 0)  # held out: training never saw them
        reqs = [GenerationRequest(prompt=None, messages=attempt_prompt(family, p, "chat").messages, n=1,
                                  max_tokens=200, temperature=0.0, seed=0) for p in problems]
        greedy = [family.check(p, family.parse(t)) for p, t in zip(problems, texts(backend, reqs))]
        assert sum(greedy) / len(greedy) >= 0.5  # chance is 0.1
        family = load_task("chain:L=6")
        problems = family.problems(12, 0)
        reqs = [GenerationRequest(prompt=None, messages=attempt_prompt(family, p, "chat").messages, n=16,
                                  max_tokens=256, temperature=1.0, seed=0) for p in problems]
        answers = texts(backend, reqs)
        per_problem = [Counter(family.parse(t) for t in answers[i * 16:(i + 1) * 16]) for i in range(len(problems))]
        assert sum(len(c) >= 2 for c in per_problem) >= len(problems) // 2  # samples disagree: width has work
        right = sum(c[p.gold[0]] for c, p in zip(per_problem, problems))
        assert 0 < right < 16 * len(problems)
    finally:
        backend.close()


def test_the_shipped_files_are_small_and_made_by_the_command():
    files = [p for p in SHIPPED_LM.iterdir() if p.is_file()]
    assert {"config.json", "model.safetensors", "tokenizer.json", "lm.gguf", "training.json"} <= {p.name for p in files}
    assert sum(p.stat().st_size for p in files) <= 20 * 2**20
    assert not (SHIPPED_LM / ".train").exists()
    made = json.loads((SHIPPED_LM / "training.json").read_text())["config"]
    assert made == json.loads(json.dumps(PRESETS["cpu"].__dict__))  # `lab train-lm --out DIR` remakes it


def test_the_study_runs_the_lm_on_text_with_its_own_preset():
    from widthdepth.backends import is_latent
    from widthdepth.study import PRESETS as STUDY_PRESETS
    from widthdepth.study import StudyConfig, study_run_config

    config = study_run_config(StudyConfig(model="builtin:lm", out="runs/x"))
    assert config.tasks == STUDY_PRESETS["lm"]["quick"]["tasks"] and config.plans == ["grid:8x4", "early:8"]
    assert not is_latent("builtin:lm") and is_latent("builtin:reasoner,checkpoint=x.safetensors")
    assert study_run_config(StudyConfig(model="builtin:reasoner", out="runs/x")).plans == [
        "grid:16x8", "early:16,depth=8", "particles:16,steps=8"]


def test_the_shipped_model_searches_subsets_and_more_samples_find_more():
    backend = load_backend("llamacpp:lm", OPTIONS)
    try:
        family = load_task("search:kind=subset,n=6")
        problems = family.problems(20, 0)  # held out
        reqs = [GenerationRequest(prompt=None, messages=attempt_prompt(family, p, "chat").messages, n=8,
                                  max_tokens=300, temperature=0.7, top_p=0.95, seed=0) for p in problems]
        answers = texts(backend, reqs)
        right = [[family.check(p, family.parse(t, p)) for t in answers[i * 8:(i + 1) * 8]]
                 for i, p in enumerate(problems)]
        one = sum(map(sum, right)) / (8 * len(problems))
        any_of_8 = sum(map(any, right)) / len(problems)
        assert 0.1 <= one <= 0.9  # it searches, and misses
        assert any_of_8 >= one + 0.15  # samples start from different numbers: width finds more
        assert all(t.startswith("Need ") and "Take " in t for t in answers)
    finally:
        backend.close()
