"""Nightly operation on the sample: day-by-day partitions with files landing late and out of
order give the same published tables as one full run; so do shuffled records and another host
time zone."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from journey_core.config import load_config
from journey_core.ops import run_pipeline
from journey_core.warehouse import connect
from tests.helpers import arrival_day, file_day, landing, published_snapshot, rows, sample_files


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sample_config_path):
    """The sample processed one day at a time, and the same files in one full run of the last
    partition."""
    tmp = tmp_path_factory.mktemp("nightly")
    sample = sample_config_path.parent
    files = sample_files(sample)
    days = sorted({arrival_day(f) for f in files})
    first, last = min(file_day(f) for f in files) - timedelta(days=6), max(days)

    config_path = landing(tmp, sample, "daily")
    config = load_config(config_path)
    warehouse = tmp / "daily_wh"
    modes, repeat = [], {}
    day = first
    while day <= last:
        for rel in files:
            if arrival_day(rel) == day:
                shutil.copy(sample / rel, config_path.parent / rel)
        con = connect(warehouse)
        modes.append((day, run_pipeline(con, config, warehouse, partition=day).mode))
        if day == date(2026, 9, 15):  # the same partition again
            before = published_snapshot(con)
            modes.append((day, run_pipeline(con, config, warehouse, partition=day).mode))
            repeat = {"before": before, "after": published_snapshot(con)}
        con.close()
        day += timedelta(days=1)

    full_path = landing(tmp, sample, "full")
    for rel in files:
        shutil.copy(sample / rel, full_path.parent / rel)
    full_wh = tmp / "full_wh"
    con = connect(full_wh)
    full = run_pipeline(con, load_config(full_path), full_wh, partition=last)
    con.close()
    return {"daily": warehouse, "full": full_wh, "modes": modes, "full_mode": full.mode,
            "repeat": repeat, "last": last, "tmp": tmp, "files": files}


def _snapshot(warehouse: Path, ignore: dict[str, set[str]] | None = None) -> dict[str, list]:
    con = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
    try:
        return published_snapshot(con, ignore=ignore)
    finally:
        con.close()


def test_day_by_day_equals_one_full_run(runs) -> None:
    """Every published table, row by row, is the same after 40-odd nightly partitions (files
    landing late and out of order) as after one full run of the last partition; only the load
    timestamps (`ingested_at`, `rejected_at`) differ."""
    daily, full = _snapshot(runs["daily"]), _snapshot(runs["full"])
    assert daily.keys() == full.keys()
    for table in full:
        assert daily[table] == full[table], table
    assert sum(len(v) for v in full.values()) > 50_000


def test_nightly_runs_are_incremental(runs) -> None:
    """The first run builds everything; every later one rebuilds only the persons it touched,
    and the full run of all files at once is a full rebuild."""
    modes = [mode for _, mode in runs["modes"]]
    assert modes[0] == "full"
    assert set(modes[1:]) == {"incremental"}
    assert runs["full_mode"] == "full"
    con = duckdb.connect(str(runs["daily"] / "journeys.duckdb"), read_only=True)
    ((as_of, partition, mode, persons),) = rows(
        con, "select as_of, latest_partition, mode, persons_rebuilt from pipeline_state")
    total = rows(con, "select count(distinct person_id) from events")[0][0]
    con.close()
    assert partition == runs["last"]
    assert as_of.astimezone(UTC).date() == runs["last"] + timedelta(days=1)  # a UTC day
    assert mode == "incremental"
    assert persons < total


def test_same_partition_twice_changes_nothing(runs) -> None:
    """Running a partition again loads nothing and publishes identical tables."""
    assert runs["repeat"]["before"] == runs["repeat"]["after"]


def test_late_events_are_kept_and_listed(runs) -> None:
    """Survey answers a week late are folded into their journeys (they are in `events`) and
    listed in `late_events`, each later than max_lateness before the published as-of."""
    con = duckdb.connect(str(runs["daily"] / "journeys.duckdb"), read_only=True)
    late = rows(con, "select l.source, l.late_by_seconds, l.max_lateness_seconds, "
                     "e.journey_id is not null from late_events as l "
                     "left join events as e using (event_id)")
    full_late = duckdb.connect(str(runs["full"] / "journeys.duckdb"), read_only=True)
    assert rows(full_late, "select count(*) from late_events") == [(0,)]
    full_late.close()
    con.close()
    assert {source for source, *_ in late} >= {"surveys"}
    assert all(by > limit for _, by, limit, _ in late)
    assert all(found for *_, found in late)


# --- shuffled records, another time zone -----------------------------------------------------


def _csv_records(text: str) -> tuple[str, list[str]]:
    """The header line and each record's raw text (a quoted field may span lines)."""
    lines = text.splitlines(keepends=True)
    reader = csv.reader(io.StringIO(text))
    next(reader)
    records, start = [], reader.line_num
    for _ in reader:
        records.append("".join(lines[start:reader.line_num]))
        start = reader.line_num
    return lines[0], records


def shuffle_file(path: Path, rng: random.Random) -> None:
    """The same records in another order (CSV and NDJSON keep each record's raw text)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        order = list(range(table.num_rows))
        rng.shuffle(order)
        pq.write_table(table.take(order), path)
        return
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        header, records = _csv_records(text)
    else:
        header, records = "", text.splitlines(keepends=True)
    records = [r if r.endswith("\n") else r + "\n" for r in records]
    rng.shuffle(records)
    path.write_text(header + "".join(records), encoding="utf-8")


def test_shuffled_records_in_another_time_zone_give_the_same_tables(runs, sample_config_path,
                                                                   repo_root) -> None:
    """Every file's records shuffled, run in a process with TZ=America/New_York: the same
    tables as the run in UTC. A reject's `record_number` (and its `detail`, which names it) is
    the record's position in its file, so it moves with the shuffle and is left out."""
    sample = sample_config_path.parent
    config_path = landing(runs["tmp"], sample, "shuffled")
    rng = random.Random(20261123)
    for rel in runs["files"]:
        shutil.copy(sample / rel, config_path.parent / rel)
        shuffle_file(config_path.parent / rel, rng)
    warehouse = runs["tmp"] / "shuffled_wh"
    script = ("import sys; from datetime import date; from journey_core.config import "
              "load_config; from journey_core.ops import run_pipeline; from "
              "journey_core.warehouse import connect; con = connect(sys.argv[2]); "
              "run_pipeline(con, load_config(sys.argv[1]), __import__('pathlib').Path("
              "sys.argv[2]), partition=date.fromisoformat(sys.argv[3]))")
    env = {**os.environ, "TZ": "America/New_York"}
    subprocess.run([sys.executable, "-c", script, str(config_path), str(warehouse),
                    runs["last"].isoformat()], check=True, env=env, cwd=repo_root)
    ignore = {"rejected_events": {"record_number", "detail"}}
    shuffled = _snapshot(warehouse, ignore)
    full = _snapshot(runs["full"], ignore)
    for table in full:
        assert shuffled[table] == full[table], table


def test_state_is_recorded_with_the_data(runs) -> None:
    """Every file of the ledger is recorded as processed, with the as-of of the publish that
    first included it: the last files landed in the last partitions."""
    con = duckdb.connect(str(runs["daily"] / "journeys.duckdb"), read_only=True)
    ledger = rows(con, "select count(*) from file_ledger")[0][0]
    processed = rows(con, "select count(*), max(as_of) from processed_files")[0]
    con.close()
    assert ledger == len(runs["files"]) == processed[0]
    assert processed[1].astimezone(UTC).date() == runs["last"] + timedelta(days=1)
