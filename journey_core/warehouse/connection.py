"""The DuckDB warehouse: one file holding internal and published tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from journey_core.contract.schema import TABLES
from journey_core.warehouse.quoting import ident, qualified

if TYPE_CHECKING:
    from journey_core.config import Config

WAREHOUSE_FILE = "journeys.duckdb"
#: Values bound to a statement: by name (`$name`) or by position (`?`).
Params = Mapping[str, Any] | Sequence[Any] | None


def connect(warehouse_dir: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open `<warehouse_dir>/journeys.duckdb` in UTC, creating the folder when writing."""
    warehouse_dir = Path(warehouse_dir)
    if not read_only:
        warehouse_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse_dir / WAREHOUSE_FILE), read_only=read_only)
    # Results must never depend on the host time zone.
    con.execute("set TimeZone = 'UTC'")
    return con


def apply_settings(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """DuckDB's memory limit, spill folder and threads from the config (`duckdb:`)."""
    settings = config.duckdb
    if settings.memory_limit:
        con.execute("set memory_limit = ?", [settings.memory_limit.strip()])
    if settings.temp_directory:
        folder = Path(settings.temp_directory)
        folder = folder if folder.is_absolute() else config.base_dir / folder
        folder.mkdir(parents=True, exist_ok=True)
        # DuckDB cannot switch spill folders once one was used: set it only when it differs.
        if scalar(con, "select current_setting('temp_directory')") != str(folder):
            con.execute("set temp_directory = ?", [str(folder)])
    if settings.threads:
        con.execute("set threads = ?", [int(settings.threads)])


def ensure_tables(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> None:
    """Create the named tables (default: all) with their contract schema when missing, and
    upgrade the internal tables (kept across runs) of an older warehouse that lack a column
    (`upgrade_table`). A published table is replaced whole by the next publish anyway."""
    existing = set(table_names(con, "main"))
    for name in names or list(TABLES):
        if name not in existing and not exists(con, "main", name):  # a view (after Spark)
            con.execute(TABLES[name].ddl("main"))
        elif not TABLES[name].published:
            upgrade_table(con, name)


def upgrade_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """A table made before a column of its contract existed is rebuilt in the contract's
    column order, the new columns filled by their `upgrade` expression, in one transaction.
    False when the table already has every column."""
    spec = TABLES[name]
    have = {row[0] for row in con.execute(
        "select column_name from duckdb_columns() where schema_name = 'main' "
        "and table_name = ? and database_name = current_database()", [name]).fetchall()}
    missing = [c for c in spec.columns if c.name not in have]
    if not missing:
        return False
    unfillable = [c.name for c in missing if c.upgrade is None and not c.nullable]
    if unfillable:
        raise RuntimeError(f"main.{name} lacks column(s) {unfillable} and has no way to fill "
                           "them: rebuild the warehouse")
    fills = ", ".join(ident(c.name) if c.name in have else
                      f"{c.upgrade or 'null'} as {ident(c.name)}" for c in spec.columns)
    old, temp = qualified("main", name), f"_upgrade_{name}"
    new = qualified("main", temp)
    con.execute("begin transaction")
    try:
        con.execute(spec.ddl("main", temp))
        con.execute(f"insert into {new} select {fills} from {old}")
        con.execute(f"drop table {old}")
        con.execute(f"alter table {new} rename to {ident(name)}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return True


def table_names(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The tables (not views) of `schema` in the connection's database."""
    return [row[0] for row in con.execute(
        "select table_name from duckdb_tables() where schema_name = ? "
        "and database_name = current_database()", [schema]).fetchall()]


def exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """A table or a view `schema.name` exists in the connection's database."""
    return bool(scalar(con, "select count(*) from (select schema_name, table_name as name, "
                            "database_name from duckdb_tables() union all select schema_name, "
                            "view_name, database_name from duckdb_views()) "
                            "where schema_name = ? and name = ? "
                            "and database_name = current_database()", [schema, name]))


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> Any:
    """First column of the first row (None when no row); the result is fully consumed."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows else None


def row_count(con: duckdb.DuckDBPyConnection, table: str, schema: str | None = None) -> int:
    """Rows of `table` (in `schema`, else as the search path finds it)."""
    return scalar(con, f"select count(*) from "
                       f"{qualified(schema, table) if schema else ident(table)}")
