"""`widthdepth export DIR`: a folder's store as Parquet (or CSV) files for users' own notebooks.

    widthdepth export runs/study                      # runs/study/export/{attempts,verifications,problems,surface}.parquet
    widthdepth export runs/study --format csv --out /data/study

Tables are streamed: rows are read from SQLite in chunks and each chunk is written as it comes (a
Parquet row group, or CSV lines), so a store of millions of attempts is exported in bounded memory.
Columns keep the store's names and types (text, whole numbers, reals; missing values as nulls). The
surface — every cell's estimated accuracy and mean cost, as `surface.csv` in a report — is exported
beside them where the folder holds a grid run.

    import pyarrow.parquet as pq
    attempts = pq.read_table("runs/study/export/attempts.parquet").to_pandas()
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.store import Store

FORMATS = ("parquet", "csv")
TABLES = ("attempts", "verifications", "problems")
CHUNK = 10_000
"""Rows read and written at a time."""


def export_folder(folder: str | Path, fmt: str = "parquet", out: str | Path | None = None,
                  chunk: int = CHUNK) -> dict[str, Path]:
    """Write the folder's tables (and its surface, where it has a grid run) to `out` (default
    FOLDER/export); returns name -> path."""
    if fmt not in FORMATS:
        raise WidthdepthError(f"--format {fmt!r}: unknown (valid: {', '.join(FORMATS)})")
    folder = Path(folder)
    target = Path(out) if out is not None else folder / "export"
    if target.exists() and not target.is_dir():
        raise WidthdepthError(f"--out {str(target)!r}: is a file, not a folder; choose another --out")
    store = Store.open(folder, create=False)
    try:
        target.mkdir(parents=True, exist_ok=True)
        paths = {table: _write(target / f"{table}.{fmt}", _columns(store, table), _chunks(store, table, chunk), fmt)
                 for table in TABLES}
        surface = _surface(store)
    finally:
        store.close()
    if surface is not None:
        paths["surface"] = _write_frame(surface, target / f"surface.{fmt}", fmt)
    return paths


def _columns(store: Store, table: str) -> list[tuple[str, str]]:
    """(name, declared SQLite type) of a table's columns, in order."""
    return store.columns(table)


def _chunks(store: Store, table: str, size: int) -> Iterator[list[tuple]]:
    cursor = store.rows(table)
    while rows := cursor.fetchmany(size):
        yield [tuple(row) for row in rows]


def _write(path: Path, columns: list[tuple[str, str]], chunks: Iterator[list[tuple]], fmt: str) -> Path:
    partial = path.with_name(path.name + ".partial")  # a killed export leaves no file that looks whole
    if fmt == "csv":
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([name for name, _ in columns])
            for rows in chunks:
                writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, _arrow_type(pa, kind)) for name, kind in columns])
        with pq.ParquetWriter(partial, schema) as writer:
            for rows in chunks:
                writer.write_table(pa.Table.from_arrays(
                    [pa.array([row[i] for row in rows], type=field.type) for i, field in enumerate(schema)],
                    schema=schema))
    partial.replace(path)
    return path


def _arrow_type(pa, kind: str):  # noqa: ANN001, ANN202
    """SQLite's declared type as an Arrow type (its type affinity rules: INT -> integer, REAL/FLOA/DOUB -> real)."""
    if "INT" in kind:
        return pa.int64()
    if any(word in kind for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    return pa.string()


def _surface(store: Store):  # noqa: ANN202 - a pandas frame, or None
    from widthdepth.analysis.surface import estimate_surface
    from widthdepth.analysis.traces import load_grid_traces

    traces = load_grid_traces(store)
    return estimate_surface(traces).frame() if traces else None


def _write_frame(frame, path: Path, fmt: str) -> Path:  # noqa: ANN001
    partial = path.with_name(path.name + ".partial")
    if fmt == "csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(path)
    return path
