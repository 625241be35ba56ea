"""Columnar ingest of Parquet files: the per-record rules of `journey_core.ingest`, in DuckDB.

A Parquet file whose columns have plain types (text, integer, floating point, boolean, a
timestamp) is mapped by one SQL statement instead of record by record in Python. The SQL
computes exactly what `SourceMapper.to_event` computes, for the records where that is simple
("clean" records: no whitespace to strip, an email or phone already in normal form, a score in
range, a timestamp not in the future, at least one identifier, an event_id). Every other
record goes through `SourceMapper` itself, so a reject's reason and detail, and an unusual value
that still loads, come out exactly as on the record-by-record path. Files with other column
types (dates, lists, nanosecond or local-time timestamps, ...) take the record-by-record path
whole.

`tests/unit/test_ingest_columnar.py` checks that both paths load the same events and rejects.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from journey_core.ingest import SCORE_RANGES, RawRecord, SourceMapper, text_value

_INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "HUGEINT"}
_FLOAT = {"FLOAT", "DOUBLE"}
_TEXT_TYPES = {"VARCHAR"} | _INTEGER
_TIMESTAMPS = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP_MS", "TIMESTAMP_S"}
_PROPERTY_TYPES = {"VARCHAR", "BOOLEAN"} | _INTEGER | _FLOAT
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


def _stripped(col: str) -> str:
    """Clean when the text needs no strip(): null, or printable ASCII at both ends. (Text
    starting or ending in anything else, spaces and empty text included, goes record by
    record: conservative, and cheap to test.)"""
    return (f"coalesce(ord({col}) between 33 and 126 "
            f"and ord(right({col}, 1)) between 33 and 126, true)")


Schema = tuple[tuple[str, str], ...]


def describe(con: duckdb.DuckDBPyConnection, path: Path) -> Schema | None:
    """A Parquet file's columns and DuckDB types; None when DuckDB cannot read it (the
    record-by-record path names the problem)."""
    try:
        return tuple((r[0], r[1]) for r in con.execute(
            f"describe select * from read_parquet({_lit(str(path))})").fetchall())
    except duckdb.Error:
        return None


def plan(mapper: SourceMapper, schema: Schema, paths: list[Path], *, salt: str,
         latest: datetime | None) -> str | None:
    """The SQL that maps Parquet files of one schema, or None when they must go record by
    record. It gives one row per record with `filename`, `record_number`, `_clean` and the
    canonical columns (meaningful where `_clean`)."""
    types = dict(schema)
    if len(types) != len(schema) or {"filename", "file_row_number"} & set(types):
        return None  # duplicate names, or names DuckDB's reader uses for itself
    files = ", ".join(_lit(str(p)) for p in paths)
    src = f"read_parquet([{files}], filename = true, file_row_number = true)"
    s = mapper.source
    clean: list[str] = []
    value: dict[str, str] = {}

    def text(canonical: str) -> str | None:
        """The canonical field as stripped text (None: no such column, the value is null)."""
        if canonical in s.constants:
            return _lit(text_value(s.constants[canonical]))
        col = mapper.column(canonical)
        if col is None or col not in types:
            return "null::varchar"
        kind = types[col]
        if kind not in _TEXT_TYPES:
            return None
        if kind != "VARCHAR":
            return f"cast({_q(col)} as varchar)"
        clean.append(_stripped(_q(col)))
        return f"nullif({_q(col)}, '')"

    for canonical in ("event_id", "channel", "event_type", "touchpoint", "customer_id",
                      "anonymous_id", "account_id", "rated_touchpoint", "email", "phone"):
        expr = text(canonical)
        if expr is None:
            return None
        value[canonical] = expr
    for name in ("event_id", "channel", "event_type"):
        clean.append(f"{value[name]} is not null")
    if s.event_types:
        cases = " ".join(f"when {_lit(k)} then {_lit(v)}" for k, v in s.event_types.items())
        value["event_type"] = f"(case {value['event_type']} {cases} else {value['event_type']} end)"
    if "touchpoint" not in s.constants:
        prefixed = f"{_lit(s.touchpoint_prefix)} || {value['touchpoint']}"
        value["touchpoint"] = prefixed
    value["touchpoint"] = (f"coalesce({value['touchpoint']}, "
                           f"{value['channel']} || '/' || {value['event_type']})")

    # occurred_at: a typed timestamp with a zone, or naive in a UTC source
    if "occurred_at" in s.constants:
        return None
    ts_col = mapper.column("occurred_at")
    if ts_col is None or ts_col not in types:
        return None
    ts_kind = types[ts_col]
    if ts_kind not in _TIMESTAMPS or (ts_kind != "TIMESTAMP WITH TIME ZONE"
                                      and s.timestamp.timezone != "UTC"):
        return None
    value["occurred_at"] = f"cast({_q(ts_col)} as timestamptz)"
    clean.append(f"{value['occurred_at']} is not null")
    if latest is not None:
        clean.append(f"{value['occurred_at']} <= {_lit(latest.isoformat())}::timestamptz")

    # identifiers: at least one; email and phone only when already in normal form
    ids = [value[k] for k in ("customer_id", "anonymous_id", "email", "phone")]
    clean.append("coalesce(" + ", ".join(ids) + ") is not null")
    email, phone = value.pop("email"), value.pop("phone")
    if email != "null::varchar":
        clean.append(f"coalesce(regexp_matches({email}, '^[!-~]+$') and {email} = lower({email})"
                     f" and regexp_matches({email}, {_lit(_EMAIL)}), true)")
    if phone != "null::varchar":
        clean.append(f"coalesce(regexp_matches({phone}, '^\\+?[0-9]{{6,15}}$') "
                     f"and not starts_with({phone}, '00'), true)")
    salted = _lit(salt + "|")
    value["email_hash"] = "null" if email == "null::varchar" else f"sha256({salted} || {email})"
    value["phone_hash"] = "null" if phone == "null::varchar" else f"sha256({salted} || {phone})"

    for name in ("revenue", *SCORE_RANGES):
        if name in s.constants:
            return None
        col = mapper.column(name)
        if col is None or col not in types:
            value[name] = "null"
            continue
        kind, c = types[col], _q(col)
        if kind not in _INTEGER | _FLOAT | {"DECIMAL"} and not kind.startswith("DECIMAL"):
            return None
        if kind in _INTEGER:
            if name == "revenue":
                value[name] = f"{c}::double"
            else:
                low, high = SCORE_RANGES[name]
                value[name] = f"{c}::smallint"
                clean.append(f"coalesce({c} between {low} and {high}, true)")
            continue
        number = f"(case when isnan({c}::double) then null else {c}::double end)"
        if name == "revenue":
            value[name] = number
            clean.append(f"coalesce(not isinf({c}::double), true)")
        else:
            low, high = SCORE_RANGES[name]
            value[name] = f"cast({number} as smallint)"
            clean.append(f"coalesce({number} between {low} and {high} "
                         f"and {number} = floor({number}), true)")

    # properties: every unmapped column, PII ones as a salted hash
    used = mapper.used_columns()
    pairs = []
    for col, kind in types.items():
        if col in used:
            continue
        if kind not in _PROPERTY_TYPES:
            return None
        c = _q(col)
        if kind in _FLOAT:
            clean.append(f"({c} is null or isfinite({c}))")
        if col in s.pii_fields:
            if kind == "VARCHAR":
                clean.append(f"({c} is null or regexp_matches({c}, '^[\\x00-\\x7f]*$'))")
                trimmed = f"lower(trim({c}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || " \
                          "chr(13) || chr(28) || chr(29) || chr(30) || chr(31)))"
            elif kind in _INTEGER:
                trimmed = f"cast({c} as varchar)"
            else:
                return None
            pairs.append(f"{_lit(col)} := sha256({salted} || {trimmed})")
        else:
            pairs.append(f"{_lit(col)} := {c}")
    value["properties"] = f"to_json(struct_pack({', '.join(pairs)}))" if pairs else "'{}'"

    columns = [f"{value[name]} as {name}" for name in (
        "event_id", "occurred_at", "channel", "touchpoint", "event_type", "customer_id",
        "anonymous_id", "account_id", "email_hash", "phone_hash", "revenue", "nps_score",
        "csat_score", "ces_score", "rated_touchpoint", "properties")]
    columns[0] = f"{_lit(s.name + ':')} || {value['event_id']} as event_id"
    columns.append(f"{_lit(s.name)} as source")
    select = (f"select filename, file_row_number + 1 as record_number, "
              f"coalesce({' and '.join(clean)}, false) as _clean, {', '.join(columns)} "
              f"from {src}")
    return select


def raw_records(path: Path, numbers: list[int]) -> list[RawRecord]:
    """The records with these (1-based) numbers, as the record-by-record reader makes them."""
    if not numbers:
        return []
    table = pq.read_table(path)
    rows = table.take(pa.array([n - 1 for n in numbers], pa.int64())).to_pylist()
    return [RawRecord(n, json.dumps(row, default=str, ensure_ascii=False), row)
            for n, row in zip(numbers, rows, strict=True)]

