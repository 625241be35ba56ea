"""Privacy: the hashing salt, forgetting a person, and the tombstones that keep them forgotten.

Rules:
- in production mode (env `JOURNEYS_ENV=production`, or `identity.production: true`) the salt
  must come from the environment variable named by `identity.salt_env`: unset, empty, or the
  development default stops the run; outside production the development salt is the fallback;
- forgetting a person erases every event whose anchor (its strongest identifier, the one that
  decides its person) is one of the person's identifiers, removes their identifiers from other
  persons' events (identifier columns, and property values equal to one), deletes the rejected
  records that mention them, then rebuilds every published table and Parquet export;
- a tombstone keeps the sha256 of each forgotten identifier (never the identifier), so ingest
  treats a re-ingested old file the same way and cannot bring the person back;
- "mention" means a whole value (a JSON value, a CSV field, a redaction token, a word) equal to
  an identifier of six characters or more: shorter ones would match unrelated values.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from journey_core.config import Config
from journey_core.schema import FORGOTTEN_IDENTIFIERS
from journey_core.warehouse import WAREHOUSE_FILE, connect, ensure_tables, exists, scalar

#: Set to `production` to require a secret salt from the environment.
ENV_MODE = "JOURNEYS_ENV"
#: Identifier columns of an event, strongest first: the first present is the event's anchor.
IDENTIFIER_COLUMNS = ("customer_id", "anonymous_id", "email_hash", "phone_hash")
#: Identifiers shorter than this are matched in identifier columns only, never as mentions.
MIN_MENTION = 6
_PERSON_COLUMNS = ("person_id", "refused_person_id")
_PAIR_COLUMNS = (("identifier_type", "identifier_value"), ("anchor_type", "anchor_value"))
_REDACTED = re.compile(r"\[redacted sha256:([0-9a-f]{64})\]")
_WORD = re.compile(r"[^\w.@+:\-]+")

class PrivacyError(RuntimeError):
    """A privacy rule stops the command; the message says which, in one line."""


# --- the salt ----------------------------------------------------------------------------------


def production_mode(config: Config) -> bool:
    """Production is `JOURNEYS_ENV=production` or the config's `identity.production: true`."""
    if os.environ.get(ENV_MODE, "").strip().lower() == "production":
        return True
    # TODO(config): plain attribute access once IdentityConfig has `production: bool = False`.
    return bool(config.identity.production)


def require_salt(config: Config) -> str:
    """The hashing salt from the environment variable named by `identity.salt_env`.

    Outside production an unset (or empty) variable falls back to `identity.default_salt`; in
    production it raises PrivacyError, as does the development default itself (it is public)."""
    name = config.identity.salt_env
    salt = os.environ.get(name, "")
    if not production_mode(config):
        return salt or config.identity.default_salt
    if not salt.strip():
        raise PrivacyError(
            f"{name} is not set: production mode ({_mode_reason(config)}) needs a secret "
            "hashing salt in it")
    if salt == config.identity.default_salt:
        raise PrivacyError(
            f"{name} holds the public development salt: production mode "
            f"({_mode_reason(config)}) needs a secret one")
    return salt


def _mode_reason(config: Config) -> str:
    if os.environ.get(ENV_MODE, "").strip().lower() == "production":
        return f"{ENV_MODE}=production"
    return "identity.production: true"


# --- tombstones --------------------------------------------------------------------------------


def identifier_hash(value: str) -> str:
    """What a tombstone keeps of an identifier (or of a person_id)."""
    return hashlib.sha256(value.encode()).hexdigest()


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value.strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def _tokens(raw: str) -> set[str]:
    """Every whole value of a raw record, however it was written (or mangled)."""
    tokens = set(_REDACTED.findall(raw))  # redaction tokens carry email_hash / phone_hash
    text = _REDACTED.sub(" ", raw)
    with contextlib.suppress(ValueError):
        tokens.update(_leaves(json.loads(text)))
    with contextlib.suppress(csv.Error):
        for row in csv.reader(io.StringIO(text)):
            tokens.update(f.strip() for f in row)
    tokens.update(_WORD.split(text))
    return tokens


@dataclass(frozen=True)
class Tombstones:
    """Forgotten identifiers as (identifier_type, sha256 of the value)."""

    hashes: frozenset[tuple[str, str]] = frozenset()
    _any: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_any", frozenset(h for _, h in self.hashes))

    @classmethod
    def of(cls, identifiers: Iterable[tuple[str, str]]) -> Tombstones:
        """Tombstones for (identifier_type, identifier_value) pairs."""
        return cls(frozenset((t, identifier_hash(v)) for t, v in identifiers))

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def forgotten(self, identifier_type: str, value: str) -> bool:
        return (identifier_type, identifier_hash(value)) in self.hashes

    def mentioned(self, value: str) -> bool:
        """`value`, a whole value, is a forgotten identifier of any type."""
        return len(value) >= MIN_MENTION and identifier_hash(value) in self._any

    def mentions(self, raw: str) -> bool:
        """Some whole value of the raw record is a forgotten identifier."""
        return any(self.mentioned(t) for t in _tokens(raw))

    def scrub_text(self, raw: str) -> str:
        """The raw record with every forgotten identifier (or its redaction token) replaced
        by `[forgotten]`."""
        for token in sorted((t for t in _tokens(raw) if self.mentioned(t)), key=len,
                            reverse=True):
            raw = raw.replace(f"[redacted sha256:{token}]", "[forgotten]")
            raw = raw.replace(token, "[forgotten]")
        return raw

    def scrub_json(self, text: str) -> str:
        """The JSON document with every value that is a forgotten identifier set to null."""
        try:
            value = json.loads(text)
        except ValueError:
            return text
        changed = False

        def walk(item: Any) -> Any:
            nonlocal changed
            if isinstance(item, dict):
                return {k: walk(v) for k, v in item.items()}
            if isinstance(item, list):
                return [walk(v) for v in item]
            if any(self.mentioned(text) for text in _leaves(item)):
                changed = True
                return None
            return item

        scrubbed = walk(value)
        return json.dumps(scrubbed, default=str, ensure_ascii=False) if changed else text

    def apply(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """A parsed event or reject without the forgotten persons.

        None when it is theirs: an event whose anchor is forgotten, a reject (a dict with
        `raw_record`) that mentions a forgotten identifier. Otherwise the event with forgotten
        identifiers of other persons removed (set to null), or the record itself."""
        if not self.hashes:
            return record
        if "raw_record" in record:
            return None if self.mentions(record["raw_record"]) else record
        present = [(c, record[c]) for c in IDENTIFIER_COLUMNS if record.get(c) is not None]
        if present and self.forgotten(*present[0]):
            return None
        changes: dict[str, Any] = {c: None for c, v in present if self.forgotten(c, v)}
        properties = record.get("properties")
        if properties:
            scrubbed = self.scrub_json(properties)
            if scrubbed != properties:
                changes["properties"] = scrubbed
        raw = record.get("_raw")  # ingest keeps the raw record in case it becomes a reject
        if raw and self.mentions(raw):
            changes["_raw"] = self.scrub_text(raw)
        return {**record, **changes} if changes else record


def _ensure_tombstone_table(con: duckdb.DuckDBPyConnection) -> None:
    if not exists(con, "main", FORGOTTEN_IDENTIFIERS.name):
        con.execute(FORGOTTEN_IDENTIFIERS.ddl("main"))


def load_tombstones(con: duckdb.DuckDBPyConnection) -> Tombstones:
    """Every tombstone in the warehouse (none when nobody was ever forgotten)."""
    if not exists(con, "main", FORGOTTEN_IDENTIFIERS.name):
        return Tombstones()
    rows = con.execute(
        "select identifier_type, identifier_hash from main.forgotten_identifiers").fetchall()
    return Tombstones(frozenset((t, h) for t, h in rows))


def forgotten_filter(con: duckdb.DuckDBPyConnection
                     ) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """For ingest: maps each parsed event or reject to what may be loaded (None: nothing)."""
    return load_tombstones(con).apply


# --- forgetting a person -----------------------------------------------------------------------


@dataclass
class ForgetResult:
    person_id: str
    identifiers: int = 0
    tombstones_added: int = 0
    already_forgotten: bool = False
    #: Rows deleted per table (`schema.table`) before the rebuild.
    rows_deleted: dict[str, int] = field(default_factory=dict)
    #: Rows of other persons from which a value naming the person was removed, per table.
    rows_scrubbed: dict[str, int] = field(default_factory=dict)

    @property
    def events_deleted(self) -> int:
        return self.rows_deleted.get("main.ingested_events", 0)

    @property
    def rejects_deleted(self) -> int:
        return self.rows_deleted.get("main.ingest_rejects", 0)

    @property
    def events_scrubbed(self) -> int:
        return self.rows_scrubbed.get("main.ingested_events", 0)

    def summary(self) -> str:
        if self.already_forgotten and not self.identifiers:
            return (f"person {self.person_id} was already forgotten; published tables and "
                    "Parquet exports rebuilt")
        return (f"forgot person {self.person_id}: {self.identifiers} identifiers tombstoned "
                f"({self.tombstones_added} new), {self.events_deleted} events and "
                f"{self.rejects_deleted} rejected records deleted, {self.events_scrubbed} "
                "events of other persons cleared of their identifiers; published tables and "
                "Parquet exports rebuilt")


def forget_person(con: duckdb.DuckDBPyConnection, config: Config, warehouse_dir: Path,
                  person_id: str, *, forgotten_at: datetime | None = None,
                  progress: Callable[[str], None] | None = None) -> ForgetResult:
    """Erase a person from every table and Parquet export and tombstone their identifiers.

    Idempotent: forgetting a forgotten person rebuilds again and changes nothing. Raises
    PrivacyError for a person the warehouse never knew, or when a table or Parquet file still
    names the person after the rebuild."""
    from journey_core.pipeline import rebuild  # pipeline imports ingest, which imports us

    warehouse_dir = Path(warehouse_dir)
    ensure_tables(con, ["ingested_events", "ingest_rejects", "file_ledger"])
    _ensure_tombstone_table(con)
    if _published_is_stale(con):
        # identity_map must know every loaded event, or a person's newest identifiers escape
        rebuild(con, config, warehouse_dir, full=True, progress=progress)
    identifiers = _identifiers_of(con, person_id)
    person_hash = identifier_hash(person_id)
    result = ForgetResult(person_id, identifiers=len(identifiers), already_forgotten=bool(
        scalar(con, "select count(*) from main.forgotten_identifiers where person_id_hash = ?",
               [person_hash])))
    if not identifiers and not result.already_forgotten:
        raise PrivacyError(f"person {person_id!r} is not in identity_map of {warehouse_dir}: "
                           "nothing to forget")
    con.execute("begin transaction")
    try:
        result.tombstones_added = _write_tombstones(
            con, identifiers, person_hash, forgotten_at or datetime.now(UTC))
        _erase(con, person_id, identifiers, result)
        _rebalance_ledger(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    rebuild(con, config, warehouse_dir, full=True, progress=progress)
    residue = find_residue(con, warehouse_dir, person_id, identifiers)
    if residue:
        raise PrivacyError(f"person {person_id!r} is still named in: {', '.join(residue)}")
    return result


def _published_is_stale(con: duckdb.DuckDBPyConnection) -> bool:
    """Events were loaded since the last publish (or nothing was ever published)."""
    if not exists(con, "main", "events"):
        return bool(scalar(con, "select count(*) from main.ingested_events"))
    return bool(scalar(con, "select count(*) from main.ingested_events i where not exists "
                            "(select 1 from main.events e where e.event_id = i.event_id)"))


def _identifiers_of(con: duckdb.DuckDBPyConnection, person_id: str) -> list[tuple[str, str]]:
    if not exists(con, "main", "identity_map"):
        return []
    return [(t, v) for t, v in con.execute(
        "select identifier_type, identifier_value from main.identity_map where person_id = ? "
        "order by identifier_type, identifier_value", [person_id]).fetchall()]


def _write_tombstones(con: duckdb.DuckDBPyConnection, identifiers: list[tuple[str, str]],
                      person_hash: str, at: datetime) -> int:
    if not identifiers:
        return 0
    before = scalar(con, "select count(*) from main.forgotten_identifiers")
    con.executemany(
        "insert into main.forgotten_identifiers select $1, $2, $3, $4 where not exists "
        "(select 1 from main.forgotten_identifiers "
        "where identifier_type = $1 and identifier_hash = $2)",
        [[t, identifier_hash(v), person_hash, at] for t, v in identifiers])
    return scalar(con, "select count(*) from main.forgotten_identifiers") - before


def _base_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, dict[str, str]]]:
    """(schema, table, {column: type}) of every table in the warehouse but the tombstones."""
    columns: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, type_ in con.execute(
            "select c.schema_name, c.table_name, c.column_name, c.data_type "
            "from duckdb_columns() c join duckdb_tables() t using "
            "(database_name, schema_name, table_name) "
            "where c.database_name = current_database() and not t.temporary "
            "order by c.schema_name, c.table_name, c.column_index").fetchall():
        if (schema, table) != ("main", FORGOTTEN_IDENTIFIERS.name):
            columns.setdefault((schema, table), {})[column] = type_
    return [(s, t, c) for (s, t), c in columns.items()]


def _is_text(type_: str) -> bool:
    return type_ in ("VARCHAR", "JSON")


def _rebalance_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """Records erased from a file's loaded events or rejects now count as forgotten, so the
    ledger still reconciles: read = loaded + rejected + duplicates + forgotten."""
    con.execute("""
        update main.file_ledger as l set
            records_forgotten = l.records_forgotten
                + (l.records_loaded - n.loaded) + (l.records_rejected - n.rejected),
            records_loaded = n.loaded,
            records_rejected = n.rejected
        from (
            select f.path,
                (select count(*) from main.ingested_events e where e.file = f.path) as loaded,
                (select count(*) from main.ingest_rejects r where r.file = f.path) as rejected
            from main.file_ledger as f where f.status = 'loaded'
        ) as n
        where l.path = n.path and l.status = 'loaded'
          and (l.records_loaded <> n.loaded or l.records_rejected <> n.rejected)
    """)


def _erase(con: duckdb.DuckDBPyConnection, person_id: str,
           identifiers: list[tuple[str, str]], result: ForgetResult) -> None:
    """In every table: delete the person's rows, remove their identifiers from other rows."""
    tomb = Tombstones.of(identifiers)
    con.register("_forget_ids", pa.table({
        "identifier_type": pa.array([t for t, _ in identifiers], pa.string()),
        "identifier_value": pa.array([v for _, v in identifiers], pa.string())}))
    try:
        for schema, table, columns in _base_tables(con):
            if (schema, table) == ("main", "file_ledger"):
                continue
            name = f'"{schema}"."{table}"'
            deleted = _delete_rows_of(con, name, columns, person_id)
            scrubbed: set[int] = set()
            for column in IDENTIFIER_COLUMNS:
                if column in columns:
                    theirs = (f'"{column}" in (select f.identifier_value from _forget_ids f '
                              "where f.identifier_type = ?)")
                    scrubbed.update(r[0] for r in con.execute(
                        f"select rowid from {name} where {theirs}", [column]).fetchall())
                    con.execute(f'update {name} set "{column}" = null where {theirs}', [column])
            for column in ("raw_record", "properties"):
                if column not in columns:
                    continue
                for rowid, text in _candidates(con, name, column):
                    if column == "raw_record" and tomb.mentions(text):
                        con.execute(f"delete from {name} where rowid = ?", [rowid])
                        deleted += 1
                    elif column == "properties" and (new := tomb.scrub_json(text)) != text:
                        con.execute(f'update {name} set "{column}" = ? where rowid = ?',
                                    [new, rowid])
                        scrubbed.add(rowid)
            if deleted:
                result.rows_deleted[f"{schema}.{table}"] = deleted
            if scrubbed:
                result.rows_scrubbed[f"{schema}.{table}"] = len(scrubbed)
    finally:
        con.unregister("_forget_ids")


def _delete_rows_of(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str],
                    person_id: str) -> int:
    """Delete the rows that are the person's: a person column names them, an identifier pair
    is theirs, or (events without a person column) the event's anchor is theirs."""
    conditions, params = [], []
    for column in _PERSON_COLUMNS:
        if column in columns:
            conditions.append(f'x."{column}" = ?')
            params.append(person_id)
    pairs = [p for p in _PAIR_COLUMNS if set(p) <= set(columns)]
    if "person_id" not in columns and "anchor_type" not in columns and \
            set(IDENTIFIER_COLUMNS) <= set(columns):
        anchor_type = "case " + " ".join(
            f"when x.\"{c}\" is not null then '{c}'" for c in IDENTIFIER_COLUMNS) + " end"
        anchor_value = "coalesce(" + ", ".join(f'x."{c}"' for c in IDENTIFIER_COLUMNS) + ")"
        pair_sql = [(anchor_type, anchor_value)]
    else:
        pair_sql = []
    pair_sql += [(f'x."{t}"', f'x."{v}"') for t, v in pairs]
    for type_sql, value_sql in pair_sql:
        conditions.append(f"exists (select 1 from _forget_ids f where f.identifier_type = "
                          f"{type_sql} and f.identifier_value = {value_sql})")
    if not conditions:
        return 0
    return len(con.execute(
        f"delete from {name} as x where {' or '.join(conditions)} returning 1",
        params).fetchall())


def _candidates(con: duckdb.DuckDBPyConnection, relation: str,
                column: str) -> list[tuple[Any, str]]:
    """(rowid, text) of the rows whose column contains one of the identifiers in `_forget_ids`
    (a cheap prefilter; the caller decides on whole values)."""
    return con.execute(
        f'select x.rowid, x."{column}"::varchar from {relation} as x where x."{column}" is not '
        "null and exists (select 1 from _forget_ids f where length(f.identifier_value) >= ? "
        f'and contains(x."{column}"::varchar, f.identifier_value))', [MIN_MENTION]).fetchall()


# --- checking and compacting -------------------------------------------------------------------


def find_residue(con: duckdb.DuckDBPyConnection, warehouse_dir: Path, person_id: str,
                 identifiers: list[tuple[str, str]]) -> list[str]:
    """Where a table or Parquet export still names the person: a person or identifier column
    holding their person_id or one of their identifiers, or any text value mentioning one.
    Empty when they are gone."""
    exact = {*_PERSON_COLUMNS, *IDENTIFIER_COLUMNS, *(v for _, v in _PAIR_COLUMNS)}
    values = sorted({person_id, *(v for _, v in identifiers)})
    tomb = Tombstones.of([("person_id", person_id), *identifiers])
    con.register("_forget_ids", pa.table({"identifier_value": pa.array(values, pa.string())}))
    found = []
    try:
        relations = [(f"{s}.{t}", f'"{s}"."{t}"', c) for s, t, c in _base_tables(con)]
        parquet = Path(warehouse_dir) / "parquet"
        for folder in sorted(p for p in parquet.iterdir() if p.is_dir()) \
                if parquet.is_dir() else []:
            if any(folder.rglob("*.parquet")):
                glob = str(folder / "**" / "*.parquet").replace("'", "''")
                relation = f"read_parquet('{glob}', hive_partitioning = false)"
                cols = {r[0]: r[1] for r in con.execute(f"describe select * from {relation}")
                        .fetchall()}
                relations.append((f"parquet/{folder.name}", relation, cols))
        for label, relation, columns in relations:
            for column, type_ in columns.items():
                if not _is_text(type_):
                    continue
                hits = con.execute(
                    f'select distinct x."{column}"::varchar from {relation} as x '
                    f'where x."{column}" in (select f.identifier_value from _forget_ids f) '
                    "or exists (select 1 from _forget_ids f where length(f.identifier_value) "
                    f'>= ? and contains(x."{column}"::varchar, f.identifier_value))',
                    [MIN_MENTION]).fetchall()
                if any((column in exact and text in values) or tomb.mentions(text)
                       for (text,) in hits):
                    found.append(f"{label}.{column}")
    finally:
        con.unregister("_forget_ids")
    return found


def compact_warehouse(warehouse_dir: str | Path) -> Path:
    """Rewrite `journeys.duckdb` into a fresh file and swap it in.

    DuckDB keeps the bytes of deleted rows in the file's free blocks until they are reused, so
    after `forget_person` the old file could still hold the person. Needs the only connection:
    call it with every other connection to the file closed."""
    path = Path(warehouse_dir) / WAREHOUSE_FILE
    fresh = path.with_name(path.name + ".compact")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = connect(warehouse_dir)
    try:
        database = scalar(con, "select current_database()")
        con.execute(f"attach '{str(fresh).replace(chr(39), chr(39) * 2)}' as compacted")
        con.execute(f'copy from database "{database}" to compacted')
        con.execute("detach compacted")
    finally:
        con.close()
    os.replace(fresh, path)
    return path
