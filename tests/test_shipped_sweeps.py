"""The `full` sweeps' shipped results (docs/sweeps/) are what today's presets plan, and the command redraws
their figure, page and the README's figures from them without training anything."""
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sweeps"
README = " ".join((DOCS.parent.parent / "README.md").read_text().split())  # the reflow-proof text


def redraw(experiment: str, tmp_path, capsys, monkeypatch) -> str:
    from widthdepth.cli import main
    from widthdepth.lab import sweep

    def no_training(*args, **kwargs):
        raise AssertionError("the shipped results no longer match the preset: a model would be trained")

    monkeypatch.setattr(sweep, "train", no_training)
    folder = tmp_path / experiment
    folder.mkdir()
    shutil.copy(DOCS / f"{experiment}-full" / "results.jsonl", folder / "results.jsonl")
    assert main(["lab", "sweep", "--experiment", experiment, "--preset", "full", "--out", str(folder),
                 "--device", "cpu"]) == 0
    assert (folder / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any((folder / "models").iterdir())
    assert "× 3 seeds" in (folder / "report.html").read_text()
    out = " ".join(capsys.readouterr().out.split())
    assert f"{experiment} sweep (full)" in out
    return out


def test_the_readme_critical_depths_come_from_the_shipped_depth_sweep(tmp_path, capsys, monkeypatch):
    out = redraw("depth", tmp_path, capsys, monkeypatch)  # every planned model has its rows: none trained
    assert ("critical depth (stack, accuracy >= 0.9 from there on) [95% interval]: L=1: 1 [1, 1], L=2: 2 [2, 2], "
            "L=4: 8 [8, 64], L=6: none up to 64 [32, none], L=8: none up to 64 [none, none]") in out
    assert "L=1: none up to 64 (reached at 1, lost deeper)" in out
    assert "critical depth (anyloop, accuracy >= 0.9 from there on) [95% interval]: L=1: 4 [2, none]" in out
    assert "8 for L = 4 [8, 64]" in README and "L = 6 beyond 64 by the means (the interval, [32, none]" in README


def test_the_readme_shape_contrasts_come_from_the_shipped_shape_sweep(tmp_path, capsys, monkeypatch):
    out = redraw("shape", tmp_path, capsys, monkeypatch)
    assert "same steps, chain 4: 32 layers against 2: +0.30 [+0.13, +0.53]: deep and thin wins; best: 4 layers" in out
    assert "same steps, chain 6: 32 layers against 2: +0.16 [+0.06, +0.25]: deep and thin wins; best: 8 layers" in out
    assert "same steps, search 6: 32 layers against 2: -0.10 [-0.19, -0.02]: wide wins" in out
    assert "same training FLOPs, chain 4: 32 layers against 2: +0.26 [+0.10, +0.45]" in out
    assert "chain 4 by +0.30 [+0.13, +0.53] and chain 6 by +0.16 [+0.06, +0.25]" in README
    assert "(n = 6: 0.40 with 2–4 layers, 0.29 with 32; -0.10 [-0.19, -0.02])" in README
