"""The resource every asset, sensor and schedule reads the warehouse through."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from journey_core.config import Config, load_config
from journey_core.model import DuckDBEngine, Engine, RunContext
from journey_core.ops import start_run
from journey_core.ops.run import HANDOVER
from journey_core.warehouse import WAREHOUSE_FILE, apply_settings

DEFAULT_CONFIG = "data/sample/journeys.yaml"
DEFAULT_WAREHOUSE = "warehouse"


class JourneysResource(dg.ConfigurableResource):
    """Where the pipeline config is and which warehouse folder to write; opens the DuckDB file
    (through dagster-duckdb's `DuckDBResource`) and keeps each run's context."""

    config_path: str = DEFAULT_CONFIG
    warehouse_dir: str = DEFAULT_WAREHOUSE
    #: Print progress lines to stderr (the `journeys` CLI); otherwise they go to the run log.
    progress: bool = False
    #: Rebuild every person even when an incremental run would do (`journeys run --full`).
    full_rebuild: bool = False
    #: `duckdb` or `spark`: where the tables are built; empty: the config's `engine`.
    engine: str = ""
    #: Run id -> the run context, built by the run's first table step.
    _contexts: dict[str, RunContext] = PrivateAttr(default_factory=dict)
    #: The Spark engine (one session per process), started on first use.
    _spark: Any = PrivateAttr(None)

    def engine_name(self) -> str:
        return self.engine or self.load().engine

    def on_spark(self) -> bool:
        return self.engine_name() == "spark"

    def ingest_on_spark(self) -> bool:
        """Source files are loaded with Spark's readers into the Spark tables (`spark.ingest:
        spark` on the Spark engine), not by DuckDB's loader."""
        return self.load().ingest_on_spark(self.engine_name())

    def models(self, con: duckdb.DuckDBPyConnection) -> Engine:
        """The engine the tables are built, checked and published on: DuckDB's, on `con`, or
        the Spark session's (ingest, the ledger and the export version stay in DuckDB)."""
        if not self.on_spark():
            return DuckDBEngine(con)
        if self._spark is None:
            from journey_core.model.spark import spark_engine  # pyspark: an optional extra

            self._spark = spark_engine(self.load(), Path(self.warehouse_dir))
        return self._spark

    def handover_folder(self) -> Path:
        """Where DuckDB's ingest tables are written for Spark to read (replaced each run)."""
        return Path(self.warehouse_dir) / HANDOVER

    def reporter(self, context: dg.AssetExecutionContext) -> Callable[[str], None]:
        if self.progress:
            return lambda message: print(f"journeys: {message}", file=sys.stderr, flush=True)
        return context.log.info

    def load(self) -> Config:
        return load_config(self.config_path)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse connection, in UTC with the config's DuckDB settings. A file locked by
        another process is retried by DuckDBResource's backoff, then by a step retry."""
        Path(self.warehouse_dir).mkdir(parents=True, exist_ok=True)
        database = DuckDBResource(database=str(Path(self.warehouse_dir) / WAREHOUSE_FILE))
        with ExitStack() as stack:
            try:
                con = stack.enter_context(database.get_connection())
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                # Another process writes the warehouse right now: transient, retry the step.
                raise dg.RetryRequested(max_retries=5, seconds_to_wait=10) from exc
            try:
                con.execute("set TimeZone = 'UTC'")  # results never depend on the host's zone
                apply_settings(con, self.load())
                yield con
            finally:
                con.close()

    def forget_run(self, run_id: str) -> None:
        """Drop the run's context: at ingest (as-of follows the events) and at publish."""
        self._contexts.pop(run_id, None)

    def run_context(self, context: dg.AssetExecutionContext,
                    con: duckdb.DuckDBPyConnection) -> RunContext:
        """The run's context, built once per run (after ingest) and shared by its steps, on
        the engine the tables are built on (whose state decides as-of and the plan)."""
        run_id = context.run.run_id
        if run_id not in self._contexts:
            self._contexts[run_id] = start_run(
                self.models(con), self.load(), partition=run_partition(context),
                full=self.full_rebuild)
        return self._contexts[run_id]


def run_partition(context: dg.AssetExecutionContext) -> date | None:
    """The run's partition (a UTC day), or None for an unpartitioned run."""
    return date.fromisoformat(context.partition_key) if context.has_partition_key else None
