"""The `rule` family (issue 21): golds replay the hidden rule, and the Bayes-optimal answer and the
posterior of the gold equal a brute force over every sequence of operations."""

import itertools
from fractions import Fraction

import pytest

from widthdepth.errors import WidthdepthError
from widthdepth.tasks import load_task


def run_steps(steps, x, m):
    for op, c in steps:
        x = {"add": x + c, "mul": x * c, "sub": x - c}[op] % m
    return x


def brute_posterior(structure, ops):
    """Every sequence of L operations (equally likely), kept where it fits the examples."""
    m, counts = structure["size"], {}
    moves = [(op, c) for op in ops for c in range(1, 10)]
    for steps in itertools.product(moves, repeat=structure["L"]):
        if all(run_steps(steps, x, m) == y for x, y in structure["examples"]):
            y = run_steps(steps, structure["query"], m)
            counts[y] = counts.get(y, 0) + 1
    total = sum(counts.values())
    return {y: Fraction(n, total) for y, n in counts.items()}


@pytest.mark.parametrize("spec, ops", [("rule:L=1,k=2", ("add", "mul")), ("rule:L=2,k=1,m=7", ("add", "mul")),
                                       ("rule:L=3,k=2,m=5,ops=add+mul+sub", ("add", "mul", "sub"))])
def test_gold_bayes_and_posterior_match_a_brute_force(spec, ops):
    family = load_task(spec)
    for problem in family.problems(12, seed=1):
        s = problem.structure
        assert problem.gold == (str(run_steps(s["steps"], s["query"], s["size"])),)
        assert all(run_steps(s["steps"], x, s["size"]) == y for x, y in s["examples"])
        assert len({x for x, _ in s["examples"]} | {s["query"]}) == s["k"] + 1  # distinct inputs
        posterior = brute_posterior(s, ops)
        best = max(posterior.values())
        assert s["bayes"] == str(min(y for y, p in posterior.items() if p == best))
        assert s["posterior"] == pytest.approx(float(posterior[int(problem.gold[0])]), abs=1e-6)
        assert family.check(problem, problem.gold[0]) and family.verify(problem, problem.gold[0]) is None


def test_more_examples_pin_the_rule_down():
    bayes = [sum(p.structure["bayes"] == p.gold[0] for p in load_task(f"rule:L=2,k={k}").problems(300, 0)) / 300
             for k in (1, 3, 6)]
    assert bayes[0] < 0.6 < bayes[1] < bayes[2] == 1.0


def test_demonstrations_answer_their_question_and_the_draft_does_not():
    family = load_task("rule:L=2,k=3")
    for demo in family.demonstrations(3):
        query = int(demo.question.splitlines()[-1].split()[-1].rstrip("?"))
        assert demo.solution.endswith("Answer: " + family.parse(demo.solution))
        assert family.parse(demo.solution) != family.parse(demo.flawed_solution)
        assert f"for {query}?" in demo.question


@pytest.mark.parametrize("bad, fragment", [("rule:k=10", "k=10 is out of range"), ("rule:m=17", "m=17 is out of range"),
                                           ("rule:ops=add+pow", "unknown operation 'pow'"), ("rule:n=3", "unknown parameter 'n'")])
def test_bad_rule_specs(bad, fragment):
    with pytest.raises(WidthdepthError, match=fragment):
        load_task(bad)
