"""Where Spark's ingest (`spark.ingest: spark`) of a config's files spends its time.

    .venv/bin/python bench/spark_ingest_phases.py [CONFIG]   # default: data/sample/journeys.yaml

One `journey_core.ingest.spark.ingest` into an empty warehouse on a `local[2]` session (the
Spark test's settings: two shuffle partitions, no adaptive re-planning), each phase timed: the
first use of the catalog before it (a run pays it in its first statement, whatever that is),
recovery of a cut-off ingest (`recover`), the hash pass (`list_files`), the mapping on the
executors (`_mapped`, counted so that it runs), judging the repeats and committing
(`_judge_and_commit`), and the rest (the ingest tables, the ledger's rows). Beside it, the
record rules alone (`parse_file` of every file in this process): what mapping every record by
those rules would cost on one core, where the executors map in SQL (`loader.stage_file`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journey_core.config import load_config
from journey_core.ingest import spark as spark_ingest
from journey_core.ingest.loader import display_path, hash_salt
from journey_core.ingest.mapping import parse_file
from journey_core.model.spark import SparkEngine, spark_session
from journey_core.privacy.tombstones import Tombstones

PHASES = ("recover", "list_files", "_mapped", "_judge_and_commit")


def _timed(name: str, seconds: dict[str, float]) -> Callable[..., Any]:
    phase = getattr(spark_ingest, name)

    def run(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = phase(*args, **kwargs)
        if name == "_mapped":
            result.count()
        seconds[name] = time.perf_counter() - started
        return result

    return run


def main(config_path: Path) -> None:
    config = load_config(config_path)
    salt = hash_salt(config)
    started = time.perf_counter()
    for source in config.sources:
        for path in config.source_files(source):
            parse_file(source, path, display_path(config, path), path.read_bytes(), salt=salt,
                       loaded_at=datetime.now(UTC), max_future=config.max_future)
    rules = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        spark = spark_session(Path(tmp) / "spark", master="local[2]", conf={
            "spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "2",
            "spark.sql.adaptive.enabled": "false"})
        try:
            engine = SparkEngine(spark)
            started = time.perf_counter()
            engine.create_schema("main")  # the first use of the catalog starts the metastore
            catalog = time.perf_counter() - started
            seconds: dict[str, float] = {}
            for name in PHASES:
                setattr(spark_ingest, name, _timed(name, seconds))
            started = time.perf_counter()
            summary = spark_ingest.ingest(engine, config, Tombstones())
            total = time.perf_counter() - started
        finally:
            spark.stop()
    print(f"the first use of the catalog (Hive's metastore in Derby starts): {catalog:.1f} s")
    print(f"spark ingest of {len(summary.files)} files, {summary.total('loaded')} events "
          f"loaded: {total:.1f} s")
    for name in PHASES:
        print(f"  {name}: {seconds[name]:.1f} s")
    print(f"  the rest: {total - sum(seconds.values()):.1f} s")
    print(f"parse_file of every file in one process (the record rules alone): {rules:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample/journeys.yaml"))
