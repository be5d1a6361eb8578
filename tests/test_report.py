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


def figures_of(page: str) -> dict:
    """The page's figure specs and datasets (the JSON block the page draws from; datasets as rows)."""
    block = re.search(r'<script type="application/json" id="wd-figures">(.*?)</script>', page, re.S)
    store = json.loads(block.group(1).replace("<\\/", "</"))
    for sets in store["data"].values():
        for name, columns in sets.items():
            sets[name] = [dict(zip(columns, values)) for values in zip(*columns.values())]
    return store


def test_report_files(scripted_run):
    paths = write_report(scripted_run.out)
    page = paths["report"].read_text()
    store = figures_of(page)
    # two phase diagrams (compute, latency); per experiment: frontier, heat map, selection, latency
    assert len(store["specs"]) == 2 + 3 * 4
    assert page.count('<div class="chart"') == len(store["specs"])
    outside_scripts = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", outside_scripts)  # nothing loads from the network
    assert page.count("<script") == 3 and "window.vegaEmbed" in page  # the data, the drawing code once, the page's
    assert page.index("The answer at matched compute") < page.index("<details")  # the answer comes first
    assert "width wins" in page and "Cost unit" in page
    assert page.count("Iso-compute view") == 3 and page.count("<details class='experiment'") == 3
    verdict = json.loads(paths["verdict"].read_text())  # strict JSON: no NaN
    assert {"generated_tokens", "serial_tokens"} == set(verdict)
    assert all("sentence" in j for j in verdict["generated_tokens"]["judgements"])
    header = paths["surface"].read_text().splitlines()[0]
    for column in ("task", "w", "d", "aggregator", "accuracy", "ci_low", "ci_high", "generated_tokens", "flops",
                   "serial_tokens", "wall_seconds"):
        assert column in header.split(",")


def test_the_figures_show_the_estimated_surface_and_verdict(scripted_run):
    """What a hover shows is what was estimated: each heat-map cell against surface.csv, each phase mark
    against verdict.json."""
    import pandas as pd

    paths = write_report(scripted_run.out)
    store = figures_of(paths["report"].read_text())
    surface = pd.read_csv(paths["surface"])
    tasks = list(dict.fromkeys(surface.task))
    for i, task in enumerate(tasks):
        rows = surface[surface.task == task]
        shown = {(c["w"], c["d"], c["agg"]): c for c in store["data"][f"e{i}"]["cells"]}
        assert len(shown) == len(rows)
        for r in rows.itertuples():
            cell = shown[(r.w, r.d, r.aggregator)]
            assert cell["acc"] == pytest.approx(r.accuracy, rel=1e-3, abs=1e-9)
            assert (cell["lo"], cell["hi"]) == pytest.approx((r.ci_low, r.ci_high), rel=1e-3, abs=1e-9)
            assert cell["serial"] == pytest.approx(r.serial_tokens, rel=1e-3)
    judged = json.loads(paths["verdict"].read_text())["generated_tokens"]["judgements"]
    marks = store["data"]["top-generated_tokens"]["phase"]
    assert len(marks) == len(judged)
    for mark, j in zip(marks, judged):
        assert mark["budget"] == pytest.approx(j["budget"], rel=1e-3)
        assert mark["who"] == (j["winner"] if j["winner"] in ("width", "depth", "hybrid") else "no winner")
        assert (mark["sig"] == "significant") == j["significant"]


def test_static_report_has_png_figures_and_no_scripts(scripted_run):
    page = write_report(scripted_run.out, static=True)["report"].read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2 + 3 * 4 and "<script" not in page
    import base64

    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)


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


def test_the_drawing_code_is_bundled_once_into_the_cache_and_still_made_where_it_cannot_be_kept(tmp_path,
                                                                                               monkeypatch):
    from widthdepth.report import vega

    monkeypatch.setenv("WIDTHDEPTH_CACHE", str(tmp_path / "cache"))
    vega.javascript.cache_clear()
    script = vega.javascript()
    assert "vegaEmbed" in script and [p.name for p in (tmp_path / "cache").iterdir()] == [
        f"vega-bundle-{__import__('vl_convert').__version__}.js"]  # a whole file, no partial one
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("WIDTHDEPTH_CACHE", str(blocked))
    vega.javascript.cache_clear()
    assert vega.javascript() == script and blocked.read_text() == ""
    vega.javascript.cache_clear()
