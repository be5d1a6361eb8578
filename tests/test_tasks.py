import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widthdepth.errors import WidthdepthError
from widthdepth.tasks import load_task
from widthdepth.tasks.prompts import attempt_prompt, revise_prompt, verify_prompt


def replay_chain(structure):
    x, m = structure["start"], structure["size"]
    for op, c in structure["steps"]:
        x = {"add": x + c, "mul": x * c, "sub": x - c}[op] % m
    return str(x)


@pytest.mark.parametrize("spec", ["chain:L=1", "chain:L=4", "chain:L=8,m=7,ops=add+mul+sub"])
def test_chain_gold_is_the_replayed_chain(spec):
    family = load_task(spec)
    for problem in family.problems(30, seed=3):
        assert problem.gold == (replay_chain(problem.structure),)
        assert problem.structure["L"] == len(problem.structure["steps"])
        assert family.check(problem, problem.gold[0])
        assert not family.check(problem, None)


def test_problems_are_deterministic_and_seeded():
    family = load_task("chain:L=4")
    assert family.problems(5, seed=1) == load_task("chain:L=4").problems(5, seed=1)
    assert family.problems(5, seed=1) != family.problems(5, seed=2)
    assert family.problems(3, seed=1) == family.problems(5, seed=1)[:3]  # more problems extend, never reshuffle


def test_chain_demonstrations_solve_their_question():
    family = load_task("chain:L=3")
    for demo in family.demonstrations(3):
        assert demo.solution.splitlines()[-1].startswith("Answer: ")
        assert demo.flawed_solution != demo.solution


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([5, 7, 13, 29]))
def test_modeq_exact_verifier_agrees_with_gold(seed, p):
    family = load_task(f"search:kind=modeq,p={p}")
    problem = family.problems(1, seed=seed)[0]
    assert problem.gold, "every instance has at least one solution"
    for x in range(-1, p + 1):
        assert family.verify(problem, str(x)) == family.check(problem, str(x))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_subset_exact_verifier_agrees_with_gold(seed):
    family = load_task("search:kind=subset,n=6")
    problem = family.problems(1, seed=seed)[0]
    for gold in problem.gold:
        assert family.verify(problem, gold)
    items = problem.structure["items"]
    assert not family.verify(problem, ",".join(map(str, sorted(items + [999]))))
    assert family.parse(f"Answer: {problem.gold[0].replace(',', ', ')}") == problem.gold[0]


def test_search_one_shot_guessing_is_modest():
    family = load_task("search:p=13")
    problems = family.problems(200, seed=0)
    blind = sum(len(p.gold) for p in problems) / (13 * len(problems))
    assert 0.05 < blind < 0.25


@pytest.mark.parametrize("bad, fragment", [
    ("chain:L=0", "L=0 is out of range"),
    ("chain:L=x", "not a whole number"),
    ("chain:ops=add+div", "unknown operation 'div'"),
    ("chain:foo=1", "unknown parameter 'foo'"),
    ("search:p=12", "not prime"),
    ("search:kind=maze", "unknown kind"),
    ("nope:L=1", "unknown task family 'nope' (valid: chain, search, rule, recall, mix, jsonl, code)"),
    ("jsonl:/does/not/exist.jsonl", "no such file"),
])
def test_bad_task_specs(bad, fragment):
    with pytest.raises(WidthdepthError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_task(bad)


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_gsm8k_answers_and_file_order(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [
        {"question": "Q1", "answer": "reasoning\n#### 1,234"},
        {"question": "Q2", "answer": "#### 7"},
        "",
        {"question": "Q3", "answer": "5.0"},
    ])
    family = load_task(f"jsonl:{path}")
    problems = family.problems(10, seed=0)
    assert [p.gold for p in problems] == [("1234",), ("7",), ("5",)]
    assert problems[2].structure["line"] == 4
    assert family.check(problems[0], family.parse("so\nAnswer: 1,234"))


def test_jsonl_shots_are_never_asked(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"q": f"Q{i}", "a": f"work\n#### {i}"} for i in range(4)])
    family = load_task(f"jsonl:{path},question=q,answer=a,shots=2")
    assert [p.question for p in family.problems(10, seed=0)] == ["Q2", "Q3"]
    assert family.demonstrations(2)[0].solution == "work\nAnswer: 0"


def test_jsonl_text_answers(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"question": "Capital of France?", "answer": "Paris"}])
    family = load_task(f"jsonl:{path}")
    problem = family.problems(1, seed=0)[0]
    assert family.check(problem, family.parse("Answer: paris."))


@pytest.mark.parametrize("rows, fragment", [
    ([{"question": "a", "answer": "1"}, "{not json"], ":2: not valid JSON"),
    ([{"question": "a", "answer": "1"}, "[1, 2]"], ":2: expected a JSON object"),
    ([{"prompt": "a", "answer": "1"}], ":1: no question field among question, problem, Problem, Question "
                                       "(fields: answer, prompt); name it with question=FIELD"),
    ([{"question": "a", "answer": "1"}, {"question": "b"}], ":2: no field 'answer' (fields: question); "
                                                            "name the answer field with answer=FIELD"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, rows, fragment):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(WidthdepthError) as info:
        load_task(f"jsonl:{path}")
    assert str(path) in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("style", ["chat", "fewshot"])
@pytest.mark.parametrize("spec", ["chain:L=3", "search", "search:kind=subset", "rule:L=2,k=3", "recall:n=8,h=2"])
def test_prompts_render_for_both_styles(spec, style):
    family = load_task(spec)
    problem = family.problems(1, seed=0)[0]
    for prompt in (attempt_prompt(family, problem, style), revise_prompt(family, problem, "draft", style),
                   verify_prompt(family, problem, "draft", "3", style)):
        text = prompt.identity()
        assert problem.question.splitlines()[0] in text or json.dumps(problem.question.splitlines()[0])[1:-1] in text
        assert (prompt.messages is not None) == (style == "chat")
    fewshot = attempt_prompt(family, problem, "fewshot").text
    assert fewshot.endswith("Solution:") and fewshot.count("Question:") == 3


def test_jsonl_encoding_errors_are_located_and_a_bom_is_accepted(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"question": "a", "answer": "1"}\n{"question": "caf\xe9", "answer": "2"}\n')
    with pytest.raises(WidthdepthError, match=r"latin1.jsonl:2: not UTF-8 \(byte 0xe9 at column 18\); save the file"):
        load_task(f"jsonl:{bad}")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + b'{"question": "Q1", "answer": "3"}\n')
    assert load_task(f"jsonl:{bom}").problems(1, seed=0)[0].gold == ("3",)


def test_jsonl_an_edited_line_is_a_new_problem(tmp_path, make_config):
    """Editing a line between runs must not leave the old question or gold answer in the store."""
    from widthdepth.analysis.traces import load_grid_traces
    from widthdepth.backends.mock import MockBackend
    from widthdepth.runner import run
    from widthdepth.store import Store

    path = write_jsonl(tmp_path / "e.jsonl", [{"question": "What is 1+1?", "answer": "2"}])
    config = make_config(tasks=[f"jsonl:{path}"], plans=["parallel:2"], problems=1)
    backend = MockBackend(script=lambda request, seed: "Answer: 2")
    run(config, backend=backend)
    write_jsonl(path, [{"question": "What is 1+2?", "answer": "3"}])
    again = run(config, backend=backend)
    assert again.generated == 2  # nothing reused from the old question
    (trace,) = load_grid_traces(Store.open(config.out))
    current = [p for p in trace.problems if p.gold == frozenset({"3"})]
    assert len(current) == 1 and all(not a.correct for c in current[0].chains for a in c)
