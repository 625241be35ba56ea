"""Forgetting a person (a GDPR erasure): erase their rows, tombstone their identifiers, check
that nothing still names them, and compact the file.

`erase_person` erases every event whose anchor (its strongest identifier, the one that decides
its person) is one of the person's identifiers, removes their identifiers from other persons'
events (identifier columns, and property values equal to one), deletes the rejected records
that mention them, and writes their tombstones, in one transaction. `journey_core.ops.forget`
then rebuilds every published table and Parquet export and calls `find_residue`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from journey_core.contract.schema import EXPORT_VERSIONS, EXPORTS_LINK, FORGOTTEN_IDENTIFIERS
from journey_core.contract.vocabulary import FILE_LOADED, IDENTIFIER_TYPES
from journey_core.privacy.salt import PrivacyError
from journey_core.privacy.tombstones import (
    MIN_MENTION,
    Tombstones,
    ensure_tombstone_table,
    identifier_hash,
)
from journey_core.warehouse import WAREHOUSE_FILE, connect, exists, scalar
from journey_core.warehouse.quoting import ident, literal, qualified

_PERSON_COLUMNS = ("person_id", "refused_person_id")
_PAIR_COLUMNS = (("identifier_type", "identifier_value"), ("anchor_type", "anchor_value"))


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


def erase_person(con: duckdb.DuckDBPyConnection, person_id: str, *, where: Path,
                 forgotten_at: datetime | None = None,
                 identifiers: list[tuple[str, str]] | None = None,
                 ) -> tuple[ForgetResult, list[tuple[str, str]]]:
    """In one transaction: tombstone the person's identifiers, erase their rows from every
    table, and rebalance the ledger. Returns the result and the identifiers erased
    (`identifiers`, else those of the file's `identity_map`).

    Raises PrivacyError for a person the warehouse (`where`) never knew."""
    ensure_tombstone_table(con)
    if identifiers is None:
        identifiers = identifiers_of(con, person_id)
    person_hash = identifier_hash(person_id)
    result = ForgetResult(person_id, identifiers=len(identifiers), already_forgotten=bool(
        scalar(con, "select count(*) from main.forgotten_identifiers where person_id_hash = ?",
               [person_hash])))
    if not identifiers and not result.already_forgotten:
        raise PrivacyError(f"person {person_id!r} is not in identity_map of {where}: "
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
    return result, identifiers


class Tables(Protocol):
    """Where a warehouse's tables are: what these functions ask of the model layer's engine
    (DuckDB's or Spark's), which this layer cannot import; a DuckDB connection is wrapped."""

    def exists(self, schema: str, name: str) -> bool: ...

    def scalar(self, sql: str, params: Any = None) -> Any: ...

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...


class _Connection:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def exists(self, schema: str, name: str) -> bool:
        return exists(self.con, schema, name)

    def scalar(self, sql: str, params: Any = None) -> Any:
        return scalar(self.con, sql, params)

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()


def _tables(db: duckdb.DuckDBPyConnection | Tables) -> Tables:
    return _Connection(db) if isinstance(db, duckdb.DuckDBPyConnection) else db


def published_is_stale(db: duckdb.DuckDBPyConnection | Tables) -> bool:
    """Events were loaded since the last publish (or nothing was ever published)."""
    db = _tables(db)
    if not db.exists("main", "events"):
        return bool(db.scalar("select count(*) from main.ingested_events"))
    return bool(db.scalar("select count(*) from main.ingested_events i where not exists "
                          "(select 1 from main.events e where e.event_id = i.event_id)"))


def identifiers_of(db: duckdb.DuckDBPyConnection | Tables,
                   person_id: str) -> list[tuple[str, str]]:
    db = _tables(db)
    if not db.exists("main", "identity_map"):
        return []
    return [(t, v) for t, v in db.rows(
        "select identifier_type, identifier_value from main.identity_map where person_id = ? "
        "order by identifier_type, identifier_value", [person_id])]


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
    """Records erased from a file version's loaded events or rejects now count as forgotten,
    so the ledger still reconciles: read = loaded + rejected + duplicates + forgotten. (A
    version's events are those of its path loaded at its load time.)"""
    con.execute("""
        update main.file_ledger as l set
            records_forgotten = l.records_forgotten
                + (l.records_loaded - n.loaded) + (l.records_rejected - n.rejected),
            records_loaded = n.loaded,
            records_rejected = n.rejected
        from (
            select f.content_hash,
                (select count(*) from main.ingested_events e
                 where e.file = f.path and e.ingested_at = f.loaded_at) as loaded,
                (select count(*) from main.ingest_rejects r
                 where r.file = f.path and r.file_version = f.file_version) as rejected
            from main.file_ledger as f where f.status = $loaded
        ) as n
        where l.content_hash = n.content_hash
          and (l.records_loaded <> n.loaded or l.records_rejected <> n.rejected)
    """, {"loaded": FILE_LOADED})


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
            name = qualified(schema, table)
            deleted = _delete_rows_of(con, name, columns, person_id)
            scrubbed: set[int] = set()
            for column in IDENTIFIER_TYPES:
                if column in columns:
                    theirs = (f"{ident(column)} in (select f.identifier_value from _forget_ids f "
                              "where f.identifier_type = ?)")
                    scrubbed.update(r[0] for r in con.execute(
                        f"select rowid from {name} where {theirs}", [column]).fetchall())
                    con.execute(f"update {name} set {ident(column)} = null where {theirs}",
                                [column])
            for column in ("raw_record", "properties"):
                if column not in columns:
                    continue
                for rowid, text in _candidates(con, name, column):
                    if column == "raw_record" and tomb.mentions(text):
                        con.execute(f"delete from {name} where rowid = ?", [rowid])
                        deleted += 1
                    elif column == "properties" and (new := tomb.scrub_json(text)) != text:
                        con.execute(f"update {name} set {ident(column)} = ? where rowid = ?",
                                    [new, rowid])
                        scrubbed.add(rowid)
            if deleted:
                result.rows_deleted[f"{schema}.{table}"] = deleted
            if scrubbed:
                result.rows_scrubbed[f"{schema}.{table}"] = len(scrubbed)
    finally:
        con.unregister("_forget_ids")


def identifier_pairs(columns: Iterable[str]) -> list[tuple[str, str]]:
    """(type, value) SQL over the alias `x` of each identifier a table's row is the person's
    by: the event's anchor (its strongest identifier) for events without a person column,
    then the table's identifier pair columns."""
    names = set(columns)
    pairs = [(f"x.{ident(t)}", f"x.{ident(v)}") for t, v in _PAIR_COLUMNS if {t, v} <= names]
    if "person_id" not in names and "anchor_type" not in names and \
            set(IDENTIFIER_TYPES) <= names:
        anchor_type = "case " + " ".join(
            f"when x.{ident(c)} is not null then {literal(c)}" for c in IDENTIFIER_TYPES) + " end"
        anchor_value = "coalesce(" + ", ".join(f"x.{ident(c)}" for c in IDENTIFIER_TYPES) + ")"
        pairs.insert(0, (anchor_type, anchor_value))
    return pairs


def _delete_rows_of(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str],
                    person_id: str) -> int:
    """Delete the rows that are the person's: a person column names them, an identifier pair
    is theirs, or (events without a person column) the event's anchor is theirs."""
    conditions, params = [], []
    for column in _PERSON_COLUMNS:
        if column in columns:
            conditions.append(f"x.{ident(column)} = ?")
            params.append(person_id)
    for type_sql, value_sql in identifier_pairs(columns):
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
        f"select x.rowid, x.{ident(column)}::varchar from {relation} as x "
        f"where x.{ident(column)} is not null and exists (select 1 from _forget_ids f "
        f"where length(f.identifier_value) >= ? "
        f"and contains(x.{ident(column)}::varchar, f.identifier_value))",
        [MIN_MENTION]).fetchall()


def find_residue(con: duckdb.DuckDBPyConnection, warehouse_dir: Path, person_id: str,
                 identifiers: list[tuple[str, str]]) -> list[str]:
    """Where a table or Parquet export still names the person: a person or identifier column
    holding their person_id or one of their identifiers, or any text value mentioning one.
    Empty when they are gone."""
    exact = {*_PERSON_COLUMNS, *IDENTIFIER_TYPES, *(v for _, v in _PAIR_COLUMNS)}
    values = sorted({person_id, *(v for _, v in identifiers)})
    tomb = Tombstones.of([("person_id", person_id), *identifiers])
    con.register("_forget_ids", pa.table({"identifier_value": pa.array(values, pa.string())}))
    found = []
    try:
        relations = [(f"{s}.{t}", qualified(s, t), c) for s, t, c in _base_tables(con)]
        for label, folder in _export_folders(Path(warehouse_dir)):
            if any(folder.rglob("*.parquet")):
                glob = literal(folder / "**" / "*.parquet")
                relation = f"read_parquet({glob}, hive_partitioning = false)"
                cols = {r[0]: r[1] for r in con.execute(f"describe select * from {relation}")
                        .fetchall()}
                relations.append((label, relation, cols))
        for label, relation, columns in relations:
            for column, type_ in columns.items():
                if not _is_text(type_):
                    continue
                hits = con.execute(
                    f"select distinct x.{ident(column)}::varchar from {relation} as x "
                    f"where x.{ident(column)} in (select f.identifier_value from _forget_ids f) "
                    "or exists (select 1 from _forget_ids f where length(f.identifier_value) "
                    f">= ? and contains(x.{ident(column)}::varchar, f.identifier_value))",
                    [MIN_MENTION]).fetchall()
                if any((column in exact and text in values) or tomb.mentions(text)
                       for (text,) in hits):
                    found.append(f"{label}.{column}")
    finally:
        con.unregister("_forget_ids")
    return found


def _export_folders(warehouse_dir: Path) -> list[tuple[str, Path]]:
    """Every table folder of every Parquet export version on disk (and of a `parquet` folder
    from before versions), with its label."""
    roots = [(EXPORTS_LINK, warehouse_dir / EXPORTS_LINK)] \
        if not (warehouse_dir / EXPORTS_LINK).is_symlink() else []
    versions = warehouse_dir / EXPORT_VERSIONS
    roots += [(f"{EXPORT_VERSIONS}/{v.name}", v) for v in sorted(versions.iterdir())] \
        if versions.is_dir() else []
    return [(f"{label}/{table.name}", table) for label, root in roots if root.is_dir()
            for table in sorted(root.iterdir()) if table.is_dir()]


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
        con.execute("attach ? as compacted", [str(fresh)])
        con.execute(f"copy from database {ident(database)} to compacted")
        con.execute("detach compacted")
    finally:
        con.close()
    os.replace(fresh, path)
    return path
