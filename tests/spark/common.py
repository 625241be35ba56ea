"""What the Spark tests share: whether Spark can run here, the host time zone they run in, and
how they compare a Spark run's tables and Parquet exports with the DuckDB engine's.

Spark needs a Java runtime and `pyspark` (`make test` installs both). Without them the Spark
tests are skipped on a developer's machine and fail on CI (`skip_unless_spark`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from journey_core.config import load_config
from journey_core.contract.schema import PUBLISHED
from journey_core.ops import run_pipeline
from journey_core.warehouse import connect
from tests.helpers import CLOCK_COLUMNS, arrival_day

#: What Spark lacks here (empty when it can run).
MISSING = [what for what, found in (("java", shutil.which("java")),) if not found]
try:
    import pyspark  # noqa: F401
except ImportError:
    MISSING.append("pyspark")

#: The host time zone the Spark tests run in (the JVM's default and this process's `TZ`): the
#: pipeline must pin UTC itself, never assume it.
HOST_TZ = "America/New_York"


@contextmanager
def host_time_zone() -> Iterator[None]:
    """This process in the host time zone `HOST_TZ` (its `TZ`), restored however the block
    ends (the worker's later tests read DuckDB's instants in it)."""
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = HOST_TZ
    time.tzset()
    try:
        yield
    finally:
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


def land(sample: Path, folder: Path, files: list[Path], day: date | None) -> None:
    """The sample's files landed by `day` (`arrival_day`; every file: None) and not yet in the
    landing `folder` copied into it."""
    for rel in files:
        if (day is None or arrival_day(rel) <= day) and not (folder / rel).exists():
            shutil.copy(sample / rel, folder / rel)


def skip_unless_spark() -> None:
    """At the top of a Spark test module: skip it on a developer's machine without Spark."""
    if MISSING and not os.environ.get("CI"):
        pytest.skip(f"{', '.join(MISSING)} missing: apt-get install -y openjdk-17-jre-headless; "
                    "pip install -e '.[spark]' (CI fails instead)", allow_module_level=True)


def fail_if_missing() -> None:
    """On CI, where the module was not skipped: fail its tests when Spark cannot run."""
    if MISSING:
        pytest.fail(f"{', '.join(MISSING)} missing on CI: install Debian's "
                    "openjdk-17-jre-headless and the spark extra", pytrace=False)


def _value(value: object) -> object:
    """A value as the comparison sees it: doubles to 9 significant digits, instants in UTC."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


def arrow_types(table: pa.Table) -> dict[str, str]:
    """Column types as Arrow names them (DuckDB says `Etc/UTC` for Spark's `UTC`)."""
    return {f.name: str(pa.timestamp(f.type.unit, "UTC") if pa.types.is_timestamp(f.type)
                        and f.type.tz in ("UTC", "Etc/UTC") else f.type) for f in table.schema}


def normalized_rows(rows: list[tuple]) -> list[tuple]:
    """Rows as the comparison sees them, in one order."""
    return sorted((tuple(_value(v) for v in row) for row in rows), key=repr)


def exported(folder: Path) -> pa.Table:
    """Every row of one table's Parquet export (month folders included)."""
    return duckdb.sql(f"select * from read_parquet('{folder.as_posix()}/**/*.parquet', "
                      "hive_partitioning = false)").to_arrow_table()


def duckdb_run(config_path: Path, out: Path, *, partition: date | None = None) -> None:
    """One DuckDB engine run of the config's files into `out`: what a Spark run must equal."""
    con = connect(out)
    try:
        run_pipeline(con, load_config(config_path), out, partition=partition)
    finally:
        con.close()


def assert_exports_equal(out: Path, reference: Path, *, min_rows: int = 10_000) -> None:
    """Every published table's Parquet export under `out` has exactly the rows of the one
    under `reference` (order aside, doubles to 9 significant digits, load-time clocks left
    out) and the same Arrow types; the DuckDB file's names of the published tables read
    those exports."""
    duck = connect(out, read_only=True)
    total = 0
    try:
        for table in PUBLISHED:
            name = table.name
            cols = [c for c in table.column_names if c not in CLOCK_COLUMNS]
            got = exported(out / "parquet" / name)
            expected = exported(reference / "parquet" / name)
            assert got.num_rows == expected.num_rows, name
            assert normalized_rows(list(zip(*[got[c].to_pylist() for c in cols], strict=True))) \
                == normalized_rows(list(zip(*[expected[c].to_pylist() for c in cols],
                                            strict=True))), name
            assert arrow_types(got) == arrow_types(expected), name
            assert duck.execute(f'select count(*) from main."{name}"').fetchall()[0][0] \
                == got.num_rows, name
            total += got.num_rows
    finally:
        duck.close()
    assert total >= min_rows
