"""Ingest: source files become canonical events, rejects and file-ledger rows."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journey_core.config import Config
from journey_core.ingest import ingest
from journey_core.ops import rebuild
from journey_core.warehouse import connect, ensure_tables
from tests.helpers import rows

LOADED = datetime(2026, 9, 2, 3, 0, tzinfo=UTC)
SALT = "test-salt"


@pytest.fixture(autouse=True)
def _salt(monkeypatch):
    monkeypatch.setenv("JOURNEYS_HASH_SALT", SALT)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write(tmp_path: Path, rel: str, text: str) -> Path:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _ndjson(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _config(tmp_path: Path, *sources: dict[str, Any]) -> Config:
    return Config.model_validate({"sources": list(sources), "base_dir": str(tmp_path)})


def _ingest(tmp_path: Path, config: Config):
    con = connect(tmp_path / "wh")
    return con, ingest(con, config, loaded_at=LOADED)


def _events(con, columns: str = "event_id, occurred_at") -> list[tuple]:
    return rows(con, f"select {columns} from ingested_events order by event_id")


def _rejects(con) -> list[tuple]:
    return rows(con, "select record_number, raw_record, reason from ingest_rejects "
                     "order by record_number")


def _ledger(con) -> list[tuple]:
    return rows(con, "select path, records_read, records_loaded, records_rejected, "
                     "records_duplicate from file_ledger order by path")


CANONICAL_CSV = {"name": "crm", "path": "landing/crm/*.csv", "format": "csv"}
CANONICAL_NDJSON = {"name": "app", "path": "landing/app/*.ndjson", "format": "ndjson"}


# --- mapping -----------------------------------------------------------------------------------


def test_fields_constants_event_types_prefix_and_properties(tmp_path):
    """A source maps its columns to canonical fields, fixes constants, renames event types,
    prefixes touchpoints (default `channel/event_type` when empty), reads its timestamp format
    in its zone, and keeps every unmapped column in properties."""
    _write(tmp_path, "landing/shop/a.csv",
           "id,ts,action,user,page,utm_source,amount\n"
           "1,01/07/2026 12:00,view,u1,home,news,\n"
           "2,01/07/2026 12:05,cart,u1,,news,19.90\n")
    config = _config(tmp_path, {
        "name": "shop", "path": "landing/shop/*.csv", "format": "csv",
        "fields": {"event_id": "id", "occurred_at": "ts", "event_type": "action",
                   "customer_id": "user", "touchpoint": "page", "revenue": "amount"},
        "constants": {"channel": "web"},
        "touchpoint_prefix": "web/",
        "event_types": {"view": "page_view", "cart": "add_to_cart"},
        "timestamp": {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Berlin"},
    })
    con, _ = _ingest(tmp_path, config)
    got = _events(con, "event_id, occurred_at, ingested_at, source, channel, touchpoint, "
                       "event_type, customer_id, revenue, file, record_number, properties")
    assert [r[:-1] for r in got] == [
        ("shop:1", datetime(2026, 7, 1, 10, 0, tzinfo=UTC), LOADED, "shop", "web", "web/home",
         "page_view", "u1", None, "landing/shop/a.csv", 2),
        ("shop:2", datetime(2026, 7, 1, 10, 5, tzinfo=UTC), LOADED, "shop", "web",
         "web/add_to_cart", "add_to_cart", "u1", 19.9, "landing/shop/a.csv", 3),
    ]
    assert [json.loads(r[-1]) for r in got] == [{"utm_source": "news"}, {"utm_source": "news"}]


def test_canonical_column_names_need_no_mapping(tmp_path):
    """A file already using canonical names needs only name, path and format; scores and
    rated_touchpoint are read as given."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        {"event_id": "9", "occurred_at": "2026-07-01T10:00:00Z", "channel": "survey",
         "event_type": "survey_response", "anonymous_id": "dev1", "account_id": "acme",
         "nps_score": 9, "csat_score": "4", "ces_score": 2, "rated_touchpoint": "app/cart",
         "extra": {"k": [1, 2]}},
    ]))
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    got = _events(con, "event_id, touchpoint, anonymous_id, account_id, nps_score, csat_score, "
                       "ces_score, rated_touchpoint, properties")
    assert [r[:-1] for r in got] == [
        ("app:9", "survey/survey_response", "dev1", "acme", 9, 4, 2, "app/cart"),
    ]
    assert json.loads(got[0][-1]) == {"extra": {"k": [1, 2]}}


def test_event_id_without_source_id_is_hash_of_raw_record(tmp_path):
    """Without a source id, event_id = `<source>:<sha256 of the raw record>` (the line)."""
    line = ('{"occurred_at": "2026-07-01T10:00:00Z", "channel": "app", '
            '"event_type": "page_view", "customer_id": "c1"}')
    _write(tmp_path, "landing/app/a.ndjson", line + "\n")
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    assert _events(con, "event_id") == [("app:" + _sha(line),)]


# --- rejects -----------------------------------------------------------------------------------

CSV_HEADER = "event_id,occurred_at,channel,event_type,customer_id,email,phone,revenue,nps_score\n"
CSV_REJECTS = [  # (line, reason); line numbers count the header as line 1
    ("r2,yesterday,web,page_view,c1,,,,", "bad_timestamp"),
    ("r3,2026-07-01T10:00:00Z,web,page_view,,,,,", "missing_identifier"),
    ("r4,2026-07-01T10:00:00Z,web,,c1,,,,", "missing_field"),
    ("r5,2026-07-01T10:00:00Z,,page_view,c1,,,,", "missing_field"),
    ("r6,2026-07-01T10:00:00Z,web,survey_response,c1,,,,11", "out_of_range"),
    ("r7,2026-07-01T10:00:00Z,web,survey_response,c1,,,,high", "bad_value"),
    ("r8,2026-07-01T10:00:00Z,web,page_view,c1,not-an-email,,,", "bad_value"),
    ("r9,2026-07-01T10:00:00Z,web,page_view,c1,,12,,", "bad_value"),
    ("r10,2026-07-01T10:00:00Z,web,purchase,c1,,,abc,", "bad_value"),
    ("r11,2026-07-01T10:00:00Z,web", "malformed_record"),
    ('r12,2026-07-01T10:00:00Z,"web"x,page_view,c1,,,,', "malformed_record"),
]


def test_csv_rejects_keep_line_number_raw_line_and_reason(tmp_path):
    """Every invalid CSV record is rejected with its line number (header = line 1), the line
    verbatim (personal data replaced by its salted hash), and its reason; a multi-line quoted
    record counts its lines; valid records load."""
    text = (CSV_HEADER
            + "r1,2026-07-01T10:00:00Z,web,page_view,c1,,,,\n"
            + '"m1",2026-07-01T10:00:00Z,web,"page\nview",c1,,,,\n'  # lines 3-4
            + "".join(line + "\n" for line, _ in CSV_REJECTS))
    _write(tmp_path, "landing/crm/a.csv", text)
    con, summary = _ingest(tmp_path, _config(tmp_path, CANONICAL_CSV))
    token = f"[redacted sha256:{_sha(SALT + '|not-an-email')}]"
    assert _rejects(con) == [
        (number, line.replace("not-an-email", token), reason)
        for number, (line, reason) in enumerate(CSV_REJECTS, start=5)
    ]
    assert _events(con, "event_id, event_type, record_number") == [
        ("crm:m1", "page\nview", 3), ("crm:r1", "page_view", 2),
    ]
    assert rows(con, "select distinct source, file, rejected_at from ingest_rejects") == [
        ("crm", "landing/crm/a.csv", LOADED),
    ]
    (result,) = summary.files
    assert (result.read, result.loaded, result.rejected, result.duplicates) == (13, 2, 11, 0)


def test_reject_detail_names_file_record_and_field(tmp_path):
    """A reject's detail names the file, the record number and the field at fault."""
    _write(tmp_path, "landing/crm/a.csv", CSV_HEADER + "r1,2026-07-01T10:00:00Z,web,"
           "survey_response,c1,,,,11\n")
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_CSV))
    ((detail,),) = rows(con, "select detail from ingest_rejects")
    assert "landing/crm/a.csv" in detail
    assert "record 2" in detail
    assert "nps_score" in detail


def test_ndjson_rejects_invalid_json_and_non_objects(tmp_path):
    """NDJSON lines that are not JSON objects are malformed_record, numbered by file line
    (blank lines are not records but keep the numbering)."""
    good = ('{"event_id": "1", "occurred_at": "2026-07-01T10:00:00Z", "channel": "app", '
            '"event_type": "page_view", "customer_id": "c1"}')
    _write(tmp_path, "landing/app/a.ndjson",
           good + "\n" + '{"event_id": "2", "occ\n' + "\n" + "[1, 2]\n")
    con, summary = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    assert _rejects(con) == [
        (2, '{"event_id": "2", "occ', "malformed_record"),
        (4, "[1, 2]", "malformed_record"),
    ]
    assert summary.files[0].read == 3


def test_ndjson_records_are_split_on_newlines_only(tmp_path):
    """NDJSON records end at a newline only: a JSON string holding U+2028 (legal JSON, written
    raw by many exporters) stays one record and loads."""
    record = {**_event_json("1"), "text": "great\u2028product"}
    _write(tmp_path, "landing/app/a.ndjson", json.dumps(record, ensure_ascii=False) + "\n")
    con, summary = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    assert _rejects(con) == []
    ((properties,),) = _events(con, "properties")
    assert json.loads(properties) == {"text": "great\u2028product"}
    assert summary.files[0].read == 1


def test_csv_raw_record_is_its_own_line_after_a_field_with_line_separator(tmp_path):
    """A CSV record's raw_record is its own line verbatim, even after an earlier field holding
    U+2028 (CSV records end at newlines only)."""
    bad = "r3,yesterday,web,page_view,c1,,,,"
    _write(tmp_path, "landing/crm/a.csv", CSV_HEADER
           + "r1,2026-07-01T10:00:00Z,web,page\u2028view,c1,,,,\n"
           + "r2,2026-07-01T10:00:00Z,web,page_view,c1,,,,\n"
           + bad + "\n")
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_CSV))
    assert _rejects(con) == [(4, bad, "bad_timestamp")]


def test_parquet_reject_raw_record_is_row_as_json(tmp_path):
    """A rejected Parquet row keeps its row number (from 1) and the row as JSON."""
    path = tmp_path / "landing/pq/a.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({
        "event_id": ["p1", "p2"],
        "occurred_at": ["2026-07-01T10:00:00Z", "not a time"],
        "channel": ["store", "store"],
        "event_type": ["purchase", "purchase"],
        "customer_id": ["c1", "c1"],
    }), path)
    con, _ = _ingest(tmp_path, _config(
        tmp_path, {"name": "pos", "path": "landing/pq/*.parquet", "format": "parquet"}))
    assert _rejects(con) == [
        (2, '{"event_id": "p2", "occurred_at": "not a time", "channel": "store", '
            '"event_type": "purchase", "customer_id": "c1"}', "bad_timestamp"),
    ]
    assert _events(con, "event_id, record_number") == [("pos:p1", 1)]


def test_missing_required_csv_column_rejects_the_file_naming_it_and_the_column(tmp_path):
    """A CSV without a required column (here `channel`) is rejected whole: the ledger keeps it
    as `rejected` with a reason naming the file and the column, nothing of it loads, and the
    other files of the run still load."""
    path = _write(tmp_path, "landing/crm/a.csv",
                  "event_id,occurred_at,event_type,customer_id\n"
                  "1,2026-07-01T10:00:00Z,page_view,c1\n")
    _write(tmp_path, "landing/crm/b.csv",
           "event_id,occurred_at,channel,event_type,customer_id\n"
           "2,2026-07-01T10:00:00Z,web,page_view,c1\n")
    con = connect(tmp_path / "wh")
    summary = ingest(con, _config(tmp_path, CANONICAL_CSV), loaded_at=LOADED)
    problems = {f.path: f.problem for f in summary.files}
    problem = problems["landing/crm/a.csv"]
    assert str(path) in problem and "'channel'" in problem
    assert problems["landing/crm/b.csv"] is None
    assert rows(con, "select path, status, problem is not null, records_read from file_ledger "
                     "order by path") == [("landing/crm/a.csv", "rejected", True, 0),
                                          ("landing/crm/b.csv", "loaded", False, 1)]
    assert _events(con, "event_id") == [("crm:2",)]


# --- duplicates, ledger, reconciliation --------------------------------------------------------


def _event_json(event_id: str, event_type: str = "page_view") -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": "2026-07-01T10:00:00Z", "channel": "app",
            "event_type": event_type, "customer_id": "c1"}


def test_duplicates_in_a_file_and_across_files_load_once(tmp_path):
    """A repeated event (same event_id, same content) is loaded once and counted as a
    duplicate, within a file and across files."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        _event_json("n1"), _event_json("n2"), _event_json("n1"),
    ]))
    _write(tmp_path, "landing/app/b.ndjson", _ndjson([
        _event_json("n2"), _event_json("n3"),
    ]))
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    assert _events(con, "event_id, event_type, file, record_number") == [
        ("app:n1", "page_view", "landing/app/a.ndjson", 1),
        ("app:n2", "page_view", "landing/app/a.ndjson", 2),
        ("app:n3", "page_view", "landing/app/b.ndjson", 2),
    ]
    assert _ledger(con) == [
        ("landing/app/a.ndjson", 3, 2, 0, 1),
        ("landing/app/b.ndjson", 2, 1, 0, 1),
    ]


def test_same_event_id_with_other_content_is_kept_as_a_conflict(tmp_path):
    """The same event_id with different content: the first read (files in path order, then
    record order) is loaded, every other version is kept verbatim in the quarantine as a
    `conflicting_duplicate` naming where the loaded one came from; nothing is lost."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        _event_json("n1"), _event_json("n1", "purchase"),
    ]))
    _write(tmp_path, "landing/app/b.ndjson", _ndjson([_event_json("n1", "add_to_cart")]))
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    assert _events(con, "event_id, event_type") == [("app:n1", "page_view")]
    got = rows(con, "select file, record_number, reason, detail, raw_record from ingest_rejects "
                    "order by file")
    assert [r[:3] for r in got] == [("landing/app/a.ndjson", 2, "conflicting_duplicate"),
                                    ("landing/app/b.ndjson", 1, "conflicting_duplicate")]
    assert "already read at record 1" in got[0][3]
    assert "already loaded from landing/app/a.ndjson record 1" in got[1][3]
    assert json.loads(got[1][4])["event_type"] == "add_to_cart"
    assert _ledger(con) == [("landing/app/a.ndjson", 2, 1, 1, 0),
                            ("landing/app/b.ndjson", 1, 0, 1, 0)]


def test_same_source_id_in_two_sources_is_two_events(tmp_path):
    """event_id is prefixed with the source name: equal ids from two sources do not collide."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([_event_json("7")]))
    _write(tmp_path, "landing/crm/a.csv", CSV_HEADER + "7,2026-07-01T10:00:00Z,web,call,c1,,,,\n")
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON, CANONICAL_CSV))
    assert _events(con, "event_id, source, event_type") == [
        ("app:7", "app", "page_view"), ("crm:7", "crm", "call"),
    ]


def test_second_run_skips_files_in_the_ledger(tmp_path):
    """A file whose content hash is in the ledger is skipped, under its own or another name."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([_event_json("n1")]))
    config = _config(tmp_path, CANONICAL_NDJSON)
    con, first = _ingest(tmp_path, config)
    shutil.copy(tmp_path / "landing/app/a.ndjson", tmp_path / "landing/app/copy.ndjson")
    second = ingest(con, config, loaded_at=LOADED)
    assert [f.skipped for f in first.files] == [False]
    assert [(f.path, f.skipped) for f in second.files] == [
        ("landing/app/a.ndjson", True), ("landing/app/copy.ndjson", True),
    ]
    assert rows(con, "select count(*) from ingested_events") == [(1,)]
    assert _ledger(con) == [("landing/app/a.ndjson", 1, 1, 0, 0)]
    ((size, content_hash),) = rows(con, "select size_bytes, content_hash from file_ledger")
    data = (tmp_path / "landing/app/a.ndjson").read_bytes()
    assert (size, content_hash) == (len(data), hashlib.sha256(data).hexdigest())


def test_reconciliation_read_equals_loaded_rejected_duplicates(tmp_path):
    """Per file: read = loaded + rejected + duplicates, and the counts match the rows in
    ingested_events and ingest_rejects."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        _event_json("n1"), _event_json("n1"), {"event_id": "bad"}, _event_json("n2"),
    ]) + "not json\n")
    _write(tmp_path, "landing/app/b.ndjson", _ndjson([_event_json("n2"), _event_json("n3")]))
    con, summary = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    assert _ledger(con) == [
        ("landing/app/a.ndjson", 5, 2, 2, 1),
        ("landing/app/b.ndjson", 2, 1, 0, 1),
    ]
    assert all(f.balanced for f in summary.files)
    assert rows(con, """
        select l.path, l.records_loaded, count(distinct e.event_id),
               l.records_rejected, count(distinct r.record_number)
        from file_ledger l
        left join ingested_events e on e.file = l.path
        left join ingest_rejects r on r.file = l.path
        group by all order by 1""") == [
        ("landing/app/a.ndjson", 2, 2, 2, 2),
        ("landing/app/b.ndjson", 1, 1, 0, 0),
    ]


# --- time zones --------------------------------------------------------------------------------


def _ts_source(fmt: str, zone: str = "Europe/Berlin") -> dict[str, Any]:
    return {**CANONICAL_NDJSON, "timestamp": {"format": fmt, "timezone": zone}}


def _times(tmp_path: Path, source: dict[str, Any], values: list[Any]) -> list[datetime]:
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        {**_event_json(f"{i:02d}"), "occurred_at": v} for i, v in enumerate(values)
    ]))
    con, _ = _ingest(tmp_path, _config(tmp_path, source))
    assert rows(con, "select count(*) from ingest_rejects") == [(0,)]
    return [r[1] for r in _events(con)]


def test_naive_iso_time_is_local_to_source_zone(tmp_path):
    """Naive times are in the source's zone: Berlin noon is 10:00 UTC in summer (CEST) and
    11:00 UTC in winter (CET)."""
    assert _times(tmp_path, _ts_source("iso8601"), [
        "2026-07-01T12:00:00", "2026-01-15T12:00:00",
    ]) == [datetime(2026, 7, 1, 10, tzinfo=UTC), datetime(2026, 1, 15, 11, tzinfo=UTC)]


def test_iso_time_with_offset_keeps_its_offset(tmp_path):
    """Times with an offset (or Z) keep it, whatever the source zone."""
    assert _times(tmp_path, _ts_source("iso8601"), [
        "2026-07-01T12:00:00+05:00", "2026-07-01T12:00:00Z", "2026-07-01T12:00:00-03:30",
    ]) == [
        datetime(2026, 7, 1, 7, tzinfo=UTC),
        datetime(2026, 7, 1, 12, tzinfo=UTC),
        datetime(2026, 7, 1, 15, 30, tzinfo=UTC),
    ]


def test_epoch_seconds_and_milliseconds_are_utc(tmp_path):
    """epoch_s / epoch_ms count from 1970-01-01 UTC, ignoring the source zone:
    1_700_000_000 s is 2023-11-14 22:13:20 UTC."""
    assert _times(tmp_path, _ts_source("epoch_s"), [1700000000, "1700000001"]) == [
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC),
    ]


def test_epoch_milliseconds(tmp_path):
    """epoch_ms keeps the milliseconds: 1_700_000_000_123 ms is 22:13:20.123 UTC."""
    assert _times(tmp_path, _ts_source("epoch_ms"), [1700000000123]) == [
        datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
    ]


def test_parquet_naive_timestamps_are_local_to_source_zone(tmp_path):
    """A naive Parquet timestamp is in the source zone; a zoned one keeps its zone."""
    folder = tmp_path / "landing/pq"
    folder.mkdir(parents=True)
    common = {"channel": ["store"], "event_type": ["purchase"], "customer_id": ["c1"]}
    pq.write_table(pa.table({"event_id": ["naive"], **common, "occurred_at": pa.array(
        [datetime(2026, 7, 1, 12, 0)], pa.timestamp("us"))}), folder / "a.parquet")
    pq.write_table(pa.table({"event_id": ["zoned"], **common, "occurred_at": pa.array(
        [datetime(2026, 7, 1, 12, 0, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))}),
        folder / "b.parquet")
    source = {"name": "pos", "path": "landing/pq/*.parquet", "format": "parquet",
              "timestamp": {"timezone": "Europe/Berlin"}}
    con, _ = _ingest(tmp_path, _config(tmp_path, source))
    assert _events(con) == [
        ("pos:naive", datetime(2026, 7, 1, 10, tzinfo=UTC)),
        ("pos:zoned", datetime(2026, 7, 1, 12, tzinfo=UTC)),
    ]


@pytest.fixture
def host_zone(monkeypatch):
    """Run under a host time zone far from UTC, restoring it afterwards."""
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_host_time_zone_does_not_change_times(tmp_path, host_zone):
    """Results do not depend on the host time zone (TZ is Pacific/Auckland here): a naive
    Berlin time and an ISO time with offset convert as they do anywhere."""
    assert _times(tmp_path, _ts_source("iso8601"), [
        "2026-07-01T12:00:00", "2026-07-01T12:00:00+00:00",
    ]) == [datetime(2026, 7, 1, 10, tzinfo=UTC), datetime(2026, 7, 1, 12, tzinfo=UTC)]


# --- personal data -----------------------------------------------------------------------------


def _all_text(con) -> str:
    """Every value of every table in the warehouse, as text."""
    parts = []
    for (table,) in rows(con, "select table_name from duckdb_tables() order by 1"):
        for row in rows(con, f'select * from "{table}"'):
            parts.extend(str(v) for v in row)
    return "\n".join(parts)


def test_emails_and_phones_are_normalized_and_salted_hashed(tmp_path):
    """email_hash = sha256(salt|trimmed lower-case email); phone_hash = sha256(salt|phone as +
    and digits, leading 00 becoming +): spellings of one address hash alike."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        {**_event_json("1"), "customer_id": None, "email": " Alice@Example.COM ",
         "phone": "0049 30 1234567"},
        {**_event_json("2"), "customer_id": None, "email": "alice@example.com",
         "phone": "+49 (30) 123-4567"},
    ]))
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    email = _sha(f"{SALT}|alice@example.com")
    phone = _sha(f"{SALT}|+49301234567")
    assert _events(con, "event_id, email_hash, phone_hash") == [
        ("app:1", email, phone), ("app:2", email, phone),
    ]


def test_default_salt_is_used_when_salt_variable_is_unset(tmp_path, monkeypatch):
    """Without the salt variable the config's default_salt is the salt."""
    monkeypatch.delenv("JOURNEYS_HASH_SALT")
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        {**_event_json("1"), "email": "bob@example.com"},
    ]))
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    assert _events(con, "email_hash") == [
        (_sha("journeys-development-salt|bob@example.com"),),
    ]


def test_pii_fields_are_hashed_inside_properties(tmp_path):
    """A source's pii_fields keep only their salted hash (of the trimmed lower-case value) in
    properties; other unmapped fields are kept as given."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        {**_event_json("1"), "friend_email": " Bob@Example.com ", "note": "hi"},
    ]))
    source = {**CANONICAL_NDJSON, "pii_fields": ["friend_email"]}
    con, _ = _ingest(tmp_path, _config(tmp_path, source))
    ((properties,),) = _events(con, "properties")
    assert json.loads(properties) == {
        "friend_email": _sha(f"{SALT}|bob@example.com"), "note": "hi",
    }


def test_raw_emails_and_phones_reach_no_table(tmp_path):
    """After ingest and a full build, no DuckDB table holds a raw email, phone number or PII
    field value, in any spelling."""
    _write(tmp_path, "landing/app/a.ndjson", _ndjson([
        {**_event_json("1"), "customer_id": None, "email": " Alice@Example.COM ",
         "phone": "0049 30 1234567", "friend": "Bob@Example.com"},
        {**_event_json("2"), "email": "alice@example.com", "phone": "+49 (30) 123-4567"},
    ]))
    config = _config(tmp_path, {**CANONICAL_NDJSON, "pii_fields": ["friend"]})
    con, _ = _ingest(tmp_path, config)
    ensure_tables(con)
    rebuild(con, config, tmp_path / "wh")
    assert rows(con, "select count(*) from events") == [(2,)]
    text = _all_text(con).lower()
    for raw in ("alice", "example.com", "1234567", "123-4567", "bob"):
        assert raw not in text


def test_rejected_records_keep_no_raw_email_or_phone(tmp_path):
    """Rejected records keep their text, but email addresses and phone numbers (mapped fields,
    and by pattern in records that could not be parsed) are replaced by their salted hash, in
    the raw record and in the detail."""
    good_shape = {"event_id": "1", "occurred_at": "2026-07-01T10:00:00Z", "channel": "chat",
                  "event_type": "chat", "email": "Bad Address@example", "phone": "+49 151 234567"}
    truncated = '{"event_id": "2", "email": "ann@example.org", "phone": "0049-151-7654321", "oc'
    _write(tmp_path, "landing/app/a.ndjson", json.dumps(good_shape) + "\n" + truncated + "\n")
    con, _ = _ingest(tmp_path, _config(tmp_path, CANONICAL_NDJSON))
    found = rows(con, "select record_number, raw_record, detail, reason from ingest_rejects "
                      "order by record_number")
    assert [(r[0], r[3]) for r in found] == [(1, "bad_value"), (2, "malformed_record")]
    for _, raw, detail, _ in found:
        for secret in ("Bad Address@example", "ann@example.org", "+49 151 234567",
                       "0049-151-7654321", "@"):
            assert secret not in raw and secret not in detail
    def token(value: str) -> str:
        return f"[redacted sha256:{_sha(SALT + '|' + value)}]"
    assert found[1][1] == ('{"event_id": "2", "email": "' + token("ann@example.org")
                           + '", "phone": "' + token("+491517654321") + '", "oc')


def test_a_problem_of_a_file_given_by_uri_names_the_uri(tmp_path: Path) -> None:
    """Spark ingest's mapping of one file (`journey_core.ingest.spark`, no JVM needed): a file
    of a source given as a URI that is rejected whole is named by its URI as listed, not as a
    path would spell it (`s3a:/...`)."""
    from journey_core.ingest.spark import _FILE, Listed, _map_file, _Task
    from journey_core.privacy.tombstones import Tombstones

    config = _config(tmp_path, {"name": "calls", "path": "s3a://bucket/landing/calls/*.csv",
                                "format": "csv", "fields": {"event_id": "id",
                                                            "occurred_at": "ts",
                                                            "customer_id": "customer"}})
    uri = "s3a://bucket/landing/calls/day3.csv"
    data = "id,ts,customer\n1,2026-09-01T10:00:00Z,caf\xe9\n".encode("latin-1")
    task = _Task(Listed(config.sources[0], uri, Path(uri), uri, len(data), "h"), 0, 1)
    mapped = _map_file(task, data, salt=SALT, loaded_at=LOADED, max_future=None,
                       tombstones=Tombstones()).to_pylist()
    assert [(m["kind"], m["problem"]) for m in mapped] == [
        # the header's 15 bytes, then "1,2026-09-01T10:00:00Z," (23) and "caf" (3)
        (_FILE, f"{uri}: not UTF-8 text (byte 41)")]
