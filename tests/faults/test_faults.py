"""The fault suite: real files with the faults real exports have, and real crashes.

Each test states the fault, then asserts the records' fate (loaded, rejected with its type, or
duplicate), that reconciliation holds (read = loaded + rejected + duplicates per file), and that
the published tables are the old version or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from journey_core.config import load_config
from journey_core.contract.schema import PUBLISHED
from journey_core.ops import run_pipeline
from journey_core.warehouse import connect

HEADER = "id,ts,customer,channel,type,revenue\n"


def project(root: Path, *, extra_sources: list[dict[str, Any]] | None = None) -> Path:
    """A landing folder with a CSV, an NDJSON and a Parquet source; returns its config path."""
    for folder in ("csv", "ndjson", "parquet", "store"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "csv" / "a.csv").write_text(
        HEADER + "1,2026-09-01T10:00:00Z,c1,web,page_view,\n"
        "2,2026-09-01T10:05:00Z,c1,web,purchase,10.5\n")
    (root / "ndjson" / "a.ndjson").write_text(json.dumps(
        {"id": "n1", "ts": "2026-09-01T11:00:00Z", "customer": "c2", "channel": "app",
         "type": "page_view"}) + "\n")
    pq.write_table(pa.table({"id": ["p1"], "ts": ["2026-09-01T12:00:00Z"], "customer": ["c3"],
                             "channel": ["app"], "type": ["page_view"]}),
                   root / "parquet" / "a.parquet")
    fields = {"event_id": "id", "occurred_at": "ts", "customer_id": "customer",
              "event_type": "type", "revenue": "revenue"}
    sources = [
        {"name": "csv", "path": "csv/*.csv", "format": "csv", "fields": fields},
        {"name": "ndjson", "path": "ndjson/*.ndjson", "format": "ndjson", "fields": fields},
        {"name": "parquet", "path": "parquet/*.parquet", "format": "parquet", "fields": fields},
        *(extra_sources or []),
    ]
    path = root / "journeys.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}))
    return path


def run(config_path: Path, warehouse: Path, **kwargs: Any) -> duckdb.DuckDBPyConnection:
    con = connect(warehouse)
    run_pipeline(con, load_config(config_path), warehouse,
                 as_of=datetime(2026, 9, 10, tzinfo=UTC), **kwargs)
    return con


def fate(con: duckdb.DuckDBPyConnection, file: str) -> dict[str, Any]:
    """What became of each record of a file: loaded event ids, rejects by record, the ledger."""
    loaded = sorted(r[0] for r in con.execute(
        "select event_id from ingested_events where file = ?", [file]).fetchall())
    rejected = sorted(con.execute(
        "select record_number, reason from ingest_rejects where file = ?", [file]).fetchall())
    ledger = con.execute("select records_read, records_loaded, records_rejected, "
                         "records_duplicate, status from file_ledger where path = ?",
                         [file]).fetchall()
    return {"loaded": loaded, "rejected": rejected, "ledger": ledger}


def assert_reconciled(con: duckdb.DuckDBPyConnection) -> None:
    """Every file: read = loaded + rejected + duplicates; the books match the tables; the
    published tables are this run's (new) version."""
    for path, read, loaded, rejected, dupes in con.execute(
            "select path, records_read, records_loaded, records_rejected, records_duplicate "
            "from file_ledger").fetchall():
        assert read == loaded + rejected + dupes, path
    assert con.execute("select sum(records_loaded) from file_ledger").fetchall()[0][0] == \
        con.execute("select count(*) from ingested_events").fetchall()[0][0]
    assert con.execute("select sum(records_rejected) from file_ledger").fetchall()[0][0] == \
        con.execute("select count(*) from ingest_rejects").fetchall()[0][0]
    assert con.execute("select count(*) from events").fetchall() == \
        con.execute("select count(*) from ingested_events").fetchall()
    assert con.execute("select count(*) from rejected_events").fetchall() == \
        con.execute("select count(*) from ingest_rejects").fetchall()


def test_malformed_csv_line(tmp_path: Path) -> None:
    """A CSV line with too many fields is rejected as malformed_record; its neighbours load."""
    cfg = project(tmp_path / "in")
    (tmp_path / "in" / "csv" / "b.csv").write_text(
        HEADER + "3,2026-09-01T10:00:00Z,c1,web,page_view,,EXTRA\n"
        "4,2026-09-01T10:01:00Z,c1,web,page_view,\n")
    con = run(cfg, tmp_path / "wh")
    assert fate(con, "csv/b.csv") == {"loaded": ["csv:4"], "rejected": [(2, "malformed_record")],
                                      "ledger": [(2, 1, 1, 0, "loaded")]}
    assert_reconciled(con)


def test_truncated_ndjson_line(tmp_path: Path) -> None:
    """An NDJSON line cut mid-object is rejected as malformed_record; the next line loads."""
    cfg = project(tmp_path / "in")
    (tmp_path / "in" / "ndjson" / "b.ndjson").write_text(
        '{"id": "n2", "ts": "2026-09-01T11:00:00Z", "customer": "c2", "chan\n'
        + json.dumps({"id": "n3", "ts": "2026-09-01T11:01:00Z", "customer": "c2",
                      "channel": "app", "type": "page_view"}) + "\n")
    con = run(cfg, tmp_path / "wh")
    assert fate(con, "ndjson/b.ndjson") == {
        "loaded": ["ndjson:n3"], "rejected": [(1, "malformed_record")],
        "ledger": [(2, 1, 1, 0, "loaded")]}
    assert_reconciled(con)


def test_empty_and_corrupt_parquet_files(tmp_path: Path) -> None:
    """An empty (0-byte) export loads nothing and is recorded; a corrupt Parquet file is
    rejected whole in the ledger with the reason, and the run still publishes the rest."""
    cfg = project(tmp_path / "in")
    (tmp_path / "in" / "parquet" / "empty.parquet").write_bytes(b"")
    (tmp_path / "in" / "parquet" / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    con = run(cfg, tmp_path / "wh")
    assert fate(con, "parquet/empty.parquet")["ledger"] == [(0, 0, 0, 0, "loaded")]
    corrupt = con.execute("select status, problem from file_ledger "
                          "where path = 'parquet/corrupt.parquet'").fetchall()
    assert corrupt[0][0] == "rejected" and "unreadable Parquet" in corrupt[0][1]
    assert fate(con, "parquet/a.parquet")["loaded"] == ["parquet:p1"]
    assert_reconciled(con)


def test_missing_required_column_rejects_file_extra_column_is_kept(tmp_path: Path) -> None:
    """A file without the timestamp column is rejected whole (ledger, reason names the column);
    an extra column lands in properties."""
    cfg = project(tmp_path / "in")
    (tmp_path / "in" / "csv" / "nots.csv").write_text("id,customer,channel,type\n5,c1,web,x\n")
    (tmp_path / "in" / "csv" / "extra.csv").write_text(
        "id,ts,customer,channel,type,revenue,coupon\n6,2026-09-01T10:00:00Z,c1,web,x,,SAVE10\n")
    con = run(cfg, tmp_path / "wh")
    status, problem = con.execute("select status, problem from file_ledger "
                                  "where path = 'csv/nots.csv'").fetchall()[0]
    assert status == "rejected" and "'ts' (for occurred_at)" in problem
    props = con.execute("select properties from events where event_id = 'csv:6'").fetchall()
    assert json.loads(props[0][0]) == {"coupon": "SAVE10"}
    assert_reconciled(con)


def test_wrong_type_and_missing_identifier(tmp_path: Path) -> None:
    """A non-numeric revenue is rejected as bad_value; a record without any identifier as
    missing_identifier."""
    cfg = project(tmp_path / "in")
    (tmp_path / "in" / "csv" / "b.csv").write_text(
        HEADER + "7,2026-09-01T10:00:00Z,c1,web,purchase,ten euros\n"
        "8,2026-09-01T10:00:00Z,,web,page_view,\n")
    con = run(cfg, tmp_path / "wh")
    assert fate(con, "csv/b.csv") == {
        "loaded": [], "rejected": [(2, "bad_value"), (3, "missing_identifier")],
        "ledger": [(2, 0, 2, 0, "loaded")]}
    assert_reconciled(con)


def test_duplicates_natural_and_conflicting(tmp_path: Path) -> None:
    """The same event in two files loads once (a duplicate); the same id with other content is
    kept as a conflicting_duplicate reject, the first version wins."""
    cfg = project(tmp_path / "in")
    (tmp_path / "in" / "csv" / "b.csv").write_text(
        HEADER + "1,2026-09-01T10:00:00Z,c1,web,page_view,\n"      # same as a.csv line 2
        "2,2026-09-01T10:05:00Z,c1,web,purchase,99.0\n")           # a.csv says 10.5
    con = run(cfg, tmp_path / "wh")
    assert fate(con, "csv/b.csv") == {"loaded": [], "rejected": [(3, "conflicting_duplicate")],
                                      "ledger": [(2, 0, 1, 1, "loaded")]}
    assert con.execute("select revenue from events where event_id = 'csv:2'").fetchall() == [
        (10.5,)]
    assert_reconciled(con)


def test_same_file_delivered_twice(tmp_path: Path) -> None:
    """The same content under another name (and the same file on the next run) loads nothing
    again: the ledger knows its hash."""
    cfg = project(tmp_path / "in")
    shutil.copy(tmp_path / "in" / "csv" / "a.csv", tmp_path / "in" / "csv" / "a_resent.csv")
    con = run(cfg, tmp_path / "wh")
    assert con.execute("select count(*) from file_ledger where path like 'csv/%'").fetchall() \
        == [(1,)]
    before = con.execute("select count(*) from ingested_events").fetchall()
    con.close()
    con = run(cfg, tmp_path / "wh")
    assert con.execute("select count(*) from ingested_events").fetchall() == before
    assert_reconciled(con)


def test_naive_local_times_across_dst(tmp_path: Path) -> None:
    """Naive Berlin times: an ambiguous time (clocks fall back) is its first occurrence; a time
    that does not exist (clocks jump forward) is rejected as bad_timestamp."""
    store = {"name": "store", "path": "store/*.csv", "format": "csv",
             "constants": {"channel": "store", "event_type": "purchase"},
             "fields": {"event_id": "receipt", "occurred_at": "sold_at",
                        "customer_id": "loyalty"},
             "timestamp": {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Berlin"}}
    cfg = project(tmp_path / "in", extra_sources=[store])
    (tmp_path / "in" / "store" / "s.csv").write_text(
        "receipt,sold_at,loyalty\n"
        "r1,25/10/2026 02:30,c1\n"      # happens twice: first at 00:30 UTC (CEST)
        "r2,29/03/2026 02:30,c1\n"      # never happens in Berlin
        "r3,25/10/2026 03:30,c1\n")     # after the change: CET, 02:30 UTC
    con = run(cfg, tmp_path / "wh")
    got = dict(con.execute("select event_id, occurred_at from ingested_events "
                           "where source = 'store'").fetchall())
    assert got == {"store:r1": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
                   "store:r3": datetime(2026, 10, 25, 2, 30, tzinfo=UTC)}
    assert fate(con, "store/s.csv")["rejected"] == [(3, "bad_timestamp")]
    assert_reconciled(con)


def test_mixed_timestamp_formats(tmp_path: Path) -> None:
    """ISO with Z, with an offset, and naive (the source's zone) all load as the right instant;
    epoch milliseconds where seconds are configured (and the reverse) are rejected, never read
    as a wrong date."""
    secs = {"name": "secs", "path": "secs/*.csv", "format": "csv",
            "constants": {"channel": "email", "event_type": "email_open"},
            "fields": {"event_id": "id", "occurred_at": "t", "customer_id": "c"},
            "timestamp": {"format": "epoch_s"}}
    millis = {**secs, "name": "millis", "path": "millis/*.csv",
              "timestamp": {"format": "epoch_ms"}}
    cfg = project(tmp_path / "in", extra_sources=[secs, millis])
    for folder in ("secs", "millis"):
        (tmp_path / "in" / folder).mkdir()
    (tmp_path / "in" / "secs" / "a.csv").write_text("id,t,c\ns1,1788264000,c1\n"
                                                     "s2,1788264000000,c1\n")
    (tmp_path / "in" / "millis" / "a.csv").write_text("id,t,c\nm1,1788264000000,c1\n"
                                                       "m2,1788264000,c1\n")
    (tmp_path / "in" / "ndjson" / "b.ndjson").write_text("\n".join(json.dumps(
        {"id": i, "ts": ts, "customer": "c9", "channel": "app", "type": "page_view"})
        for i, ts in (("z", "2026-09-01T10:00:00Z"), ("o", "2026-09-01T12:00:00+02:00"),
                      ("n", "2026-09-01T10:00:00"))) + "\n")
    con = run(cfg, tmp_path / "wh")
    instant = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
    got = dict(con.execute("select event_id, occurred_at from ingested_events where "
                           "event_id in ('ndjson:z', 'ndjson:o', 'ndjson:n', 'secs:s1', "
                           "'millis:m1')").fetchall())
    assert got == {"ndjson:z": instant, "ndjson:o": instant, "ndjson:n": instant,
                   "secs:s1": datetime.fromtimestamp(1788264000, UTC),
                   "millis:m1": datetime.fromtimestamp(1788264000, UTC)}
    assert fate(con, "secs/a.csv")["rejected"] == [(3, "bad_timestamp")]
    assert fate(con, "millis/a.csv")["rejected"] == [(3, "bad_timestamp")]
    assert_reconciled(con)


def test_timestamp_in_2099(tmp_path: Path) -> None:
    """An event dated 2099 is rejected as too_far_in_future and does not move as-of."""
    cfg = project(tmp_path / "in")
    (tmp_path / "in" / "csv" / "b.csv").write_text(HEADER + "9,2099-01-01T00:00:00Z,c1,web,x,\n")
    con = connect(tmp_path / "wh")
    run_pipeline(con, load_config(cfg), tmp_path / "wh")  # as-of from the data
    assert fate(con, "csv/b.csv")["rejected"] == [(2, "too_far_in_future")]
    assert con.execute("select max(as_of) from journeys").fetchall() == [
        (datetime(2026, 9, 2, tzinfo=UTC),)]
    assert_reconciled(con)


def test_empty_day_changes_nothing(tmp_path: Path) -> None:
    """A run with no new file republishes the same tables."""
    cfg = project(tmp_path / "in")
    con = run(cfg, tmp_path / "wh")
    before = snapshot(con)
    con.close()
    con = run(cfg, tmp_path / "wh")
    assert snapshot(con) == before
    assert_reconciled(con)


# --- crashes ------------------------------------------------------------------------------------


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    return {t.name: sorted(map(str, con.execute(f'select * from main."{t.name}"').fetchall()))
            for t in PUBLISHED}


def parquet_snapshot(warehouse: Path) -> dict[str, int] | None:
    folder = warehouse / "parquet"
    if not folder.exists():
        return None
    return {t.name: duckdb.sql(f"select count(*) from read_parquet('{folder}/{t.name}/**/"
                               "*.parquet')").fetchall()[0][0] for t in PUBLISHED}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}, **(extra or {})}


def journeys_run(*args: str) -> subprocess.CompletedProcess[str]:
    """`journeys ...` in its own process, to completion."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=_env(),
                          capture_output=True, text=True, timeout=300, check=False)


def cli_run(config: Path, warehouse: Path) -> int:
    """`journeys run` in this process: the CLI's own code path (a real Dagster materialize with
    every check), without a process's start-up time."""
    from pipelines.cli import main

    home = os.environ.pop("DAGSTER_HOME", None)
    try:
        return main(["run", "--config", str(config), "--warehouse", str(warehouse)])
    finally:
        if home is not None:
            os.environ["DAGSTER_HOME"] = home


def journeys_start(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`journeys ...` started in the background, its output in `log`."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], env=_env(env),
                                stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("point", ["export", "commit", "switch"])
def test_killed_while_publishing(tmp_path: Path, point: str,
                                published: tuple[Path, Path]) -> None:
    """SIGKILL while publishing (mid Parquet export, inside the DuckDB transaction, after the
    commit just before the `parquet` link moves): the DuckDB tables and the Parquet files are
    each wholly the old version or wholly the new one, and the next run finishes the job."""
    cfg, wh = published
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    old, old_files = snapshot(con), parquet_snapshot(wh)
    con.close()
    (tmp_path / "in" / "csv" / "b.csv").write_text(HEADER + "10,2026-09-02T10:00:00Z,c4,web,x,\n")
    marker = tmp_path / "paused"
    log = tmp_path / "killed.log"
    proc = journeys_start("run", "--config", str(cfg), "--warehouse", str(wh), log=log,
                          env={"JOURNEYS_FAULT_PAUSE": point, "JOURNEYS_FAULT_MARKER": str(marker)})
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    # Readers now: the tables are old or new as a whole, and so are the files.
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    after = snapshot(con)
    con.close()
    files = parquet_snapshot(wh)
    assert after == old if point in ("export", "commit") else after != old
    assert files == old_files  # killed after the commit: the link still shows the old set

    # The next run completes the publish with the new file.
    assert cli_run(cfg, wh) == 0
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    assert con.execute("select count(*) from events where event_id = 'csv:10'").fetchall() == [
        (1,)]
    new = snapshot(con)
    assert_reconciled(con)
    con.close()
    assert parquet_snapshot(wh) == {name: len(rows) for name, rows in new.items()}
    # what the killed publish left is gone: the published version and the one before remain
    assert len(list((wh / ".parquet.versions").iterdir())) == 2


def test_two_runs_at_once(tmp_path: Path) -> None:
    """Two runs started together: the second waits for the warehouse lock (step retries) or
    fails cleanly; every file is loaded exactly once and the tables are consistent."""
    cfg = project(tmp_path / "in")
    wh = tmp_path / "wh"
    logs = [tmp_path / f"run{i}.log" for i in range(2)]
    procs = [journeys_start("run", "--config", str(cfg), "--warehouse", str(wh), log=log)
             for log in logs]
    codes = [p.wait(300) for p in procs]
    outputs = [log.read_text() for log in logs]
    assert 0 in codes, outputs
    for code, out in zip(codes, outputs, strict=True):
        assert code == 0 or "lock" in out.lower(), out
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    assert con.execute("select count(*) from file_ledger").fetchall() == [(3,)]
    assert con.execute("select count(*) from events").fetchall() == [(4,)]
    assert_reconciled(con)
    con.close()


def test_failed_check_publishes_nothing(tmp_path: Path) -> None:
    """Corruption caught by a blocking check (events deleted behind the ledger's back) stops
    the run before publishing: the CLI exits 1 naming the check, and the published tables and
    Parquet files stay exactly as they were."""
    cfg = project(tmp_path / "in")
    wh = tmp_path / "wh"
    assert journeys_run("run", "--config", str(cfg), "--warehouse", str(wh)).returncode == 0
    con = duckdb.connect(str(wh / "journeys.duckdb"))
    old, old_files = snapshot(con), parquet_snapshot(wh)
    con.execute("delete from ingested_events where event_id = 'csv:1'")  # the ledger says 2
    con.close()
    (tmp_path / "in" / "csv" / "b.csv").write_text(HEADER + "11,2026-09-02T10:00:00Z,c5,web,x,\n")
    result = journeys_run("run", "--config", str(cfg), "--warehouse", str(wh))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "check file_ledger_contract on ingested_events failed" in line
    assert "nothing was published" in line
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    assert snapshot(con) == old
    con.close()
    assert parquet_snapshot(wh) == old_files


def test_a_new_run_never_publishes_what_a_failed_run_staged(tmp_path: Path) -> None:
    """Tables left in staging by a run that stopped before publishing are dropped when the next
    run starts ingesting, so they can never be published by it."""
    cfg = project(tmp_path / "in")
    con = run(cfg, tmp_path / "wh")
    con.execute("create schema staging")
    con.execute("create table staging.funnel as select * from main.funnel where false")
    from journey_core.ops import ingest_files

    ingest_files(con, load_config(cfg))
    assert con.execute("select count(*) from duckdb_schemas() "
                       "where schema_name = 'staging'").fetchall() == [(0,)]
