"""Publishing: every staged table at once, the DuckDB tables and the Parquet exports.

Tables not staged in this run keep their published version and Parquet files. A table rebuilt
whole replaces the published one by a rename (`journey_core.model.build.STAGED_PREFIX`); an
incremental run replaces only the touched persons' rows of the person tables. The new Parquet
version is written from the new tables inside the transaction, its number committed with them,
and `parquet/` switched to it after the commit (`journey_core.publish.parquet`). The watermark
(`pipeline_state`, `processed_files`, `late_events`) is written in the same transaction when
every table was staged; a partial publish clears it instead, so the next run rebuilds
everything.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from journey_core.model import (
    STAGED_PREFIX,
    DuckDBEngine,
    Engine,
    TableGraph,
    incremental,
    staged_name,
)
from journey_core.model.incremental import DELTA, STAGING, Plan
from journey_core.publish.parquet import fault_point, link, prune, recover, switch, write_next
from journey_core.warehouse import ensure_tables, scalar
from journey_core.warehouse.quoting import ident, literal, qualified


def staged_tables(con: duckdb.DuckDBPyConnection, graph: TableGraph) -> list[str]:
    """The published tables staged by this run (tables, or the views of an incremental run),
    in build order."""
    names = {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where schema_name = ? union all "
        "select view_name from duckdb_views() where schema_name = ?",
        [STAGING, STAGING]).fetchall()}
    return [t for t in graph.tables if t in names]


def _replace_tables(engine: Engine, graph: TableGraph, tables: list[str],
                    run: Plan | None) -> None:
    """The staged tables replace the published ones in `main` (inside the transaction, on
    DuckDB). An incremental run on DuckDB replaces only the touched persons' rows of the person
    tables; elsewhere (Spark's Parquet tables cannot delete rows) a staged view of a person
    table, which reads the published rows and the delta, is written whole first."""
    duck = engine if isinstance(engine, DuckDBEngine) else None
    as_of_tables = incremental.as_of_tables(graph.person_tables)
    renamed = []
    for table in tables:
        if duck and run is not None and run.incremental and table in graph.person_tables:
            incremental.merge(engine, table, run.as_of, stamp_as_of=table in as_of_tables)
            continue
        if not engine.exists("main", STAGED_PREFIX + table):  # identity's, or a view
            engine.create_table(staged_name(table), f"select * from {qualified(STAGING, table)}")
        renamed.append(table)
    for table in renamed:
        if duck:
            drop_relation(duck.con, "main", table)  # a view after a Spark run
        else:
            engine.execute(f"drop table if exists {qualified('main', table)}")
        engine.execute(f"alter table {staged_name(table)} rename to {ident(table)}")
    if run is not None and set(tables) == set(graph.tables):
        incremental.record_state(engine, run)
    else:
        incremental.forget_state(engine)
    engine.drop_schema(STAGING)
    engine.drop_schema(DELTA)


def publish(con: duckdb.DuckDBPyConnection, warehouse_dir: Path, graph: TableGraph,
            engine: Engine | None = None) -> list[str]:
    """Publish every staged table at once: the published tables in one transaction, then the
    Parquet exports by moving the `parquet` link to their new version. A failure or a kill at
    any point leaves readers the old version or the new one of everything, never a mix.

    `engine`: where the tables were staged, by default DuckDB (`con`). On Spark the tables
    are replaced there and exported from there; `con`'s transaction then commits the export
    version (and forgets DuckDB's incremental state), and once the link moved, DuckDB's names
    of the published tables become views of the exports."""
    ensure_tables(con, ["published_exports"])
    recover(con, warehouse_dir)
    duck = DuckDBEngine(con)
    elsewhere = engine is not None and not isinstance(engine, DuckDBEngine)
    tables = [t for t in graph.tables if engine.exists(STAGING, t)] if elsewhere \
        else staged_tables(con, graph)
    if not tables:
        return []
    if elsewhere:  # the tables and their state there, the export version here
        engine.use("main")
        _replace_tables(engine, graph, tables, incremental.read_plan(engine))
    duck.use("main")
    con.execute("begin transaction")
    try:
        if not elsewhere:
            _replace_tables(duck, graph, tables, incremental.read_plan(duck))
        version = write_next(con, warehouse_dir, graph.tables, tables,
                             export=engine if elsewhere else duck)
        if elsewhere:
            incremental.forget_state(duck)
        fault_point("commit")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        prune(warehouse_dir)  # the version being written goes
        raise
    switch(warehouse_dir, version)
    if elsewhere:
        read_exports(con, warehouse_dir, graph.tables)
    prune(warehouse_dir)
    return tables


def read_exports(con: duckdb.DuckDBPyConnection, warehouse_dir: Path,
                 tables: tuple[str, ...]) -> None:
    """DuckDB's published tables become views of their Parquet exports, read through the
    `parquet` link (so always the published version): SQL on the warehouse file and
    `journeys report` read what the Spark engine published."""
    for table in tables:
        drop_relation(con, "main", table)
        files = (link(warehouse_dir).absolute() / table / "**" / "*.parquet").as_posix()
        con.execute(f"create view {qualified('main', table)} as select * from "
                    f"read_parquet({literal(files)}, hive_partitioning = false)")


def drop_relation(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop the table or view `schema.name`, if there is one."""
    kind = scalar(con, "select table_type from information_schema.tables "
                       "where table_schema = ? and table_name = ?", [schema, name])
    if kind is not None:
        con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} {qualified(schema, name)}")
