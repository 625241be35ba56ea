"""The assets: ingest, one asset per published table (built from the table graph), publish.

(No `from __future__ import annotations`: Dagster reads the context parameter's annotation.)

Assets are thin: open the warehouse through the resource, call `journey_core`, and return
metadata (row count, table schema, a preview). A table asset writes to staging and is checked
there; `published_tables` publishes everything that passed.
"""


import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from journey_core import quality
from journey_core.contract.schema import TABLES, Table
from journey_core.ingest import undo
from journey_core.ingest.spark import undo as spark_undo
from journey_core.model import DuckDBEngine, Engine, Step, pipeline_graph
from journey_core.model.incremental import DELTA, FULL, STAGING, read_plan
from journey_core.ops import hand_over, ingest_files, ingest_files_on_spark, stage
from journey_core.publish import publish
from journey_core.warehouse.quoting import columns, qualified
from pipelines.checks import check_results, check_specs, to_check_results
from pipelines.resources import JourneysResource

GROUP = "journeys"
INGEST = "ingested_events"
#: Ingest tables checked on the ingest asset (raw events, ledger, quarantine); a model reading
#: one of them depends on the ingest asset.
INGEST_CHECKED = ("ingested_events", "file_ledger", "ingest_rejects")
#: Every step that writes the DuckDB file takes the one slot of this pool (see dagster.yaml).
POOL = "journeys_warehouse"
#: Ingest is partitioned by UTC day; the last partition is the last complete day.
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(name=c.name, type=c.type, description=c.description,
                       constraints=dg.TableColumnConstraints(nullable=c.nullable))
        for c in table.columns
    ])


def _preview(engine: Engine, table: Table, rows: int = 5) -> str:
    """A small markdown preview of the staged table (json properties left out)."""
    cols = [c.name for c in table.columns if c.type != "json"]
    data = engine.rows(f"select {columns(cols)} from {qualified(STAGING, table.name)} limit ?",
                       [rows])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in data]
    return "\n".join(lines)


def table_metadata(engine: Engine, name: str, rows: int) -> dict[str, object]:
    table = TABLES[name]
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": column_schema(table),
        "grain": table.grain,
        "primary_key": ", ".join(table.primary_key),
        "preview": dg.MetadataValue.md(_preview(engine, table)),
    }


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "python"},
    pool=POOL,
    partitions_def=PARTITIONS,
    check_specs=[s for t in INGEST_CHECKED for s in check_specs(t, asset=INGEST)],
    description="Load every new source file (file ledger: a file is loaded once) into canonical "
    "events; invalid records go to rejected_events verbatim with the reason. Partitioned by "
    "UTC day: the run of a day loads whatever is new and moves as-of to the end of that day.",
)
def ingested_events(context: dg.AssetExecutionContext,
                    warehouse: JourneysResource) -> Iterator[dg.MaterializeResult
                                                            | dg.AssetCheckResult]:
    config = warehouse.load()
    warehouse.forget_run(context.run.run_id)
    with warehouse.connect() as con:
        started = time.monotonic()
        # `spark.ingest: spark`: Spark's readers load the Spark tables; else DuckDB's loader
        spark = warehouse.models(con) if warehouse.ingest_on_spark() else None
        summary = (ingest_files_on_spark(con, spark, config, warehouse.handover_folder(),
                                         warehouse.reporter(context))
                   if spark else ingest_files(con, config, progress=warehouse.reporter(context)))
        loaded = time.monotonic()
        # The raw events, the ledger and the quarantine, against the time of the check. Ingest
        # has committed by now: if a blocking check fails, this run's ingest is undone, so its
        # rows cannot fail every later run too (its files load again once the cause is gone).
        checks = [quality.check_table(spark or con, table, config, schema="main", as_of=None)
                  for table in INGEST_CHECKED]
        checked = time.monotonic()
        failed = [c.table for c in checks if not c.passed]
        undone = (spark_undo(spark, summary) if spark else undo(con, summary)) if failed else 0
        if failed:
            context.log.error(f"blocking checks failed on {', '.join(failed)}: this run's "
                              f"ingest of {undone} file(s) was undone")
        elif warehouse.on_spark() and not spark:
            hand_over(con, warehouse.models(con), warehouse.handover_folder())
        rows = (spark or DuckDBEngine(con)).scalar("select count(*) from main.ingested_events")
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
            "files_undone": dg.MetadataValue.int(undone),
            **step_timing(INGEST, build=loaded - started, check=checked - loaded),
        })
        for check in checks:
            yield from to_check_results(check, asset=INGEST, location=f"main.{check.table}")


def step_timing(step: str, *, build: float, check: float) -> dict[str, object]:
    """Metadata of where a step's time went: building its tables, and their checks (one
    step may materialize several assets; `journeys run --timings` counts each step once)."""
    return {"step": step, "build_seconds": dg.MetadataValue.float(round(build, 3)),
            "check_seconds": dg.MetadataValue.float(round(check, 3))}


def _spec(step: Step, table: str) -> dg.AssetSpec:
    spec = TABLES[table]
    deps = [t for s in step.upstream for t in pipeline_graph().step(s).outputs]
    if step.sources & set(INGEST_CHECKED):
        deps.insert(0, INGEST)
    return dg.AssetSpec(
        table, deps=deps, group_name=GROUP, kinds={"duckdb"},
        description=f"{spec.description}\n\nGrain: {spec.grain}. "
        f"Primary key: {', '.join(spec.primary_key)}. Written to the warehouse's `staging` "
        "schema and checked; `published_tables` publishes it.",
        metadata={"dagster/column_schema": column_schema(spec), "grain": spec.grain})


def step_asset(step: Step) -> dg.AssetsDefinition:
    """The asset(s) of one step of the table graph: one per table it publishes (the identity
    step has two), each with its checks."""

    @dg.multi_asset(
        name=step.name,
        specs=[_spec(step, t) for t in step.outputs],
        check_specs=[c for t in step.outputs for c in check_specs(t)],
        pool=POOL,
    )
    def _asset(context: dg.AssetExecutionContext,
               warehouse: JourneysResource) -> Iterator[dg.MaterializeResult
                                                        | dg.AssetCheckResult]:
        config = warehouse.load()
        started = time.monotonic()
        with warehouse.connect() as con:
            ctx = warehouse.run_context(context, con)
            engine = warehouse.models(con)
            counts = stage(engine, ctx, step.name)
            built = time.monotonic()
            # Audit before publish: a failed blocking check stops `published_tables`. A table
            # an incremental run rebuilt for the touched persons only (`delta.<table>`) has its
            # row rules checked on those rows; the rules across rows see the whole table.
            checks = [r for table in counts for r in check_results(
                con if isinstance(engine, DuckDBEngine) else engine, table, config,
                as_of=ctx.as_of, rows_schema=DELTA if engine.exists(DELTA, table) else None)]
            timing = step_timing(step.name, build=built - started,
                                 check=time.monotonic() - built)
            for table, rows in counts.items():
                warehouse.reporter(context)(
                    f"built {table}: {rows} rows in {built - started:.1f}s")
                yield dg.MaterializeResult(asset_key=table, metadata={
                    **table_metadata(engine, table, rows), **timing})
            yield from checks

    return _asset


table_assets = [step_asset(step) for step in pipeline_graph().steps]


@dg.asset(
    group_name=GROUP,
    deps=list(pipeline_graph().tables),
    kinds={"duckdb", "parquet"},
    pool=POOL,
    description="Publish the staged tables that passed their checks: every DuckDB table in one "
    "transaction with the next version of the Parquet exports, then the `<warehouse>/parquet` "
    "link moved to that version in one atomic rename (`parquet/<table>/` shows every table "
    "old or every table new). A failed check skips this step and leaves the published version "
    "untouched.",
)
def published_tables(context: dg.AssetExecutionContext,
                     warehouse: JourneysResource) -> dg.MaterializeResult:
    started = time.monotonic()
    with warehouse.connect() as con:
        engine = warehouse.models(con)
        run = read_plan(engine)  # staging goes at publish
        tables = publish(con, Path(warehouse.warehouse_dir), pipeline_graph(), engine=engine)
    seconds = time.monotonic() - started
    warehouse.forget_run(context.run.run_id)  # the run is over: its context goes
    warehouse.reporter(context)(f"published {len(tables)} tables")
    return dg.MaterializeResult(metadata={
        "tables": ", ".join(tables),
        # full or incremental (journey_core.model.incremental), and how many persons it rebuilt
        "mode": run.mode if run else FULL,
        "persons_rebuilt": run.persons if run else 0,
        # where the tables were built: duckdb, or spark and its master
        "engine": engine.where,
        "parquet": str(Path(warehouse.warehouse_dir) / "parquet"),
        **step_timing("publish", build=seconds, check=0.0),
    })


all_assets = [ingested_events, *table_assets, published_tables]
