"""`journeys run --engine spark` of the sample, in processes of its own (`spark-submit`, then the
CLI), full then incremental, proven equal to the DuckDB engine's exports row by row.

Its own file (and JVMs of its own; no Connect server), so that the parallel runner runs it, the
longest test of the suite, beside the other Spark tests (`test_spark_engine.py`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from pipelines import cli
from tests.helpers import file_day, landing, sample_files
from tests.spark.common import (
    HOST_TZ,
    assert_exports_equal,
    duckdb_run,
    exported,
    fail_if_missing,
    skip_unless_spark,
)

skip_unless_spark()


#: The first Spark run takes the sample's files of the days up to this one; the second all.
FIRST_RUN_THROUGH = date(2026, 9, 20)
#: What the test's config adds for Spark: tiny data on two cores, few partitions; the first
#: run's ingest on DuckDB (`spark.ingest: duckdb`, handed over to Spark).
SPARK_CONFIG = """
spark:
  ingest: duckdb
  conf:
    spark.driver.memory: 1g
    spark.sql.shuffle.partitions: "2"
    spark.sql.adaptive.enabled: "false"
"""


def _journeys_run_on_spark(config_path: Path, out: Path, *, submit: bool = False) -> str:
    """`journeys run --engine spark` in its own process (its own session) whose host time zone
    is not UTC; returns what it printed. `submit`: the CLI as a Spark application of
    `spark-submit --master local[1]`, the README's way onto a cluster."""
    env = {**{k: v for k, v in os.environ.items() if k != "SPARK_CONNECT_MODE_ENABLED"},
           "TZ": HOST_TZ, "JAVA_TOOL_OPTIONS": f"-Duser.timezone={HOST_TZ}",
           # spark-submit runs the driver with this Python
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    bin_dir = Path(sys.executable).parent
    command = ([str(bin_dir / "spark-submit"), "--master", "local[1]", "--driver-memory", "1g",
                cli.__file__] if submit else [str(bin_dir / "journeys")])
    run = subprocess.run([*command, "run", "--engine", "spark", "--config", str(config_path),
                          "--warehouse", str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_journeys_run_on_spark_exports_what_the_duckdb_engine_exports(
        sample_warehouse: Path, sample_config_path: Path, tmp_path: Path) -> None:
    """The sample in two nightly runs of `journeys run --engine spark`: the first, over the
    files of the days up to `FIRST_RUN_THROUGH`, builds everything and exports exactly what
    the DuckDB engine exports for those files; the second, once every file has landed
    (stores' and surveys' files for days long published among them), is incremental on
    Spark's persisted tables and state, and its exports are exactly those of the DuckDB
    engine's one full run of the sample. The first run ingests with DuckDB's loader
    (`spark.ingest: duckdb`) and hands its tables over; the second with Spark's readers (the
    default) into the tables handed over. A model using a construct that Spark cannot run
    fails a run here."""
    fail_if_missing()
    sample = sample_config_path.parent
    config_path = landing(tmp_path, sample, "landing")
    config_path.write_text(config_path.read_text() + SPARK_CONFIG)
    files = sample_files(sample)
    first = [f for f in files if file_day(f) <= FIRST_RUN_THROUGH]
    assert 0 < len(first) < len(files)
    for rel in first:
        shutil.copy(sample / rel, config_path.parent / rel)
    out = tmp_path / "wh"
    printed = _journeys_run_on_spark(config_path, out, submit=True)
    assert "run: full," in printed
    # the config names no master: spark-submit's is the session's
    assert "engine: spark local[1] (spark-submit)" in printed.splitlines()
    duck_out = tmp_path / "duckdb_wh"
    duckdb_run(config_path, duck_out)
    assert_exports_equal(out, duck_out)

    for rel in files:
        shutil.copy(sample / rel, config_path.parent / rel)
    # from now on the warehouse's ingest runs on Spark (Spark's readers, into its tables)
    config_path.write_text(config_path.read_text().replace("  ingest: duckdb\n", ""))
    assert "ingest:" not in config_path.read_text()
    printed = _journeys_run_on_spark(config_path, out)
    assert "engine: spark local[2]" in printed.splitlines()
    (rebuilt,) = re.findall(r"^run: incremental, (\d+) persons rebuilt$", printed, re.M)
    persons = len(set(exported(out / "parquet" / "events")["person_id"].to_pylist()))
    assert 0 < int(rebuilt) < persons  # the touched persons only
    assert_exports_equal(out, sample_warehouse)
