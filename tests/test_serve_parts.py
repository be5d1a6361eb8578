"""`widthdepth serve`'s parts without HTTP: a request body read and refused, the served family, and the
shared backend — requests that join a running batch draw exactly what they would have drawn alone,
and a cancelled request stops mid-sample with what it generated kept."""

from __future__ import annotations

import threading

import pytest

from widthdepth.backends import BackendOptions, GenerationRequest, load_backend
from widthdepth.serve.requests import Limits, RequestError, parse_request
from widthdepth.serve.shared import Cancelled, SharedBackend, Ticket
from widthdepth.tasks import load_task
from widthdepth.tasks.prompts import attempt_prompt, revise_prompt

CHAT = {"model": "smollm2", "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "What is 6 x 7?"}]}


def test_the_plan_comes_from_the_body_then_the_model_name_then_the_server(tmp_path):
    limits = Limits(plan="grid:2x1")
    assert parse_request(CHAT, "chat", limits).plan == "grid:2x1"
    assert parse_request({**CHAT, "model": "grid:4x2/smollm2"}, "chat", limits).plan == "grid:4x2"
    assert parse_request({**CHAT, "model": "early:8/org/model"}, "chat", limits).plan.startswith("early:8")
    assert parse_request({**CHAT, "model": "grid:4x2/x", "widthdepth": {"plan": "parallel:3"}}, "chat", limits).plan == "grid:3x1"
    assert parse_request({**CHAT, "model": "Qwen/Qwen2.5-0.5B"}, "chat", limits).plan == "grid:2x1"  # a plain name


def test_a_plan_path_with_slashes_is_cut_where_the_plan_parses(tmp_path):
    from widthdepth.plans.policy import Level, Policy

    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    level = Level(budget=10.0, plans=[(2, 1, "majority"), (2, 1, "majority")], train_accuracy=0.5, train_cost=8.0)
    policy = Policy(predictor="agreement", probe=2, unit="generated_tokens", edges=[0.5], weights=[0.5, 0.5],
                    levels=[level], fitted_on=[])  # a file for the parser: the plans are not run here
    policy.save(folder / "policy.json")
    model = f"adaptive:{folder}/policy.json@10/my/model"
    assert parse_request({**CHAT, "model": model}, "chat", Limits()).plan == f"adaptive:{folder}/policy.json@10"
    limits = Limits(policy=str(folder / "policy.json"))
    assert parse_request({**CHAT, "widthdepth": {"budget": 10}}, "chat", limits).plan.endswith("policy.json@10")


@pytest.mark.parametrize("body, param", [
    ({**CHAT, "model": "grid:0x2/smollm2"}, "model"),
    ({**CHAT, "widthdepth": {"plan": "nope:3"}}, "widthdepth.plan"),
    ({**CHAT, "widthdepth": {"budget": 1e6}}, "widthdepth.budget"),  # no policy on this server
    ({**CHAT, "widthdepth": {"budget": -1}}, "widthdepth.budget"),
    ({**CHAT, "widthdepth": "grid:2x2"}, "widthdepth"),
    ({**CHAT, "n": 9}, "n"),
    ({**CHAT, "n": 0}, "n"),
    ({**CHAT, "widthdepth": {"plan": "grid:16x4"}}, "widthdepth.plan"),  # more attempts than allowed
    ({**CHAT, "temperature": "hot"}, "temperature"),
    ({**CHAT, "max_tokens": 0}, "max_tokens"),
    ({**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({**CHAT, "tools": [{"type": "function"}]}, "tools"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content"),
    ({"messages": CHAT["messages"]}, "model"),
])
def test_bad_bodies_are_refused_with_the_field_they_got_wrong(body, param):
    with pytest.raises(RequestError) as caught:
        parse_request(body, "chat", Limits(max_n=8, max_attempts=32))
    assert caught.value.status == 400 and caught.value.param == param
    assert caught.value.body()["error"]["type"] == "invalid_request_error" and "\n" not in caught.value.message


def test_a_served_problem_is_sent_as_it_came_and_voted_on_by_its_answer():
    family = load_task("served")
    body = parse_request({**CHAT, "stop": "\n\n"}, "chat", Limits())
    problem = family.request(body.messages, None, body.problem_key, body.stop)
    prompt = attempt_prompt(family, problem, "chat")
    assert prompt.messages == (("system", "Be brief."), ("user", "What is 6 x 7?")) and prompt.stop == ("\n\n",)
    revised = revise_prompt(family, problem, "It is 41.", "chat")
    assert revised.messages[:2] == prompt.messages and revised.messages[2] == ("assistant", "It is 41.")
    assert revised.messages[3][0] == "user"
    assert family.parse("6 x 7 = 42") == "42" and family.parse("so...\nAnswer: **42**") == "42"
    assert family.parse("Paris, of course!") == family.parse("paris of course") == "paris of course"
    assert family.check(problem, "42") is None  # no gold answer
    raw = family.request(None, "The capital of France is", "served#x")
    assert attempt_prompt(family, raw, "fewshot").text == "The capital of France is"
    assert body.problem_key != parse_request(CHAT, "chat", Limits()).problem_key  # no seed: a fresh problem
    seeded = {**CHAT, "seed": 4}
    assert parse_request(seeded, "chat", Limits()).problem_key == parse_request(seeded, "chat", Limits()).problem_key


@pytest.fixture(scope="module")
def shared():
    backend = SharedBackend(load_backend("llamacpp:smollm2-135m,slots=4", BackendOptions(threads=2, context_length=1024)))
    yield backend
    backend.close()


def ask(text: str, n: int, seed: int, max_tokens: int = 24) -> GenerationRequest:
    return GenerationRequest(messages=(("user", text),), n=n, max_tokens=max_tokens, temperature=0.8, seed=seed)


@pytest.mark.model
def test_requests_that_join_a_running_batch_draw_what_they_draw_alone(shared):
    """Three callers, started at different times, share the engine's batches (4 slots, 7 samples): each
    gets exactly the texts it gets when it runs alone."""
    asks = [[ask("Name a colour.", 3, 11)], [ask("Count to five.", 2, 12)], [ask("What is 2 + 2?", 2, 13)]]
    alone = [sorted((s.request_index, s.sample_index, s.completion.text) for s in shared.generate(a, Ticket()))
             for a in asks]
    together: list[list] = [[] for _ in asks]

    def call(i: int) -> None:
        together[i] = sorted((s.request_index, s.sample_index, s.completion.text)
                             for s in shared.generate(asks[i], Ticket()))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(asks))]
    for thread in threads:
        thread.start()
        thread.join(timeout=0.3)  # the next caller arrives while this one decodes
    for thread in threads:
        thread.join()
    assert together == alone and all(len(t) == a[0].n for t, a in zip(together, asks))


@pytest.mark.model
def test_a_cancelled_request_stops_mid_sample_and_keeps_what_it_generated(shared):
    ticket = Ticket()
    got = []
    samples = shared.generate([ask("Write a long story about a dragon.", 6, 3, max_tokens=400)], ticket)
    with pytest.raises(Cancelled):
        for sample in samples:
            got.append(sample.completion)
            ticket.cancel()  # after the first finished sample: the rest stop at the next step
    cancelled = [c for c in got if c.finish_reason == "cancelled"]
    assert cancelled and all(0 < c.completion_tokens < 400 and c.prompt_tokens > 0 for c in cancelled)
    # the engine may have started a sample or two more before it saw the cancel: they stop at once too
    assert all(c.finish_reason in ("stop", "length", "cancelled") for c in got) and len(got) <= 6
    with pytest.raises(Cancelled):
        list(shared.generate([ask("Hi", 1, 1)], ticket))  # a cancelled request asks for nothing more
    assert [s.completion.finish_reason for s in shared.generate([ask("Hi", 1, 1, 4)], Ticket())] in (["stop"], ["length"])


@pytest.mark.model
def test_served_traffic_fits_a_policy_on_its_verifiers_labels(tmp_path, capsys):
    """A serve folder has no gold answers; with a verifier on the server, `allocate fit` fits on what the
    verifier accepted (and says so), and `allocate eval` judges on held-out served problems."""
    from widthdepth.analysis.served import served_traces
    from widthdepth.cli import main
    from widthdepth.serve import Engine, ServeSettings
    from widthdepth.store import Store

    out = tmp_path / "served"
    settings = ServeSettings(model="llamacpp:smollm2-135m", out=str(out), verifier="self", context_length=1024,
                             limits=Limits(plan="grid:4x1", max_tokens=12))
    engine = Engine(settings, load_backend(settings.model, BackendOptions(threads=2, context_length=1024)))
    try:
        bodies = [{"model": "m", "messages": [{"role": "user", "content": f"What is {i} + {i % 3}? Answer: <number>"}]}
                  for i in range(16)]
        jobs = [engine.submit(parse_request(body, "chat", settings.limits)) for body in bodies]
        assert all(job.future.result(timeout=600).choices[0].text for job in jobs)
    finally:
        engine.close()
    store = Store.open(out)
    try:
        (trace,) = served_traces(store)
    finally:
        store.close()
    assert trace.task == "served" and trace.plan.spec == "grid:4x1" and len(trace.problems) == 16
    assert trace.verifier is not None and trace.verifier.startswith("self")
    for problem in trace.problems:  # the labels: answers whose mean verifier score is at least one half
        scored = [(a.final_answer, trace.verifications[a.key].score) for c in problem.chains for a in c
                  if a.key in trace.verifications and trace.verifications[a.key].score is not None]
        accepted = {x for x, _ in scored if x is not None
                    and sum(s for y, s in scored if y == x) / sum(1 for y, _ in scored if y == x) >= 0.5}
        assert problem.gold == accepted
    capsys.readouterr()
    assert main(["allocate", "fit", str(out), "--out", str(tmp_path / "policy.json"), "--bins", "2", "--probe", "2"]) == 0
    printed = capsys.readouterr().out
    assert "labels: served problems have no gold answers" in printed and "self" in printed
    assert main(["allocate", "eval", str(out), "--policy", str(tmp_path / "policy.json")]) == 0
