"""The CLI: bad input gives one clear line and exit 2 without touching the store; good input runs."""

import json
import subprocess
import sys

import pytest
import yaml

from widthdepth.cli import main
from widthdepth.store import DB_NAME, Store


@pytest.fixture
def stored_run(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--model", "mock:", "--tasks", "chain:L=1", "--plan", "parallel:2", "--problems", "2",
                 "--out", str(out)]) == 0
    return out


def db_bytes(out):
    return (out / DB_NAME).read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--model", "llamacpp:nope"], "error: --model 'llamacpp:nope': unknown model 'nope' (valid: smollm2-135m, gemma3-270m"),
    (["--model", "gpt:x"], "error: --model 'gpt:x': unknown model (valid: llamacpp:smollm2-135m"),
    (["--model", "llamacpp:/no/such.gguf"], "error: --model 'llamacpp:/no/such.gguf': no such GGUF file"),
    (["--tasks", "chian:L=2"], "error: --tasks 'chian:L=2': unknown task family 'chian' (valid: chain, search, rule, recall, mix, jsonl, code)"),
    (["--plan", "grid:4by2"], "error: --plan 'grid:4by2': expected grid:NxD, e.g. grid:4x2"),
    (["--problems", "0"], "error: problems: Input should be greater than or equal to 1"),
    (["--verifier", "oracle"], "error: --verifier 'oracle': unknown verifier (valid: auto, exact, steps, self, latent, none, reward:URL)"),
    (["colour=blue"], "error: unknown setting 'colour' (valid: model, tasks, plans"),
    (["problems"], "error: override 'problems': expected key=value"),
    (["--tasks", "mix:L=100"], "error: --tasks 'mix:L=100': L=100 is out of range 1..64"),  # the user's own spec
])
def test_bad_input_is_one_line_exit_2_and_store_untouched(stored_run, capsys, args, message):
    before = db_bytes(stored_run)
    base = ["run", "--model", "mock:", "--tasks", "chain:L=1", "--plan", "parallel:2", "--out", str(stored_run)]
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1
    assert db_bytes(stored_run) == before


def test_malformed_jsonl_names_file_and_line(tmp_path, stored_run, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text('{"question": "1+1", "answer": "2"}\n{"question": "2+2", "answer": 4,}\n')
    before = db_bytes(stored_run)
    assert main(["run", "--model", "mock:", "--tasks", f"jsonl:{data}", "--out", str(stored_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {data}:2: not valid JSON") and len(err.splitlines()) == 1
    assert db_bytes(stored_run) == before


def test_recipe_with_overrides_and_saved_config(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"model": "mock:", "tasks": ["chain:L=2", "search"], "plans": ["grid:2x2"],
                                      "problems": 5, "out": str(tmp_path / "r")}))
    assert main(["run", "--recipe", str(recipe), "problems=2", "plans=[parallel:3]", "--seed", "4"]) == 0
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["problems"] == 2 and saved["plans"] == ["parallel:3"] and saved["seed"] == 4
    assert saved["tasks"] == ["chain:L=2", "search"]
    out = capsys.readouterr().out
    assert "grid:3x1" in out and "chain:L=2,m=10" in out and "search:kind=modeq,p=13" in out
    runs = Store.open(tmp_path / "r").db.execute("SELECT config FROM runs").fetchall()
    assert json.loads(runs[0][0])["problems"] == 2


def test_bad_recipe_line_is_named(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model: 'mock:'\nplans: [grid:2x2\n")
    assert main(["run", "--recipe", str(recipe)]) == 2
    assert f"{recipe}:" in capsys.readouterr().err


def test_unknown_recipe_key(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model: 'mock:'\nproblem: 3\n")
    assert main(["run", "--recipe", str(recipe)]) == 2
    assert "unknown setting 'problem'" in capsys.readouterr().err


def test_closing_table_and_cost_statement(stored_run, capsys):
    assert main(["run", "--model", "mock:", "--tasks", "chain:L=1", "--plan", "parallel:2", "--problems", "2",
                 "--out", str(stored_run)]) == 0
    out = capsys.readouterr().out
    for column in ("maj", "cov", "gen", "serial", "FLOPs", "maj: majority vote", "cov: coverage"):
        assert column in out
    assert "reused 4 from the store" in out and "cost: prompt_tokens" in out


@pytest.mark.parametrize("columns", [80, 100])
def test_terminal_output_fits_80_and_100_columns(tmp_path, columns):
    """The closing table, the legend and the progress bar fit the terminal; no number is cut short
    (`1,217…`, `0:…`); the full table is in OUT/closing.csv and `--wide` prints every column."""
    import csv
    import os
    import re

    out = tmp_path / "out"
    command = [sys.executable, "-m", "widthdepth.cli", "run", "--model", "mock:", "--tasks", "chain:L=3,m=97",
               "--tasks", "search:kind=modeq,p=13", "--plan", "grid:16x3", "--plan", "parallel:4", "--problems", "3",
               "--max-tokens", "2000", "--out", str(out)]
    env = {**os.environ, "COLUMNS": str(columns)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    assert max(len(line) for line in lines) <= columns, max(lines, key=len)
    assert not re.search(r"[\d,.:]…", done.stdout + done.stderr), "a number was cut short"
    assert "chain:L=3,m=97 · grid:16x3" in done.stdout and "search:kind=modeq,p=13 · grid:4x1" in done.stdout
    assert re.search(r"16×3\s+\d\.\d\d", done.stdout)
    with (out / "closing.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * (3 + 1) and {"task", "plan", "w", "d", "majority", "generated_tokens"} <= set(rows[0])
    wide = subprocess.run(command + ["--wide"], capture_output=True, text=True, env=env, check=True).stdout
    assert re.search(r"chain:L=3,m=97\s*│\s*grid:16x3\s*│\s*16×3", wide)


def test_models_and_tasks_listings(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "llamacpp:smollm2-135m" in out and "llamacpp:gemma3-270m" in out
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("chain", "search", "jsonl", "parallel", "sequential", "grid", "exact", "self"):
        assert name in out


def test_console_script_exit_status(tmp_path):
    done = subprocess.run([sys.executable, "-m", "widthdepth.cli", "run", "--plan", "grid:x", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2 and "expected grid:NxD" in done.stderr
    assert not (tmp_path / "o").exists()


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main(["run", "--model", "mock:", "--tasks", "chain:L=1", "--plan", "parallel:2", "--out", str(target)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {str(target)!r}: is a file, not a folder; choose another --out"
    assert target.read_text() == "keep me"


def test_allocation_on_an_incomplete_grid_says_what_was_left_out(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--model", "mock:", "--tasks", "chain:L=2", "--plan", "grid:4x2", "--problems", "6",
                 "--out", str(out)]) == 0
    store = Store.open(out)
    with store.db:
        store.db.execute("DELETE FROM attempts WHERE d = 2 AND problem_key IN "
                         "(SELECT key FROM problems ORDER BY idx LIMIT 4)")  # as a run killed in round 2 leaves it
    store.close()
    capsys.readouterr()
    assert main(["allocate", "eval", str(out), "--folds", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: --folds 3: must be between 2 and the number of problems (2); 4 more were left out because "
                   "their grid is incomplete (rerun the grid's `widthdepth run` command to complete it)")
    with Store.open(out).db as db:
        db.execute("DELETE FROM attempts WHERE d = 2")
    assert main(["allocate", "eval", str(out)]) == 2
    assert "no problem is left to fit or judge on: 6 problems were left out because their grid is incomplete" in \
        capsys.readouterr().err


def test_help_shows_every_default_and_agrees_with_the_readme():
    """`run -h` (and --help) shows each setting's default; the README's options table gives the same
    default; `--verifier auto` has one definition, shown by --help, `widthdepth tasks` and the README."""
    import re
    from pathlib import Path

    from widthdepth.config import RunConfig
    from widthdepth.verifiers import VERIFIERS

    env = {"COLUMNS": "250", "PATH": "/usr/bin:/bin"}
    helps = [subprocess.run([sys.executable, "-m", "widthdepth.cli", "run", flag], capture_output=True, text=True,
                            env=env, check=True).stdout for flag in ("-h", "--help")]
    assert helps[0] == helps[1]
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", helps[0]).split())
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = {}
    for cells in (line.split(" | ") for line in readme.splitlines() if line.startswith("| `--")):
        options = re.findall(r"`--([a-z-]+)`", cells[0])
        defaults = re.split(r",\s*(?![^()]*\))", cells[1])  # commas outside parentheses
        table.update(zip(options, defaults if len(defaults) == len(options) else [cells[1]] * len(options)))
    for name, field in RunConfig.model_fields.items():
        default = field.get_default(call_default_factory=True)
        default = default[0] if isinstance(default, list) else default
        assert f"(default: {default})." in shown, name
        option = {"plans": "plan"}.get(name, name).replace("_", "-")
        assert table[option].replace("`", "").split(" ")[0] == str(default), (option, table[option])
    auto = " ".join(VERIFIERS["auto"].split())
    assert f"auto: {auto}" in shown and readme.count(f"auto: {auto}") == 2
    tasks = subprocess.run([sys.executable, "-m", "widthdepth.cli", "tasks"], capture_output=True, text=True,
                           env=env, check=True).stdout
    assert auto in " ".join(re.sub(r"[│┃]", " ", tasks).split())
