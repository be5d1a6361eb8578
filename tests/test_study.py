"""`widthdepth study` on the shipped reasoner, shrunk by overrides so it runs in seconds."""

from widthdepth.cli import main
from widthdepth.errors import WidthdepthError
from widthdepth.study import StudyConfig, run_study, study_run_config

import pytest


def test_study_runs_reports_and_prints_the_verdict_table(tmp_path, capsys):
    out = tmp_path / "study"
    code = main(["study", "--out", str(out), "problems=12", "plans=[grid:6x6]",
                 'tasks=["chain:L=1", "chain:L=4", "search:kind=subset,n=6"]'])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    printed = " ".join(" ".join(lines).split())
    assert "who wins at a low, medium and high budget (FLOPs per problem)" in printed
    table = lines[lines.index(next(line for line in lines if line.startswith("who wins"))):][:8]
    rows = [line.split() for line in table if line.strip().startswith(("chain", "search"))]
    assert [r[0] for r in rows] == ["chain", "chain", "search"] and [r[1] for r in rows[:2]] == ["L=1", "L=4"]
    assert max(len(line.rstrip()) for line in table) <= 100  # a table, not blocks, at 100 columns
    assert "W width, D depth, H hybrid" in printed  # the legend under it
    assert (out / "report.html").exists() and (out / "verdict.json").exists()


def test_study_finds_depth_for_long_chains(tmp_path):
    result = run_study(StudyConfig(out=str(tmp_path / "s"), overrides={
        "problems": 24, "plans": ["grid:4x6"], "tasks": ["chain:L=4"]}))
    (row,) = result.rows
    assert row.winners["medium"].startswith("D*") or row.winners["low"].startswith("D*")


def test_bad_study_input_stops_before_anything_runs(tmp_path, capsys):
    assert main(["study", "--out", str(tmp_path / "x"), "tasks=[chain:L=1,search:kind=subset,n=6]"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --tasks 'n=6': unknown task family") and "attempts" not in err
    assert not (tmp_path / "x").exists()


def test_presets_and_bad_presets():
    assert study_run_config(StudyConfig()).plans == ["grid:16x8", "early:16,depth=8", "particles:16,steps=8"]
    assert "early:16" in study_run_config(StudyConfig(model="builtin:lm", preset="full")).plans
    assert study_run_config(StudyConfig(model="llamacpp:smollm2-135m")).plans == ["grid:4x2"]
    with pytest.raises(WidthdepthError, match="--preset 'huge': unknown \\(valid: quick, full\\)"):
        study_run_config(StudyConfig(preset="huge"))


def test_the_text_study_path_runs_on_any_backend(tmp_path):
    """The LLM preset (text prompts, a mix with modular equations) end to end, on the scripted backend."""
    result = run_study(StudyConfig(model="mock:", out=str(tmp_path / "t"), overrides={"problems": 4,
                                                                                      "plans": ["grid:3x2"]}))
    assert result.unit == "generated_tokens"
    assert {row.task for row in result.rows} == {"chain:L=1,m=10", "chain:L=4,m=10", "search:kind=modeq,p=13",
                                                 "mix:L=2,m=10,kind=modeq,p=13"}
    assert (tmp_path / "t" / "report.html").exists()


def test_a_study_in_a_reused_folder_reports_only_what_it_ran(tmp_path, capsys):
    """A folder holding the built-in reasoner's study, 12 problems; then another model's study in it,
    and a study of fewer problems: each prints, reports and judges only what it asked for, and says
    in one line that the folder holds more."""
    import json

    out = str(tmp_path / "study")
    assert main(["study", "--out", out, "problems=12", "plans=[grid:4x4]", "tasks=[chain:L=2]"]) == 0
    capsys.readouterr()
    assert main(["study", "--model", "mock:", "--out", out, "problems=3", "tasks=[chain:L=1]"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "(generated tokens per problem" in printed and "chain:L=2" not in printed.split("report:")[0]
    assert "also holds other models (builtin:reasoner" in printed and "use --out" in printed
    report = (tmp_path / "study" / "report.html").read_text()
    assert "mock:" in report and "builtin:reasoner" not in report and "3 problems; model mock:" in report
    assert set(json.loads((tmp_path / "study" / "verdict.json").read_text())) == {"generated_tokens", "serial_tokens"}

    result = run_study(StudyConfig(out=out, overrides={"problems": 5, "plans": ["grid:4x4"], "tasks": ["chain:L=2"]}))
    report = (tmp_path / "study" / "report.html").read_text()
    assert "5 problems; model builtin:reasoner" in report and "mock:" not in report
    assert any("also holds other models (mock:)" in note for note in result.notes)
    capsys.readouterr()
    assert main(["report", out]) == 0  # the folder itself: everything, and it says so
    printed = " ".join(capsys.readouterr().out.split())
    assert "holds 2 models (builtin:reasoner@" in printed and "mock:)" in printed


def test_the_quick_study_sets_its_methods_against_the_grid(tmp_path, capsys):
    """early stopping and latent particle filtering run in the quick study, beside its grid, and the
    verdict table is followed by each method against the grid at matched compute and latency."""
    import json

    out = tmp_path / "study"
    assert main(["study", "--out", str(out), "problems=12", "tasks=[chain:L=2,mix]"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "methods against the grid, held out" in printed and "vs grid: the method's accuracy minus" in printed
    assert "early:16,depth=8" in printed and "particles:16,steps=8" in printed  # defaults left out
    methods = json.loads((out / "verdict.json").read_text())["methods"]
    assert {(c["task"], c["plan"].split(",")[0]) for c in methods["flops"]} == {
        (t, p) for t in ("chain:L=2,m=10", "mix:L=4,m=10,kind=subset,n=8") for p in ("early:16", "particles:16")}
