"""The Parquet exports: `<warehouse>/parquet/` is a symbolic link to one complete version of
every published table's export, `<warehouse>/.parquet.versions/<version>/<table>/`.

A publish writes the next version beside the published one (tables it did not rebuild are
hard links to the previous files, which are never rewritten), commits the version's number
with the DuckDB tables (`published_exports`), and then moves the link with one atomic rename.
A reader, or a kill at any moment, sees every table old or every table new. The version before
the published one stays until the next publish, for readers still reading it; the others go.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from journey_core.contract.schema import EXPORT_VERSIONS, EXPORTS_LINK, TABLES
from journey_core.model import DuckDBEngine, Engine
from journey_core.warehouse.quoting import columns, ident

#: The link being made, renamed over `parquet` to switch versions.
_NEXT_LINK = ".parquet.link"


def fault_point(name: str) -> None:
    """Fault-injection hook for the crash tests: with JOURNEYS_FAULT_PAUSE=<name>, write the
    name to the file JOURNEYS_FAULT_MARKER and wait there to be killed. Inert otherwise."""
    if os.environ.get("JOURNEYS_FAULT_PAUSE") != name:
        return
    Path(os.environ["JOURNEYS_FAULT_MARKER"]).write_text(name)
    time.sleep(300)


def export_table(engine: Engine, source: str, table: str, folder: Path) -> None:
    """Write one table's Parquet files from `source` (a quoted relation) into `folder` (Hive
    month folders for large tables), on either engine."""
    spec = TABLES[table]
    select = f"select {columns(spec.column_names)} from {source}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    months = [r[0] for r in engine.rows(
        f"select distinct {ident(spec.partition_by)} from {source} order by 1")] \
        if spec.partition_by else []
    if not months:  # small tables, and empty ones (one file still carries the schema)
        engine.write_parquet(select, folder, one_file=True)
    else:
        folder.mkdir()
    # One query per month rather than COPY's partition_by, which costs about 1.6x as much
    # (measured at 10M events). Partition columns stay inside the files too, so readers get
    # them typed (a date).
    for month in months:
        part = folder / f"{spec.partition_by}={'NULL' if month is None else month}"
        where = ident(spec.partition_by) + (" is null" if month is None else " = cast(? as date)")
        engine.write_parquet(f"{select} where {where}", part, [] if month is None else [month])


def link(warehouse_dir: Path) -> Path:
    """Where readers find the exports: `<warehouse>/parquet`."""
    return warehouse_dir / EXPORTS_LINK


def version_folder(warehouse_dir: Path, version: int) -> Path:
    return warehouse_dir / EXPORT_VERSIONS / str(version)


def versions(warehouse_dir: Path) -> list[int]:
    """The export versions on disk, oldest first."""
    folder = warehouse_dir / EXPORT_VERSIONS
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) \
        if folder.is_dir() else []


def current(warehouse_dir: Path) -> int | None:
    """The version `parquet` points at (None: no link yet, or a folder of older releases)."""
    path = link(warehouse_dir)
    if not path.is_symlink():
        return None
    name = Path(os.readlink(path)).name
    return int(name) if name.isdigit() else None


def committed(con: duckdb.DuckDBPyConnection) -> int | None:
    """The version committed with the published tables."""
    rows = con.execute("select max(version) from main.published_exports").fetchall()
    return rows[0][0] if rows else None


def switch(warehouse_dir: Path, version: int) -> None:
    """Point `parquet` at `version` with one rename (a new link replaces the old atomically).
    A `parquet` folder of a release before versions becomes version 0 first."""
    path, new = link(warehouse_dir), warehouse_dir / _NEXT_LINK
    new.unlink(missing_ok=True)
    os.symlink(Path(EXPORT_VERSIONS) / str(version), new, target_is_directory=True)
    if path.is_dir() and not path.is_symlink():  # once per warehouse; `recover` finishes it
        path.rename(version_folder(warehouse_dir, 0))
    fault_point("switch")
    os.replace(new, path)


def prune(warehouse_dir: Path, *, keep_previous: bool = True) -> None:
    """Remove the versions no run or reader needs: all but the published one and (for readers
    still on it, unless `keep_previous` is False) the one before."""
    now = current(warehouse_dir)  # None: nothing published yet, every version is partial
    older = [v for v in versions(warehouse_dir) if now is not None and v < now]
    keep = {now, *(older[-1:] if keep_previous else [])}
    for version in versions(warehouse_dir):
        if version not in keep:
            shutil.rmtree(version_folder(warehouse_dir, version), ignore_errors=True)
    (warehouse_dir / _NEXT_LINK).unlink(missing_ok=True)


def recover(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> None:
    """Finish a publish killed after its commit (point the link at the committed version), and
    remove what a publish killed before its commit left (a partial version)."""
    version = committed(con)
    if version is not None and current(warehouse_dir) != version \
            and version_folder(warehouse_dir, version).is_dir():
        switch(warehouse_dir, version)
    elif not link(warehouse_dir).exists() and versions(warehouse_dir):
        switch(warehouse_dir, versions(warehouse_dir)[-1])  # killed mid-migration
    prune(warehouse_dir)


def _link_tree(source: Path, target: Path) -> None:
    """A table's unchanged export in the next version: hard links (files are never rewritten),
    copies where the file system has none."""
    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    shutil.copytree(source, target, copy_function=link_or_copy)


def write_next(con: duckdb.DuckDBPyConnection, warehouse_dir: Path, published: tuple[str, ...],
               staged: list[str], export: Engine | None = None) -> int:
    """Inside the publish transaction: the next version of every export beside the published
    one (the staged tables from their new `main` tables on the `export` engine, by default
    DuckDB's; the others linked), and its number in `published_exports`. Returns the
    version."""
    export = export or DuckDBEngine(con)
    old = link(warehouse_dir)
    version = max([*versions(warehouse_dir), current(warehouse_dir) or 0]) + 1
    folder = version_folder(warehouse_dir, version)
    folder.mkdir(parents=True)
    for table in published:
        if table in staged:
            export_table(export, f"main.{ident(table)}", table, folder / table)
            fault_point("export")
        elif (old / table).is_dir():
            _link_tree(old / table, folder / table)
    con.execute("delete from main.published_exports")
    con.execute("insert into main.published_exports values (?, ?)",
                [version, datetime.now(UTC)])
    return version
