"""The report's top screen in words (segments of budgets, task labels, the methods sentence) and
`report A B`: runs side by side, the exchange rate checked against the cells themselves."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys

import pytest

from widthdepth.analysis.frontier import frontier
from widthdepth.analysis.surface import estimate_surface
from widthdepth.analysis.traces import open_traces
from widthdepth.analysis.verdict import Judgement
from widthdepth.report.answer import answer, segments, task_labels, task_phrase
from widthdepth.report.compare import write_comparison
from widthdepth.runner import run


def judgement(budget: float, winner: str, significant: bool, task: str = "chain:L=4,m=10") -> Judgement:
    cells = {"width": "4×1 majority", "depth": "1×4 majority", "hybrid": "2×2 majority"}
    return Judgement(task, "grid:4x4", "chain", 4.0, "flops", budget, winner, None if winner == "none" else "width",
                     {"width": 0.5, "depth": 0.6, "hybrid": 0.55}, cells, 0.1, 0.1, 0.02, significant, winner,
                     cells)


def test_budgets_with_the_same_winner_merge_into_one_segment_with_its_significance():
    judged = [judgement(1e6, "none", False), judgement(2e6, "width", True), judgement(4e6, "width", False),
              judgement(8e6, "depth", True), judgement(16e6, "depth", True)]
    parts = segments(judged)
    assert [(s.who, s.low, s.high, s.significant, s.budgets) for s in parts] == [
        ("single", 1e6, 1e6, 0, 1), ("width", 2e6, 4e6, 1, 2), ("depth", 8e6, 16e6, 2, 2)]
    # the lowest budget, where only one attempt fits, goes without saying
    assert task_phrase(judged, "flops") == ("width wins (significant at 1 of 2 budgets) up to 4M, then depth wins "
                                            "(significant) from 8M")
    assert task_phrase([judgement(1e6, "tie", False)], "flops") == "no strategy wins at any budget"
    ties_above = [judgement(1e6, "depth", True), judgement(2e6, "depth", True), judgement(4e6, "tie", False)]
    assert task_phrase(ties_above, "flops") == "depth wins (significant) up to 2M"
    ties_below = [judgement(1e6, "tie", False), judgement(2e6, "width", False), judgement(4e6, "width", False)]
    assert task_phrase(ties_below, "flops") == "width wins (within the noise) from 2M"
    middle = [judgement(1e6, "width", False), judgement(2e6, "depth", True), judgement(4e6, "hybrid", False),
              judgement(8e6, "hybrid", False)]
    assert task_phrase(middle, "flops") == ("width wins (within the noise) at 1M, then depth wins (significant) at "
                                            "2M, then hybrid wins (within the noise) from 4M")


def test_task_labels_keep_what_tells_a_family_s_tasks_apart():
    labels = task_labels(["chain:L=1,m=10", "chain:L=4,m=10", "search:kind=subset,n=10", "mix:L=4,m=10"])
    assert labels == {"chain:L=1,m=10": "chain L=1", "chain:L=4,m=10": "chain L=4",
                      "search:kind=subset,n=10": "search kind=subset,n=10", "mix:L=4,m=10": "mix L=4,m=10"}


def test_the_answer_groups_tasks_with_the_same_story():
    from widthdepth.analysis.verdict import Verdict

    verdict = Verdict("flops", [judgement(1e6, "width", True, "chain:L=1,m=10"),
                                judgement(1e6, "depth", True, "chain:L=4,m=10"),
                                judgement(1e6, "depth", True, "chain:L=6,m=10")])
    assert answer(verdict, []) == ["On chain — L=1: width wins (significant) at every budget; L=4, L=6: depth "
                                   "wins (significant) at every budget."]


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory):
    """The built-in reasoner (0.25M parameters) and the built-in LM (1.9M) on the same chain tasks."""
    from widthdepth.config import RunConfig

    root = tmp_path_factory.mktemp("sizes")
    small, large = str(root / "reasoner"), str(root / "lm")
    run(RunConfig(model="builtin:reasoner", tasks=["chain:L=2", "chain:L=4"], plans=["grid:8x4"], problems=24,
                  out=small))
    run(RunConfig(model="builtin:lm", tasks=["chain:L=2", "chain:L=4", "search:kind=subset,n=6"], plans=["grid:4x2"],
                  problems=12, max_tokens=256, out=large, threads=2))
    return small, large, root


def _cheapest(frame, task: str, accuracy: float, unit: str) -> float:
    """Brute force from surface.csv: the cheapest cell reaching `accuracy`, verification charged as the
    frontier charges it (best-of pays the verifier)."""
    rows = frame[(frame.task == task) & (frame.aggregator != "coverage") & (frame.accuracy >= accuracy - 1e-12)]
    extra = {"flops": "verifier_flops", "generated_tokens": "verifier_tokens"}[unit]
    costs = rows[unit] + rows[extra].fillna(0) * (rows.aggregator == "best_of")
    return costs.min() if len(costs) else math.inf


def test_runs_side_by_side_on_their_common_tasks_with_the_exchange_rate(two_sizes):
    import pandas as pd

    from widthdepth.report import write_report

    small, large, root = two_sizes
    paths = write_comparison([small, large], out=str(root / "both"))
    record = json.loads(paths["rates"].read_text())
    assert record["tasks"] == ["chain:L=2,m=10", "chain:L=4,m=10"]  # search: in one run only
    assert [r["n_params"] for r in record["runs"]] == [253588, 1869504]
    frames = {f: pd.read_csv(write_report(f)["surface"]) for f in (small, large)}
    surfaces = {f: {ts.trace.task: ts for ts in estimate_surface(open_traces(f)).traces} for f in (small, large)}
    for rate in record["rates"]:
        assert rate["small"] == "builtin:reasoner" and rate["large"] == "llamacpp:lm"
        task, unit = rate["task"], rate["unit"]
        # the levels: the larger model's frontier accuracies (what its best allocation reaches per budget)
        levels = sorted({p.cell.accuracy for p in frontier(surfaces[large][task], unit)
                         if p.strategy == "best" and p.cell is not None and p.cell.accuracy > 0})
        ratios = [_cheapest(frames[small], task, a, unit) / _cheapest(frames[large], task, a, unit) for a in levels]
        finite = [r for r in ratios if math.isfinite(r)]
        assert (rate["levels"], rate["reached"]) == (len(levels), len(finite))
        assert (rate["median"], rate["low"], rate["high"]) == pytest.approx(
            (statistics.median(finite), min(finite), max(finite)), rel=1e-6)
        assert rate["param_factor"] == pytest.approx(253588 / 1869504)
        assert rate["sentence"].startswith(f"{task}: builtin:reasoner against llamacpp:lm")
    page = paths["compare"].read_text()
    assert page.count('<div class="chart"') == 2 and "per token it costs 0.14×" in page


def test_report_of_several_folders_from_the_command_line(two_sizes, tmp_path):
    small, large, root = two_sizes
    done = subprocess.run([sys.executable, "-m", "widthdepth.cli", "report", small, large, "--out", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "c" / "compare.html").exists() and (tmp_path / "c" / "compare.json").exists()
    for args, says in [([small, str(tmp_path / "missing")], "no store at"),
                       ([small, "--out", str(tmp_path / "x")], "--out: a report is written into its run's folder")]:
        done = subprocess.run([sys.executable, "-m", "widthdepth.cli", "report", *args], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "x").exists()
