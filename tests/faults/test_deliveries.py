"""Deliveries as sources make them: a file re-exported under its name with new content, and
files compressed with gzip or zstd.

Expected rows are worked out by hand from the files written here.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journey_core.config import load_config
from journey_core.ingest.validate import dry_run
from journey_core.warehouse import connect, ensure_tables
from tests.faults.test_faults import (
    HEADER,
    assert_reconciled,
    cli_run,
    fate,
    project,
    run,
)

GOOD = "4,2026-09-01T10:01:00Z,c1,web,page_view,\n"
MALFORMED = "3,2026-09-01T10:00:00Z,c1,web,page_view,,EXTRA\n"


def _run(cfg: Path, wh: Path) -> None:
    """`journeys run` to success (the real command, with its blocking checks)."""
    assert cli_run(cfg, wh) == 0


def _open(wh: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)


def _rejects(con: duckdb.DuckDBPyConnection, file: str, table: str = "ingest_rejects") -> list:
    return con.execute(f"select file_version, record_number, reason, raw_record from {table} "
                       "where file = ? order by all", [file]).fetchall()


def _ledger(con: duckdb.DuckDBPyConnection, file: str) -> list:
    return con.execute("select file_version, records_read, records_loaded, records_rejected, "
                       "records_duplicate from file_ledger where path = ? order by file_version",
                       [file]).fetchall()


def test_a_file_re_exported_with_new_content_is_its_next_version(tmp_path: Path) -> None:
    """The day's export grows: the second version holds the first one's lines (a rejected one
    among them) and two more. The run succeeds; the old lines count as duplicates, the new good
    one loads, and every reject is kept per version."""
    cfg = project(tmp_path / "in")
    wh = tmp_path / "wh"
    b = tmp_path / "in" / "csv" / "b.csv"
    b.write_text(HEADER + MALFORMED + GOOD)
    _run(cfg, wh)
    b.write_text(HEADER + MALFORMED + GOOD + "12,2026-09-02T09:00:00Z,c1,web,purchase,5\n"
                 "13,2026-09-02T09:05:00Z,c1,web,purchase,ten\n")
    _run(cfg, wh)
    con = _open(wh)
    malformed = MALFORMED.rstrip("\n")
    bad_value = "13,2026-09-02T09:05:00Z,c1,web,purchase,ten"
    expected = [(1, 2, "malformed_record", malformed), (2, 2, "malformed_record", malformed),
                (2, 5, "bad_value", bad_value)]
    assert _rejects(con, "csv/b.csv") == expected
    assert _rejects(con, "csv/b.csv", "rejected_events") == expected
    #          version, read, loaded, rejected, duplicates
    assert _ledger(con, "csv/b.csv") == [(1, 2, 1, 1, 0), (2, 4, 1, 2, 1)]
    assert con.execute("select event_id from events where event_id in ('csv:4', 'csv:12') "
                       "order by 1").fetchall() == [("csv:12",), ("csv:4",)]
    assert_reconciled(con)
    con.close()
    # The same content once more (a third delivery of version 2) is skipped.
    _run(cfg, wh)
    con = _open(wh)
    assert _ledger(con, "csv/b.csv") == [(1, 2, 1, 1, 0), (2, 4, 1, 2, 1)]
    con.close()


def test_an_older_warehouse_gets_file_versions(tmp_path: Path) -> None:
    """A warehouse made before file versions (no file_version column; a path loaded twice)
    is upgraded on the next run: each path's loads numbered in load order, each reject given
    the version whose load wrote it."""
    cfg = project(tmp_path / "in")
    wh = tmp_path / "wh"
    b = tmp_path / "in" / "csv" / "b.csv"
    b.write_text(HEADER + MALFORMED)
    _run(cfg, wh)
    b.write_text(HEADER + MALFORMED + GOOD)
    _run(cfg, wh)
    con = duckdb.connect(str(wh / "journeys.duckdb"))
    before = _rejects(con, "csv/b.csv"), _ledger(con, "csv/b.csv")
    assert [r[:2] for r in before[0]] == [(1, 2), (2, 2)]
    for table in ("file_ledger", "ingest_rejects", "rejected_events"):  # as older versions had
        con.execute(f"create table old as select * exclude (file_version) from {table}")
        con.execute(f"drop table {table}")
        con.execute(f"alter table old rename to {table}")
    ensure_tables(con)
    assert (_rejects(con, "csv/b.csv"), _ledger(con, "csv/b.csv")) == before
    assert [c[0] for c in con.execute("describe ingest_rejects").fetchall()][:4] == [
        "source", "file", "file_version", "record_number"]
    con.close()
    b.write_text(HEADER + MALFORMED + GOOD + "14,2026-09-02T10:00:00Z,c2,web,x,\n")
    _run(cfg, wh)
    con = _open(wh)
    assert _ledger(con, "csv/b.csv")[-1] == (3, 3, 1, 1, 1)
    assert_reconciled(con)
    con.close()


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def test_compressed_files_load_as_if_plain(tmp_path: Path) -> None:
    """events.csv.gz, web.ndjson.zst and x.csv.zstd are read as the text they decompress to
    (picked up by the sources' plain `*.csv` / `*.ndjson` patterns): record numbers and the raw
    records of rejects are those of that text."""
    cfg = project(tmp_path / "in")
    land = tmp_path / "in"
    (land / "csv" / "b.csv.gz").write_bytes(gzip.compress(
        (HEADER + "20,2026-09-03T10:00:00Z,c7,web,page_view,\n" + MALFORMED).encode()))
    (land / "csv" / "c.csv.zstd").write_bytes(_zstd(
        (HEADER + "21,2026-09-03T11:00:00Z,c7,web,purchase,3.5\n").encode()))
    good = json.dumps({"id": "n20", "ts": "2026-09-03T12:00:00Z", "customer": "c8",
                       "channel": "app", "type": "page_view"})
    (land / "ndjson" / "b.ndjson.zst").write_bytes(_zstd(f"{good}\n\n{{broken\n".encode()))
    _run(cfg, tmp_path / "wh")
    con = _open(tmp_path / "wh")
    assert fate(con, "csv/b.csv.gz") == {"loaded": ["csv:20"],
                                         "rejected": [(3, "malformed_record")],
                                         "ledger": [(2, 1, 1, 0, "loaded")]}
    assert _rejects(con, "csv/b.csv.gz")[0][3] == MALFORMED.rstrip("\n")
    assert fate(con, "csv/c.csv.zstd")["loaded"] == ["csv:21"]
    assert fate(con, "ndjson/b.ndjson.zst") == {"loaded": ["ndjson:n20"],
                                                "rejected": [(3, "malformed_record")],
                                                "ledger": [(2, 1, 1, 0, "loaded")]}
    assert _rejects(con, "ndjson/b.ndjson.zst")[0][3] == "{broken"
    assert_reconciled(con)
    con.close()


def test_corrupt_and_truncated_compressed_files_are_rejected_whole(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A gzip file cut short and a zstd file that is not zstd are rejected whole, each with
    its problem in the ledger; the run goes on and publishes the other files. `journeys
    validate` reads the same files the same way."""
    cfg = project(tmp_path / "in")
    land = tmp_path / "in"
    whole = gzip.compress((HEADER + GOOD * 200).encode())
    (land / "csv" / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    (land / "ndjson" / "bad.ndjson.zst").write_bytes(b"this was never zstd")
    (land / "csv" / "ok.csv.gz").write_bytes(gzip.compress((HEADER + GOOD).encode()))
    capsys.readouterr()
    assert cli_run(cfg, tmp_path / "wh") == 1  # files were rejected: said after publishing
    assert "2 file(s) rejected" in capsys.readouterr().err
    con = _open(tmp_path / "wh")
    problems = dict(con.execute("select path, problem from file_ledger "
                                "where status = 'rejected'").fetchall())
    assert set(problems) == {"csv/cut.csv.gz", "ndjson/bad.ndjson.zst"}
    assert "corrupt or truncated gzip file" in problems["csv/cut.csv.gz"]
    assert "corrupt or truncated zstd file" in problems["ndjson/bad.ndjson.zst"]
    assert con.execute("select count(*) from events where event_id = 'csv:4'").fetchall() == [
        (1,)]
    assert_reconciled(con)
    con.close()
    checks = {f.path: f for s in dry_run(load_config(cfg)) for f in s.files}
    assert "corrupt or truncated gzip file" in (checks["csv/cut.csv.gz"].error or "")
    assert "corrupt or truncated zstd file" in (checks["ndjson/bad.ndjson.zst"].error or "")
    assert (checks["csv/ok.csv.gz"].read, checks["csv/ok.csv.gz"].would_load) == (1, 1)


def test_ensure_tables_leaves_a_current_warehouse_alone(tmp_path: Path) -> None:
    """Upgrading is a no-op on tables that have every column (their rows stay)."""
    con = connect(tmp_path / "wh")
    ensure_tables(con)
    con.execute("insert into file_ledger values ('h', 'p', 1, 's', 1, now(), 0, 0, 0, 0, 0, "
                "'loaded', null)")
    ensure_tables(con)
    assert con.execute("select content_hash, file_version from file_ledger").fetchall() == [
        ("h", 1)]


def test_a_parquet_file_re_exported_is_its_next_version(tmp_path: Path) -> None:
    """The same for Parquet (mapped in DuckDB): the re-export's old row is a duplicate, its
    new row loads, its bad row is a reject of version 2."""
    cfg = project(tmp_path / "in")
    a = tmp_path / "in" / "parquet" / "a.parquet"
    con = run(cfg, tmp_path / "wh")
    con.close()
    pq.write_table(pa.table({"id": ["p1", "p2", "p3"],
                             "ts": ["2026-09-01T12:00:00Z", "2026-09-01T12:30:00Z", "noon"],
                             "customer": ["c3", "c3", "c3"], "channel": ["app"] * 3,
                             "type": ["page_view"] * 3}), a)
    con = run(cfg, tmp_path / "wh")
    assert _ledger(con, "parquet/a.parquet") == [(1, 1, 1, 0, 0), (2, 3, 1, 1, 1)]
    assert [r[:3] for r in _rejects(con, "parquet/a.parquet")] == [(2, 3, "bad_timestamp")]
    assert fate(con, "parquet/a.parquet")["loaded"] == ["parquet:p1", "parquet:p2"]
    assert_reconciled(con)
