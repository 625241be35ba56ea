"""Parquet files mapped in DuckDB load exactly what the record-by-record path loads.

Each test ingests the same files twice, once per path, and compares every column of
`ingested_events`, `ingest_rejects` and `file_ledger`: the record-by-record path
(`SourceMapper.to_event`) is the reference."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journey_core.config import Config, load_config
from journey_core.ingest import columnar as ingest_columnar
from journey_core.ingest import ingest
from journey_core.ingest.mapping import SourceMapper
from journey_core.warehouse import connect

LOADED = datetime(2026, 9, 2, 3, 0, tzinfo=UTC)
SALT = "test-salt"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture(autouse=True)
def _salt(monkeypatch):
    monkeypatch.setenv("JOURNEYS_HASH_SALT", SALT)


def _tables(con) -> dict[str, list[tuple]]:
    out = {}
    for table, order in (("ingested_events", "event_id"), ("ingest_rejects", "file, record_number"),
                         ("file_ledger", "path")):
        columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
        if table == "ingested_events":  # the same JSON value, whatever the spacing
            columns = [f"json({c})::varchar" if c == "properties" else c for c in columns]
        out[table] = con.execute(
            f"select {', '.join(columns)} from {table} order by {order}").fetchall()
    return out


def _both(tmp_path: Path, config: Config) -> tuple[dict, dict, list]:
    results = []
    for columnar in (False, True):
        con = connect(tmp_path / f"wh-{columnar}")
        summary = ingest(con, config, loaded_at=LOADED, columnar=columnar)
        results.append((_tables(con), summary))
        con.close()
    (by_record, s1), (columnar_, s2) = results
    assert [vars(f) for f in s1.files] == [vars(f) for f in s2.files]
    return by_record, columnar_, s1.files


def _plan(con, mapper: SourceMapper, path: Path) -> tuple[str, dict] | None:
    """The file's mapping SQL, run once: a plan DuckDB refuses (ingest would then quietly go
    record by record) fails here."""
    schema = ingest_columnar.describe(con, path)
    assert schema is not None
    planned = ingest_columnar.plan(mapper, schema, [path], salt=SALT, latest=None)
    if planned is not None:
        select, params = planned
        con.execute(f"select count(*) from ({select})", params).fetchall()
    return planned


def _assert_same(by_record: dict, columnar: dict) -> None:
    for table in by_record:
        assert len(by_record[table]) == len(columnar[table]), table
        for a, b in zip(by_record[table], columnar[table], strict=True):
            assert a == b, (table, a, b)


T = datetime(2026, 8, 30, 12, 0, tzinfo=UTC)
NBSP, EM_SPACE = "\u00a0", "\u2003"

#: (event_id, occurred_at, customer_id, anonymous_id, email, phone, event_type, nps, revenue,
#:  note) - every rule of SourceMapper.to_event, clean and unclean.
ROWS: list[tuple[Any, ...]] = [
    ("1", T, "c1", None, None, None, "view", None, None, "plain"),
    ("2", T, " c2", None, None, None, "view", None, None, "leading space"),
    ("3", T, "c3" + NBSP, None, None, None, "view", None, None, "trailing nbsp"),
    ("4", T, EM_SPACE + "c4", "", None, None, "view", None, None, "em space, empty anon"),
    ("5", T, None, "a5", "Ann@Example.com", None, "buy", None, 12.5, "email to normalize"),
    ("6", T, None, "a6", "bob@example.com", "+49 170 1234567", "buy", None, 3.0, "phone spaces"),
    ("7", T, None, "a7", None, "0049170123456", "view", None, None, "phone 00 prefix"),
    ("8", T, None, "a8", None, "+49170123456", "view", 7, None, "clean phone, score"),
    ("9", T, "c9", None, "not-an-email", None, "view", None, None, "bad email"),
    ("10", T, "c10", None, None, None, "survey", 11, None, "score out of range"),
    ("11", T, "c11", None, None, None, "view", None, math.inf, "infinite revenue"),
    ("12", T, "c12", None, None, None, "view", None, math.nan, "NaN revenue is missing"),
    ("13", T + timedelta(days=400), "c13", None, None, None, "view", None, None, "future"),
    ("14", None, "c14", None, None, None, "view", None, None, "no timestamp"),
    ("15", T, None, None, None, None, "view", None, None, "no identifier"),
    ("16", T, "c16", None, None, None, None, None, None, "no event type"),
    (None, T, "c17", None, None, None, "view", None, None, "no event id: hash of the record"),
    ("18", T, "c18", None, None, None, "view", None, None, "first of a repeat"),
    ("18", T, "c18", None, None, None, "view", None, None, "first of a repeat"),
    ("19", T, "c19", None, None, None, "view", None, None, "first"),
    ("19", T, "c19", None, None, None, "view", None, None, "conflict: other note"),
    ("20", T, "ü-c20", None, "ÄNN@EXAMPLE.COM", None, "view", None, None, "non-ASCII email"),
    ("21", T, "c21", None, None, None, " view ", None, None, "event type to strip"),
    ("22", T, "c22", None, None, None, "", None, None, "empty event type"),
]


def _table(rows: list[tuple[Any, ...]], *, naive: bool = False) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    keys = [int(i or 0) for i in cols[0]]  # the same record twice has the same properties
    ts = pa.array(cols[1], pa.timestamp("us", tz="UTC"))
    return pa.table({
        "id": pa.array(cols[0], pa.string()),
        "ts": ts.cast(pa.timestamp("us")) if naive else ts,
        "cust": pa.array(cols[2], pa.string()),
        "anonymous_id": pa.array(cols[3], pa.string()),
        "email": pa.array(cols[4], pa.string()),
        "phone": pa.array(cols[5], pa.string()),
        "kind": pa.array(cols[6], pa.string()),
        "nps_score": pa.array(cols[7], pa.int64()),
        "revenue": pa.array(cols[8], pa.float64()),
        "note": pa.array(cols[9], pa.string()),
        "friend_email": pa.array([f"Friend{i}@Example.com " if i % 3 else None
                                  for i in keys], pa.string()),
        "ratio": pa.array([[1e20, 0.1, -0.0, 1e-7, 2.5][i % 5] for i in keys]),
        "flag": pa.array([i % 2 == 0 for i in keys]),
        "label": pa.array([["a\u2028b", "tab\there", 'quote"', "ctl\x01", "é"][i % 5]
                           for i in keys]),
    })


def _source(**extra: Any) -> dict[str, Any]:
    return {"name": "shop", "path": "shop/*.parquet", "format": "parquet",
            "fields": {"event_id": "id", "occurred_at": "ts", "customer_id": "cust",
                       "event_type": "kind"},
            "constants": {"channel": "store"}, "event_types": {"view": "page_view",
                                                               "buy": "purchase"},
            "pii_fields": ["friend_email"], "touchpoint_prefix": "store/", **extra}


def _config(tmp_path: Path, **extra: Any) -> Config:
    return Config.model_validate({"sources": [_source(**extra)], "base_dir": str(tmp_path),
                                  "max_future": "1 day"})


def test_every_rule_gives_the_same_events_rejects_and_ledger(tmp_path):
    (tmp_path / "shop").mkdir()
    pq.write_table(_table(ROWS), tmp_path / "shop" / "a.parquet")
    config = _config(tmp_path)
    by_record, columnar, files = _both(tmp_path, config)
    _assert_same(by_record, columnar)
    # the file really is mapped in DuckDB, and the rows above really are what they say
    con = connect(tmp_path / "wh-plan")
    mapper = SourceMapper(config.sources[0], SALT, LOADED + timedelta(days=1))
    assert _plan(con, mapper, tmp_path / "shop" / "a.parquet") is not None
    (f,) = files
    assert (f.read, f.duplicates) == (len(ROWS), 1)
    reasons = sorted(r[5] for r in by_record["ingest_rejects"])  # reason
    assert reasons == sorted(["bad_value", "out_of_range", "bad_value", "too_far_in_future",
                              "bad_timestamp", "missing_identifier", "missing_field",
                              "conflicting_duplicate", "missing_field"])
    loaded = {r[0] for r in by_record["ingested_events"]}
    assert {"shop:2", "shop:3", "shop:4", "shop:5", "shop:6", "shop:7", "shop:12",
            "shop:20", "shop:21"} <= loaded


def test_a_repeat_in_a_later_file_is_a_duplicate_or_a_conflict_on_both_paths(tmp_path):
    (tmp_path / "shop").mkdir()
    pq.write_table(_table(ROWS[:8]), tmp_path / "shop" / "a.parquet")
    later = [r if r[0] != "2" else (*r[:9], "changed") for r in ROWS[:8]]
    pq.write_table(_table(later), tmp_path / "shop" / "b.parquet")
    by_record, columnar, files = _both(tmp_path, _config(tmp_path))
    _assert_same(by_record, columnar)
    assert [f.duplicates for f in files] == [0, 7]
    assert [r[5] for r in by_record["ingest_rejects"]] == ["conflicting_duplicate"]


def test_naive_timestamps_of_a_utc_source(tmp_path):
    (tmp_path / "shop").mkdir()
    pq.write_table(_table(ROWS, naive=True), tmp_path / "shop" / "a.parquet")
    by_record, columnar, _ = _both(tmp_path, _config(tmp_path))
    _assert_same(by_record, columnar)


def test_columns_the_sql_does_not_map_send_the_file_record_by_record(tmp_path):
    (tmp_path / "shop").mkdir()
    table = _table(ROWS).append_column("day", pa.array([T.date()] * len(ROWS)))
    pq.write_table(table, tmp_path / "shop" / "a.parquet")
    config = _config(tmp_path)
    con = connect(tmp_path / "wh-plan")
    mapper = SourceMapper(config.sources[0], SALT, None)
    assert _plan(con, mapper, tmp_path / "shop" / "a.parquet") is None  # a date property
    by_record, columnar, _ = _both(tmp_path, config)
    _assert_same(by_record, columnar)


def sample_sources(tmp_path: Path, formats: tuple[str, ...]) -> Config:
    """The sample's sources of these formats, their files copied under `tmp_path`."""
    config = load_config(SAMPLE / "journeys.yaml")
    sources = [s for s in config.sources if s.format in formats]
    assert sources, f"the sample has {formats} sources"
    for source in sources:
        for path in config.source_files(source):
            target = tmp_path / path.relative_to(SAMPLE)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return config.model_copy(update={"sources": sources, "base_dir": tmp_path})


def test_the_sample_parquet_sources(tmp_path):
    copy = sample_sources(tmp_path, ("parquet",))
    parquet = copy.sources
    by_record, columnar, files = _both(tmp_path, copy)
    _assert_same(by_record, columnar)
    assert sum(f.loaded for f in files) > 100
    con = connect(tmp_path / "wh-plan")
    for source in parquet:
        mapper = SourceMapper(source, SALT, None)
        for path in copy.source_files(source):  # mapped in DuckDB, not record by record
            assert _plan(con, mapper, path) is not None


def test_a_source_without_email_or_phone_is_mapped_in_duckdb(tmp_path):
    """Canonical columns and no email or phone column (the benchmark's files): the SQL runs
    (no salt bound where nothing is hashed) and loads what the record rules load."""
    (tmp_path / "shop").mkdir()
    table = _table(ROWS).drop_columns(["email", "phone", "friend_email"])
    pq.write_table(table, tmp_path / "shop" / "a.parquet")
    config = _config(tmp_path, pii_fields=[])
    con = connect(tmp_path / "wh-plan")
    mapper = SourceMapper(config.sources[0], SALT, None)
    assert _plan(con, mapper, tmp_path / "shop" / "a.parquet") is not None
    by_record, columnar, _ = _both(tmp_path, config)
    _assert_same(by_record, columnar)
