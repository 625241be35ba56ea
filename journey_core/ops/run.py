"""The whole pipeline as plain functions; the Dagster assets and the CLI both call these.

A run: ingest new files, start the run context, build each step of the table graph into
staging (audit each), publish. This layer composes the stages; no stage imports it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from journey_core.config import Config, source_uri
from journey_core.contract.schema import TABLES
from journey_core.contract.vocabulary import FULL
from journey_core.ingest import FileResult, IngestSummary, ingest
from journey_core.ingest import spark as spark_ingest
from journey_core.ingest.spark import SparkTables
from journey_core.model import DuckDBEngine, Engine, RunContext, build_step, clear_staging
from journey_core.model.incremental import read_plan
from journey_core.privacy import load_tombstones
from journey_core.publish import publish
from journey_core.warehouse import apply_settings, ensure_tables
from journey_core.warehouse.quoting import ident, qualified

Progress = Callable[[str], None]
#: Called with each staged table before publishing; raises to stop the run.
Audit = Callable[[duckdb.DuckDBPyConnection, str], None]


class PipelineError(RuntimeError):
    """A run that cannot proceed; the message says why in one line."""


def check_paths(config: Config, *, uris: bool = False) -> None:
    """Every source's folder must exist before a run starts. A source given as a URI is read
    only by ingest with Spark's readers (`uris`), whose listing says when it is missing."""
    for source in config.sources:
        if source_uri(source) is not None:
            if not uris:
                raise PipelineError(f"source {source.name!r}: {source.path} is a URI, which "
                                    "only ingest with Spark's readers reads (engine: spark, "
                                    "whose spark.ingest is spark by default)")
            continue
        folder = config.landing_folder(source)
        if not folder.is_dir():
            raise PipelineError(f"source {source.name!r}: folder {folder} does not exist")


def ingest_files(con: duckdb.DuckDBPyConnection, config: Config,
                 progress: Progress | None = None) -> IngestSummary:
    """Check the source folders, then load every new file."""
    check_paths(config)
    apply_settings(con, config)
    ensure_tables(con)
    clear_staging(DuckDBEngine(con))
    total = sum(len(config.source_files(s)) for s in config.sources)
    return ingest(con, config, progress=_file_reporter(total, progress))


def _file_reporter(total: int, progress: Progress | None) -> Callable[[FileResult], None]:
    """A progress line per file: `[3/118] ingest web/web_2026-09-01.ndjson: ...`."""
    say = progress or (lambda _msg: None)
    done = 0

    def report(r: FileResult) -> None:
        nonlocal done
        done += 1
        say(f"[{done}/{total}] ingest {r.path}: " + (
            "already loaded, skipped" if r.skipped else
            f"FILE REJECTED: {r.problem}" if r.problem else
            f"{r.read} read, {r.loaded} loaded, {r.rejected} rejected, {r.duplicates} duplicates"))

    return report


def ingest_files_on_spark(con: duckdb.DuckDBPyConnection, engine: SparkTables, config: Config,
                          handover: Path, progress: Progress | None = None, *,
                          loaded_at: datetime | None = None) -> IngestSummary:
    """Check the source folders, then load every new file with Spark's readers into the Spark
    engine's ingest tables (`spark.ingest: spark`; `journey_core.ingest.spark`). The
    tombstones stay in the DuckDB file `con` (`journeys forget` writes them there).

    A warehouse whose ingest ran on DuckDB until now (its DuckDB file's ledger has files, the
    Spark tables' none) first hands DuckDB's ingest tables over (`hand_over`, through the
    folder `handover`): its files are not loaded again, and what it loaded, rejected and
    forgot stays, as if its ingest had always run on Spark."""
    check_paths(config, uris=True)
    clear_staging(engine)
    if _ingested_on_duckdb_only(con, engine):
        hand_over(con, engine, handover)
    files = spark_ingest.list_files(engine, config)
    return spark_ingest.ingest(engine, config, load_tombstones(con), files=files,
                               loaded_at=loaded_at,
                               progress=_file_reporter(len(files), progress))


def _ingested_on_duckdb_only(con: duckdb.DuckDBPyConnection, engine: Engine) -> bool:
    """The DuckDB file's ledger has files and the Spark tables' ledger has none."""
    duck = DuckDBEngine(con)
    return (duck.exists("main", "file_ledger")
            and duck.scalar("select count(*) from main.file_ledger") > 0
            and not (engine.exists("main", "file_ledger")
                     and engine.scalar("select count(*) from main.file_ledger") > 0))


def start_run(engine: Engine, config: Config, *,
              partition: date | None = None, full: bool = False,
              as_of: datetime | None = None) -> RunContext:
    """The run context of a run whose ingest is done."""
    return RunContext.start(engine, config, partition=partition, full=full, as_of=as_of)


def stage(engine: Engine, ctx: RunContext, step: str) -> dict[str, int]:
    """Build one step of the table graph into staging; its tables' row counts."""
    return build_step(engine, ctx, ctx.graph.step(step))


#: The ingest tables a run on another engine reads: DuckDB's ingest hands them over.
HANDED_OVER = ("ingested_events", "ingest_rejects", "file_ledger")
#: The folder of the warehouse where DuckDB's ingest hands them over, as Parquet.
HANDOVER = ".spark-handover"


def hand_over(con: duckdb.DuckDBPyConnection, engine: Engine, folder: Path) -> None:
    """Give `engine` (Spark's) DuckDB's ingest tables, as its `main` tables: DuckDB writes each
    to Parquet files under `folder` (replaced each run), which the engine's reader loads (cast
    to the contract's types). What an unpublished run left there goes (`clear_staging`); its
    published tables and state (`pipeline_state`, `processed_files`, `late_events`) stay: the
    run is incremental there as on DuckDB."""
    duck = DuckDBEngine(con)
    if engine.exists("main", "file_ledger") and engine.scalar(
            "select count(*) from main.file_ledger") > duck.scalar(
            "select count(*) from main.file_ledger"):
        raise PipelineError("the Spark tables' ledger knows files the DuckDB file's does not: "
                            "this warehouse's ingest ran on Spark, and a hand-over from "
                            "DuckDB (spark.ingest: duckdb) would drop those files' rows; "
                            "leave spark.ingest at spark, its default")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    engine.create_schema("main")
    clear_staging(engine)
    for table in HANDED_OVER:
        cols = ", ".join(f"{ident(c.name)}::varchar as {ident(c.name)}" if c.type == "json"
                         else ident(c.name) for c in TABLES[table].columns)
        duck.write_parquet(f"select {cols} from {qualified('main', table)}", folder / table)
        engine.load_parquet(qualified("main", table), folder / table)


@dataclass
class RunResult:
    ingest: IngestSummary | None
    as_of: datetime
    row_counts: dict[str, int]
    #: `full` or `incremental` (see `journey_core.model.incremental`).
    mode: str = FULL
    #: Wall-clock seconds per step and for `publish` (the benchmark's breakdown).
    seconds: dict[str, float] = field(default_factory=dict)


def rebuild(con: duckdb.DuckDBPyConnection, config: Config, warehouse_dir: Path, *,
            as_of: datetime | None = None, partition: date | None = None, full: bool = False,
            progress: Progress | None = None, audit: Audit | None = None,
            engine: Engine | None = None) -> RunResult:
    """Write every published table to staging (only the touched persons' rows when the run is
    incremental), audit each (`audit` raises to stop), publish. `engine`: where the tables
    are built and published (Spark's; by default DuckDB, `con`)."""
    say = progress or (lambda _msg: None)
    apply_settings(con, config)
    models = engine or DuckDBEngine(con)
    if engine is not None:
        clear_staging(engine)  # as a run on that engine does before its first step
    ctx = start_run(models, config, partition=partition, full=full, as_of=as_of)
    counts, seconds = {}, {}
    for step in ctx.graph.steps:
        started = time.perf_counter()
        counts.update(stage(models, ctx, step.name))
        seconds[step.name] = time.perf_counter() - started
        for table in step.outputs:
            if audit:
                audit(con, table)
            say(f"built {table}: {counts[table]} rows")
    run = read_plan(models)
    started = time.perf_counter()
    publish(con, warehouse_dir, ctx.graph, engine=engine)
    seconds["publish"] = time.perf_counter() - started
    return RunResult(None, ctx.as_of, counts, run.mode if run else FULL, seconds)


def run_pipeline(con: duckdb.DuckDBPyConnection, config: Config, warehouse_dir: Path, *,
                 as_of: datetime | None = None, partition: date | None = None,
                 full: bool = False, progress: Progress | None = None) -> RunResult:
    """Ingest new files, then rebuild, audit and publish every published table."""
    summary = ingest_files(con, config, progress)
    result = rebuild(con, config, warehouse_dir, as_of=as_of, partition=partition, full=full,
                     progress=progress)
    result.ingest = summary
    return result
