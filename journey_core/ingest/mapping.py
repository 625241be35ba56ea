"""Mapping one raw record to a canonical event, or to a reject with its failure type.

Rules (per record): event_type and channel present, a timestamp in the source's format and zone
(naive local times that do not exist are rejected), not after load time + max_future, at least
one identifier, emails and phones valid (and stored only as salted hashes), revenue and scores
numbers within their scales. An event's id is `<source>:<source id>`, or the sha256 of its raw
record when the source has none; every unmapped field is kept in `properties`. Within a file,
the same event_id again with the same content is a duplicate, with other content a reject.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from journey_core.config import CANONICAL_FIELDS, SourceConfig
from journey_core.contract.schema import INGESTED_EVENTS
from journey_core.contract.vocabulary import (
    BAD_TIMESTAMP,
    BAD_VALUE,
    CONFLICTING_DUPLICATE,
    MALFORMED_RECORD,
    MISSING_FIELD,
    MISSING_IDENTIFIER,
    OUT_OF_RANGE,
    SCORE_RANGES,
    SOURCE_IDENTIFIERS,
    TOO_FAR_IN_FUTURE,
)
from journey_core.ingest.readers import IngestError, RawRecord, decode, file_columns, read_records
from journey_core.privacy.pii import normalize_email, normalize_phone, redact, salted_hash


class RecordRejected(ValueError):
    """A record that cannot be loaded: `reason` is its failure type, the message the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


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


def _score(name: str, value: Any) -> int | None:
    text = text_value(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise RecordRejected(BAD_VALUE, f"{name} {text!r} is not a number") from None
    low, high = SCORE_RANGES[name]
    if number != int(number) or not low <= number <= high:
        raise RecordRejected(OUT_OF_RANGE, f"{name} {text} is outside {low}-{high}")
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
                raise RecordRejected(MISSING_FIELD, f"{name} is missing")
        event_type = s.event_types.get(event_type, event_type)
        try:
            occurred_at = parse_timestamp(self.value(r, "occurred_at"), s.timestamp.format,
                                          s.timestamp.timezone)
        except (ValueError, OverflowError, OSError) as exc:
            raw_ts = self.value(r, "occurred_at")
            raise RecordRejected(BAD_TIMESTAMP,
                                 f"occurred_at {raw_ts!r} ({s.timestamp.format}): {exc}") from None
        if self.latest_allowed is not None and occurred_at > self.latest_allowed:
            raise RecordRejected(
                TOO_FAR_IN_FUTURE,
                f"occurred_at {occurred_at.isoformat()} is after {self.latest_allowed.isoformat()}"
                " (load time + max_future)")
        ids = {k: text_value(self.value(r, k)) for k in SOURCE_IDENTIFIERS}
        if not any(ids.values()):
            raise RecordRejected(MISSING_IDENTIFIER,
                                 "no customer_id, anonymous_id, email or phone")
        try:
            email = ids["email"] and salted_hash(self.salt, normalize_email(ids["email"]))
            phone = ids["phone"] and salted_hash(self.salt, normalize_phone(ids["phone"]))
        except ValueError as exc:
            raise RecordRejected(BAD_VALUE, str(exc)) from None
        revenue_text = text_value(self.value(r, "revenue"))
        try:
            revenue = float(revenue_text) if revenue_text is not None else None
        except ValueError:
            raise RecordRejected(BAD_VALUE, f"revenue {revenue_text!r} is not a number") from None
        if revenue is not None and not math.isfinite(revenue):
            raise RecordRejected(BAD_VALUE, f"revenue {revenue_text!r} is not a finite number")
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


def make_reject(source: SourceConfig, rel: str, number: int, raw: str, reason: str,
                detail: str, loaded_at: datetime) -> dict[str, Any]:
    """The `ingest_rejects` row of record `number` of file `rel`."""
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
            raise RecordRejected(MALFORMED_RECORD, rec.problem)
        event = mapper.to_event(rec)
    except RecordRejected as exc:
        return None, make_reject(source, rel, rec.number, redact(rec.raw, salt, known),
                                 exc.reason, redact(str(exc), salt, known), loaded_at)
    event.update(ingested_at=loaded_at, file=rel, _raw=redact(rec.raw, salt, known))
    return event, None


def parse_file(source: SourceConfig, path: Path, rel: str, data: bytes, *, salt: str,
               loaded_at: datetime, max_future: timedelta | None = None) -> ParsedFile:
    """Map every record of a file to a canonical event or a reject; write nothing.

    Raises IngestError when the file cannot be read at all (not UTF-8, corrupt Parquet, a
    required column missing from the header)."""
    latest = loaded_at + max_future if max_future is not None else None
    mapper = SourceMapper(source, salt, latest)
    text = decode(source, path, data)
    parsed = ParsedFile()
    if not data:  # an empty export: nothing to load, nothing lost
        return parsed
    columns = file_columns(source, path, text, data)
    if columns is not None:
        missing = {f: c for f, c in mapper.required_columns().items() if c not in columns}
        if missing:
            named = ", ".join(f"{c!r} (for {f})" for f, c in missing.items())
            raise IngestError(f"{path}: required column(s) missing: {named}")
    for rec in read_records(source, path, text, data):
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
            parsed.rejects.append(make_reject(
                source, rel, rec.number, event["_raw"], CONFLICTING_DUPLICATE,
                f"event_id {event['event_id']} already read at record {first['record_number']} "
                "with different content", loaded_at))
    return parsed
