"""The runner with the scripted backend: traces, sharing, resume, failures, verification."""

import json
import os
from collections import Counter

import pytest

from widthdepth.backends.mock import MockBackend
from widthdepth.closing import closing_table
from widthdepth.errors import WidthdepthError
from widthdepth.runner import run
from widthdepth.store import Store
from widthdepth.tasks.prompts import EXTEND_CUE


def test_grid_trace_shape_links_and_costs(make_config):
    config = make_config(tasks=["chain:L=2"], plans=["grid:3x2"], problems=2)
    result = run(config, backend=MockBackend())
    (plan_run,) = result.plan_runs
    assert result.generated == 12 and result.reused == 0
    for chains in plan_run.chains.values():
        assert len(chains) == 3
        for w, chain in enumerate(chains):
            assert [a.d for a in chain] == [1, 2] and all(a.w == w for a in chain)
            first, second = chain
            assert first.parent_key is None and second.parent_key == first.key
            assert second.mode == "revise" and first.mode == ""
            assert second.serial_tokens == first.completion_tokens + second.completion_tokens
            assert json.dumps(first.text)[1:-1] in second.prompt  # the revision shows the previous attempt
    store = Store.open(config.out)
    assert store.counts()["attempts"] == 12


def test_round_one_chains_share_one_request_with_consecutive_seeds(make_config):
    backend = MockBackend()
    run(make_config(tasks=["chain:L=1"], plans=["parallel:4"], problems=2), backend=backend)
    assert [r.n for r in backend.calls] == [4, 4]


def test_rerun_generates_nothing_and_plans_share_attempts(make_config):
    config = make_config(tasks=["search"], plans=["grid:4x2"])
    run(config, backend=MockBackend())
    backend = MockBackend()
    again = run(config.model_copy(update={"plans": ["parallel:2", "grid:4x2"]}), backend=backend)
    assert backend.calls == [] and again.generated == 0 and again.reused == 3 * (2 + 8)
    bigger = run(config.model_copy(update={"plans": ["grid:6x2"]}), backend=MockBackend())
    assert bigger.generated == 3 * 2 * 2  # only the two new chains are generated


class DyingBackend(MockBackend):
    """Stops the process-equivalent after `budget` samples (what kill -9 does to a run)."""

    def __init__(self, budget):
        super().__init__()
        self.budget = budget

    def generate(self, requests):
        for sample in super().generate(requests):
            if self.budget == 0:
                raise KeyboardInterrupt
            self.budget -= 1
            yield sample


@pytest.mark.parametrize("budget", [0, 1, 5, 13, 20])
def test_interrupted_run_resumes_to_the_same_store(make_config, tmp_path, budget):
    whole = make_config(tasks=["chain:L=3", "search"], plans=["grid:3x3"], out=str(tmp_path / "whole"))
    run(whole, backend=MockBackend())
    broken = whole.model_copy(update={"out": str(tmp_path / "broken")})
    with pytest.raises(KeyboardInterrupt):
        run(broken, backend=DyingBackend(budget))
    assert Store.open(broken.out).counts()["attempts"] == budget
    resumed = run(broken, backend=MockBackend())
    assert resumed.generated == 2 * 3 * 9 - budget
    assert Store.open(broken.out).snapshot() == Store.open(whole.out).snapshot()


def test_failures_are_recorded_apart_and_retried(make_config):
    config = make_config(tasks=["chain:L=1"], plans=["parallel:8"], problems=4)
    result = run(config, backend=MockBackend(fail=0.3))
    statuses = Counter(a.status for a in Store.open(config.out).attempts())
    assert statuses["failed"] > 0 and statuses["ok"] > 0
    (row,) = closing_table(result)
    assert row.failed == statuses["failed"]
    failed = [a for a in Store.open(config.out).attempts() if a.failed]
    assert all(a.correct is None and a.final_answer is None for a in failed)
    retry = run(config, backend=MockBackend())
    assert retry.generated == statuses["failed"]
    assert all(not a.failed for a in Store.open(config.out).attempts())


def test_revision_without_an_answer_keeps_the_chain_answer(make_config):
    def script(request, seed):
        return "Answer: 4" if request.messages and "previous attempt" not in request.messages[0][1] else "hmm"

    result = run(make_config(tasks=["chain:L=1"], plans=["sequential:2"], problems=1),
                 backend=MockBackend(script=script))
    (chain,) = next(iter(result.plan_runs[0].chains.values()))
    assert chain[1].answer is None and chain[1].final_answer == "4"


def test_extend_mode_continues_raw_text(make_config):
    backend = MockBackend()
    result = run(make_config(tasks=["chain:L=2"], plans=["sequential:3,mode=extend"], problems=1), backend=backend)
    (chain,) = next(iter(result.plan_runs[0].chains.values()))
    assert backend.calls[1].prompt.endswith(chain[0].text + EXTEND_CUE)
    assert backend.calls[2].prompt.endswith(chain[0].text + EXTEND_CUE + chain[1].text + EXTEND_CUE)
    assert chain[2].mode == "extend" and chain[2].prompt_tokens > chain[1].prompt_tokens


def test_extend_needs_raw_continuation(make_config):
    class ChatOnly(MockBackend):
        def __init__(self):
            super().__init__()
            self.info = self.info.__class__(**{**self.info.__dict__, "supports_raw_continuation": False})

    config = make_config(tasks=["chain:L=1"], plans=["grid:2x2,mode=extend"])
    with pytest.raises(WidthdepthError, match="mode=extend continues raw text"):
        run(config, backend=ChatOnly())
    assert not os.path.exists(config.out)


def test_exact_verifier_scores_search_and_best_of_uses_it(make_config):
    config = make_config(tasks=["search"], plans=["parallel:6"], problems=4)
    result = run(config, backend=MockBackend())
    plan_run = result.plan_runs[0]
    assert plan_run.verifier == "exact"
    for problem in plan_run.problems:
        for (a,) in plan_run.chains[problem.key]:
            v = plan_run.verifications[a.key]
            assert v.score == float(plan_run.family.verify(problem, a.final_answer))
    (row,) = closing_table(result)
    assert row.best_of == row.coverage  # an exact verifier finds a correct answer whenever one exists


def test_self_verifier_records_verdict_and_cost(make_config):
    config = make_config(tasks=["chain:L=1"], plans=["parallel:2"], problems=2, verifier="self")
    result = run(config, backend=MockBackend())
    verifications = result.plan_runs[0].verifications
    assert len(verifications) == 4
    for v in verifications.values():
        assert v.verifier == "self:mock:" and v.prompt_tokens > 0
        assert v.score == pytest.approx(0.9, abs=0.02)  # from the mock's first-token log-probabilities
    (row,) = closing_table(result)
    assert row.cost.verifier_tokens > 0 and row.cost.verifier_flops > 0


def test_exact_verifier_refused_where_there_is_none(make_config):
    with pytest.raises(WidthdepthError, match="no gold-free checker"):
        run(make_config(tasks=["chain:L=1"], plans=["parallel:2"], verifier="exact"), backend=MockBackend())


def test_closing_table_matches_a_hand_count(make_config):
    config = make_config(tasks=["chain:L=1"], plans=["grid:2x2"], problems=3)
    result = run(config, backend=MockBackend(script=lambda r, seed: f"Answer: {seed % 3}"))
    rows = closing_table(result)
    assert [(r.w, r.d) for r in rows] == [(2, 1), (2, 2)]
    plan_run = result.plan_runs[0]
    covered = sum(any(c[0].correct for c in plan_run.chains[p.key]) for p in plan_run.problems)
    assert rows[0].coverage == pytest.approx(covered / 3)
    tokens = sum(c[0].completion_tokens for p in plan_run.problems for c in plan_run.chains[p.key])
    assert rows[0].cost.generated_tokens == pytest.approx(tokens / 3)
    assert rows[1].cost.generated_tokens > rows[0].cost.generated_tokens
