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
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from journey_core.contract.vocabulary import SCORE_RANGES
from journey_core.ingest.mapping import SourceMapper, text_value
from journey_core.ingest.readers import RawRecord, TextRecords, csv_pattern
from journey_core.privacy.pii import EMAIL_PATTERN
from journey_core.warehouse.quoting import ident, literal

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
    #: NDJSON: the column holding each record's JSON object (its properties are that object
    #: less the mapped keys); None for tabular files.
    json_record: str | None = None
    #: Text files: the column holding each record's raw text (an event without an id is
    #: named by its hash); None for Parquet.
    raw: str | None = None
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
    if sel.raw is not None and "event_id" not in s.constants:  # as to_event names it
        sel.value["event_id"] = f"coalesce({sel.value['event_id']}, sha256({sel.raw}))"
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


#: ISO 8601 timestamps the SQL reads as `datetime.fromisoformat` does (others go record by
#: record): years 1000-2999, seconds with up to 6 decimals, `Z` or a +hh:mm offset.
_ISO_TEXT = (r"^[12][0-9]{3}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
             r"(\.[0-9]{1,6})?")
_ISO_ZONE = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
#: Epoch timestamps as whole numbers until the year 3000 (seconds below 1e11, milliseconds
#: from 1e11: `parse_timestamp` rejects either unit in the other's range).
_EPOCH_LIMITS = {"epoch_s": (0, 32_503_680_000), "epoch_ms": (100_000_000_000,
                                                              32_503_680_000_000)}


def _occurred_at(sel: _Select, latest: datetime | None) -> None:
    """A typed timestamp with a zone, or naive in a UTC source; text in ISO 8601 or an epoch
    format; not after `latest`."""
    s = sel.mapper.source
    found = None if "occurred_at" in s.constants else sel.column("occurred_at")
    if found is None:
        raise _Unmappable("occurred_at")
    col, kind = found
    fmt, utc = s.timestamp.format, s.timestamp.timezone == "UTC"
    if kind == "VARCHAR":
        text = f"nullif({ident(col)}, '')"
        sel.clean.append(_stripped(ident(col)))
        if fmt == "iso8601":
            pattern = _ISO_TEXT + _ISO_ZONE + ("?$" if utc else "$")
            value = f"try_cast({text} as timestamptz)"
            sel.clean.append(f"regexp_full_match({text}, {literal(pattern)})")
        elif fmt in _EPOCH_LIMITS:
            low, high = _EPOCH_LIMITS[fmt]
            number = f"try_cast({text} as bigint)"
            sel.clean.append(f"regexp_full_match({text}, '^[0-9]{{1,15}}$') "
                             f"and {number} between {low} and {high}")
            value = (f"to_timestamp({number}::double)" if fmt == "epoch_s"
                     else f"epoch_ms({number})::timestamptz")
        else:
            raise _Unmappable("occurred_at")
    elif kind in _TIMESTAMPS and (kind == "TIMESTAMP WITH TIME ZONE" or utc):
        value = f"cast({ident(col)} as timestamptz)"
    else:
        raise _Unmappable("occurred_at")
    sel.value["occurred_at"] = value
    sel.clean.append(f"{value} is not null")
    if latest is not None:
        sel.clean.append(f"{value} <= {sel.bind(latest)}::timestamptz")


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
        if kind == "VARCHAR":  # text, read as float() reads it where the two surely agree
            text = f"nullif({c}, '')"
            if name == "revenue":
                sel.value[name] = f"try_cast({text} as double)"
                sel.clean.append(f"coalesce(regexp_full_match({text}, {literal(_DECIMAL)}) "
                                 f"and isfinite({sel.value[name]}), true)")
            else:
                low, high = SCORE_RANGES[name]
                sel.value[name] = f"try_cast({text} as smallint)"
                sel.clean.append(f"coalesce(regexp_full_match({text}, '^[0-9]{{1,2}}$') "
                                 f"and {sel.value[name]} between {low} and {high}, true)")
            continue
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


#: A decimal number the SQL casts as `float()` parses it (others go record by record).
_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"

_CONTROL_CHARS = " ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(28) || " \
    "chr(29) || chr(30) || chr(31)"


def _properties(sel: _Select, salt: str) -> None:
    """Every unmapped column as a JSON property, PII ones as a salted hash of their trimmed
    lower case."""
    s, used = sel.mapper.source, sel.mapper.used_columns()
    if sel.json_record is not None:  # the record's object less the mapped keys, as it was
        patch = json.dumps(dict.fromkeys(sorted(used)))
        sel.value["properties"] = (f"case when _ok then json(json_merge_patch("
                                   f"{sel.json_record}, {sel.bind(patch)})) end")
        return
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


def _select(sel: _Select, salt: str, latest: datetime | None) -> str | None:
    """The canonical columns and `_clean` of the plan being built; None when the files must go
    record by record."""
    try:
        _texts(sel)
        _event_type_and_touchpoint(sel)
        _occurred_at(sel, latest)
        _identifiers(sel, salt)
        _numbers(sel)
        _properties(sel, salt)
    except _Unmappable:
        return None
    name = sel.mapper.source.name
    columns = [f"{sel.value[c]} as {c}" for c in _OUTPUT]
    columns[0] = f"{sel.bind(name + ':')} || {sel.value['event_id']} as event_id"
    columns.append(f"{sel.bind(name)} as source")
    return f"coalesce({' and '.join(sel.clean)}, false) as _clean, {', '.join(columns)}"


def plan(mapper: SourceMapper, schema: Schema, paths: list[Path], *, salt: str,
         latest: datetime | None) -> tuple[str, dict[str, Any]] | None:
    """The SQL that maps Parquet files of one schema and its bound parameters, or None when
    they must go record by record. It gives one row per record with `filename`,
    `record_number`, `_clean` and the canonical columns (meaningful where `_clean`)."""
    types = dict(schema)
    if len(types) != len(schema) or {"filename", "file_row_number"} & set(types):
        return None  # duplicate names, or names DuckDB's reader uses for itself
    sel = _Select(mapper, types)
    mapped = _select(sel, salt, latest)
    if mapped is None:
        return None
    files = sel.bind([str(p) for p in paths])
    select = (f"select filename, file_row_number + 1 as record_number, {mapped} "
              f"from read_parquet({files}, filename = true, file_row_number = true)")
    return select, sel.params


#: The table of text records `plan_text` reads: (file_index, record_number, _raw), as
#: `journey_core.ingest.readers.split_text` splits them.
TEXT_RECORDS = "_text"
#: JSON types whose text `->>` gives as `text_value` gives it (a string, a whole number).
_JSON_TEXT = ("VARCHAR", "BIGINT", "UBIGINT")
#: JSON types whose text `->>` gives: those, and any number (for revenue and scores).
_JSON_VALUES = (*_JSON_TEXT, "DOUBLE")
#: NDJSON lines the SQL leaves to `json.loads`: an escaped lone surrogate, a number beyond a
#: double's range (which Python reads as infinity).
_JSON_UNSURE = r"\\u[dD][89a-fA-F]|[0-9][eE][-+]?[0-9]{3}|[0-9]{300}"


def plan_text(mapper: SourceMapper, header: tuple[str, ...] | None, *, salt: str,
              latest: datetime | None) -> tuple[str, dict[str, Any]] | None:
    """The SQL that maps the records of CSV files with this header (NDJSON files: header
    None) from the table TEXT_RECORDS, and its bound parameters; None when they must go record
    by record. It gives one row per record with `file_index`, `record_number`, `_clean` and the
    canonical columns (meaningful where `_clean`). CSV records must be simple (`not_simple`)."""
    if header is not None:
        if len(set(header)) != len(header):
            return None  # a repeated column name: `csv` keeps the last value
        sel = _Select(mapper, dict.fromkeys(header, "VARCHAR"), raw="_raw")
        relation = _csv_records(sel, header)
    else:
        used = sorted(mapper.used_columns())
        if any('"' in c or "\\" in c for c in [*used, *mapper.source.pii_fields]):
            return None  # not in a JSON path as we write it
        sel = _Select(mapper, dict.fromkeys(used, "VARCHAR"), json_record="_raw", raw="_raw")
        relation = _ndjson_records(sel, used)
    sel.clean.append("_ok")
    mapped = _select(sel, salt, latest)
    if mapped is None:
        return None
    return f"select file_index, record_number, {mapped} from ({relation})", sel.params


def text_table(records: list[TextRecords]) -> pa.Table:
    """The TEXT_RECORDS table of these files' records (file_index: the list's index), in
    batches DuckDB scans in parallel."""
    table = pa.concat_tables(pa.table({
        "file_index": pa.array(np.full(len(r), i, dtype=np.int64)),
        "record_number": r.numbers, "_raw": r.raws}) for i, r in enumerate(records))
    return pa.Table.from_batches(table.to_batches(max_chunksize=_TEXT_CHUNK), table.schema)


#: Records per Arrow batch of TEXT_RECORDS.
_TEXT_CHUNK = 64 * 1024


def not_simple(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The files (`file_index`) of TEXT_RECORDS with a CSV record whose quoting is not RFC
    4180's: the SQL would not read it as `csv` does (nor be sure where it ends), so such a file
    goes record by record."""
    return [i for (i,) in con.execute(
        f"select distinct file_index from {TEXT_RECORDS} "
        f"where not regexp_full_match(_raw, {literal(csv_pattern(None))}) order by 1").fetchall()]


def _csv_records(sel: _Select, header: tuple[str, ...]) -> str:
    """CSV records with their fields (empty ones null, as the record reader gives them);
    `_ok`: the record has the header's number of fields. A record with no comma but its
    separators is split at its commas; others by the pattern's groups."""
    pattern = literal(csv_pattern(len(header)))  # (DuckDB wants the pattern constant)
    groups = [f"f{i}" for i in range(len(header))]
    commas = len(header) - 1
    fields = ", ".join(
        f"nullif(case when starts_with(_f[{i}], '\"') then replace(substr(_f[{i}], 2, "
        f"length(_f[{i}]) - 2), '\"\"', '\"') else _f[{i}] end, '') as {ident(name)}"
        for i, name in enumerate(header, start=1))
    split = (f"case when _split then string_split(_raw, ',') "
             f"else [{', '.join(f'_m.{g}' for g in groups)}] end")
    return (f"select file_index, record_number, _raw, _ok, {fields} from (select *, {split} "
            f"as _f from (select *, case when not _split then regexp_extract(_raw, {pattern}, "
            f"[{', '.join(literal(g) for g in groups)}]) end as _m from (select *, "
            f"regexp_full_match(_raw, {pattern}) as _ok, length(_raw) - length(replace(_raw, "
            f"',', '')) = {commas} as _split from {TEXT_RECORDS})))")


def _ndjson_records(sel: _Select, used: list[str]) -> str:
    """NDJSON records with their mapped keys as text; `_ok`: the line is a JSON object that
    the SQL reads as `json.loads` does (keys unique, no lone surrogate, no out-of-range number),
    each mapped value a string or a whole number (revenue and scores: any number) or null,
    and no PII field (whose hash the record rules put in its place) holds a value."""
    numeric = {c for name in ("revenue", *SCORE_RANGES) if (c := sel.mapper.column(name))}
    pii = [c for c in sel.mapper.source.pii_fields if c not in used]
    paths = [f'$."{c}"' for c in [*used, *pii]]
    conditions = []
    fields = []
    for i, col in enumerate(used, start=1):
        allowed = (*_JSON_TEXT, "NULL", *(("DOUBLE",) if col in numeric else ()))
        conditions.append(f"coalesce(_t[{i}] in ({', '.join(literal(t) for t in allowed)}), "
                          "true)")
        fields.append(f"case when _t[{i}] in ({', '.join(literal(t) for t in _JSON_VALUES)}) "
                      f"then _j[{i}] ->> '$' end as {ident(col)}")
    for i in range(len(used) + 1, len(paths) + 1):
        conditions.append(f"coalesce(_t[{i}] = 'NULL', true)")
    # (CASE: DuckDB may evaluate both sides of an AND, and JSON functions fail on bad JSON)
    valid = (f"case when _k is not null then json_type(_raw) = 'OBJECT' and len(_k) = "
             f"len(list_distinct(_k)) and not regexp_matches(_raw, {literal(_JSON_UNSURE)}) "
             "else false end")
    ok = " and ".join(["_valid", *conditions])
    return (f"select file_index, record_number, _raw, {ok} as _ok"
            f"{''.join(', ' + f for f in fields)} from ("
            f"select *, list_transform(_j, lambda v: json_type(v)) as _t from ("
            f"select *, case when _valid then json_extract(_raw, {sel.bind(paths)}) end as _j "
            "from ("
            f"select *, coalesce({valid}, false) as _valid from ("
            f"select *, case when json_valid(_raw) then json_keys(_raw) end as _k "
            f"from {TEXT_RECORDS}))))")


def raw_records(path: Path, numbers: list[int]) -> list[RawRecord]:
    """The records with these (1-based) numbers, as the record-by-record reader makes them."""
    if not numbers:
        return []
    table = pq.read_table(path)
    rows = table.take(pa.array([n - 1 for n in numbers], pa.int64())).to_pylist()
    return [RawRecord(n, json.dumps(row, default=str, ensure_ascii=False), row)
            for n, row in zip(numbers, rows, strict=True)]
