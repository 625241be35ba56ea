"""The Parquet exports: one folder per published table under `<warehouse>/parquet/`, written
beside the published ones (`.parquet.next/`) and swapped in with two renames.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import duckdb

from journey_core.contract.schema import TABLES
from journey_core.warehouse.quoting import columns, ident, literal

#: Target size of one Parquet file: large enough for BI engines, small enough to split work.
PARQUET_FILE_BYTES = "256MB"


def fault_point(name: str) -> None:
    """Fault-injection hook for the crash tests: with JOURNEYS_FAULT_PAUSE=<name>, write the
    name to the file JOURNEYS_FAULT_MARKER and wait there to be killed. Inert otherwise."""
    if os.environ.get("JOURNEYS_FAULT_PAUSE") != name:
        return
    Path(os.environ["JOURNEYS_FAULT_MARKER"]).write_text(name)
    time.sleep(300)


def folders(warehouse_dir: Path) -> tuple[Path, Path, Path]:
    """The published exports, the next version being written, the version being replaced."""
    return (warehouse_dir / "parquet", warehouse_dir / ".parquet.next",
            warehouse_dir / ".parquet.previous")


def export_table(con: duckdb.DuckDBPyConnection, source: str, table: str,
                 folder: Path) -> None:
    """Write one table's Parquet files from `source` (a quoted relation) into `folder` (Hive
    month folders for large tables)."""
    spec = TABLES[table]
    select = f"select {columns(spec.column_names)} from {source}"
    folder.mkdir(parents=True)
    months = [r[0] for r in con.execute(
        f"select distinct {ident(spec.partition_by)} from {source} order by 1").fetchall()] \
        if spec.partition_by else []
    if not months:  # small tables, and empty ones (one file still carries the schema)
        con.execute(f"copy ({select}) to {literal(folder / 'data.parquet')} "
                    "(format parquet, compression zstd)")
    # One query per month rather than COPY's partition_by, which costs about 1.6x as much
    # (measured at 10M events). Partition columns stay inside the files too, so readers get
    # them typed (a date).
    for month in months:
        part = folder / f"{spec.partition_by}={'NULL' if month is None else month}"
        where = f"{ident(spec.partition_by)} " + ("is null" if month is None else "= ?::date")
        con.execute(f"copy ({select} where {where}) to {literal(part)} (format parquet, "
                    f"compression zstd, file_size_bytes {literal(PARQUET_FILE_BYTES)})",
                    [] if month is None else [month])


def recover(warehouse_dir: Path) -> None:
    """Finish or undo a publish that was killed while swapping Parquet folders."""
    current, nxt, previous = folders(warehouse_dir)
    if not current.exists() and previous.exists():
        previous.rename(current)  # killed between the two renames: the old version is whole
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(nxt, ignore_errors=True)


def write_next(con: duckdb.DuckDBPyConnection, warehouse_dir: Path, published: tuple[str, ...],
               staged: list[str]) -> None:
    """The next version of every export beside the published one: the staged tables from
    their new `main` tables, the others copied."""
    current, nxt, _ = folders(warehouse_dir)
    nxt.mkdir(parents=True)
    for table in published:
        if table in staged:
            export_table(con, f"main.{ident(table)}", table, nxt / table)
            fault_point("export")
        elif (current / table).exists():
            shutil.copytree(current / table, nxt / table)


def swap(warehouse_dir: Path) -> None:
    """After the commit: the next version replaces the published one, by two renames
    (`recover` finishes a swap killed in between)."""
    current, nxt, previous = folders(warehouse_dir)
    if current.exists():
        current.rename(previous)
    fault_point("swap")
    nxt.rename(current)
    shutil.rmtree(previous, ignore_errors=True)
