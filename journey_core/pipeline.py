"""The whole pipeline as plain functions; Dagster assets and the CLI both call these.

Steps: ingest -> config tables -> identity (edges, stitch) -> events -> sessions -> journeys ->
stage transitions, abandonment -> funnel, touchpoint KPIs -> Parquet exports.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from journey_core import identity, incremental
from journey_core.config import Config, micros
from journey_core.ingest import FileResult, IngestSummary, ingest
from journey_core.models import load_models, run_model
from journey_core.schema import TABLES
from journey_core.warehouse import apply_settings, ensure_tables, exists, scalar

#: Published table -> the models (in order) that build it; `identity_map` is built in Python.
STEPS: dict[str, tuple[str, ...]] = {
    "rejected_events": ("rejected_events",),
    "identity_map": ("stg_events", "int_identity_edges"),
    "identity_conflicts": (),
    "events": ("int_events_staged", "events"),
    "sessions": ("sessions",),
    "journeys": ("journeys",),
    "stage_transitions": ("stage_transitions",),
    "abandonment": ("abandonment",),
    "journey_segments": ("journey_segments", "int_journey_segments_all"),
    "survey_answers": ("survey_answers",),
    "funnel_by_segment": ("funnel_by_segment",),
    "funnel": ("funnel",),
    "touchpoint_kpis_by_segment": ("int_journey_touchpoints", "touchpoint_kpis_by_segment"),
    "touchpoint_kpis": ("touchpoint_kpis",),
    "abandonment_by_segment": ("abandonment_by_segment",),
    "account_journeys": ("account_journeys",),
}


#: Tables made from the config by `load_config_tables`, for the models to join.
CONFIG_TABLES = ("cfg_stages", "cfg_stage_rules", "cfg_abandonment_rules", "cfg_segments",
                 "cfg_accounts")


class PipelineError(RuntimeError):
    """A run that cannot proceed; the message says why in one line."""


def check_paths(config: Config) -> None:
    """Every source's folder must exist before a run starts."""
    for source in config.sources:
        folder = Path(source.path).parent
        folder = folder if folder.is_absolute() else config.base_dir / folder
        if not folder.is_dir():
            raise PipelineError(f"source {source.name!r}: folder {folder} does not exist")


def load_config_tables(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Stages, stage rules and abandonment rules as small tables the SQL models join."""
    stages = config.stages
    con.register("_stages", pa.table({
        "stage": stages.order,
        "stage_rank": pa.array(range(1, len(stages.order) + 1), pa.int32()),
        "is_conversion": [s == stages.conversion for s in stages.order],
    }))
    rows: dict[str, list[Any]] = {"rule_index": [], "stage": [], "channel": [], "event_type": [],
                                  "touchpoint": []}
    for index, rule in enumerate(stages.rules, start=1):
        for channel in rule.channel or [None]:
            for event_type in rule.event_type or [None]:
                for touchpoint in rule.touchpoint or [None]:
                    for key, value in (("rule_index", index), ("stage", rule.stage),
                                       ("channel", channel), ("event_type", event_type),
                                       ("touchpoint", touchpoint)):
                        rows[key].append(value)
    con.register("_rules", pa.table(rows, schema=pa.schema([
        ("rule_index", pa.int32()), ("stage", pa.string()), ("channel", pa.string()),
        ("event_type", pa.string()), ("touchpoint", pa.string())])))
    con.register("_abandonment", pa.table({
        "rule": [r.name for r in config.abandonment],
        "start_event_type": [r.start for r in config.abandonment],
        "complete_event_type": [r.complete for r in config.abandonment],
        "window_us": [micros(r.window) for r in config.abandonment],
        "window_seconds": [int(r.window.total_seconds()) for r in config.abandonment],
    }, schema=pa.schema([("rule", pa.string()), ("start_event_type", pa.string()),
                         ("complete_event_type", pa.string()), ("window_us", pa.int64()),
                         ("window_seconds", pa.int64())])))
    dims = config.segments
    con.register("_segments", pa.table({
        "dimension": [d.name for d in dims],
        "source_kind": ["property" if d.property else "column" for d in dims],
        "column_name": [d.column for d in dims],
        "json_path": [f"$.{d.property}" if d.property else None for d in dims],
        "scope": [d.scope for d in dims],
        "present_label": [d.present for d in dims],
        "missing_label": [d.missing for d in dims],
    }, schema=pa.schema([(name, pa.string()) for name in (
        "dimension", "source_kind", "column_name", "json_path", "scope", "present_label",
        "missing_label")])))
    role = config.accounts.role_property
    con.register("_accounts", pa.table({"json_path": [f"$.{role}"] if role else []},
                                       schema=pa.schema([("json_path", pa.string())])))
    try:
        con.execute("create or replace table cfg_segments as select * from _segments")
        con.execute("create or replace table cfg_accounts as select * from _accounts")
        con.execute("create or replace table cfg_stages as select * from _stages")
        con.execute("create or replace table cfg_stage_rules as select * from _rules")
        con.execute("create or replace table cfg_abandonment_rules as select * from _abandonment")
    finally:
        for name in ("_stages", "_rules", "_abandonment", "_segments", "_accounts"):
            con.unregister(name)


compute_as_of = incremental.compute_as_of


def model_params(config: Config, as_of: datetime) -> dict[str, Any]:
    return {
        "session_timeout_us": micros(config.session_timeout),
        "journey_timeout_us": micros(config.journey_timeout),
        "as_of": as_of,
        "survey_event_type": config.kpis.survey_event_type,
    }


STAGING = incremental.STAGING


def fault_point(name: str) -> None:
    """Fault-injection hook for the crash tests: with JOURNEYS_FAULT_PAUSE=<name>, write the
    name to the file JOURNEYS_FAULT_MARKER and wait there to be killed. Inert otherwise."""
    if os.environ.get("JOURNEYS_FAULT_PAUSE") != name:
        return
    Path(os.environ["JOURNEYS_FAULT_MARKER"]).write_text(name)
    time.sleep(300)


def use_staging(con: duckdb.DuckDBPyConnection) -> None:
    """New tables go to the `staging` schema; reads find staging first, then `main`."""
    con.execute(f"create schema if not exists {STAGING}")
    con.execute(f"set search_path = '{STAGING},main'")


#: A published table rebuilt whole is written to `main."_staged_<table>"`, and `staging.<table>`
#: is a view of it: publishing then renames it in place of the old one instead of copying it.
STAGED_PREFIX = "_staged_"


def staged_name(table: str) -> str:
    """Where a published table rebuilt whole is written (`staging.<table>` is its view)."""
    return f'main."{STAGED_PREFIX}{table}"'


def drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the tables an unpublished run left in `main` (see `STAGED_PREFIX`)."""
    for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'main' and starts_with(table_name, ?)",
            [STAGED_PREFIX]).fetchall():
        con.execute(f'drop table main."{name}"')


def use_main(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("set search_path = 'main'")


def build_table(con: duckdb.DuckDBPyConnection, table: str, params: dict[str, Any]) -> None:
    """Run the models behind one published table into `staging` (upstream tables: staging
    first, then the published ones in `main`)."""
    use_staging(con)
    models = load_models()
    for name in STEPS[table]:
        model = models[name]
        if model.table == table and model.materialized == "table":
            run_model(con, model, params, target=staged_name(table))
            con.execute(f'create or replace view {STAGING}."{table}" as '
                        f"select * from {staged_name(table)}")
        else:
            run_model(con, model, params)
    if table == "identity_map":
        identity.stitch_identities(con)


def stage_table(con: duckdb.DuckDBPyConnection, config: Config, table: str, *,
                as_of: datetime | None = None, partition: date | None = None,
                full: bool = False) -> int:
    """Write: build one published table in `staging`; return its row count.

    The first person table of a run decides, once for the run, whether it is incremental
    (see `journey_core.incremental`); `full=True` forces a full rebuild."""
    apply_settings(con, config)
    load_config_tables(con, config)
    as_of = as_of or compute_as_of(con, partition)
    params = model_params(config, as_of)
    use_staging(con)
    if table in incremental.PERSON_TABLES and incremental.plan(
            con, config, as_of, partition=partition, full=full).incremental:
        incremental.build_person_table(con, table, STEPS[table], params)
    else:
        build_table(con, table, params)
    return scalar(con, f'select count(*) from {STAGING}."{table}"')


#: Target size of one Parquet file: large enough for BI engines, small enough to split work.
PARQUET_FILE_BYTES = "256MB"


def _export(con: duckdb.DuckDBPyConnection, source: str, table: str, folder: Path) -> None:
    """Write one table's Parquet files into `folder` (Hive month folders for large tables)."""
    spec = TABLES[table]
    columns = ", ".join(f'"{c}"' for c in spec.column_names)
    folder.mkdir(parents=True)
    months = [r[0] for r in con.execute(
        f'select distinct "{spec.partition_by}" from {source} order by 1').fetchall()] \
        if spec.partition_by else []
    if not months:  # small tables, and empty ones (one file still carries the schema)
        con.execute(f"copy (select {columns} from {source}) to '{folder / 'data.parquet'}' "
                    "(format parquet, compression zstd)")
    # One query per month rather than COPY's partition_by, which costs about 1.6x as much
    # (measured at 10M events). Partition columns stay inside the files too, so readers get
    # them typed (a date).
    for month in months:
        where = "is null" if month is None else f"= date '{month.isoformat()}'"
        part = folder / f"{spec.partition_by}={'NULL' if month is None else month}"
        con.execute(f'copy (select {columns} from {source} where "{spec.partition_by}" {where}) '
                    f"to '{part}' (format parquet, compression zstd, "
                    f"file_size_bytes '{PARQUET_FILE_BYTES}')")


def recover_parquet(warehouse_dir: Path) -> None:
    """Finish or undo a publish that was killed while swapping Parquet folders."""
    current, previous = warehouse_dir / "parquet", warehouse_dir / ".parquet.previous"
    if not current.exists() and previous.exists():
        previous.rename(current)  # killed between the two renames: the old version is whole
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(warehouse_dir / ".parquet.next", ignore_errors=True)


def staged_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The published tables staged by this run (tables, or the views of an incremental run)."""
    names = {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where schema_name = ? union all "
        "select view_name from duckdb_views() where schema_name = ?",
        [STAGING, STAGING]).fetchall()}
    return [t for t in STEPS if t in names]


def publish(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> list[str]:
    """Publish every staged table at once: DuckDB tables in one transaction, then the Parquet
    exports by swapping the whole `parquet/` folder. A failure or a kill at any point leaves
    readers the old version or the new one of everything, never a mix.

    Tables not staged in this run keep their published version and Parquet files. A table
    rebuilt whole replaces the published one by a rename (see `STAGED_PREFIX`); an
    incremental run replaces only the touched persons' rows of the person tables. The new
    Parquet files are written from the new tables inside the transaction, before it commits.
    The watermark (`pipeline_state`, `processed_files`, `late_events`) is written in the same
    transaction when every table was staged; a partial publish clears it instead, so the next
    run rebuilds everything."""
    recover_parquet(warehouse_dir)
    tables = staged_tables(con)
    if not tables:
        return []
    run = incremental.read_plan(con)
    current, nxt = warehouse_dir / "parquet", warehouse_dir / ".parquet.next"
    previous = warehouse_dir / ".parquet.previous"
    use_main(con)
    con.execute("begin transaction")
    try:
        # 1. the tables
        for table in tables:
            if run is not None and run.incremental and table in incremental.PERSON_TABLES:
                incremental.merge(con, table, run.as_of)
            elif exists(con, "main", STAGED_PREFIX + table):
                con.execute(f'drop table if exists main."{table}"')
                con.execute(f'alter table {staged_name(table)} rename to "{table}"')
            else:  # built in Python (identity)
                con.execute(f'create or replace table main."{table}" as '
                            f'select * from {STAGING}."{table}"')
        if run is not None and tables == list(STEPS):
            incremental.record_state(con, run)
        else:
            incremental.forget_state(con)
        con.execute(f"drop schema {STAGING} cascade")
        con.execute(f"drop schema if exists {incremental.DELTA} cascade")
        # 2. the new exports, from the new tables, beside the published ones (published
        #    tables not rebuilt are copied)
        nxt.mkdir(parents=True)
        for table in STEPS:
            if table in tables:
                _export(con, f'main."{table}"', table, nxt / table)
                fault_point("export")
            elif (current / table).exists():
                shutil.copytree(current / table, nxt / table)
        fault_point("commit")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        shutil.rmtree(nxt, ignore_errors=True)
        raise
    # 3. the files: two renames; recover_parquet() finishes a swap killed in between
    if current.exists():
        current.rename(previous)
    fault_point("swap")
    nxt.rename(current)
    shutil.rmtree(previous, ignore_errors=True)
    return tables


def ingest_files(con: duckdb.DuckDBPyConnection, config: Config,
                 progress: Callable[[str], None] | None = None) -> IngestSummary:
    """Check the source folders, then load every new file."""
    say = progress or (lambda _msg: None)
    check_paths(config)
    apply_settings(con, config)
    ensure_tables(con)
    # A new run starts from a clean staging area: tables staged by a run that failed its checks
    # must never be published by a later one.
    con.execute(f"drop schema if exists {STAGING} cascade")
    con.execute(f"drop schema if exists {incremental.DELTA} cascade")
    drop_staged(con)
    total = sum(len(config.source_files(s)) for s in config.sources)
    done = 0

    def report(r: FileResult) -> None:
        nonlocal done
        done += 1
        say(f"[{done}/{total}] ingest {r.path}: " + (
            "already loaded, skipped" if r.skipped else
            f"FILE REJECTED: {r.problem}" if r.problem else
            f"{r.read} read, {r.loaded} loaded, {r.rejected} rejected, {r.duplicates} duplicates"))

    return ingest(con, config, progress=report)


@dataclass
class RunResult:
    ingest: IngestSummary | None
    as_of: datetime
    row_counts: dict[str, int]
    #: `full` or `incremental` (see `journey_core.incremental`).
    mode: str = incremental.FULL
    #: Wall-clock seconds per staged table and for `publish` (the benchmark's breakdown).
    seconds: dict[str, float] = field(default_factory=dict)


def rebuild(con: duckdb.DuckDBPyConnection, config: Config, warehouse_dir: Path, *,
            as_of: datetime | None = None, partition: date | None = None, full: bool = False,
            progress: Callable[[str], None] | None = None,
            audit: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None) -> RunResult:
    """Write every published table to staging (only the touched persons' rows when the run is
    incremental), audit each (`audit` raises to stop), publish."""
    say = progress or (lambda _msg: None)
    as_of = as_of or compute_as_of(con, partition)
    counts, seconds = {}, {}
    for table in STEPS:
        started = time.perf_counter()
        counts[table] = stage_table(con, config, table, as_of=as_of, partition=partition,
                                    full=full)
        seconds[table] = time.perf_counter() - started
        if audit:
            audit(con, table)
        say(f"built {table}: {counts[table]} rows")
    run = incremental.read_plan(con)
    started = time.perf_counter()
    publish(con, warehouse_dir)
    seconds["publish"] = time.perf_counter() - started
    return RunResult(None, as_of, counts, run.mode if run else incremental.FULL, seconds)


def run_pipeline(con: duckdb.DuckDBPyConnection, config: Config, warehouse_dir: Path, *,
                 as_of: datetime | None = None, partition: date | None = None,
                 full: bool = False,
                 progress: Callable[[str], None] | None = None) -> RunResult:
    """Ingest new files, then rebuild, audit and publish every published table."""
    summary = ingest_files(con, config, progress)
    result = rebuild(con, config, warehouse_dir, as_of=as_of, partition=partition, full=full,
                     progress=progress)
    result.ingest = summary
    return result
