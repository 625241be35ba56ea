"""Dagster definitions: one asset per published table plus ingest, a nightly schedule.

Assets are thin: open the warehouse through the resource, call `journey_core`, publish, and
return metadata (row count, table schema, a preview).
"""


import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from journey_core import pipeline
from journey_core.config import Config, load_config
from journey_core.schema import TABLES, Table
from journey_core.warehouse import connect
from pipelines.checks import check_results, check_specs

GROUP = "journeys"
#: Ingest tables checked on the ingest asset (raw events, ledger, quarantine).
INGEST_CHECKED = ("ingested_events", "file_ledger", "ingest_rejects")
#: Every step that writes the DuckDB file takes the one slot of this pool (see dagster.yaml).
POOL = "journeys_warehouse"
DEFAULT_CONFIG = "data/sample/journeys.yaml"
DEFAULT_WAREHOUSE = "warehouse"
#: Ingest is partitioned by UTC day; the last partition is the last complete day.
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")
#: The landing sensor leaves files modified in the last minute for its next tick (uploads).
SETTLE_SECONDS = 60


class JourneysResource(dg.ConfigurableResource):
    """Where the pipeline config is and which warehouse folder to write."""

    config_path: str = DEFAULT_CONFIG
    warehouse_dir: str = DEFAULT_WAREHOUSE
    #: Print progress lines to stderr (the `journeys` CLI); otherwise they go to the run log.
    progress: bool = False
    #: Rebuild every person even when an incremental run would do (`journeys run --full`).
    full_rebuild: bool = False

    def reporter(self, context: dg.AssetExecutionContext) -> Callable[[str], None]:
        if self.progress:
            return lambda message: print(f"journeys: {message}", file=sys.stderr, flush=True)
        return context.log.info

    def load(self) -> Config:
        return load_config(self.config_path)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            con = connect(self.warehouse_dir)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            # Another process writes the warehouse right now: transient, try the step again.
            raise dg.RetryRequested(max_retries=5, seconds_to_wait=10) from exc
        try:
            yield con
        finally:
            con.close()


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(name=c.name, type=c.type, description=c.description,
                       constraints=dg.TableColumnConstraints(nullable=c.nullable))
        for c in table.columns
    ])


def _preview(con: duckdb.DuckDBPyConnection, table: Table, rows: int = 5) -> str:
    """A small markdown preview of the table (json properties left out)."""
    cols = [c.name for c in table.columns if c.type != "json"]
    quoted = ", ".join(f'"{c}"' for c in cols)
    data = con.execute(f'select {quoted} from "{table.name}" limit {rows}').fetchall()
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in data]
    return "\n".join(lines)


def table_metadata(con: duckdb.DuckDBPyConnection, name: str, rows: int) -> dict[str, object]:
    table = TABLES[name]
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": column_schema(table),
        "grain": table.grain,
        "primary_key": ", ".join(table.primary_key),
        "preview": dg.MetadataValue.md(_preview(con, table)),
    }


def run_partition(context: dg.AssetExecutionContext) -> date | None:
    """The run's partition (a UTC day), or None for an unpartitioned run."""
    return date.fromisoformat(context.partition_key) if context.has_partition_key else None


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "python"},
    pool=POOL,
    partitions_def=PARTITIONS,
    check_specs=[s for t in INGEST_CHECKED for s in check_specs(t, asset="ingested_events")],
    description="Load every new source file (file ledger: a file is loaded once) into canonical "
    "events; invalid records go to rejected_events verbatim with the reason. Partitioned by "
    "UTC day: the run of a day loads whatever is new and moves as-of to the end of that day.",
)
def ingested_events(context: dg.AssetExecutionContext,
                    warehouse: JourneysResource) -> Iterator[dg.MaterializeResult
                                                            | dg.AssetCheckResult]:
    config = warehouse.load()
    with warehouse.connect() as con:
        summary = pipeline.ingest_files(con, config, progress=warehouse.reporter(context))
        rows = con.execute("select count(*) from ingested_events").fetchall()[0][0]
        reconciliation = "\n".join(
            ["| file | read | loaded | rejected | duplicates | skipped |", "|---" * 6 + "|"]
            + [f"| {f.path} | {f.read} | {f.loaded} | {f.rejected} | {f.duplicates} | "
               f"{f.skipped} |" for f in summary.files])
        yield dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(rows),
            "files_loaded": sum(1 for f in summary.files if not f.skipped and not f.problem),
            "files_rejected": dg.MetadataValue.json(
                {f.path: f.problem for f in summary.files if f.problem}),
            "files_skipped": sum(1 for f in summary.files if f.skipped),
            "records_read": summary.total("read"),
            "records_loaded": summary.total("loaded"),
            "records_rejected": summary.total("rejected"),
            "records_duplicate": summary.total("duplicates"),
            "reconciliation": dg.MetadataValue.md(reconciliation),
        })
        # The raw events, the ledger and the quarantine, against the time of the check.
        for table in INGEST_CHECKED:
            yield from check_results(con, table, config, as_of=None, schema="main",
                                     asset="ingested_events")


def _published_asset(name: str, deps: list[str]) -> dg.AssetsDefinition:
    table = TABLES[name]

    @dg.asset(
        name=name,
        group_name=GROUP,
        deps=deps,
        kinds={"duckdb"},
        pool=POOL,
        description=f"{table.description}\n\nGrain: {table.grain}. "
        f"Primary key: {', '.join(table.primary_key)}. Written to the warehouse's `staging` "
        "schema and checked; `published_tables` publishes it.",
        metadata={"dagster/column_schema": column_schema(table), "grain": table.grain},
        check_specs=check_specs(name),
    )
    def _asset(context: dg.AssetExecutionContext,
               warehouse: JourneysResource) -> Iterator[dg.MaterializeResult
                                                        | dg.AssetCheckResult]:
        config = warehouse.load()
        started = time.monotonic()
        with warehouse.connect() as con:
            partition = run_partition(context)
            as_of = pipeline.compute_as_of(con, partition)
            rows = pipeline.stage_table(con, config, name, as_of=as_of, partition=partition,
                                        full=warehouse.full_rebuild)
            warehouse.reporter(context)(
                f"built {name}: {rows} rows in {time.monotonic() - started:.1f}s")
            yield dg.MaterializeResult(metadata=table_metadata(con, name, rows))
            # Audit before publish: a failed blocking check stops `published_tables`.
            yield from check_results(con, name, config, as_of=as_of)

    return _asset


#: Published table -> the assets it is computed from.
UPSTREAM: dict[str, list[str]] = {
    "rejected_events": ["ingested_events"],
    "identity_map": ["ingested_events"],
    "identity_conflicts": ["identity_map"],
    "events": ["ingested_events", "identity_map"],
    "sessions": ["events"],
    "journeys": ["events"],
    "stage_transitions": ["events"],
    "abandonment": ["events", "sessions"],
    "journey_segments": ["events", "journeys"],
    "survey_answers": ["events"],
    "funnel_by_segment": ["journeys", "journey_segments"],
    "funnel": ["funnel_by_segment"],
    "touchpoint_kpis_by_segment": ["events", "journeys", "journey_segments", "abandonment",
                                   "survey_answers"],
    "touchpoint_kpis": ["touchpoint_kpis_by_segment"],
    "abandonment_by_segment": ["abandonment", "journey_segments"],
    "account_journeys": ["events", "journeys"],
}

table_assets = [_published_asset(name, deps) for name, deps in UPSTREAM.items()]


@dg.asset(
    group_name=GROUP,
    deps=list(UPSTREAM),
    kinds={"duckdb", "parquet"},
    pool=POOL,
    description="Publish the staged tables that passed their checks: every DuckDB table in one "
    "transaction, then the Parquet exports (`<warehouse>/parquet/<table>/`) by swapping the "
    "whole folder. A failed check skips this step and leaves the published version untouched.",
)
def published_tables(context: dg.AssetExecutionContext,
                     warehouse: JourneysResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        tables = pipeline.publish(con, Path(warehouse.warehouse_dir))
    warehouse.reporter(context)(f"published {len(tables)} tables")
    return dg.MaterializeResult(metadata={
        "tables": ", ".join(tables),
        "parquet": str(Path(warehouse.warehouse_dir) / "parquet"),
    })


all_assets = [ingested_events, *table_assets, published_tables]

nightly_job = dg.define_asset_job(
    "journeys_nightly",
    selection=dg.AssetSelection.groups(GROUP),
    description="For one UTC day: ingest new files, rebuild the persons they touch (or every "
    "table, when nothing was published yet or the settings changed), publish.",
)
@dg.schedule(
    name="journeys_nightly_schedule",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="At 02:00 UTC, the run of the partition of the day that just ended.",
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    ended = scheduled.astimezone(UTC).date() - timedelta(days=1)
    return dg.RunRequest(partition_key=ended.isoformat())


def landing_files(config: Config) -> dict[str, str]:
    """Every source file: path -> `size:mtime_ns`, the key of one version of the file."""
    files = {}
    for source in config.sources:
        for path in config.source_files(source):
            stat = path.stat()
            files[str(path)] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return files


@dg.sensor(
    name="journeys_landing",
    job=nightly_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Request a run of the latest partition when new or changed files land in the "
    "sources' folders. The cursor remembers every file version seen, and the run key is the "
    "set of new versions, so a file never triggers twice.",
)
def journeys_landing(context: dg.SensorEvaluationContext,
                     warehouse: JourneysResource) -> dg.SensorResult | dg.SkipReason:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    new = {path: key for path, key in landing_files(warehouse.load()).items()
           if seen.get(path) != key
           and now - int(key.split(":")[1]) / 1e9 >= SETTLE_SECONDS}
    if not new:
        return dg.SkipReason("no new files in the landing folders")
    run_key = hashlib.sha256(json.dumps(sorted(new.items())).encode()).hexdigest()
    partition = PARTITIONS.get_last_partition_key()
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, partition_key=partition,
                                    tags={"journeys/new_files": str(len(new))})],
        cursor=json.dumps({**seen, **new}, sort_keys=True),
    )


@dg.run_failure_sensor(
    name="journeys_run_failures",
    description="Append every failed run (job, failed steps, error) to "
    "`<warehouse>/run_failures.jsonl` for the on-call data engineer.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def journeys_run_failures(context: dg.RunFailureSensorContext) -> None:
    def root_message(error: Any) -> str:  # a SerializableErrorInfo or None
        while error is not None and error.cause is not None:  # Dagster wraps the real error
            error = error.cause
        return error.message.strip() if error else ""

    failures = [{"step": e.step_key, "error": root_message(e.event_specific_data.error)}
                for e in context.get_step_failure_events()]
    record = {"run_id": context.dagster_run.run_id, "job": context.dagster_run.job_name,
              "failed_at": datetime.now(UTC).isoformat(), "message": context.failure_event.message,
              "steps": failures}
    path = Path(journeys_resource().warehouse_dir) / "run_failures.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def journeys_resource() -> JourneysResource:
    """The resource from JOURNEYS_CONFIG / JOURNEYS_WAREHOUSE (defaults: the sample)."""
    return JourneysResource(
        config_path=os.environ.get("JOURNEYS_CONFIG", DEFAULT_CONFIG),
        warehouse_dir=os.environ.get("JOURNEYS_WAREHOUSE", DEFAULT_WAREHOUSE),
    )


defs = dg.Definitions(
    assets=all_assets,
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    sensors=[journeys_run_failures, journeys_landing],
    resources={"warehouse": journeys_resource()},
    # One process writes the DuckDB file at a time: steps run one after another in-process.
    executor=dg.in_process_executor,
)
