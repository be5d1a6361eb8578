"""The report files, `widthdepth.load`, and `widthdepth report` on scripted runs."""

import json
import re

import pytest

import widthdepth
from scripts import width_then_depth
from widthdepth.backends.mock import MockBackend
from widthdepth.cli import main
from widthdepth.report import write_report
from widthdepth.runner import run


@pytest.fixture
def scripted_run(make_config):
    config = make_config(tasks=["chain:L=1", "chain:L=3", "search"], plans=["grid:4x2"], problems=6)
    run(config, backend=MockBackend(script=width_then_depth_or_digit))
    return config


def width_then_depth_or_digit(request, seed):
    text = request.messages[0][1]
    return width_then_depth(request, seed) if "Start with the number" in text else f"Answer: {seed % 13}"


def test_report_files(scripted_run):
    paths = write_report(scripted_run.out)
    page = paths["report"].read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # phase diagrams for 2 families; per experiment: frontier, heatmap(s), selection, latency
    assert len(images) == 2 + 3 * 4 + 1  # search also has a verifier best-of heatmap
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "width wins" in page and "Cost unit" in page
    assert page.count("Iso-compute view") == 3
    verdict = json.loads(paths["verdict"].read_text())  # strict JSON: no NaN
    assert {"generated_tokens", "serial_tokens"} == set(verdict)
    assert all("sentence" in j for j in verdict["generated_tokens"]["judgements"])
    header = paths["surface"].read_text().splitlines()[0]
    for column in ("task", "w", "d", "aggregator", "accuracy", "ci_low", "ci_high", "generated_tokens", "flops",
                   "serial_tokens", "wall_seconds"):
        assert column in header.split(",")


def test_report_is_reproducible(scripted_run):
    first = {k: p.read_bytes() for k, p in write_report(scripted_run.out).items()}
    second = {k: p.read_bytes() for k, p in write_report(scripted_run.out).items()}
    assert first == second


def test_load_gives_dataframes(scripted_run):
    results = widthdepth.load(scripted_run.out)
    assert len(results.attempts) == 3 * 6 * 8
    assert set(results.surface.task) == {"chain:L=1,m=10", "chain:L=3,m=10", "search:kind=modeq,p=13"}
    assert results.verdict("serial_tokens").judgements


def test_report_command(scripted_run, capsys, tmp_path):
    assert main(["report", scripted_run.out]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()
