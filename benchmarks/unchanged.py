"""Behaviour fingerprint, for refactoring: what the user gets must not change.

Runs (1) the quick study on the built-in reasoner (the preset: 8 tasks × 64 problems, grid:16x8),
(2) adaptive allocation on it: 5-fold cross-validation, then a policy fitted on half and judged on
the other half (allocation.json), then an `adaptive:` run with that policy in a fresh folder, and
(3) a text run on the scripted backend: revise and extend grids on a chain and a search task with
self-verification. Then it digests what each wrote: the store's content (`Store.snapshot()`: timings
and the run log left out), `surface.csv` and `closing.csv` (their timing columns left out),
`verdict.json`, `allocation.json`, the policy file and the printed closing table.

    .venv/bin/python benchmarks/unchanged.py --record benchmarks/unchanged.json   # before a change
    .venv/bin/python benchmarks/unchanged.py --check benchmarks/unchanged.json    # after: exit 1 if any differs

About 3 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

TIMING_COLUMNS = {"wall_seconds"}


def _rounded(value: object) -> object:
    """Floats to 12 significant digits: the last bits of a sum follow the order Python iterates a set,
    which changes from process to process (hash randomisation), so they are noise, not behaviour."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, str):
        try:
            return _rounded(float(value)) if any(c.isdigit() for c in value) and "." in value else value
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(_rounded(value), sort_keys=True, default=repr).encode()).hexdigest()[:16]


def csv_digest(path: Path) -> str:
    with path.open() as handle:
        rows = [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(handle)]
    return digest(rows)


def store_digests(folder: Path) -> dict[str, str]:
    from widthdepth.store import Store

    store = Store.open(folder, create=False)
    try:
        return {f"store.{table}": digest(rows) for table, rows in store.snapshot().items()}
    finally:
        store.close()


def fingerprint(root: Path) -> dict[str, str]:
    from widthdepth.allocation import cross_validate, evaluate, fit_from, problem_records, save_evaluation, select
    from widthdepth.cli import main
    from widthdepth.study import StudyConfig, run_study

    out: dict[str, str] = {}
    study = root / "study"
    run_study(StudyConfig(out=str(study)))
    out.update({f"study.{k}": v for k, v in store_digests(study).items()})
    out["study.surface.csv"] = csv_digest(study / "surface.csv")
    out["study.verdict.json"] = digest(json.loads((study / "verdict.json").read_text()))

    selection = select(study)
    records = problem_records(selection.traces, selection.probe, selection.unit, selection.predictor)
    cv = cross_validate(records, selection.predictor, selection.probe, 3, selection.unit, 5)
    out["allocation.cv.json"] = digest(json.loads(save_evaluation(cv, root).read_text()))
    policy, _, _, _ = fit_from(selection, bins=3, holdout=0.5, seed=0, records=records)
    policy_path = root / "policy.json"
    policy.save(policy_path)
    out["allocation.policy.json"] = digest(json.loads(policy_path.read_text()))
    out["allocation.split.json"] = digest(json.loads(save_evaluation(evaluate(policy, records), root).read_text()))

    adaptive = root / "adaptive"
    budget = policy.levels[len(policy.levels) // 2].budget
    printed = io.StringIO()
    assert main(["run", "--model", "builtin:reasoner", "--tasks", "chain:L=4", "--tasks", "search:kind=subset,n=8",
                 "--plan", f"adaptive:{policy_path}@{budget}", "--problems", "24", "--seed", "5",
                 "--out", str(adaptive)]) == 0
    out.update({f"adaptive.{k}": v for k, v in store_digests(adaptive).items()})

    text = root / "text"
    for plans, verifier in ((["grid:4x2", "grid:3x3,mode=extend"], "self"), (["parallel:5"], "none")):
        args = ["run", "--model", "mock:", "--tasks", "chain:L=2", "--tasks", "search", "--problems", "6",
                "--verifier", verifier, "--out", str(text), "--wide"]
        for plan in plans:
            args += ["--plan", plan]
        stdout = sys.stdout
        sys.stdout = printed
        try:
            assert main(args) == 0
        finally:
            sys.stdout = stdout
    out.update({f"text.{k}": v for k, v in store_digests(text).items()})
    out["text.closing.csv"] = csv_digest(text / "closing.csv")
    assert main(["report", str(text)]) == 0
    out["text.surface.csv"] = csv_digest(text / "surface.csv")
    out["text.verdict.json"] = digest(json.loads((text / "verdict.json").read_text()))
    return out


def main() -> int:
    mode, path = sys.argv[1], Path(sys.argv[2])
    root = Path(tempfile.gettempdir()) / "widthdepth-unchanged"  # one path: it is part of the adaptive plan's spec
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    got = fingerprint(root)
    if mode == "--record":
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(got)} digests in {path}")
        return 0
    expected = json.loads(path.read_text())
    differ = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
    for key in differ:
        print(f"differs: {key}: {expected.get(key)} -> {got.get(key)}")
    print("unchanged" if not differ else f"{len(differ)} of {len(expected)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
