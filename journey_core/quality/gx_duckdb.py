"""Great Expectations' SQL data source on the warehouse's own DuckDB connection.

GX 1.24's SQL data source fails on DuckDB as shipped: `SqlAlchemyExecutionEngine.execute_query`
returns the cursor result after its `with self.get_connection()` block has closed the
connection, and DuckDB's rows are gone by then (`IndexError: list index out of range` in
`resolve_metric_bundle`). `BufferedExecutionEngine` buffers the rows inside the block;
`WarehouseDatasource` is a registered GX data source type (`journeys_duckdb`) that runs on it,
over a SQLAlchemy engine (duckdb-engine's dialect) whose one connection is a cursor of the
connection the caller passes to `bind`: GX computes every metric in SQL where the tables are,
with no copy of the rows to pandas and no second handle on the database file (DuckDB allows
one writer process).

This module imports GX: import it lazily (`journey_core.quality.suites` does).
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import duckdb
import great_expectations as gx
import sqlalchemy as sa
from duckdb_engine import ConnectionWrapper
from great_expectations.compatibility.pydantic import PrivateAttr
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.datasource.fluent.sql_datasource import TableAsset
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from sqlalchemy.pool import StaticPool

from journey_core.warehouse.quoting import literal


def _forget_try_cast_compiler() -> None:
    """Drop duckdb-engine's `TryCast` compiler from SQLAlchemy at exit.

    duckdb-engine registers it on SQLAlchemy's `TryCast` class at import; with GX loaded too,
    that function (and through its globals the `duckdb` module) outlives DuckDB's extension
    module at interpreter shutdown, and nanobind prints some 40 lines of "leaked instance"
    warnings on stderr after every run. Nothing compiles SQL at exit, so dropping it is safe."""
    dispatcher = getattr(sa.TryCast, "_compiler_dispatcher", None)
    if dispatcher is not None:
        dispatcher.specs.pop("duckdb", None)


atexit.register(_forget_try_cast_compiler)

#: The one data source of type `journeys_duckdb` in our context.
SOURCE = "journeys_warehouse"


class BufferedExecutionEngine(SqlAlchemyExecutionEngine):
    """GX's SQLAlchemy engine, fetching a query's rows before its connection goes back."""

    def execute_query(self, query: Any) -> Any:
        with self.get_connection() as connection:
            result = self._execute_query_with_recovery(connection, query)
            # A frozen result replays its buffered rows; calling it gives a fresh result.
            return result.freeze()()


class WarehouseDatasource(SQLDatasource):
    """A GX SQL data source over the DuckDB connection given to `bind`.

    `connection_string` is never connected to: the engine comes from `bind`, so a check sees
    exactly the database (and the committed state) of the caller's connection."""

    type: Literal["journeys_duckdb"] = "journeys_duckdb"  # type: ignore[assignment]
    connection_string: str = "duckdb:///:memory:"

    @property
    def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
        return BufferedExecutionEngine

    #: The engine of `bind`, and GX's execution engine over it (None outside `bind`).
    _bound: sa.Engine | None = PrivateAttr(None)
    _bound_execution: BufferedExecutionEngine | None = PrivateAttr(None)

    def get_engine(self) -> sa.Engine:
        # Unbound (GX tests the data source when it is added): an empty in-memory DuckDB.
        if self._bound is not None:
            return self._bound
        if self._engine is None:
            self._engine = sa.create_engine(self.connection_string, poolclass=StaticPool)
        return self._engine

    def get_execution_engine(self) -> SqlAlchemyExecutionEngine:
        if self._bound is None:
            raise RuntimeError(f"GX data source {self.name!r} is not bound to a DuckDB "
                               "connection: validate inside `bind(con)`")
        if self._bound_execution is None:
            # (create_temp_table: the data source says no copy of the table, as GX does.)
            self._bound_execution = BufferedExecutionEngine(
                engine=self._bound, create_temp_table=self.create_temp_table)
        return self._bound_execution

    @contextmanager
    def bind(self, con: duckdb.DuckDBPyConnection, schema: str) -> Iterator[None]:
        """Run GX's queries on a cursor of `con` whose default schema is `schema` (and time zone
        UTC, as on every connection of ours) until the block ends."""

        def connect() -> ConnectionWrapper:
            cursor = con.cursor()
            cursor.execute(f"set schema = {literal(schema)}")
            cursor.execute("set TimeZone = 'UTC'")
            return ConnectionWrapper(cursor)

        engine = sa.create_engine("duckdb://", creator=connect, poolclass=StaticPool)
        self._bound, self._bound_execution = engine, None
        try:
            yield
        finally:
            self._bound = self._bound_execution = None
            engine.dispose()

    def table(self, table: str) -> TableAsset:
        """The table asset of `table` in the bound schema, added on first use (inside `bind`)."""
        try:
            return self.get_asset(table)  # type: ignore[return-value]
        except LookupError:
            return self.add_table_asset(table, table_name=table)


def context_source() -> tuple[Any, WarehouseDatasource]:
    """An ephemeral GX context (progress bars off) with one `WarehouseDatasource`."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False,
                                                         metric_calculations=False)
    source = context.data_sources.add_journeys_duckdb(SOURCE)  # registered by the class
    return context, source
