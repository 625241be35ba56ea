"""CSV and NDJSON files mapped in DuckDB load exactly what the record-by-record path loads.

As `test_ingest_columnar` does for Parquet: each test ingests the same files twice, once per
path, and compares every row of `ingested_events`, `ingest_rejects` and `file_ledger`; the
record-by-record path (`csv` / `json.loads` and `SourceMapper.to_event`) is the reference. The
files are written by hand, byte by byte, with every rule of the record mapping, clean and
unclean, and every oddity of the formats: quoting, embedded newlines, CRLF, a BOM, blank and
malformed lines, a header that differs between files, compression."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from journey_core.config import Config
from journey_core.ingest import columnar
from journey_core.ingest.mapping import SourceMapper
from journey_core.ingest.readers import decode, split_text
from tests.unit.test_ingest_columnar import LOADED, SALT, _assert_same, _both, sample_sources

#: Records of a CSV export: (note, the record's text). Field order: CSV_HEADER.
CSV_HEADER = "id,ts,cust,anonymous_id,email,phone,kind,nps_score,revenue,note,friend_email"
CSV_RECORDS: list[tuple[str, str]] = [
    ("plain", "1,2026-08-30T12:00:00Z,c1,,,,view,,,plain,"),
    ("every field quoted, an offset, PII to hash",
     '"2","2026-08-30T12:00:00+02:00","c2","","","","view","7","12.5","quoted",'
     '"Friend@Example.com "'),
    ("leading space", "3,2026-08-30T12:00:00Z, c3,,,,view,,,space,"),
    ("trailing nbsp", "4,2026-08-30T12:00:00Z,c4\u00a0,,,,view,,,nbsp,"),
    ("email to normalize, naive time", "5,2026-08-30 12:00:00,,a5,Ann@Example.com,,buy,,3.0,e,"),
    ("phone with spaces", "6,2026-08-30T12:00:00Z,,a6,,+49 170 1234567,buy,,,p,"),
    ("clean phone, microseconds", "7,2026-08-30T12:00:00.123456Z,,a7,,+49170123456,view,,,p,"),
    ("bad email", "8,2026-08-30T12:00:00Z,c8,,not-an-email,,view,,,e,"),
    ("score out of range", "9,2026-08-30T12:00:00Z,c9,,,,survey,11,,s,"),
    ("score 9.0 is 9", "10,2026-08-30T12:00:00Z,c10,,,,survey,9.0,,s,"),
    ("score not a number", "11,2026-08-30T12:00:00Z,c11,,,,survey,x,,s,"),
    ("infinite revenue", "12,2026-08-30T12:00:00Z,c12,,,,buy,,inf,r,"),
    ("NaN revenue", "13,2026-08-30T12:00:00Z,c13,,,,buy,,nan,r,"),
    ("revenue in exponent form", "14,2026-08-30T12:00:00Z,c14,,,,buy,,1e3,r,"),
    ("revenue with an underscore", "15,2026-08-30T12:00:00Z,c15,,,,buy,,1_000,r,"),
    ("future", "16,2027-08-30T12:00:00Z,c16,,,,view,,,f,"),
    ("no timestamp", "17,,c17,,,,view,,,t,"),
    ("impossible date", "18,2026-02-30T12:00:00Z,c18,,,,view,,,t,"),
    ("seven decimals", "19,2026-08-30T12:00:00.1234567Z,c19,,,,view,,,t,"),
    ("no identifier", "20,2026-08-30T12:00:00Z,,,,,view,,,i,"),
    ("no event type", "21,2026-08-30T12:00:00Z,c21,,,,,,,k,"),
    ("no event id: the hash of the record", ",2026-08-30T12:00:00Z,c22,,,,view,,,h,"),
    ("first of a repeat", "23,2026-08-30T12:00:00Z,c23,,,,view,,,same,"),
    ("its exact repeat", "23,2026-08-30T12:00:00Z,c23,,,,view,,,same,"),
    ("a conflicting repeat", "23,2026-08-30T12:00:00Z,c23,,,,view,,,other,"),
    ("non-ASCII", "24,2026-08-30T12:00:00Z,ü-c24,,ÄNN@EXAMPLE.COM,,view,,,ü,"),
    ("embedded newline", '25,2026-08-30T12:00:00Z,c25,,,,view,,,"line one\nline two",'),
    ("embedded CRLF", '26,2026-08-30T12:00:00Z,c26,,,,view,,,"one\r\ntwo",'),
    ("doubled quotes", '27,2026-08-30T12:00:00Z,c27,,,,view,,,"say ""hi""",'),
    ("comma in quotes", '28,2026-08-30T12:00:00Z,c28,,,,view,,,"a, b",'),
    ("too few fields", "29,2026-08-30T12:00:00Z,c29"),
    ("too many fields", "30,2026-08-30T12:00:00Z,c30,,,,view,,,n,,extra"),
    ("event type to map and strip", "31,2026-08-30T12:00:00Z,c31,,,, buy ,,,k,"),
    ("a quoted empty field", '32,2026-08-30T12:00:00Z,c32,"",,,view,,,"",'),
]


def _csv(records: list[tuple[str, str]], *, header: str = CSV_HEADER, eol: str = "\n",
         bom: bool = False) -> bytes:
    """A CSV file: the header and the records, a blank line after the third record."""
    lines = [header, *(r for _, r in records[:3]), "", *(r for _, r in records[3:])]
    return (("\ufeff" if bom else "") + eol.join(lines) + eol).encode()


def _config(tmp_path: Path, fmt: str, **extra: Any) -> Config:
    source = {"name": "shop", "path": f"shop/*.{fmt}*", "format": fmt,
              "fields": {"event_id": "id", "occurred_at": "ts", "customer_id": "cust",
                         "event_type": "kind"},
              "constants": {"channel": "store"},
              "event_types": {"view": "page_view", "buy": "purchase"},
              "pii_fields": ["friend_email"], "touchpoint_prefix": "store/", **extra}
    return Config.model_validate({"sources": [source], "base_dir": str(tmp_path),
                                  "max_future": "1 day"})


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "shop" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def _clean(config: Config, path: Path) -> tuple[int, int]:
    """(clean records, records) of one file by its mapping SQL: the file is mapped in DuckDB,
    and the SQL runs (a plan DuckDB refused would quietly go record by record)."""
    source = config.sources[0]
    records = split_text(source, decode(source, path, path.read_bytes()) or "")
    assert records is not None
    planned = columnar.plan_text(SourceMapper(source, SALT, LOADED + config.max_future),
                                 records.header, salt=SALT, latest=LOADED + config.max_future)
    assert planned is not None
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.register(columnar.TEXT_RECORDS, columnar.text_table([records]))
    if records.header is not None:
        assert columnar.not_simple(con) == []
    select, params = planned
    (row,) = con.execute(f"select count(*) filter (where _clean), count(*) from ({select})",
                         params).fetchall()
    return row


def test_every_csv_rule_gives_the_same_events_rejects_and_ledger(tmp_path):
    _write(tmp_path, "a.csv", _csv(CSV_RECORDS))
    config = _config(tmp_path, "csv")
    by_record, mapped, (f,) = _both(tmp_path, config)
    _assert_same(by_record, mapped)
    assert (f.read, f.duplicates) == (len(CSV_RECORDS), 1)
    reasons = sorted(r[5] for r in by_record["ingest_rejects"])
    assert reasons == sorted([
        "bad_value", "out_of_range", "bad_value", "bad_value", "bad_value", "too_far_in_future",
        "bad_timestamp", "bad_timestamp", "missing_identifier", "missing_field",
        "conflicting_duplicate", "malformed_record", "malformed_record"])
    loaded = {r[0]: r for r in by_record["ingested_events"]}
    assert {"shop:2", "shop:3", "shop:4", "shop:5", "shop:6", "shop:10", "shop:14", "shop:15",
            "shop:19", "shop:24", "shop:25", "shop:26", "shop:27", "shop:28"} <= set(loaded)
    numbers = {r[18] for r in by_record["ingested_events"]}  # record_number: the first line
    assert {2, 3, 4, 6} <= numbers  # a blank line after the third record
    clean, total = _clean(config, tmp_path / "shop" / "a.csv")
    assert total == len(CSV_RECORDS) and clean >= 12  # the plain ones go set-based


def test_crlf_a_bom_compression_and_headers_that_differ(tmp_path):
    """Files of one source: CRLF with a BOM, gzip, zstd, and one whose columns come in
    another order with one more; each its own header."""
    import pyarrow as pa_

    _write(tmp_path, "a.csv", _csv(CSV_RECORDS[:12], eol="\r\n", bom=True))
    _write(tmp_path, "b.csv.gz", gzip.compress(_csv(CSV_RECORDS[12:24])))
    sink = pa_.BufferOutputStream()
    with pa_.output_stream(sink, compression="zstd") as out:
        out.write(_csv(CSV_RECORDS[24:]))
    _write(tmp_path, "c.csv.zst", sink.getvalue().to_pybytes())
    reordered = [(n, ",".join(["x", *reversed(r.split(","))])) for n, r in CSV_RECORDS[:8]
                 if '"' not in r]
    _write(tmp_path, "d.csv", _csv(reordered, header=",".join(
        ["extra", *reversed(CSV_HEADER.split(","))])))
    config = _config(tmp_path, "csv")
    by_record, mapped, files = _both(tmp_path, config)
    _assert_same(by_record, mapped)
    assert [f.path for f in files] == ["shop/a.csv", "shop/b.csv.gz", "shop/c.csv.zst",
                                       "shop/d.csv"]
    assert all(f.read for f in files)
    for name in ("a.csv", "b.csv.gz", "c.csv.zst", "d.csv"):
        assert _clean(config, tmp_path / "shop" / name)[0] > 0


def test_a_csv_file_with_quoting_the_sql_cannot_read_goes_record_by_record(tmp_path):
    """Quotes inside an unquoted field: `csv` reads them literally, and only it can say where
    such a record ends. Those files go record by record; the files around them do not."""
    _write(tmp_path, "a.csv", _csv(CSV_RECORDS[:5]))
    pair = [("two stray quotes", '40,2026-08-30T12:00:00Z,c"4"0,,,,view,,,q,'),
            ("after them", "41,2026-08-30T12:00:00Z,c41,,,,view,,,q,")]
    _write(tmp_path, "b.csv", _csv(pair))
    _write(tmp_path, "c.csv", _csv(CSV_RECORDS[5:10]))
    odd = [("one stray quote", '42,2026-08-30T12:00:00Z,c"42,,,,view,,,q,'),
           ("after it", "43,2026-08-30T12:00:00Z,c43,,,,view,,,q,")]
    _write(tmp_path, "d.csv", _csv(odd))
    config = _config(tmp_path, "csv")
    by_record, mapped, files = _both(tmp_path, config)
    _assert_same(by_record, mapped)
    assert {'shop:40', "shop:41", "shop:42", "shop:43"} <= {
        r[0] for r in by_record["ingested_events"]}
    assert [f.read for f in files] == [5, 2, 5, 2]
    source = config.sources[0]
    split = [split_text(source, (tmp_path / "shop" / n).read_text()) for n in ("a.csv", "b.csv")]
    con = duckdb.connect()
    con.register(columnar.TEXT_RECORDS, columnar.text_table(split))
    assert columnar.not_simple(con) == [1]  # b.csv: its records are not RFC 4180's
    assert split_text(source, (tmp_path / "shop" / "d.csv").read_text()) is None  # no end


def test_epoch_timestamps(tmp_path):
    """Whole epoch milliseconds map in SQL; fractions, seconds-sized values and text go to the
    record rules, which decide."""
    rows = [("ms", "1,1788091200123,c1,,,,view,,,a,"), ("fraction", "2,1788091200123.5,c2,,,,"
            "view,,,a,"), ("seconds", "3,1788091200,c3,,,,view,,,a,"),
            ("text", "4,yesterday,c4,,,,view,,,a,"), ("far future", "5,9788091200123,c5,,,,"
            "view,,,a,")]
    _write(tmp_path, "a.csv", _csv(rows))
    config = _config(tmp_path, "csv", timestamp={"format": "epoch_ms"})
    by_record, mapped, _ = _both(tmp_path, config)
    _assert_same(by_record, mapped)
    assert _clean(config, tmp_path / "shop" / "a.csv") == (1, 5)


#: Lines of an NDJSON export (note, line).
NDJSON_LINES: list[tuple[str, str]] = [
    ("plain", '{"id": "1", "ts": "2026-08-30T12:00:00Z", "cust": "c1", "kind": "view"}'),
    ("numbers as ids, nested properties",
     '{"id": 2, "ts": "2026-08-30T12:00:00Z", "cust": 1234, "kind": "view", '
     '"cart": {"items": [1, 2.50, 1E5], "note": null}, "big": 123456789012345678901234567890}'),
    ("a boolean customer id", '{"id": "3", "ts": "2026-08-30T12:00:00Z", "cust": true, '
     '"kind": "view"}'),
    ("revenue as text, score as number",
     '{"id": "4", "ts": "2026-08-30T12:00:00Z", "cust": "c4", "kind": "buy", '
     '"revenue": "12.5", "nps_score": 9}'),
    ("score 9.0", '{"id": "5", "ts": "2026-08-30T12:00:00Z", "cust": "c5", "kind": "survey", '
     '"nps_score": 9.0}'),
    ("malformed", '{"id": "6", "ts": '),
    ("not an object", '[1, 2, 3]'),
    ("duplicate keys", '{"id": "8", "id": "8b", "ts": "2026-08-30T12:00:00Z", "cust": "c8", '
     '"kind": "view"}'),
    ("escaped lone surrogate", '{"id": "9", "ts": "2026-08-30T12:00:00Z", "cust": "c9", '
     '"kind": "view", "note": "\\ud800"}'),
    ("a number beyond a double", '{"id": "10", "ts": "2026-08-30T12:00:00Z", "cust": "c10", '
     '"kind": "view", "x": 1E400}'),
    ("escaped unicode and controls", '{"id": "11", "ts": "2026-08-30T12:00:00Z", '
     '"cust": "\\u00fc-c11", "kind": "view", "note": "tab\\there\\n\\"q\\""}'),
    ("PII property to hash", '{"id": "12", "ts": "2026-08-30T12:00:00Z", "cust": "c12", '
     '"kind": "view", "friend_email": "Friend@Example.com"}'),
    ("PII property null", '{"id": "13", "ts": "2026-08-30T12:00:00Z", "cust": "c13", '
     '"kind": "view", "friend_email": null}'),
    ("no identifier", '{"id": "14", "ts": "2026-08-30T12:00:00Z", "kind": "view"}'),
    ("future", '{"id": "15", "ts": "2030-08-30T12:00:00Z", "cust": "c15", "kind": "view"}'),
    ("no event id", '{"ts": "2026-08-30T12:00:00Z", "cust": "c16", "kind": "view"}'),
    ("repeat", '{"id": "1", "ts": "2026-08-30T12:00:00Z", "cust": "c1", "kind": "view"}'),
    ("conflict", '{"id": "1", "ts": "2026-08-30T12:00:00Z", "cust": "c1", "kind": "buy"}'),
    ("whitespace around", '  {"id": "19", "ts": "2026-08-30T12:00:00Z", "cust": "c19", '
     '"kind": "view"}  '),
    ("text to strip", '{"id": "20", "ts": "2026-08-30T12:00:00Z", "cust": " c20", '
     '"kind": "view"}'),
    ("an email", '{"id": "21", "ts": "2026-08-30T12:00:00Z", "email": "Ann@Example.com", '
     '"kind": "view"}'),
    ("U+2028 inside a string", '{"id": "22", "ts": "2026-08-30T12:00:00Z", "cust": "c22", '
     '"kind": "view", "note": "a\u2028b"}'),
]


def _ndjson(lines: list[tuple[str, str]], *, eol: str = "\n") -> bytes:
    """An NDJSON file of the lines, with a blank and a whitespace-only line among them."""
    body = [line for _, line in lines[:4]] + ["", " \t\u3000"] + [line for _, line in lines[4:]]
    return (eol.join(body) + eol).encode()


def test_every_ndjson_rule_gives_the_same_events_rejects_and_ledger(tmp_path):
    _write(tmp_path, "a.ndjson", _ndjson(NDJSON_LINES))
    config = _config(tmp_path, "ndjson")
    by_record, mapped, (f,) = _both(tmp_path, config)
    _assert_same(by_record, mapped)
    assert (f.read, f.duplicates) == (len(NDJSON_LINES), 1)
    assert [(r[3], r[5]) for r in by_record["ingest_rejects"]] == [  # line numbers
        (8, "malformed_record"), (9, "malformed_record"), (11, "malformed_record"),
        (16, "missing_identifier"), (17, "too_far_in_future"), (20, "conflicting_duplicate")]
    assert "unpaired surrogate" in by_record["ingest_rejects"][2][6]
    clean, total = _clean(config, tmp_path / "shop" / "a.ndjson")
    assert total == len(NDJSON_LINES) and clean >= 8


def test_ndjson_with_crlf_and_compression(tmp_path):
    _write(tmp_path, "a.ndjson", _ndjson(NDJSON_LINES[:8], eol="\r\n"))
    _write(tmp_path, "b.ndjson.gz", gzip.compress(_ndjson(NDJSON_LINES[8:])))
    config = _config(tmp_path, "ndjson")
    by_record, mapped, files = _both(tmp_path, config)
    _assert_same(by_record, mapped)
    assert [f.read for f in files] == [8, len(NDJSON_LINES) - 8]
    assert _clean(config, tmp_path / "shop" / "b.ndjson.gz")[0] > 0


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_the_benchmark_files_map_entirely_in_sql(tmp_path, fmt):
    """Files like the benchmark's (every string quoted; NDJSON without null keys): every
    record is clean, so nothing goes record by record."""
    rows = [{"event_id": f"e{i}", "occurred_at": f"2026-08-{10 + i % 19:02d}T12:00:00.5Z",
             "channel": "web", "event_type": "page_view", "customer_id": f"c{i % 7}",
             "revenue": 1.5 * i if i % 3 == 0 else None, "nps_score": i % 11 if i % 5 == 0
             else None} for i in range(200)]
    if fmt == "csv":
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(pa.Table.from_pylist(rows), sink)
        data = sink.getvalue().to_pybytes()
    else:
        data = "".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n"
                       for r in rows).encode()
    _write(tmp_path, f"a.{fmt}", data)
    config = Config.model_validate({"sources": [{"name": "shop", "path": f"shop/*.{fmt}",
                                                 "format": fmt}], "base_dir": str(tmp_path)})
    by_record, mapped, _ = _both(tmp_path, config)
    _assert_same(by_record, mapped)
    assert _clean(config, tmp_path / "shop" / f"a.{fmt}") == (200, 200)


def test_the_sample_text_sources(tmp_path):
    """Every CSV and NDJSON source of the sample loads the same both ways (ISO, epoch and
    custom timestamp formats; the custom ones go record by record)."""
    copy = sample_sources(tmp_path, ("csv", "ndjson"))
    by_record, mapped, files = _both(tmp_path, copy)
    _assert_same(by_record, mapped)
    assert sum(f.loaded for f in files) > 1000


def test_a_split_keeps_record_numbers_and_raw_text() -> None:
    """Record numbers are first lines; raw text is verbatim without the line end."""
    source = Config.model_validate({"sources": [{"name": "s", "path": "*.csv",
                                                 "format": "csv"}]}).sources[0]
    records = split_text(source, 'a,b\r\n1,"x\r\ny"\r\n\r\n2,z\r\n')
    assert records is not None
    assert (records.header, records.numbers.to_pylist(), records.raws.to_pylist()) == (
        ("a", "b"), [2, 5], ['1,"x\r\ny"', "2,z"])
    assert records.record(2).fields == {"a": "1", "b": "x\r\ny"}
    assert split_text(source, 'a,b\n1,"never closed\n') is None
