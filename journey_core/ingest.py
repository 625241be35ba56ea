"""Ingest: every source file becomes canonical events, rejects, and a ledger row.

Rules:
- every record read ends up loaded, rejected (verbatim, with the reason), or counted as a
  duplicate of an event_id already loaded; the ledger row says so per file;
- a file whose content hash is in the ledger is skipped (the same file is never loaded twice);
- each file is committed in one transaction with its events, rejects and ledger row;
- emails and phone numbers are hashed with a salt here and never stored raw.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from journey_core.config import Config, SourceConfig
from journey_core.privacy import forgotten_filter, load_tombstones, require_salt
from journey_core.schema import FILE_LEDGER, INGEST_REJECTS, INGESTED_EVENTS
from journey_core.warehouse import ensure_tables, scalar

IDENTIFIERS = ("customer_id", "anonymous_id", "email", "phone")
SCORE_RANGES = {"nps_score": (0, 10), "csat_score": (1, 5), "ces_score": (1, 7)}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?\d{6,15}$")
# What looks like an email address or an international phone number inside free text.
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"(?:\+|\b00)\d[\d \-().\/]{5,}\d")


class IngestError(RuntimeError):
    """A file that cannot be read at all; the message names the file and the problem."""


class RecordRejected(ValueError):
    """A record that cannot be loaded: `reason` is its failure type, the message the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class FileResult:
    path: str
    source: str
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    duplicates: int = 0
    skipped: bool = False
    problem: str | None = None  # why the whole file was rejected
    forgotten: int = 0  # records of forgotten persons, dropped (see journey_core.privacy)

    @property
    def balanced(self) -> bool:
        return self.read == self.loaded + self.rejected + self.duplicates + self.forgotten


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files if not f.skipped)


@dataclass(frozen=True)
class RawRecord:
    number: int
    raw: str
    fields: dict[str, Any] | None  # None when the record could not be parsed
    problem: str = ""


# --- reading files -----------------------------------------------------------------------------


def _read_csv(path: Path, text: str) -> Iterator[RawRecord]:
    # csv counts lines by "\n" only; so must we (str.splitlines also splits on U+2028, ...).
    lines = text.split("\n")
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise IngestError(f"{path}: unreadable CSV header: {exc}") from None
    seen = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raw = "\n".join(lines[seen:reader.line_num]).rstrip("\r\n")
            first, seen = seen + 1, reader.line_num
            yield RawRecord(first, raw, None, f"unparseable CSV: {exc}")
            continue
        first, seen = seen + 1, reader.line_num
        raw = "\n".join(lines[first - 1:seen]).rstrip("\r\n")
        if not row:  # a blank line is not a record
            continue
        if len(row) != len(header):
            yield RawRecord(first, raw, None,
                            f"has {len(row)} fields, the header has {len(header)}")
            continue
        fields = {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)}
        yield RawRecord(first, raw, fields)


def _csv_header(text: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text)))
    except (StopIteration, csv.Error):
        return []


def _read_ndjson(text: str) -> Iterator[RawRecord]:
    # Records end at "\n" only: U+2028 and friends are legal inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRecord(number, line, None, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(value, dict):
            yield RawRecord(number, line, None, "is not a JSON object")
            continue
        yield RawRecord(number, line, value)


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: unreadable Parquet file: {exc}") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield RawRecord(number, json.dumps(row, default=str, ensure_ascii=False), row)


def _columns(source: SourceConfig, path: Path, text: str | None) -> set[str] | None:
    """The file's column names, where the format has a header (CSV, Parquet)."""
    if source.format == "csv":
        return set(_csv_header(text or ""))
    if source.format == "parquet":
        try:
            return set(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"{path}: unreadable Parquet file: {exc}") from None
    return None


# --- normalizing one record --------------------------------------------------------------------


def text_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = value if isinstance(value, str) else (
        json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    text = text.strip()
    return text or None


def parse_timestamp(value: Any, fmt: str, zone: str) -> datetime:
    """Read a timestamp in the source's format; naive times are in `zone`. Returns UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = text_value(value)
        if text is None:
            raise ValueError("is empty")
        if fmt in ("epoch_s", "epoch_ms"):
            number = float(text)
            # 1e11 seconds is the year 5138, 1e11 milliseconds is 1973: the two never overlap
            # for real event times, so a value in the other unit is caught, not misread.
            if fmt == "epoch_ms" and abs(number) < 1e11:
                raise ValueError("looks like epoch seconds, the source is set to milliseconds")
            if fmt == "epoch_s" and abs(number) >= 1e11:
                raise ValueError("looks like epoch milliseconds, the source is set to seconds")
            parsed = datetime.fromtimestamp(number / (1000 if fmt == "epoch_ms" else 1), UTC)
        elif fmt == "iso8601":
            parsed = datetime.fromisoformat(text)
        else:
            parsed = datetime.strptime(text, fmt)
    if parsed.tzinfo is None:
        local = parsed.replace(tzinfo=ZoneInfo(zone))  # fold=0: an ambiguous time is the first
        if local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) != parsed:
            raise ValueError(f"{parsed} does not exist in {zone} (clocks jumped forward)")
        parsed = local
    return parsed.astimezone(UTC)


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError(f"{value!r} is not an email address")
    return email


def normalize_phone(value: str) -> str:
    phone = re.sub(r"[\s\-().\/]", "", value)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not _PHONE.match(phone):
        raise ValueError(f"{value!r} is not a phone number")
    return phone


def salted_hash(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}|{value}".encode()).hexdigest()


def redact(text: str, salt: str, known: list[str]) -> str:
    """Replace personal data in a rejected record by its salted hash.

    `known` are the record's email/phone/PII values when it could be parsed (six characters or
    more); email addresses and international phone numbers are also found by pattern, for records
    that could not be parsed."""
    def token(value: str) -> str:
        # A valid email or phone gets the hash of email_hash / phone_hash, so that a reject can
        # be matched to its person (journeys forget); anything else its trimmed lower case.
        for normalize in (normalize_email, normalize_phone):
            try:
                return f"[redacted sha256:{salted_hash(salt, normalize(value))}]"
            except ValueError:
                continue
        return f"[redacted sha256:{salted_hash(salt, value.strip().lower())}]"

    # Shorter values are no real email or phone, and replacing them could mangle other fields.
    for value in sorted({k for k in known if len(k) >= 6}, key=len, reverse=True):
        text = text.replace(value, token(value))
    text = _EMAIL_IN_TEXT.sub(lambda m: token(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda m: token(m.group(0)), text)


def _score(name: str, value: Any) -> int | None:
    text = text_value(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise RecordRejected("bad_value", f"{name} {text!r} is not a number") from None
    low, high = SCORE_RANGES[name]
    if number != int(number) or not low <= number <= high:
        raise RecordRejected("out_of_range", f"{name} {text} is outside {low}-{high}")
    return int(number)


@dataclass(frozen=True)
class SourceMapper:
    """Turns one parsed record of `source` into a canonical event (or raises RecordRejected)."""

    source: SourceConfig
    salt: str
    latest_allowed: datetime | None = None  # events after this are too far in the future

    def column(self, canonical: str) -> str | None:
        """Source column for a canonical field: its mapping, else the same-named column unless
        that column is explicitly mapped to another field."""
        s = self.source
        if canonical in s.constants:
            return None
        if canonical in s.fields:
            return s.fields[canonical]
        return None if canonical in s.fields.values() else canonical

    def used_columns(self) -> set[str]:
        from journey_core.config import CANONICAL_FIELDS

        return {c for f in CANONICAL_FIELDS if (c := self.column(f)) is not None}

    def value(self, record: dict[str, Any], canonical: str) -> Any:
        if canonical in self.source.constants:
            return self.source.constants[canonical]
        col = self.column(canonical)
        return record.get(col) if col is not None else None

    def required_columns(self) -> dict[str, str]:
        """Columns that must exist in a file with a header: canonical field -> column."""
        return {f: c for f in ("occurred_at", "event_type", "channel")
                if (c := self.column(f)) is not None}

    def to_event(self, rec: RawRecord) -> dict[str, Any]:
        s, r = self.source, rec.fields or {}
        event_type = text_value(self.value(r, "event_type"))
        channel = text_value(self.value(r, "channel"))
        for name, val in (("event_type", event_type), ("channel", channel)):
            if val is None:
                raise RecordRejected("missing_field", f"{name} is missing")
        event_type = s.event_types.get(event_type, event_type)
        try:
            occurred_at = parse_timestamp(self.value(r, "occurred_at"), s.timestamp.format,
                                          s.timestamp.timezone)
        except (ValueError, OverflowError, OSError) as exc:
            raw_ts = self.value(r, "occurred_at")
            raise RecordRejected("bad_timestamp",
                                 f"occurred_at {raw_ts!r} ({s.timestamp.format}): {exc}") from None
        if self.latest_allowed is not None and occurred_at > self.latest_allowed:
            raise RecordRejected(
                "too_far_in_future",
                f"occurred_at {occurred_at.isoformat()} is after {self.latest_allowed.isoformat()}"
                " (load time + max_future)")
        ids = {k: text_value(self.value(r, k)) for k in IDENTIFIERS}
        if not any(ids.values()):
            raise RecordRejected("missing_identifier",
                                 "no customer_id, anonymous_id, email or phone")
        try:
            email = ids["email"] and salted_hash(self.salt, normalize_email(ids["email"]))
            phone = ids["phone"] and salted_hash(self.salt, normalize_phone(ids["phone"]))
        except ValueError as exc:
            raise RecordRejected("bad_value", str(exc)) from None
        revenue_text = text_value(self.value(r, "revenue"))
        try:
            revenue = float(revenue_text) if revenue_text is not None else None
        except ValueError:
            raise RecordRejected("bad_value", f"revenue {revenue_text!r} is not a number") from None
        if revenue is not None and not math.isfinite(revenue):
            raise RecordRejected("bad_value", f"revenue {revenue_text!r} is not a finite number")
        source_id = text_value(self.value(r, "event_id"))
        event_id = f"{s.name}:{source_id or hashlib.sha256(rec.raw.encode()).hexdigest()}"
        touchpoint = text_value(self.value(r, "touchpoint"))
        if "touchpoint" not in s.constants:
            touchpoint = (s.touchpoint_prefix + touchpoint) if touchpoint else None
        used = self.used_columns()
        return {
            "event_id": event_id,
            "occurred_at": occurred_at,
            "source": s.name,
            "channel": channel,
            "touchpoint": touchpoint or f"{channel}/{event_type}",
            "event_type": event_type,
            "customer_id": ids["customer_id"],
            "anonymous_id": ids["anonymous_id"],
            "account_id": text_value(self.value(r, "account_id")),
            "email_hash": email,
            "phone_hash": phone,
            "revenue": revenue,
            **{name: _score(name, self.value(r, name)) for name in SCORE_RANGES},
            "rated_touchpoint": text_value(self.value(r, "rated_touchpoint")),
            "record_number": rec.number,
            "properties": json.dumps(
                {k: self._property(k, v) for k, v in r.items() if k not in used},
                default=str, ensure_ascii=False),
        }

    def personal_values(self, rec: RawRecord) -> list[str]:
        """The record's raw email, phone and PII-field values (to keep them out of rejects)."""
        r = rec.fields or {}
        values = [self.value(r, "email"), self.value(r, "phone"),
                  *(r.get(k) for k in self.source.pii_fields)]
        return [t for v in values if (t := text_value(v)) is not None]

    def _property(self, key: str, value: Any) -> Any:
        """Properties keep every unmapped field; fields listed as PII keep only a salted hash."""
        if key in self.source.pii_fields and value is not None:
            return salted_hash(self.salt, str(value).strip().lower())
        return value


# --- loading -----------------------------------------------------------------------------------


def hash_salt(config: Config) -> str:
    return require_salt(config)


def _arrow(table_columns: list[str], rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{c: row.get(c) for c in table_columns} for row in rows],
                                schema=schema)


_TS = pa.timestamp("us", tz="UTC")
_EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("occurred_at", _TS), ("ingested_at", _TS), ("source", pa.string()),
    ("channel", pa.string()), ("touchpoint", pa.string()), ("event_type", pa.string()),
    ("customer_id", pa.string()), ("anonymous_id", pa.string()), ("account_id", pa.string()),
    ("email_hash", pa.string()), ("phone_hash", pa.string()), ("revenue", pa.float64()),
    ("nps_score", pa.int16()), ("csat_score", pa.int16()), ("ces_score", pa.int16()),
    ("rated_touchpoint", pa.string()), ("file", pa.string()), ("record_number", pa.int64()),
    ("properties", pa.string()),
])
_REJECT_SCHEMA = pa.schema([
    ("source", pa.string()), ("file", pa.string()), ("record_number", pa.int64()),
    ("raw_record", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("rejected_at", _TS),
])


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read file: {exc.strerror}") from None


@dataclass
class ParsedFile:
    """One file's records: new events by event_id, rejects, and counts."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    duplicates: int = 0  # exact repeats of an event_id within the file


#: Columns that are not what an event says: where and when it was loaded.
LOAD_COLUMNS = ("ingested_at", "file", "record_number")


def content_key(event: dict[str, Any]) -> str:
    """What an event says, whatever file it came from and whenever it was loaded (to tell a
    repeated record from a conflicting one within a file)."""
    body = {k: v for k, v in event.items() if k not in LOAD_COLUMNS and not k.startswith("_")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def same_content(left: str, right: str) -> str:
    """SQL: the events `left` and `right` say the same (every column but the load columns)."""
    return " and ".join(f"{left}.{c} is not distinct from {right}.{c}"
                        for c in INGESTED_EVENTS.column_names if c not in LOAD_COLUMNS)


def _reject(source: SourceConfig, rel: str, number: int, raw: str, reason: str, detail: str,
            loaded_at: datetime) -> dict[str, Any]:
    return {"source": source.name, "file": rel, "record_number": number, "raw_record": raw,
            "reason": reason, "detail": f"{rel} record {number}: {detail}",
            "rejected_at": loaded_at}


def parse_file(source: SourceConfig, path: Path, rel: str, data: bytes, *, salt: str,
               loaded_at: datetime, max_future: timedelta | None = None) -> ParsedFile:
    """Map every record of a file to a canonical event or a reject; write nothing.

    Raises IngestError when the file cannot be read at all (not UTF-8, corrupt Parquet, a
    required column missing from the header)."""
    latest = loaded_at + max_future if max_future is not None else None
    mapper = SourceMapper(source, salt, latest)
    text = None
    if source.format in ("csv", "ndjson"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise IngestError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    parsed = ParsedFile()
    if not data:  # an empty export: nothing to load, nothing lost
        return parsed
    columns = _columns(source, path, text)
    if columns is not None:
        missing = {f: c for f, c in mapper.required_columns().items() if c not in columns}
        if missing:
            named = ", ".join(f"{c!r} (for {f})" for f, c in missing.items())
            raise IngestError(f"{path}: required column(s) missing: {named}")
    records: Iterator[RawRecord]
    if source.format == "csv":
        records = _read_csv(path, text or "")
    elif source.format == "ndjson":
        records = _read_ndjson(text or "")
    else:
        records = _read_parquet(path)

    for rec in records:
        parsed.read += 1
        known = mapper.personal_values(rec) if rec.fields is not None else []
        try:
            if rec.fields is None:
                raise RecordRejected("malformed_record", rec.problem)
            event = mapper.to_event(rec)
        except RecordRejected as exc:
            parsed.rejects.append(_reject(
                source, rel, rec.number, redact(rec.raw, salt, known), exc.reason,
                redact(str(exc), salt, known), loaded_at))
            continue
        event.update(ingested_at=loaded_at, file=rel)
        event["_key"] = content_key(event)
        event["_raw"] = redact(rec.raw, salt, known)  # kept only if it must become a reject
        first = parsed.events.get(event["event_id"])
        if first is None:
            parsed.events[event["event_id"]] = event
        elif first["_key"] == event["_key"]:
            parsed.duplicates += 1
        else:  # same id, other content: the first one stays, this one is kept as a reject
            parsed.rejects.append(_reject(
                source, rel, rec.number, redact(rec.raw, salt, known), "conflicting_duplicate",
                f"event_id {event['event_id']} already read at record {first['record_number']} "
                "with different content", loaded_at))
    return parsed


def _ledger_row(con: duckdb.DuckDBPyConnection, result: FileResult, content_hash: str,
                size: int, loaded_at: datetime, problem: str | None) -> None:
    con.execute(
        f"insert into file_ledger ({', '.join(FILE_LEDGER.column_names)}) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [content_hash, result.path, result.source, size, loaded_at, result.read, result.loaded,
         result.rejected, result.duplicates, result.forgotten,
         "rejected" if problem else "loaded", problem])


@dataclass
class _Batch:
    """One file's new events, staged in the temp table `_new_events` (ingested_events columns),
    with its rejects and counts; `raw(numbers)` gives records' redacted raw text by number."""

    rejects: list[dict[str, Any]]
    read: int
    duplicates: int
    forgotten: int
    raw: Callable[[list[int]], dict[int, str]]


def _stage_rows(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]) -> None:
    """Events parsed record by record into `_new_events` (properties in DuckDB's JSON form)."""
    con.register("_rows", _arrow(INGESTED_EVENTS.column_names, events, _EVENT_SCHEMA))
    try:
        columns = ", ".join("case when json_valid(properties) then json(properties)::varchar "
                            "else properties end as properties" if c == "properties" else c
                            for c in INGESTED_EVENTS.column_names)
        con.execute(f"create or replace temp table _new_events as select {columns} from _rows")
    finally:
        con.unregister("_rows")


def _parse_by_record(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig,
                     path: Path, rel: str, data: bytes, *, salt: str,
                     loaded_at: datetime) -> _Batch:
    parsed = parse_file(source, path, rel, data, salt=salt, loaded_at=loaded_at,
                        max_future=config.max_future)
    keep = forgotten_filter(con)  # a forgotten person's records stay out; others lose their ids
    events = {i: e for i, v in parsed.events.items() if (e := keep(v)) is not None}
    rejects = [r for r in parsed.rejects if keep(r) is not None]
    _stage_rows(con, list(events.values()))
    raws = {e["record_number"]: e["_raw"] for e in events.values()}
    return _Batch(rejects, parsed.read, parsed.duplicates,
                  len(parsed.events) + len(parsed.rejects) - len(events) - len(rejects),
                  lambda numbers: {n: raws[n] for n in numbers})


def _parse_columnar(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig,
                    path: Path, rel: str, *, salt: str, loaded_at: datetime) -> _Batch | None:
    """A Parquet file mapped in DuckDB (`journey_core.ingest_columnar`); None when the file
    must go record by record (column types the SQL does not map, tombstones to apply)."""
    from journey_core import ingest_columnar

    if source.format != "parquet" or load_tombstones(con).hashes:
        return None
    latest = loaded_at + config.max_future if config.max_future is not None else None
    mapper = SourceMapper(source, salt, latest)
    if (plan := ingest_columnar.plan(con, mapper, path, salt=salt, latest=latest)) is None:
        return None

    def raw(numbers: list[int]) -> dict[int, str]:
        records = ingest_columnar.raw_records(path, sorted(set(numbers)))
        return {r.number: redact(r.raw, salt, mapper.personal_values(r)) for r in records}

    try:
        con.execute(f"create or replace temp table _cand as {plan.select}")
    except duckdb.Error:  # a damaged row group: record by record names the problem
        con.execute("drop table if exists _cand")
        return None
    try:
        read = scalar(con, "select count(*) from _cand")
        unclean = [n for (n,) in con.execute(
            "select record_number from _cand where not _clean order by 1").fetchall()]
        rejects: list[dict[str, Any]] = []
        slow: list[dict[str, Any]] = []
        for rec in ingest_columnar.raw_records(path, unclean):  # exactly as record by record
            known = mapper.personal_values(rec)
            try:
                event = mapper.to_event(rec)
            except RecordRejected as exc:
                rejects.append(_reject(source, rel, rec.number, redact(rec.raw, salt, known),
                                       exc.reason, redact(str(exc), salt, known), loaded_at))
                continue
            slow.append({**event, "ingested_at": loaded_at, "file": rel})
        _stage_rows(con, slow)
        columns = ", ".join("?::timestamptz as ingested_at" if c == "ingested_at" else
                            "?::varchar as file" if c == "file" else c
                            for c in INGESTED_EVENTS.column_names)
        con.execute(f"insert into _new_events select {columns} from _cand where _clean",
                    [loaded_at, rel])
    finally:
        con.execute("drop table if exists _cand")
    # The same event_id twice in the file: the first record stays; a repeat of it is a
    # duplicate, other content a conflicting_duplicate reject (as record by record).
    repeats = con.execute(f"""
        with ranked as (
            select *, row_number() over (partition by event_id order by record_number) as rn
            from _new_events
            where event_id in (
                select event_id from _new_events group by event_id having count(*) > 1)
        )
        select b.record_number, b.event_id, a.record_number, {same_content('a', 'b')}
        from ranked as b join ranked as a on a.event_id = b.event_id and a.rn = 1
        where b.rn > 1
        order by b.record_number
    """).fetchall()
    duplicates = 0
    raws = raw([number for number, _, _, same in repeats if not same])
    for number, event_id, first, same in repeats:
        if same:
            duplicates += 1
            continue
        rejects.append(_reject(
            source, rel, number, raws[number], "conflicting_duplicate",
            f"event_id {event_id} already read at record {first} with different content",
            loaded_at))
    if repeats:
        con.execute("delete from _new_events where record_number in "
                    "(select unnest(?::bigint[]))", [[r[0] for r in repeats]])
    return _Batch(rejects, read, duplicates, 0, raw)


def ingest_file(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig, path: Path,
                *, loaded_at: datetime, salt: str, columnar: bool = True) -> FileResult:
    """Load one file in one transaction; skip it when its content hash is in the ledger.

    Parquet files are mapped in DuckDB (`journey_core.ingest_columnar`) unless `columnar` is
    false; the result is the same either way.

    A file that cannot be read at all is rejected whole: the ledger keeps it with the reason,
    the file stays where it is, and the run goes on."""
    rel = display_path(config, path)
    result = FileResult(path=rel, source=source.name)
    data = read_file(path)
    content_hash = hashlib.sha256(data).hexdigest()
    if scalar(con, "select count(*) from file_ledger where content_hash = ?", [content_hash]):
        result.skipped = True
        return result
    try:
        batch = (data and columnar and _parse_columnar(con, config, source, path, rel, salt=salt,
                                          loaded_at=loaded_at)) or \
            _parse_by_record(con, config, source, path, rel, data, salt=salt,
                             loaded_at=loaded_at)
    except IngestError as exc:
        result.problem = str(exc)
        _ledger_row(con, result, content_hash, len(data), loaded_at, result.problem)
        return result
    rejects = batch.rejects
    result.read, result.duplicates, result.forgotten = batch.read, batch.duplicates, \
        batch.forgotten

    con.execute("begin transaction")
    try:
        # An event_id loaded before: the same content is a duplicate; other content is kept
        # as a reject (the event loaded first stays).
        seen = con.execute(
            f"select n.event_id, {same_content('n', 'e')}, e.file, e.record_number, "
            "n.record_number from _new_events n join ingested_events e on e.event_id = n.event_id"
            " order by n.record_number").fetchall()
        raws = batch.raw([number for _, same, _, _, number in seen if not same])
        for event_id, same, file, number, new_number in seen:
            if same:
                result.duplicates += 1
                continue
            rejects.append(_reject(
                source, rel, new_number, raws[new_number],
                "conflicting_duplicate", f"event_id {event_id} already loaded from {file} "
                f"record {number} with different content", loaded_at))
        new = scalar(con, "select count(*) from _new_events")
        con.execute(
            "insert into ingested_events select * from _new_events n where not exists "
            "(select 1 from ingested_events e where e.event_id = n.event_id)")
        con.register("_new_rejects", _arrow(INGEST_REJECTS.column_names, rejects,
                                             _REJECT_SCHEMA))
        con.execute("insert into ingest_rejects select * from _new_rejects")
        result.loaded = new - len(seen)
        result.rejected = len(rejects)
        _ledger_row(con, result, content_hash, len(data), loaded_at, None)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_new_rejects")
        con.execute("drop table if exists _new_events")
    return result


def display_path(config: Config, path: Path) -> str:
    """Paths are recorded relative to the config's folder when below it."""
    try:
        return path.resolve().relative_to(config.base_dir.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def ingest(con: duckdb.DuckDBPyConnection, config: Config, *, loaded_at: datetime | None = None,
           progress: Any = None, columnar: bool = True) -> IngestSummary:
    """Load every new file of every source, in source order then sorted path order."""
    ensure_tables(con, ["ingested_events", "ingest_rejects", "file_ledger"])
    loaded_at = loaded_at or datetime.now(UTC)
    salt = hash_salt(config)
    summary = IngestSummary()
    for source in config.sources:
        files = config.source_files(source)
        for path in files:
            result = ingest_file(con, config, source, path, loaded_at=loaded_at, salt=salt,
                                 columnar=columnar)
            summary.files.append(result)
            if progress:
                progress(result)
    return summary
