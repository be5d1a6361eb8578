"""`widthdepth export`: the store's tables as Parquet and CSV, streamed in chunks, equal to the store row
for row; the surface beside them; bad input in one line, nothing half-written left looking whole."""

from __future__ import annotations

import csv
import sqlite3

import pyarrow.parquet as pq
import pytest

from widthdepth.cli import main
from widthdepth.export import export_folder
from widthdepth.runner import run
from widthdepth.store import DB_NAME


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from widthdepth.config import RunConfig

    out = tmp_path_factory.mktemp("export") / "run"
    run(RunConfig(model="builtin:reasoner", tasks=["chain:L=2", "search:kind=subset,n=6"], plans=["grid:4x3"],
                  problems=20, seed=1, out=str(out)))
    return out


def stored(folder, table: str) -> list[tuple]:
    """The table's rows as a plain `SELECT *` reads them (attempts and verifications are views), sorted."""
    db = sqlite3.connect(folder / DB_NAME)
    try:
        return sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        db.close()


def test_parquet_holds_every_row_as_stored_in_chunks(folder, tmp_path):
    paths = export_folder(folder, "parquet", tmp_path / "p", chunk=100)
    assert set(paths) == {"attempts", "verifications", "problems", "surface"}
    for table in ("attempts", "verifications", "problems"):
        rows = stored(folder, table)
        data = pq.read_table(paths[table])
        assert data.num_rows == len(rows)
        assert sorted((tuple(r.values()) for r in data.to_pylist()), key=repr) == rows
    attempts = pq.ParquetFile(paths["attempts"])
    assert attempts.metadata.num_row_groups == -(-len(stored(folder, "attempts")) // 100)  # written chunk by chunk
    assert str(attempts.schema_arrow.field("completion_tokens").type) == "int64"
    assert str(attempts.schema_arrow.field("confidence").type) == "double"
    surface = pq.read_table(paths["surface"]).to_pandas()
    assert len(surface) > 0 and {"w", "d"} <= set(surface.columns)
    assert not list(tmp_path.glob("p/*.partial"))


def test_csv_through_the_command(folder, tmp_path, capsys):
    assert main(["export", str(folder), "--format", "csv", "--out", str(tmp_path / "c")]) == 0
    assert "attempts" in capsys.readouterr().out
    with (tmp_path / "c" / "attempts.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) - 1 == len(stored(folder, "attempts")) and rows[0][0] == "key"


def test_bad_input_is_one_line_and_exit_2(folder, tmp_path, capsys):
    assert main(["export", str(folder), "--format", "xlsx"]) == 2
    assert "unknown (valid: parquet, csv)" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert "no store" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["export", str(folder), "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and err.count("\n") == 1
