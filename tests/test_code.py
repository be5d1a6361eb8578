"""The `code` task family: layouts, program extraction, hand-written outcomes, a whole run, bad files."""

import json
from collections import defaultdict
from pathlib import Path

import pytest

from widthdepth.analysis.aggregators import best_of, majority
from widthdepth.backends.mock import MockBackend
from widthdepth.cli import main
from widthdepth.closing import closing_table
from widthdepth.errors import WidthdepthError
from widthdepth.runner import run
from widthdepth.tasks import load_task
from widthdepth.tasks.code import extract_program
from widthdepth.tasks.prompts import attempt_prompt

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REPLIES = [json.loads(line) for line in (EXAMPLES / "code-replies.jsonl").read_text().splitlines()]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def family():
    return load_task(f"code:{EXAMPLES / 'code.jsonl'},timeout=2")


@pytest.mark.parametrize("reply", REPLIES, ids=[f"{r['line']}:{r['why'][:40]}" for r in REPLIES])
def test_example_replies_give_the_hand_written_outcome(family, reply, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    problem = next(p for p in family.problems(100, seed=0) if p.structure["line"] == reply["line"])
    answer = family.parse(reply["reply"], problem)
    assert answer == reply["expect"]
    assert family.check(problem, answer) is (answer is not None and "F" not in answer.split()[1]
                                             and set(answer.split()[1]) == {"P"})
    assert family.verify(problem, answer) == (None if answer is None else family.check(problem, answer))


def test_humaneval_layout_continuations_and_per_assert_tests(tmp_path):
    test = ("METADATA = {}\n\ndef check(candidate):\n    assert candidate(1) == 2\n    cases = [(2, 3), (5, 6)]\n"
            "    for x, y in cases:\n        assert candidate(x) == y\n    assert candidate(-1) == 0\n")
    path = write_jsonl(tmp_path / "he.jsonl", [{
        "task_id": "HumanEval/0", "prompt": 'def inc(x):\n    """Add one."""\n', "entry_point": "inc",
        "canonical_solution": "    return x + 1\n", "test": test}])
    family = load_task(f"code:{path}")
    problem = family.problems(1, seed=0)[0]
    assert problem.gold == ("3/3 PPP",) and "```python\ndef inc(x):" in problem.question
    assert family.parse("    return x + 1\n", problem) == "3/3 PPP"  # a base model continuing the body
    assert family.parse("    return x + 1\n\nThis adds one.\n", problem) == "3/3 PPP"  # prose after it is cut
    assert family.parse("```python\ndef inc(x):\n    return abs(x) + 1\n```", problem) == "2/3 PPF"
    assert family.parse("```python\ndef inc(x):\n    return x + 1 if x < 3 else 0\n```", problem) == "2/3 PFP"


def test_mbpp_layout_shows_its_tests_and_runs_its_setup(tmp_path):
    path = write_jsonl(tmp_path / "mbpp.jsonl", [{
        "task_id": 1, "text": "Write a function to double a number.", "code": "def double(x):\n    return 2 * x\n",
        "test_list": ["assert double(2) == BASE", "assert double(0) == 0"], "test_setup_code": "BASE = 4",
        "challenge_test_list": []}])
    family = load_task(f"code:{path},shots=0")
    problem = family.problems(1, seed=0)[0]
    assert "assert double(2) == BASE" in problem.question and problem.structure["entry_point"] == "double"
    assert family.parse("```python\ndef double(x):\n    return x + x\n```", problem) == "2/2 PP"


def test_program_extraction():
    two = "```python\ndef helper():\n    pass\n```\nthen\n```python\ndef solve(x):\n    return x\n```\n```\nsolve(3)\n```"
    assert extract_program(two, "solve") == "def solve(x):\n    return x\n"
    assert extract_program("Sure!\n\nimport math\ndef solve(x):\n    return x\n", "solve").startswith("import math")
    assert extract_program("```python\ndef solve(x):\n    return x", "solve") == "def solve(x):\n    return x\n"
    assert extract_program("no idea", "solve") is None
    shown = "Output:\n```text\n[1, 2]\n```\nThe code:\n```python\ndef solve(x):\n    return x\n```"
    assert extract_program(shown, "solve") == "def solve(x):\n    return x\n"  # a text block is not the program
    prose = "Sure, here it is.\ndef solve(x):\n    return x\nThat is all."
    assert extract_program(prose, "solve", prefix="def solve(x):\n").startswith("def solve(x):\n\ndef solve(x):")


def test_humaneval_prompt_imports_and_helpers_stay_with_a_rewritten_function(tmp_path):
    prompt = 'from typing import List\n\n\ndef helper(x):\n    return x * 2\n\n\ndef twice(xs: List[int]) -> List[int]:\n    """Each doubled."""\n'
    path = write_jsonl(tmp_path / "he.jsonl", [{
        "task_id": "HumanEval/1", "prompt": prompt, "entry_point": "twice", "canonical_solution": "    pass\n",
        "test": "def check(candidate):\n    assert candidate([1, 2]) == [2, 4]\n"}])
    family = load_task(f"code:{path}")
    problem = family.problems(1, seed=0)[0]
    fenced = "```python\ndef twice(xs: List[int]) -> List[int]:\n    return [helper(x) for x in xs]\n```"
    assert family.parse(fenced, problem) == "1/1 P"  # List and helper come from the prompt


def test_code_prompts_ask_for_a_code_block(family):
    problem = family.problems(1, seed=0)[0]
    (role, content), = attempt_prompt(family, problem, "chat").messages
    assert content.endswith("as one Python code block (```python ... ```) at the end of your reply.")
    assert attempt_prompt(family, problem, "fewshot").stop == ("\nQuestion:",)


def scripted_replies():
    """A mock backend replying with the example replies of each problem, in turn by seed."""
    questions = {p.structure["line"]: p.question for p in load_task(f"code:{EXAMPLES / 'code.jsonl'}").problems(99, 0)}
    by_question = defaultdict(list)
    for reply in REPLIES:
        by_question[questions[reply["line"]]].append(reply["reply"])

    def script(request, seed):
        content = request.messages[-1][1]
        replies = next(r for q, r in by_question.items() if q in content)
        return replies[seed % len(replies)]
    return script


def test_a_run_scores_coverage_majority_and_best_of_from_the_tests(make_config):
    config = make_config(tasks=[f"code:{EXAMPLES / 'code.jsonl'},timeout=2"], plans=["parallel:4"], problems=12,
                         max_tokens=4096)
    result = run(config, backend=MockBackend(script=scripted_replies()))
    (row,) = closing_table(result)
    expected = {r["reply"]: r["expect"] for r in REPLIES}
    (plan_run,) = result.plan_runs
    hits = defaultdict(int)
    for problem in plan_run.problems:
        answers = [expected[chain[0].text] for chain in plan_run.chains[problem.key]]
        assert [chain[0].answer for chain in plan_run.chains[problem.key]] == answers
        passed = [a is not None and set(a.split()[1]) == {"P"} for a in answers]
        hits["coverage"] += any(passed)
        hits["majority"] += majority(answers) == problem.gold[0]
        hits["best_of"] += best_of(answers, [None if a is None else float(p) for a, p in zip(answers, passed)]) \
            == problem.gold[0]
    assert row.coverage == hits["coverage"] / 12 and row.majority == hits["majority"] / 12
    assert row.best_of == hits["best_of"] / 12 == row.coverage  # the tests are the verifier
    assert 0 < row.majority < row.coverage  # some problems' wrong programs agree more than the right ones


@pytest.mark.parametrize("rows, fragment", [
    ([{"name": "x", "body": "y"}], ":1: unknown layout (fields: body, name); expected HumanEval"),
    ([{"prompt": "p", "tests": ["assert f(1) == 1"]}, {"prompt": "q"}], ":2: field 'tests' should be a non-empty list"),
    ([{"prompt": "p", "tests": ["assert f(1) == "]}], ":1: field 'tests' is not valid Python (line 1"),
    ([{"prompt": "p", "tests": "x = 1"}], ":1: field 'tests' has no assert: nothing would be checked"),
    ([{"text": "t", "test_list": []}], ":1: field 'test_list' should be a non-empty list of test lines (assert ...) "
                                       "(mbpp layout)"),
])
def test_bad_code_files_are_one_line_errors(tmp_path, rows, fragment):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(WidthdepthError) as error:
        load_task(f"code:{path}")
    assert str(error.value).startswith(str(path)) and fragment in str(error.value) and "\n" not in str(error.value)


def test_cli_bad_code_file_exits_2(tmp_path, capsys):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p"}])
    assert main(["run", "--model", "mock:", "--tasks", f"code:{path}", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}:1: unknown layout") and len(err.splitlines()) == 1


def test_the_own_data_recipe_runs(tmp_path, monkeypatch, capsys):
    """recipes/own-data.yaml as shipped, with the scripted model in place of SmolLM2 (the real run is in
    the README): both example files load, every problem is asked, and the code task gets its exact verifier."""
    monkeypatch.chdir(EXAMPLES.parent)
    out = tmp_path / "own"
    assert main(["run", "--recipe", "recipes/own-data.yaml", "--model", "mock:", "problems=12", "plans=[parallel:2]",
                 f"out={out}"]) == 0
    closing = (out / "closing.csv").read_text()
    assert "jsonl:examples/math.jsonl,checker=math" in closing and "code:examples/code.jsonl" in closing
