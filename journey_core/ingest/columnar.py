"""Columnar ingest of Parquet files: the per-record rules of `journey_core.ingest.mapping`, in
DuckDB.

A Parquet file whose columns have plain types (text, integer, floating point, boolean, a
timestamp) is mapped by one SQL statement instead of record by record in Python. The SQL
computes exactly what `SourceMapper.to_event` computes, for the records where that is simple
("clean" records: no whitespace to strip, an email or phone already in normal form, a score in
range, a timestamp not in the future, at least one identifier, an event_id). Every other
record goes through `SourceMapper` itself, so a reject's reason and detail, and an unusual value
that still loads, come out exactly as on the record-by-record path. Files with other column
types (dates, lists, nanosecond or local-time timestamps, ...) take the record-by-record path
whole. Every value from the config or the files (the salt, constants, paths) is a bound
parameter; column names go through `journey_core.warehouse.quoting`.

`tests/unit/test_ingest_columnar.py` checks that both paths load the same events and rejects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from journey_core.contract.vocabulary import SCORE_RANGES
from journey_core.ingest.mapping import SourceMapper, text_value
from journey_core.ingest.readers import RawRecord
from journey_core.privacy.pii import EMAIL_PATTERN
from journey_core.warehouse.quoting import ident

_INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "HUGEINT"}
_FLOAT = {"FLOAT", "DOUBLE"}
_TEXT_TYPES = {"VARCHAR"} | _INTEGER
_TIMESTAMPS = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP_MS", "TIMESTAMP_S"}
_PROPERTY_TYPES = {"VARCHAR", "BOOLEAN"} | _INTEGER | _FLOAT
#: The text fields, in the order the SQL computes them.
_TEXT_FIELDS = ("event_id", "channel", "event_type", "touchpoint", "customer_id",
                "anonymous_id", "account_id", "rated_touchpoint", "email", "phone")
#: The canonical columns of a mapped record, in the order of `ingested_events`.
_OUTPUT = ("event_id", "occurred_at", "channel", "touchpoint", "event_type", "customer_id",
           "anonymous_id", "account_id", "email_hash", "phone_hash", "revenue", "nps_score",
           "csat_score", "ces_score", "rated_touchpoint", "properties")
_NULL_TEXT = "null::varchar"

Schema = tuple[tuple[str, str], ...]


class _Unmappable(Exception):
    """The files must go record by record (a column type or a mapping the SQL does not do)."""


def _stripped(col: str) -> str:
    """Clean when the text needs no strip(): null, or printable ASCII at both ends. (Text
    starting or ending in anything else, spaces and empty text included, goes record by
    record: conservative, and cheap to test.)"""
    return (f"coalesce(ord({col}) between 33 and 126 "
            f"and ord(right({col}, 1)) between 33 and 126, true)")


def describe(con: duckdb.DuckDBPyConnection, path: Path) -> Schema | None:
    """A Parquet file's columns and DuckDB types; None when DuckDB cannot read it (the
    record-by-record path names the problem)."""
    try:
        return tuple((r[0], r[1]) for r in con.execute(
            "describe select * from read_parquet(?)", [str(path)]).fetchall())
    except duckdb.Error:
        return None


@dataclass
class _Select:
    """The mapping SQL being built: an expression per canonical field, the conditions that make
    a record clean, and the values bound as parameters."""

    mapper: SourceMapper
    types: dict[str, str]
    value: dict[str, str] = field(default_factory=dict)
    clean: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        """A parameter for `value` (SQL null for None)."""
        if value is None:
            return "null"
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def column(self, canonical: str) -> tuple[str, str] | None:
        """The source column mapped to `canonical` and its type, when the file has it."""
        col = self.mapper.column(canonical)
        return (col, self.types[col]) if col is not None and col in self.types else None


def _texts(sel: _Select) -> None:
    """The text fields as stripped text; only text needing no strip() is clean."""
    s = sel.mapper.source
    for canonical in _TEXT_FIELDS:
        if canonical in s.constants:
            sel.value[canonical] = sel.bind(text_value(s.constants[canonical]))
            continue
        found = sel.column(canonical)
        if found is None:
            sel.value[canonical] = _NULL_TEXT
            continue
        col, kind = found
        if kind not in _TEXT_TYPES:
            raise _Unmappable(canonical)
        if kind != "VARCHAR":
            sel.value[canonical] = f"cast({ident(col)} as varchar)"
            continue
        sel.clean.append(_stripped(ident(col)))
        sel.value[canonical] = f"nullif({ident(col)}, '')"
    for name in ("event_id", "channel", "event_type"):
        sel.clean.append(f"{sel.value[name]} is not null")


def _event_type_and_touchpoint(sel: _Select) -> None:
    """Raw event types mapped; touchpoint = prefix + value, else `<channel>/<event_type>`."""
    s, value = sel.mapper.source, sel.value
    if s.event_types:
        cases = " ".join(f"when {sel.bind(k)} then {sel.bind(v)}"
                         for k, v in s.event_types.items())
        value["event_type"] = f"(case {value['event_type']} {cases} else {value['event_type']} end)"
    if "touchpoint" not in s.constants:
        value["touchpoint"] = f"{sel.bind(s.touchpoint_prefix)} || {value['touchpoint']}"
    value["touchpoint"] = (f"coalesce({value['touchpoint']}, "
                           f"{value['channel']} || '/' || {value['event_type']})")


def _occurred_at(sel: _Select, latest: datetime | None) -> None:
    """A typed timestamp with a zone, or naive in a UTC source; not after `latest`."""
    s = sel.mapper.source
    found = None if "occurred_at" in s.constants else sel.column("occurred_at")
    if found is None:
        raise _Unmappable("occurred_at")
    col, kind = found
    if kind not in _TIMESTAMPS or (kind != "TIMESTAMP WITH TIME ZONE"
                                   and s.timestamp.timezone != "UTC"):
        raise _Unmappable("occurred_at")
    sel.value["occurred_at"] = f"cast({ident(col)} as timestamptz)"
    sel.clean.append(f"{sel.value['occurred_at']} is not null")
    if latest is not None:
        sel.clean.append(f"{sel.value['occurred_at']} <= {sel.bind(latest)}::timestamptz")


def _identifiers(sel: _Select, salt: str) -> None:
    """At least one identifier; email and phone clean only when already in normal form, and
    stored as their salted hashes."""
    value = sel.value
    ids = [value[k] for k in ("customer_id", "anonymous_id", "email", "phone")]
    sel.clean.append("coalesce(" + ", ".join(ids) + ") is not null")
    email, phone = value.pop("email"), value.pop("phone")
    if email != _NULL_TEXT:
        sel.clean.append(f"coalesce(regexp_matches({email}, '^[!-~]+$') and {email} = lower("
                         f"{email}) and regexp_matches({email}, {sel.bind(EMAIL_PATTERN)}), true)")
    if phone != _NULL_TEXT:
        sel.clean.append(f"coalesce(regexp_matches({phone}, '^\\+?[0-9]{{6,15}}$') "
                         f"and not starts_with({phone}, '00'), true)")
    # (bound only where used: DuckDB refuses a parameter the statement does not use)
    value["email_hash"] = "null" if email == _NULL_TEXT else \
        f"sha256({sel.bind(salt + '|')} || {email})"
    value["phone_hash"] = "null" if phone == _NULL_TEXT else \
        f"sha256({sel.bind(salt + '|')} || {phone})"


def _numbers(sel: _Select) -> None:
    """Revenue a finite number; each score a whole number within its scale."""
    for name in ("revenue", *SCORE_RANGES):
        if name in sel.mapper.source.constants:
            raise _Unmappable(name)
        found = sel.column(name)
        if found is None:
            sel.value[name] = "null"
            continue
        kind, c = found[1], ident(found[0])
        if kind not in _INTEGER | _FLOAT and not kind.startswith("DECIMAL"):
            raise _Unmappable(name)
        if kind in _INTEGER:
            sel.value[name] = f"{c}::double" if name == "revenue" else f"{c}::smallint"
            if name != "revenue":
                low, high = SCORE_RANGES[name]
                sel.clean.append(f"coalesce({c} between {low} and {high}, true)")
            continue
        number = f"(case when isnan({c}::double) then null else {c}::double end)"
        if name == "revenue":
            sel.value[name] = number
            sel.clean.append(f"coalesce(not isinf({c}::double), true)")
        else:
            low, high = SCORE_RANGES[name]
            sel.value[name] = f"cast({number} as smallint)"
            sel.clean.append(f"coalesce({number} between {low} and {high} "
                             f"and {number} = floor({number}), true)")


_CONTROL_CHARS = " ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(28) || " \
    "chr(29) || chr(30) || chr(31)"


def _properties(sel: _Select, salt: str) -> None:
    """Every unmapped column as a JSON property, PII ones as a salted hash of their trimmed
    lower case."""
    s, used = sel.mapper.source, sel.mapper.used_columns()
    pairs = []
    for col, kind in sel.types.items():
        if col in used:
            continue
        if kind not in _PROPERTY_TYPES:
            raise _Unmappable(col)
        c = ident(col)
        if kind in _FLOAT:
            sel.clean.append(f"({c} is null or isfinite({c}))")
        if col not in s.pii_fields:
            pairs.append(f"{c} := {c}")  # (a key is an identifier: DuckDB 2 refuses 'x' :=)
            continue
        if kind == "VARCHAR":
            sel.clean.append(f"({c} is null or regexp_matches({c}, '^[\\x00-\\x7f]*$'))")
            trimmed = f"lower(trim({c},{_CONTROL_CHARS}))"
        elif kind in _INTEGER:
            trimmed = f"cast({c} as varchar)"
        else:
            raise _Unmappable(col)
        pairs.append(f"{c} := sha256({sel.bind(salt + '|')} || {trimmed})")
    sel.value["properties"] = f"to_json(struct_pack({', '.join(pairs)}))" if pairs else "'{}'"


def plan(mapper: SourceMapper, schema: Schema, paths: list[Path], *, salt: str,
         latest: datetime | None) -> tuple[str, dict[str, Any]] | None:
    """The SQL that maps Parquet files of one schema and its bound parameters, or None when
    they must go record by record. It gives one row per record with `filename`,
    `record_number`, `_clean` and the canonical columns (meaningful where `_clean`)."""
    types = dict(schema)
    if len(types) != len(schema) or {"filename", "file_row_number"} & set(types):
        return None  # duplicate names, or names DuckDB's reader uses for itself
    sel = _Select(mapper, types)
    try:
        _texts(sel)
        _event_type_and_touchpoint(sel)
        _occurred_at(sel, latest)
        _identifiers(sel, salt)
        _numbers(sel)
        _properties(sel, salt)
    except _Unmappable:
        return None
    name = mapper.source.name
    columns = [f"{sel.value[c]} as {c}" for c in _OUTPUT]
    columns[0] = f"{sel.bind(name + ':')} || {sel.value['event_id']} as event_id"
    columns.append(f"{sel.bind(name)} as source")
    files = sel.bind([str(p) for p in paths])
    select = (f"select filename, file_row_number + 1 as record_number, "
              f"coalesce({' and '.join(sel.clean)}, false) as _clean, {', '.join(columns)} "
              f"from read_parquet({files}, filename = true, file_row_number = true)")
    return select, sel.params


def raw_records(path: Path, numbers: list[int]) -> list[RawRecord]:
    """The records with these (1-based) numbers, as the record-by-record reader makes them."""
    if not numbers:
        return []
    table = pq.read_table(path)
    rows = table.take(pa.array([n - 1 for n in numbers], pa.int64())).to_pylist()
    return [RawRecord(n, json.dumps(row, default=str, ensure_ascii=False), row)
            for n, row in zip(numbers, rows, strict=True)]
