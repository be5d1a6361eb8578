"""`jsonl:` checkers: math equivalence (math-verify), regex, text, number; field layouts; bad files."""

import json
from collections import Counter
from pathlib import Path

import pytest

from widthdepth.analysis.aggregators import majority
from widthdepth.cli import main
from widthdepth.errors import WidthdepthError
from widthdepth.tasks import load_task

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def math_family():
    return load_task(f"jsonl:{EXAMPLES / 'math.jsonl'},checker=math")


def hand_written_answers():
    rows = [json.loads(line) for line in (EXAMPLES / "math-answers.jsonl").read_text().splitlines()]
    return [pytest.param(r["line"], r["reply"], r["equal"], id=f"{r['line']}:{r['reply'][:30]}") for r in rows]


@pytest.mark.parametrize("line, reply, equal", hand_written_answers())
def test_math_equivalence_matches_the_hand_written_judgement(math_family, line, reply, equal):
    problem = next(p for p in math_family.problems(100, seed=0) if p.structure["line"] == line)
    assert math_family.check(problem, math_family.parse(reply, problem)) is equal


def test_the_hand_written_cases_go_both_ways():
    judged = Counter(json.loads(line)["equal"] for line in (EXAMPLES / "math-answers.jsonl").read_text().splitlines())
    assert judged[True] >= 20 and judged[False] >= 15


def test_equal_math_answers_vote_together(math_family):
    problem = math_family.problems(1, seed=0)[0]  # the coin: 1/2
    replies = ["Answer: 0.5", "Answer: $\\frac12$", "Answer: $\\frac{2}{4}$", "Answer: 1/3", "Answer: 1/3"]
    answers = [math_family.parse(r, problem) for r in replies]
    assert len(set(answers[:3])) == 1 and answers[0] == problem.gold[0] == "\\frac{1}{2}"
    assert majority(answers) == "\\frac{1}{2}"  # three forms of one half outvote two of one third
    assert math_family.check(problem, majority(answers))
    percent = math_family.parse("Answer: $50\\%$", problem)  # math-verify equates 50% with 50 and with 1/2:
    assert percent == "50\\%" and math_family.check(problem, percent)  # judged right, but votes on its own


def test_answers_too_big_to_normalise_are_kept_as_parsed(math_family, tmp_path):
    problem = math_family.problems(1, seed=0)[0]
    for reply in ("Answer: $9^{9^{9}}$", "Answer: $(x+1)^{100000}$"):  # simplify would run for minutes
        answer = math_family.parse(reply, problem)
        assert answer and not math_family.check(problem, answer)
    assert not math_family.check(problem, math_family.parse("Answer: no", problem))
    on = load_task(f"jsonl:{write_jsonl(tmp_path / 'on.jsonl', [{'problem': 'p', 'answer': 'on'}])},checker=math")
    assert not on.check(on.problems(1, 0)[0], on.parse("Answer: no", on.problems(1, 0)[0]))  # not n·o = o·n


def test_math_gold_from_a_solution_field_and_text_golds(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"problem": "p1", "solution": "so it is $\\boxed{\\dfrac{3}{6}}$."},
        {"problem": "p2", "solution": "\\boxed{\\text{yes}}"}])
    family = load_task(f"jsonl:{path},answer=solution,checker=math")
    first, second = family.problems(2, seed=0)
    assert first.gold == ("\\frac{1}{2}",)
    assert family.check(first, family.parse("Answer: 0.5", first))
    assert family.check(second, family.parse("Answer: yes", second))
    assert not family.check(second, family.parse("Answer: no", second))


def test_gsm8k_layout_and_number_checker(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "2 + 2 = 4\n#### 1,004"}])
    family = load_task(f"jsonl:{path}")
    problem = family.problems(1, seed=0)[0]
    assert problem.gold == ("1004",) and family.answer_format == "Answer: <number>"
    assert family.check(problem, family.parse("so\nAnswer: 1004.0", problem))


def test_aime_layout_is_recognised(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"ID": "2024-I-1", "Problem": "p", "Solution": "s", "Answer": 204}])
    family = load_task(f"jsonl:{path},checker=math")
    problem = family.problems(1, seed=0)[0]
    assert problem.question == "p" and problem.gold == ("204",)
    assert family.check(problem, family.parse("Thus $\\boxed{204}$.", problem))


def test_regex_checker_takes_the_rest_of_the_spec(tmp_path):
    path = write_jsonl(tmp_path / "mc.jsonl", [{"question": "pick", "answer": "(C)"}, {"question": "again", "answer": "A"}])
    family = load_task(f"jsonl:{path},checker=regex:\\(?([A-E])\\)?(?:,|$)")
    first, second = family.problems(2, seed=0)
    assert first.gold == ("c",) and second.gold == ("a",)
    assert family.check(first, family.parse("It must be (C), since...\nAnswer: (C)", first))
    assert not family.check(first, family.parse("Answer: (B)", first))
    assert family.spec.endswith("checker=regex:\\(?([A-E])\\)?(?:,|$)")  # the whole pattern, commas and all


def test_text_checker_is_selectable_for_numeric_golds(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"question": "q", "answer": "007"}])
    family = load_task(f"jsonl:{path},checker=text")
    problem = family.problems(1, seed=0)[0]
    assert family.check(problem, family.parse("Answer: 007", problem))
    assert not family.check(problem, family.parse("Answer: 7", problem))


@pytest.mark.parametrize("spec, fragment", [
    ("checker=maths", "checker='maths': unknown checker (valid: number, text, math, regex:PATTERN)"),
    ("checker=regex:([A-", "checker=regex:([A-: not a regular expression"),
    ("checker=number", ":2: gold answer 'Paris' is not a number (use checker=text or checker=math)"),
])
def test_bad_checkers_are_one_line_errors(tmp_path, spec, fragment):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "4"}, {"question": "r", "answer": "Paris"}])
    with pytest.raises(WidthdepthError) as error:
        load_task(f"jsonl:{path},{spec}")
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_cli_bad_checker_exits_2_and_names_it(tmp_path, capsys):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "4"}])
    assert main(["run", "--model", "mock:", "--tasks", f"jsonl:{path},checker=latex", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "checker='latex': unknown checker" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "widthdepth.db").exists()


def test_a_math_answer_equal_but_not_identical_to_the_gold_is_right_in_the_surface(tmp_path, make_config):
    """checker=math judges 0.333333 equal to 1/3 though the canonical strings differ: the surface's majority
    must call it right, as the run's own closing table (the family's check of the majority answer) does."""
    from widthdepth.analysis.surface import estimate_surface
    from widthdepth.analysis.traces import load_grid_traces
    from widthdepth.backends.mock import MockBackend
    from widthdepth.closing import closing_table
    from widthdepth.runner import run
    from widthdepth.store import Store

    path = write_jsonl(tmp_path / "third.jsonl", [{"problem": "1/3 to six decimal places?", "answer": "\\frac{1}{3}"}])
    replies = ["Answer: 0.333333", "Answer: 0.333333", "Answer: 0.5"]
    config = make_config(tasks=[f"jsonl:{path},checker=math"], plans=["parallel:3"], problems=1)
    result = run(config, backend=MockBackend(script=lambda request, seed: replies[seed % 3]))
    (row,) = closing_table(result)
    answers = {a.answer for chain in result.plan_runs[0].chains.values() for c in chain for a in c}
    assert answers == {"\\frac{333333}{1000000}", "\\frac{1}{2}"}  # neither is the gold string
    (trace,) = estimate_surface(load_grid_traces(Store.open(config.out))).traces
    assert row.majority == trace.mean(3, 1, "majority") == 1.0
    assert row.coverage == trace.mean(3, 1, "coverage") == 1.0
