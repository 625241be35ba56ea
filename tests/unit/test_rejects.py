"""Rejected records: the summary by source, failure type and file, and the replay path."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journey_core.config import Config
from journey_core.contract.vocabulary import REJECT_REASONS as FAILURE_TYPES
from journey_core.ingest import ingest
from journey_core.ops.rejects import (
    MANIFEST,
    MANIFEST_COLUMNS,
    RejectedFile,
    RejectsError,
    export_for_replay,
    matches_source,
    rejected_files,
    replay_name,
    summarize,
)
from journey_core.privacy.pii import salted_hash
from journey_core.warehouse import connect
from tests.helpers import rows

SALT = "rejects-test-salt"
LOADED = datetime(2026, 9, 10, 3, 0, tzinfo=UTC)
NOW = datetime(2026, 9, 12, 8, 30, tzinfo=UTC)
TAG = "replay-20260912T083000Z"


@pytest.fixture(autouse=True)
def _salt(monkeypatch):
    monkeypatch.setenv("JOURNEYS_HASH_SALT", SALT)
    monkeypatch.delenv("JOURNEYS_ENV", raising=False)


CSV_HEADER = "call_id,start_time,crm_id,phone,queue,reason"
WEB_1 = [
    '{"id": "w1", "ts": "2026-09-01T10:00:00Z", "event": "page_view", "cookie_id": "k1"}',
    '{"id": "w2", "ts": "01.09.2026 10:05", "event": "page_view", "cookie_id": "k1"}',
    '{"id": "w3", "ts": "2026-09-01T10:10:00Z", "event": "page_view"}',
]
WEB_2 = [
    '{"id": "w4", "ts": "2026-09-02T09:00:00Z", "event": "login", "cookie_id": "k2", '
    '"email": "ann.replay@example.com"}',
    '{"id": "w5", "ts": "yesterday", "event": "login", "cookie_id": "k2", '
    '"email": "ann.replay@example.com"}',
    '{"id": "w6", "ts": "2026-09-02T09:10:00Z", "event": "page_view", "cookie_id": "k2"',
]
CALLS = [
    CSV_HEADER,
    "CALL-1,2026-09-03T08:00:00Z,C1,+491705550001,billing,call",
    "CALL-2,2026-09-03T09:00:00Z,C2,+491705550002,billing",
    "CALL-3,2026-09-03T10:00:00Z,C3,+491705550003,billing,",
    'CALL-4,2026-09-03T11:00:00Z,C4,n/a,"billing',
    'and returns",call',
    "CALL-5,2026-09-03T12:00:00Z,C5,n/a,billing,call",
]
CALLS_OTHER_HEADER = [
    "call_id,crm_id,start_time,phone,queue,reason",
    "CALL-6,C6,not a time,,billing,call",
]
APP_SCHEMA = pa.schema([("event_id", pa.string()), ("event_time", pa.timestamp("ms", tz="UTC")),
                        ("customer_id", pa.string()), ("event_name", pa.string()),
                        ("amount", pa.float64())])
APP = [
    {"event_id": "a1", "event_time": datetime(2026, 9, 4, 10, tzinfo=UTC),
     "customer_id": "C7", "event_name": "purchase", "amount": 12.5},
    {"event_id": "a2", "event_time": None, "customer_id": "C7", "event_name": "app_open",
     "amount": None},
    {"event_id": "a3", "event_time": datetime(2026, 9, 4, 11, tzinfo=UTC),
     "customer_id": None, "event_name": "app_open", "amount": None},
]


def _config(root: Path) -> Config:
    return Config.model_validate({"base_dir": str(root), "sources": [
        {"name": "web", "path": "landing/web/*.ndjson", "format": "ndjson",
         "constants": {"channel": "web"},
         "fields": {"event_id": "id", "occurred_at": "ts", "event_type": "event",
                    "anonymous_id": "cookie_id", "email": "email"}},
        {"name": "calls", "path": "landing/calls/calls_*.csv", "format": "csv",
         "constants": {"channel": "call_center"},
         "fields": {"event_id": "call_id", "occurred_at": "start_time", "event_type": "reason",
                    "customer_id": "crm_id", "phone": "phone", "touchpoint": "queue"}},
        {"name": "app", "path": "landing/app/*.parquet", "format": "parquet",
         "constants": {"channel": "app"},
         "fields": {"occurred_at": "event_time", "event_type": "event_name",
                    "revenue": "amount"}},
    ]})


def _write(root: Path, rel: str, lines: list[str]) -> None:
    path = root / "landing" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path):
    """Landing files of three sources (NDJSON, CSV, Parquet) with rejects, ingested."""
    _write(tmp_path, "web/web_1.ndjson", WEB_1)
    _write(tmp_path, "web/web_2.ndjson", WEB_2)
    _write(tmp_path, "calls/calls_1.csv", CALLS)
    (tmp_path / "landing" / "app").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(APP, schema=APP_SCHEMA),
                   tmp_path / "landing" / "app" / "app_1.parquet")
    config = _config(tmp_path)
    con = connect(tmp_path / "wh")
    ingest(con, config, loaded_at=LOADED)
    yield tmp_path, config, con
    con.close()


def _raw(con, source: str) -> list[str]:
    return [r for (r,) in rows(con, "select raw_record from ingest_rejects where source = ? "
                                    "order by file, record_number", [source])]


def test_summary_counts_rejects_by_source_failure_type_and_file(site):
    """One row per (source, failure type, file): how many, the first record, what was wrong."""
    _, _, con = site
    got = [(g.source, g.reason, g.file, g.records, g.first_record) for g in summarize(con)]
    assert got == [
        ("app", "bad_timestamp", "landing/app/app_1.parquet", 1, 2),
        ("app", "missing_identifier", "landing/app/app_1.parquet", 1, 3),
        ("calls", "bad_value", "landing/calls/calls_1.csv", 2, 5),  # CALL-4 (lines 5-6), CALL-5
        ("calls", "malformed_record", "landing/calls/calls_1.csv", 1, 3),
        ("calls", "missing_field", "landing/calls/calls_1.csv", 1, 4),
        ("web", "bad_timestamp", "landing/web/web_1.ndjson", 1, 2),
        ("web", "bad_timestamp", "landing/web/web_2.ndjson", 1, 2),
        ("web", "malformed_record", "landing/web/web_2.ndjson", 1, 3),
        ("web", "missing_identifier", "landing/web/web_1.ndjson", 1, 3),
    ]
    first = summarize(con, "calls")[0]
    assert first.example == "landing/calls/calls_1.csv record 5: 'n/a' is not a phone number"
    assert {g.reason for g in summarize(con)} <= set(FAILURE_TYPES)


def test_files_rejected_whole_are_listed_with_their_problem(site):
    """A file that cannot be read at all is not in the record summary but in the file list."""
    root, config, con = site
    (root / "landing" / "app" / "app_2.parquet").write_bytes(b"PAR1 not really")
    ingest(con, config, loaded_at=LOADED)
    (got,) = rejected_files(con)
    assert (got.source, got.path) == ("app", "landing/app/app_2.parquet")
    assert "unreadable Parquet file" in got.problem
    assert rejected_files(con, "web") == []
    assert isinstance(got, RejectedFile)


def test_summary_of_a_warehouse_without_rejects_is_empty(tmp_path):
    _write(tmp_path, "web/web_1.ndjson", WEB_1[:1])
    con = connect(tmp_path / "wh")
    ingest(con, _config(tmp_path), loaded_at=LOADED)
    assert summarize(con) == []
    assert export_for_replay(con, _config(tmp_path), tmp_path / "out", now=NOW) == []
    assert not (tmp_path / "out" / MANIFEST).exists()


def test_replay_names_match_the_source_pattern(site):
    """A replay file is picked up by its source: its name matches the source's path pattern."""
    _, config, _ = site
    web, calls, _ = config.sources
    assert replay_name(web, TAG) == f"{TAG}.ndjson"
    assert replay_name(calls, TAG) == f"calls_{TAG}.csv"
    fixed = web.model_copy(update={"path": "landing/web/export.ndjson"})
    assert replay_name(fixed, TAG) == f"export.{TAG}.ndjson"
    assert not matches_source(fixed, replay_name(fixed, TAG))  # must be renamed by hand


def test_export_writes_each_source_in_its_own_format(site):
    """CSV: the original header line, then exactly the rejected raw lines; NDJSON: exactly the
    raw lines; Parquet: the rows of the raw JSON records, typed like the original file."""
    root, config, con = site
    out = root / "out"
    paths = export_for_replay(con, config, out, now=NOW)
    assert [p.relative_to(out).as_posix() for p in paths] == [
        f"app/{TAG}.parquet", f"calls/calls_{TAG}.csv", f"web/{TAG}.ndjson"]
    app, calls, web = paths

    text = calls.read_text(encoding="utf-8")
    assert text == "".join(f"{line}\n" for line in [CSV_HEADER, *_raw(con, "calls")])
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == CSV_HEADER.split(",")
    assert len(parsed) == 1 + 4
    assert parsed[3][-2:] == ["billing\nand returns", "call"]  # still one record

    assert web.read_text(encoding="utf-8").splitlines() == _raw(con, "web")
    assert _raw(con, "web")[0] == WEB_1[1]

    table = pq.read_table(app)
    assert table.schema == APP_SCHEMA
    assert table.to_pylist() == [APP[1], APP[2]]


def test_manifest_leads_every_exported_record_back_to_its_original(site):
    """The manifest gives, for each record of a replay file, its original file and record
    number, the failure type and the landing folder to drop the fixed file into."""
    root, config, con = site
    out = root / "out"
    export_for_replay(con, config, out, now=NOW)
    with (out / MANIFEST).open(encoding="utf-8", newline="") as handle:
        manifest = list(csv.DictReader(handle, delimiter="\t"))
    assert tuple(manifest[0]) == MANIFEST_COLUMNS
    assert len(manifest) == rows(con, "select count(*) from ingest_rejects")[0][0]
    raw = dict(((f, n), r) for f, n, r in rows(
        con, "select file, record_number, raw_record from ingest_rejects"))
    for entry in manifest:
        replay = out / entry["replay_file"]
        number = int(entry["replay_record"])
        if replay.suffix == ".parquet":
            exported = json.dumps(pq.read_table(replay).to_pylist()[number - 1], default=str)
            original = json.dumps(json.loads(raw[entry["original_file"],
                                                 int(entry["original_record"])]), default=str)
            assert exported == original
        else:
            lines = replay.read_text(encoding="utf-8").split("\n")
            original = raw[entry["original_file"], int(entry["original_record"])]
            assert "\n".join(lines[number - 1:number - 1 + original.count("\n") + 1]) == original
        assert entry["landing_folder"] == (root / "landing" / entry["source"]).as_posix()


def test_export_of_one_source_and_of_an_unknown_one(site):
    root, config, con = site
    paths = export_for_replay(con, config, root / "out", "web", now=NOW)
    assert [p.name for p in paths] == [f"{TAG}.ndjson"]
    with pytest.raises(RejectsError, match="unknown source 'nope'"):
        export_for_replay(con, config, root / "out", "nope", now=NOW)


def test_csv_files_with_different_headers_get_one_replay_file_each(site):
    """Records are replayed under the header of the file they came from."""
    root, config, con = site
    _write(root, "calls/calls_2.csv", CALLS_OTHER_HEADER)
    ingest(con, config, loaded_at=LOADED)
    paths = export_for_replay(con, config, root / "out", "calls", now=NOW)
    assert [p.name for p in paths] == [f"calls_{TAG}-1.csv", f"calls_{TAG}-2.csv"]
    assert paths[1].read_text(encoding="utf-8") == "".join(
        f"{line}\n" for line in CALLS_OTHER_HEADER)


def test_a_csv_reject_whose_original_file_is_gone_cannot_be_exported(site):
    """Its header line is needed; the error names the file."""
    root, config, con = site
    (root / "landing" / "calls" / "calls_1.csv").unlink()
    with pytest.raises(RejectsError, match=r"calls_1\.csv: the original file is gone"):
        export_for_replay(con, config, root / "out", now=NOW)


def test_fixed_files_dropped_into_the_landing_folders_load_on_the_next_run(site):
    """The replay path: export, fix each record (putting back redacted values from the source
    system), move the files into the landing folders; the next run loads them as new files."""
    root, config, con = site
    paths = export_for_replay(con, config, root / "out", now=NOW)
    app, calls, web = paths
    token = f"[redacted sha256:{salted_hash(SALT, 'ann.replay@example.com')}]"
    assert token in web.read_text(encoding="utf-8")

    web.write_text("".join(f"{line}\n" for line in [
        WEB_1[1].replace("01.09.2026 10:05", "2026-09-01T10:05:00Z"),
        WEB_1[2].replace("}", ', "cookie_id": "k1"}'),
        WEB_2[1].replace("yesterday", "2026-09-02T09:05:00Z"),  # the real email, not the token
        WEB_2[2] + "}"]), encoding="utf-8")
    calls.write_text("".join(f"{line}\n" for line in [
        CSV_HEADER,
        "CALL-2,2026-09-03T09:00:00Z,C2,+491705550002,billing,call",
        "CALL-3,2026-09-03T10:00:00Z,C3,+491705550003,billing,call",
        'CALL-4,2026-09-03T11:00:00Z,C4,,"billing\nand returns",call',
        "CALL-5,2026-09-03T12:00:00Z,C5,,billing,call"]), encoding="utf-8")
    fixed_app = pq.read_table(app).to_pylist()
    fixed_app[0]["event_time"] = datetime(2026, 9, 4, 10, 30, tzinfo=UTC)
    fixed_app[1]["customer_id"] = "C8"
    pq.write_table(pa.Table.from_pylist(fixed_app, schema=APP_SCHEMA), app)
    for path in paths:
        shutil.move(path, root / "landing" / path.parent.name / path.name)

    summary = ingest(con, config, loaded_at=LOADED)

    loaded = {f.path: (f.read, f.loaded, f.rejected) for f in summary.files if not f.skipped}
    assert loaded == {
        f"landing/app/{TAG}.parquet": (2, 2, 0),
        f"landing/calls/calls_{TAG}.csv": (4, 4, 0),
        f"landing/web/{TAG}.ndjson": (4, 4, 0),
    }
    assert rows(con, "select count(*) from ingested_events") == [(4 + 4 + 4 + 2,)]
    assert rows(con, "select email_hash from ingested_events where event_id = 'web:w5'") == [
        (salted_hash(SALT, "ann.replay@example.com"),)]


def test_a_replayed_record_still_holding_a_redaction_token_is_rejected_again(site):
    """A redacted email must be put back from the source system: left as the token, the record
    is rejected again (bad_value), never loaded with a made-up email."""
    root, config, con = site
    (web,) = export_for_replay(con, config, root / "out", "web", now=NOW)
    web.write_text(web.read_text(encoding="utf-8").replace("yesterday", "2026-09-02T09:05:00Z"),
                   encoding="utf-8")
    shutil.move(web, root / "landing" / "web" / web.name)

    ingest(con, config, loaded_at=LOADED)

    assert rows(con, "select record_number, reason from ingest_rejects where file = ? "
                     "order by record_number", [f"landing/web/{web.name}"]) == [
        (1, "bad_timestamp"), (2, "missing_identifier"), (3, "bad_value"),
        (4, "malformed_record")]

