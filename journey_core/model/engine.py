"""The engine seam: everything the model layer asks of a SQL engine, behind one small interface.

The models (`sql/`), the table graph, the builder and the incremental planner speak only to
`Engine`. Two engines implement it: `DuckDBEngine` here, over a connection to the warehouse
file, and `SparkEngine` (`journey_core.model.spark`, with the optional `pyspark`), over a Spark
session; the models run unchanged on both.
Names and paths reach SQL text only through `journey_core.warehouse.quoting`; values are bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from journey_core.identity import label_components_duckdb
from journey_core.warehouse import Params, ensure_tables, exists, scalar, table_names
from journey_core.warehouse.quoting import ident, literal

#: Target size of one Parquet file: large enough for BI engines, small enough to split work.
PARQUET_FILE_BYTES = "256MB"


class Engine(Protocol):
    """A SQL engine the models run on."""

    #: The errors a failed statement raises (a model failing names its file with them).
    errors: tuple[type[Exception], ...]
    #: What the tables are built on, as a run reports it: `duckdb`, `spark local[2]`, ...
    where: str

    def execute(self, sql: str, params: Params = None) -> None:
        """Run a statement."""

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a query; every row."""

    def scalar(self, sql: str, params: Params = None) -> Any:
        """Run a query; the first column of its first row (None without rows)."""

    def arrow(self, sql: str, params: Params = None) -> pa.Table:
        """Run a query; its result as an Arrow table."""

    def create_table(self, target: str, select: str, params: Params = None) -> None:
        """`target` (a quoted name) becomes a table holding the select's rows."""

    def create_view(self, target: str, select: str) -> None:
        """`target` (a quoted name) becomes a view of the select."""

    def exists(self, schema: str, name: str) -> bool:
        """A table or view `schema.name` exists."""

    def ensure_tables(self, names: list[str]) -> None:
        """Create these contract tables in `main` where missing."""

    def use(self, *schemas: str) -> None:
        """New tables go to the first schema; names resolve in these schemas, in order."""

    def create_schema(self, name: str) -> None: ...

    def drop_schema(self, name: str) -> None:
        """Drop the schema and everything in it, if it exists."""

    def register(self, name: str, table: pa.Table) -> Any:
        """A context manager: `name` reads the Arrow table while it is open."""

    def tables(self, schema: str) -> list[str]:
        """The names of the tables (not views) in `schema`."""

    def write_parquet(self, select: str, folder: Path, params: Params = None, *,
                      one_file: bool = False) -> None:
        """Write the select's rows as zstd Parquet into the new `folder`: `data.parquet`
        (`one_file`), else `data_<n>.parquet` files of about `PARQUET_FILE_BYTES`."""

    def label_components(self) -> int:
        """The identity step's connected components of `int_identity_edges` as the temporary
        table `_components` (`journey_core.identity.StitchEngine`); the number of
        identifiers."""


class DuckDBEngine:
    """The embedded default: DuckDB, on the warehouse connection."""

    errors: tuple[type[Exception], ...] = (duckdb.Error,)
    where = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, sql: str, params: Params = None) -> None:
        self.con.execute(sql, params or [])

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: Params = None) -> Any:
        return scalar(self.con, sql, params)

    def arrow(self, sql: str, params: Params = None) -> pa.Table:
        return self.con.sql(sql, params=params or None).to_arrow_table()

    def create_table(self, target: str, select: str, params: Params = None) -> None:
        self.con.execute(f"create or replace table {target} as\n{select}", params or [])

    def create_view(self, target: str, select: str) -> None:
        self.con.execute(f"create or replace view {target} as\n{select}")

    def exists(self, schema: str, name: str) -> bool:
        return exists(self.con, schema, name)

    def ensure_tables(self, names: list[str]) -> None:
        ensure_tables(self.con, names)

    def use(self, *schemas: str) -> None:
        path = ",".join(schemas)
        self.con.execute("set search_path = ?", [path])

    def create_schema(self, name: str) -> None:
        self.con.execute(f"create schema if not exists {ident(name)}")

    def drop_schema(self, name: str) -> None:
        self.con.execute(f"drop schema if exists {ident(name)} cascade")

    @contextmanager
    def register(self, name: str, table: pa.Table) -> Iterator[None]:
        self.con.register(name, table)
        try:
            yield
        finally:
            self.con.unregister(name)

    def tables(self, schema: str) -> list[str]:
        return table_names(self.con, schema)

    def write_parquet(self, select: str, folder: Path, params: Params = None, *,
                      one_file: bool = False) -> None:
        if one_file:
            folder.mkdir()
            self.con.execute(f"copy ({select}) to {literal(folder / 'data.parquet')} "
                             "(format parquet, compression zstd)", params or [])
        else:
            self.con.execute(f"copy ({select}) to {literal(folder)} (format parquet, "
                             f"compression zstd, file_size_bytes {literal(PARQUET_FILE_BYTES)})",
                             params or [])

    def label_components(self) -> int:
        return label_components_duckdb(self.con)
