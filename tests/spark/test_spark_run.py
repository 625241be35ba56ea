"""`journeys run --engine spark` of the sample night by night (`spark-submit`, then the CLI in
the test's process), full then incremental, proven equal to the DuckDB engine's exports row by
row after every night.

Its own file (and JVMs of its own; no Connect server), so that the parallel runner runs it, the
longest test of the suite, beside the other Spark tests (`test_spark_engine.py`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from pipelines import cli
from tests.helpers import landing, sample_files
from tests.spark.common import (
    HOST_TZ,
    assert_exports_equal,
    duckdb_run,
    exported,
    fail_if_missing,
    host_time_zone,
    land,
    skip_unless_spark,
)

skip_unless_spark()


#: The nights the test runs, each a `journeys run --engine spark --from NIGHT` over the files
#: landed by then (`tests.helpers.arrival_day`): the first builds everything; by the second, the
#: web export of 2026-09-10 landed four days late, the survey answers of the week to 2026-09-06
#: a week late, the stores' week to 2026-09-13 three days late, and the weekly channels' week
#: to 2026-09-13, all of them events of days published already. A third night then takes every
#: file (the last surveys land on 2026-10-18), with no `--from`, as `make run` runs the sample.
NIGHTS = (date(2026, 9, 12), date(2026, 9, 16))
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


def _journeys_submitted(config_path: Path, out: Path, night: date) -> str:
    """`journeys run --engine spark --from NIGHT` as a Spark application of `spark-submit
    --master local[1]` (the README's way onto a cluster), in a process of its own whose host
    time zone is not UTC; returns what it printed."""
    env = {**{k: v for k, v in os.environ.items() if k != "SPARK_CONNECT_MODE_ENABLED"},
           "TZ": HOST_TZ, "JAVA_TOOL_OPTIONS": f"-Duser.timezone={HOST_TZ}",
           # spark-submit runs the driver with this Python
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]",
               "--driver-memory", "1g", cli.__file__]
    run = subprocess.run([*command, "run", "--engine", "spark", "--config", str(config_path),
                          "--warehouse", str(out), "--from", night.isoformat()],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout


@contextmanager
def _in_host_time_zone() -> Iterator[None]:
    """This process in the host time zone `HOST_TZ` (`host_time_zone`; the Spark session it
    starts gets it from the config's Java options); the session it started is stopped however
    the block ends (its JVM stays, as PySpark's do)."""
    with host_time_zone():
        try:
            yield
        finally:
            from pyspark.sql import SparkSession

            if (session := SparkSession.getActiveSession()) is not None:
                session.stop()


def test_journeys_run_on_spark_night_by_night_exports_what_the_duckdb_engine_exports(
        sample_warehouse: Path, sample_config_path: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The sample in three nightly runs of `journeys run --engine spark` (`NIGHTS`, then every
    file), files landing late and out of order: the first builds everything, the others are
    incremental on Spark's persisted tables and state, rebuilding the touched persons only;
    after each night the exports are exactly those of one DuckDB engine run of the files
    landed by then, for that night (`--from`). The first night is a `spark-submit` and ingests
    with DuckDB's loader (`spark.ingest: duckdb`), handing its tables over; the others run
    the CLI in this process (one Spark session for both, as warm as a cluster's would be) and
    ingest with Spark's readers (the default) into the tables handed over. A model
    using a construct that Spark cannot run fails a run here. (Every night of the sample is
    `test_spark_engine.py`'s `test_the_sample_day_by_day_on_spark`, not run in CI.)"""
    fail_if_missing()
    sample = sample_config_path.parent
    config_path = landing(tmp_path, sample, "landing")
    config_path.write_text(config_path.read_text() + SPARK_CONFIG)
    files = sample_files(sample)
    out = tmp_path / "wh"
    first, second = NIGHTS
    land(sample, config_path.parent, files, first)
    printed = _journeys_submitted(config_path, out, first)
    assert "run: full," in printed
    # the config names no master: spark-submit's is the session's
    assert "engine: spark local[1] (spark-submit)" in printed.splitlines()
    duck_out = tmp_path / "duckdb_wh"
    duckdb_run(config_path, duck_out, partition=first)
    assert_exports_equal(out, duck_out)

    # from now on the warehouse's ingest runs on Spark (Spark's readers, into its tables)
    config_path.write_text(config_path.read_text().replace("  ingest: duckdb\n", ""))
    assert "ingest:" not in config_path.read_text()
    # the next nights in this process (`journeys run`'s CLI), one Spark session for both
    config_path.write_text(config_path.read_text().replace(
        "  conf:\n", f"  conf:\n    spark.driver.extraJavaOptions: -Duser.timezone={HOST_TZ}\n"))
    with _in_host_time_zone():
        for night, reference in ((second, tmp_path / "duckdb_wh2"), (None, sample_warehouse)):
            landed = len(list(config_path.parent.rglob("*.*")))
            land(sample, config_path.parent, files, night)
            assert len(list(config_path.parent.rglob("*.*"))) > landed  # files landed late
            capsys.readouterr()
            night_args = ["--from", night.isoformat()] if night else []
            assert cli.main(["run", "--engine", "spark", "--config", str(config_path),
                             "--warehouse", str(out), *night_args]) == 0, night
            printed = capsys.readouterr().out
            assert "engine: spark local[2]" in printed.splitlines()
            (rebuilt,) = re.findall(r"^run: incremental, (\d+) persons rebuilt$", printed, re.M)
            persons = len(set(exported(out / "parquet" / "events")["person_id"].to_pylist()))
            assert 0 < int(rebuilt) < persons, night  # the touched persons only
            if night is not None:
                duckdb_run(config_path, reference, partition=night)
            assert_exports_equal(out, reference)
