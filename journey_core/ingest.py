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
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from journey_core.config import Config, SourceConfig
from journey_core.privacy import forgotten_filter, load_tombstones, require_salt
from journey_core.schema import FILE_LEDGER, INGEST_REJECTS, INGESTED_EVENTS
from journey_core.warehouse import ensure_tables, scalar

if TYPE_CHECKING:
    from journey_core.ingest_columnar import Schema

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


def map_record(mapper: SourceMapper, rec: RawRecord, rel: str, loaded_at: datetime
               ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """One record of file `rel`: (the event loaded from it, None) or (None, its reject).

    Personal data in a reject is redacted; the event keeps its redacted raw text as `_raw`,
    in case it must become a reject later (a conflicting duplicate)."""
    source, salt = mapper.source, mapper.salt
    known = mapper.personal_values(rec) if rec.fields is not None else []
    try:
        if rec.fields is None:
            raise RecordRejected("malformed_record", rec.problem)
        event = mapper.to_event(rec)
    except RecordRejected as exc:
        return None, _reject(source, rel, rec.number, redact(rec.raw, salt, known), exc.reason,
                             redact(str(exc), salt, known), loaded_at)
    event.update(ingested_at=loaded_at, file=rel, _raw=redact(rec.raw, salt, known))
    return event, None


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
        event, reject = map_record(mapper, rec, rel, loaded_at)
        if reject is not None:
            parsed.rejects.append(reject)
            continue
        assert event is not None
        event["_key"] = content_key(event)
        first = parsed.events.get(event["event_id"])
        if first is None:
            parsed.events[event["event_id"]] = event
        elif first["_key"] == event["_key"]:
            parsed.duplicates += 1
        else:  # same id, other content: the first one stays, this one is kept as a reject
            parsed.rejects.append(_reject(
                source, rel, rec.number, event["_raw"], "conflicting_duplicate",
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


def _stage_rows(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]], *,
                file_index: list[int] | None = None) -> None:
    """Events parsed record by record into the temp table `_new_events` (ingested_events
    columns with properties in DuckDB's JSON form, and the index of each event's file)."""
    table = _arrow(INGESTED_EVENTS.column_names, events, _EVENT_SCHEMA).append_column(
        "file_index", pa.array(file_index or [0] * len(events), pa.int64()))
    con.register("_rows", table)
    try:
        columns = ", ".join("case when json_valid(properties) then json(properties)::varchar "
                            "else properties end as properties" if c == "properties" else c
                            for c in [*INGESTED_EVENTS.column_names, "file_index"])
        con.execute(f"create or replace temp table _new_events as select {columns} from _rows")
    finally:
        con.unregister("_rows")


@dataclass(frozen=True)
class _NewFile:
    path: Path
    rel: str
    size: int
    content_hash: str


def _ingest_columnar(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig,
                     files: list[_NewFile], schema: Schema, *, salt: str,
                     loaded_at: datetime) -> list[FileResult] | None:
    """Parquet files of one schema (as `ingest_columnar.describe` gives it), mapped in DuckDB
    in one statement (`journey_core.ingest_columnar`) and committed in one transaction with
    their ledger rows.

    Loads what `ingest_file` loads file after file, with the same counts, rejects and ledger
    rows. None when the files must go record by record (a reader error, say)."""
    from journey_core import ingest_columnar as col

    latest = loaded_at + config.max_future if config.max_future is not None else None
    mapper = SourceMapper(source, salt, latest)
    select = col.plan(mapper, schema, [f.path for f in files], salt=salt, latest=latest)
    if select is None:
        return None
    results = {i: FileResult(path=f.rel, source=source.name) for i, f in enumerate(files)}
    con.register("_files", pa.table({
        "filename": [str(f.path) for f in files], "file_index": list(range(len(files))),
        "file": [f.rel for f in files]}))
    try:
        con.execute(f"create or replace temp table _cand as select f.file_index, f.file, c.* "
                    f"from ({select}) as c join _files as f using (filename)")
    except duckdb.Error:  # a damaged row group: file by file, record by record names it
        return None
    finally:
        con.unregister("_files")
    rejects: list[dict[str, Any]] = []

    def records(keys: list[tuple[int, int]]) -> dict[tuple[int, int], RawRecord]:
        """Records by (file index, record number), each file read once."""
        out = {}
        for index in sorted({i for i, _ in keys}):
            numbers = sorted({n for i, n in keys if i == index})
            for rec in col.raw_records(files[index].path, numbers):
                out[(index, rec.number)] = rec
        return out

    def raw(keys: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """Redacted raw text of records by (file index, record number)."""
        return {key: redact(rec.raw, salt, mapper.personal_values(rec))
                for key, rec in records(keys).items()}

    try:
        for index, read in con.execute(
                "select file_index, count(*) from _cand group by all").fetchall():
            results[index].read = read
        unclean = con.execute("select file_index, record_number from _cand where not _clean "
                              "order by all").fetchall()
        slow: list[dict[str, Any]] = []
        slow_index: list[int] = []
        for (index, _), rec in sorted(records(unclean).items()):  # exactly as record by record
            event, reject = map_record(mapper, rec, files[index].rel, loaded_at)
            if reject is not None:
                rejects.append(reject)
                results[index].rejected += 1
            else:
                slow.append(event)
                slow_index.append(index)
        _stage_rows(con, slow, file_index=slow_index)
        columns = ", ".join("?::timestamptz as ingested_at" if c == "ingested_at" else c
                            for c in INGESTED_EVENTS.column_names)
        con.execute(f"insert into _new_events select {columns}, file_index from _cand "
                    "where _clean", [loaded_at])
    finally:
        con.execute("drop table if exists _cand")
    # The same event_id twice in these files: the first record stays; a repeat of it is a
    # duplicate, other content a conflicting_duplicate reject (as file after file).
    repeats = con.execute(f"""
        with ranked as (
            select *, row_number() over (partition by event_id
                                         order by file_index, record_number) as rn
            from _new_events
            where event_id in (
                select event_id from _new_events group by event_id having count(*) > 1)
        )
        select b.file_index, b.record_number, b.event_id, a.file_index, a.record_number,
               {same_content('a', 'b')}
        from ranked as b join ranked as a on a.event_id = b.event_id and a.rn = 1
        where b.rn > 1
        order by b.file_index, b.record_number
    """).fetchall()
    raws = raw([(i, n) for i, n, _, _, _, same in repeats if not same])
    for index, number, event_id, first_index, first, same in repeats:
        if same:
            results[index].duplicates += 1
            continue
        where = (f"already read at record {first}" if first_index == index else
                 f"already loaded from {files[first_index].rel} record {first}")
        rejects.append(_reject(source, files[index].rel, number, raws[(index, number)],
                               "conflicting_duplicate",
                               f"event_id {event_id} {where} with different content", loaded_at))
        results[index].rejected += 1
    if repeats:
        con.register("_repeats", pa.table({"file_index": [r[0] for r in repeats],
                                           "record_number": [r[1] for r in repeats]}))
        con.execute("delete from _new_events n using _repeats r where "
                    "n.file_index = r.file_index and n.record_number = r.record_number")
        con.unregister("_repeats")

    _commit(con, source, files, results, rejects, raw, loaded_at)
    return [results[i] for i in range(len(files))]


def _commit(con: duckdb.DuckDBPyConnection, source: SourceConfig, files: list[_NewFile],
            results: dict[int, FileResult], rejects: list[dict[str, Any]],
            raw: Callable[[list[tuple[int, int]]], dict[tuple[int, int], str]],
            loaded_at: datetime) -> None:
    """Load `_new_events` and `rejects` with the files' ledger rows in one transaction.

    An event_id loaded before: the same content is a duplicate; other content is kept as a
    reject (the event loaded first stays)."""
    con.execute("begin transaction")
    try:
        seen = con.execute(
            f"select n.file_index, n.record_number, n.event_id, {same_content('n', 'e')}, "
            "e.file, e.record_number from _new_events n "
            "join ingested_events e on e.event_id = n.event_id order by 1, 2").fetchall()
        raws = raw([(i, n) for i, n, _, same, _, _ in seen if not same])
        for index, number, event_id, same, file, first in seen:
            if same:
                results[index].duplicates += 1
                continue
            rejects.append(_reject(
                source, files[index].rel, number, raws[(index, number)],
                "conflicting_duplicate", f"event_id {event_id} already loaded from {file} "
                f"record {first} with different content", loaded_at))
            results[index].rejected += 1
        if seen:
            con.execute("delete from _new_events n where exists "
                        "(select 1 from ingested_events e where e.event_id = n.event_id)")
        for index, loaded in con.execute(
                "select file_index, count(*) from _new_events group by all").fetchall():
            results[index].loaded = loaded
        columns = ", ".join(INGESTED_EVENTS.column_names)
        con.execute(f"insert into ingested_events select {columns} from _new_events")
        con.register("_new_rejects", _arrow(INGEST_REJECTS.column_names, rejects,
                                             _REJECT_SCHEMA))
        con.execute("insert into ingest_rejects select * from _new_rejects")
        for index, f in enumerate(files):
            _ledger_row(con, results[index], f.content_hash, f.size, loaded_at, None)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_new_rejects")
        con.execute("drop table if exists _new_events")


def ingest_file(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig,
                new: _NewFile, data: bytes, *, loaded_at: datetime, salt: str) -> FileResult:
    """Load one file record by record, in one transaction with its ledger row.

    A file that cannot be read at all is rejected whole: the ledger keeps it with the reason,
    the file stays where it is, and the run goes on."""
    result = FileResult(path=new.rel, source=source.name)
    try:
        parsed = parse_file(source, new.path, new.rel, data, salt=salt, loaded_at=loaded_at,
                            max_future=config.max_future)
    except IngestError as exc:
        result.problem = str(exc)
        _ledger_row(con, result, new.content_hash, new.size, loaded_at, result.problem)
        return result
    keep = forgotten_filter(con)  # a forgotten person's records stay out; others lose their ids
    events = {i: e for i, v in parsed.events.items() if (e := keep(v)) is not None}
    rejects = [r for r in parsed.rejects if keep(r) is not None]
    result.forgotten = len(parsed.events) + len(parsed.rejects) - len(events) - len(rejects)
    result.read, result.duplicates, result.rejected = parsed.read, parsed.duplicates, len(rejects)
    _stage_rows(con, list(events.values()))
    raws = {(0, e["record_number"]): e["_raw"] for e in events.values()}
    _commit(con, source, [new], {0: result}, rejects, lambda keys: {k: raws[k] for k in keys},
            loaded_at)
    return result


def display_path(config: Config, path: Path) -> str:
    """Paths are recorded relative to the config's folder when below it."""
    try:
        return path.resolve().relative_to(config.base_dir.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def ingest(con: duckdb.DuckDBPyConnection, config: Config, *, loaded_at: datetime | None = None,
           progress: Any = None, columnar: bool = True) -> IngestSummary:
    """Load every new file of every source, in source order then sorted path order.

    A file whose content hash is in the ledger is skipped. Parquet files are mapped in DuckDB,
    all new files of one schema in one statement and one transaction
    (`journey_core.ingest_columnar`; not with `columnar=False`, nor while tombstones must be
    applied); other files record by record, one transaction each. Both give the same rows."""
    ensure_tables(con, ["ingested_events", "ingest_rejects", "file_ledger"])
    loaded_at = loaded_at or datetime.now(UTC)
    salt = hash_salt(config)
    summary = IngestSummary()

    def done(result: FileResult) -> None:
        summary.files.append(result)
        if progress:
            progress(result)

    from journey_core.ingest_columnar import describe

    for source in config.sources:
        # Consecutive new Parquet files of one schema form a batch; files load in path order.
        batch: list[_NewFile] = []
        schema: Schema | None = None

        columnar_ok = columnar and source.format == "parquet" and \
            not load_tombstones(con).hashes
        for path in config.source_files(source):
            data = read_file(path)
            new = _NewFile(path, display_path(config, path), len(data),
                           hashlib.sha256(data).hexdigest())
            if scalar(con, "select count(*) from file_ledger where content_hash = ?",
                      [new.content_hash]) or any(f.content_hash == new.content_hash
                                                 for f in batch):
                _flush(con, config, source, batch, schema, done, salt=salt, loaded_at=loaded_at)
                done(FileResult(path=new.rel, source=source.name, skipped=True))
                continue
            file_schema = describe(con, path) if columnar_ok and data else None
            if batch and file_schema != schema:
                _flush(con, config, source, batch, schema, done, salt=salt, loaded_at=loaded_at)
            if file_schema is not None:
                batch.append(new)
                schema = file_schema
            else:
                done(ingest_file(con, config, source, new, data, loaded_at=loaded_at, salt=salt))
        _flush(con, config, source, batch, schema, done, salt=salt, loaded_at=loaded_at)
    return summary


def _flush(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig,
           batch: list[_NewFile], schema: Schema | None, done: Callable[[FileResult], None], *,
           salt: str, loaded_at: datetime) -> None:
    """Load a batch of Parquet files of one schema (file by file when it cannot be mapped in
    DuckDB), report each file, and empty the batch."""
    results = batch and schema and _ingest_columnar(con, config, source, batch, schema,
                                                    salt=salt, loaded_at=loaded_at)
    for result in results or []:
        done(result)
    if not results:
        for new in batch:
            done(ingest_file(con, config, source, new, new.path.read_bytes(),
                             loaded_at=loaded_at, salt=salt))
    batch.clear()
