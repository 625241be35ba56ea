"""Forgetting a person in the Spark tables (`spark.ingest: spark`): `erasure`'s rules, as
table rewrites.

Spark's Parquet tables cannot delete or update rows, so each table that holds something of the
person is rewritten whole and renamed into place (`journey_core.ingest.spark.replace_table`,
which the next ingest's recovery finishes if it is cut off). The rules are those of
`erasure._erase` on DuckDB, decided per row by joins to small tables of the person's
identifiers instead of by `rowid`:

- a row is the person's (deleted) when a person column names them, an identifier pair is
  theirs, or (events without a person column) the event's anchor is theirs; a rejected record
  whose raw text mentions one of their identifiers is deleted too;
- another row loses their identifiers: an identifier column holding one is set to null, and a
  property value that is one becomes null (`Tombstones.scrub_json`).

Mentions and scrubs are decided in Python, as on DuckDB, for the few values that contain one of
the identifiers, and joined back by value (the decision depends on the value alone). The
published tables are not rewritten: `journeys forget` rebuilds them all next, from the erased
ingest tables. The ledger is rebalanced as on DuckDB: the erased records of a loaded file
version count as forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from journey_core.contract.schema import FILE_LEDGER, PUBLISHED, TABLES
from journey_core.contract.vocabulary import FILE_LOADED, IDENTIFIER_TYPES
from journey_core.ingest.spark import SparkTables, replace_table, settle
from journey_core.privacy.erasure import (
    _PAIR_COLUMNS,
    _PERSON_COLUMNS,
    ForgetResult,
    identifier_pairs,
)
from journey_core.privacy.tombstones import MIN_MENTION, Tombstones
from journey_core.warehouse.quoting import ident, literal

#: The tables a full rebuild writes whole: `journeys forget` rebuilds them after the erasure.
_REBUILT = frozenset(t.name for t in PUBLISHED)


def _columns(engine: SparkTables, table: str) -> dict[str, pa.DataType]:
    schema = engine.arrow(f"select * from main.{ident(table)} limit 0").schema
    return {f.name: f.type for f in schema}


def _containing(engine: SparkTables, table: str, column: str) -> list[str]:
    """The distinct values of the column that contain one of the identifiers (a cheap
    prefilter; the caller decides on whole values)."""
    return [v for (v,) in engine.rows(
        f"select distinct x.{ident(column)} from main.{ident(table)} as x "
        "join _forget_values as f on length(f.identifier_value) >= ? "
        f"and contains(x.{ident(column)}, f.identifier_value)", [MIN_MENTION])]


@dataclass(frozen=True)
class _Marked:
    """A table's rows judged: `relation` (the table `x` and its joins to the person's
    identifiers), a row to delete (`gone`), a row changed (`changed`), and the rows kept with
    the person's identifiers removed (`select`, the table's columns in order)."""

    relation: str
    gone: str
    changed: str
    select: str


def _marked(table: str, columns: dict[str, pa.DataType]) -> _Marked | None:
    """The rules of `erasure._erase` for one table (`$person` is the person's id); None when no
    rule applies to it."""
    joins, deleted, changed = [], [], []
    for column in _PERSON_COLUMNS:
        if column in columns:
            deleted.append(f"coalesce(x.{ident(column)} = $person, false)")
    for n, (type_sql, value_sql) in enumerate(identifier_pairs(columns)):
        joins.append(f"left join _forget_ids as p{n} on p{n}.identifier_type = {type_sql} "
                     f"and p{n}.identifier_value = {value_sql}")
        deleted.append(f"p{n}.identifier_value is not null")
    kept = []
    for name in columns:
        value = f"x.{ident(name)}"
        if name in IDENTIFIER_TYPES:
            joins.append(f"left join _forget_ids as i_{name} on i_{name}.identifier_type = "
                         f"{literal(name)} and i_{name}.identifier_value = {value}")
            changed.append(f"i_{name}.identifier_value is not null")
            value = f"case when i_{name}.identifier_value is null then {value} end"
        elif name == "raw_record":
            joins.append(f"left join _forget_raw as r on r.raw_record = {value}")
            deleted.append("r.raw_record is not null")
        elif name == "properties":
            joins.append(f"left join _forget_properties as s on s.old = {value}")
            changed.append("s.old is not null")
            value = f"coalesce(s.new, {value})"
        kept.append(f"{value} as {ident(name)}")
    if not deleted and not changed:
        return None
    relation = f"from main.{ident(table)} as x {' '.join(joins)}"
    gone = " or ".join(deleted) or "false"
    return _Marked(relation, gone, " or ".join(changed) or "false",
                   f"select {', '.join(kept)} {relation} where not ({gone})")


def erase_on_spark(engine: SparkTables, person_id: str, identifiers: list[tuple[str, str]],
                   result: ForgetResult) -> None:
    """Erase the person from every Spark table in `main` but the published ones (rebuilt next)
    and rebalance the ledger; counts go to `result` (`main.<table>`)."""
    tomb = Tombstones.of(identifiers)
    ids = pa.table({"identifier_type": pa.array([t for t, _ in identifiers], pa.string()),
                    "identifier_value": pa.array([v for _, v in identifiers], pa.string())})
    values = pa.table({"identifier_value": pa.array(sorted({v for _, v in identifiers}),
                                                    pa.string())})
    params = {"person": person_id}
    settle(engine)  # what a forget (or an ingest) cut off left
    tables = [t for t in engine.tables("main")
              if t not in _REBUILT and t != FILE_LEDGER.name and not t.startswith("_")]
    with engine.register("_forget_ids", ids), engine.register("_forget_values", values):
        for table in tables:
            columns = _columns(engine, table)
            marked = _marked(table, columns)
            if marked is None:
                continue
            raws = [v for v in (_containing(engine, table, "raw_record")
                                if "raw_record" in columns else []) if tomb.mentions(v)]
            scrubs = {v: new for v in (_containing(engine, table, "properties")
                                       if "properties" in columns else [])
                      if (new := tomb.scrub_json(v)) != v}
            with engine.register("_forget_raw", pa.table(
                    {"raw_record": pa.array(raws, pa.string())})), \
                    engine.register("_forget_properties", pa.table(
                        {"old": pa.array(list(scrubs), pa.string()),
                         "new": pa.array(list(scrubs.values()), pa.string())})):
                ((deleted, scrubbed),) = engine.rows(
                    f"select count(*) filter (where {marked.gone}), count(*) filter "
                    f"(where not ({marked.gone}) and ({marked.changed})) {marked.relation}",
                    params)
                if deleted or scrubbed:
                    replace_table(engine, table, marked.select, params)
            if deleted:
                result.rows_deleted[f"main.{table}"] = deleted
            if scrubbed:
                result.rows_scrubbed[f"main.{table}"] = scrubbed
    rebalance_ledger(engine)


def rebalance_ledger(engine: SparkTables) -> None:
    """`erasure._rebalance_ledger` as a rewrite: a loaded file version's records erased from
    its events or rejects now count as forgotten (read = loaded + rejected + duplicates +
    forgotten); the ledger is rewritten only when a count changes."""
    counts = """
        from main.file_ledger as l
        left join (select file, ingested_at, count(*) as n from main.ingested_events
                   group by file, ingested_at) as e
          on e.file = l.path and e.ingested_at = l.loaded_at
        left join (select file, file_version, count(*) as n from main.ingest_rejects
                   group by file, file_version) as r
          on r.file = l.path and r.file_version = l.file_version"""
    loaded, rejected = "coalesce(e.n, 0)", "coalesce(r.n, 0)"
    stale = (f"l.status = $loaded and (l.records_loaded <> {loaded} "
             f"or l.records_rejected <> {rejected})")
    params = {"loaded": FILE_LOADED}
    if not engine.scalar(f"select count(*) {counts} where {stale}", params):
        return
    new = {"records_loaded": f"case when {stale} then {loaded} else l.records_loaded end",
           "records_rejected": f"case when {stale} then {rejected} else l.records_rejected end",
           "records_forgotten": f"case when {stale} then l.records_forgotten + "
                                f"(l.records_loaded - {loaded}) + (l.records_rejected - "
                                f"{rejected}) else l.records_forgotten end"}
    columns = [f"{new[c]} as {ident(c)}" if c in new else f"l.{ident(c)}"
               for c in FILE_LEDGER.column_names]
    replace_table(engine, FILE_LEDGER.name, f"select {', '.join(columns)} {counts}", params)


def _text_columns(engine: SparkTables, table: str) -> list[str]:
    """The table's text columns: the contract's (varchar, json) for a contract table, else
    the strings of its schema."""
    spec = TABLES.get(table)
    if spec is not None and hasattr(spec, "columns"):
        return [c.name for c in spec.columns if c.type in ("varchar", "json")]
    return [c for c, t in _columns(engine, table).items() if pa.types.is_string(t)]


def spark_residue(engine: SparkTables, person_id: str,
                  identifiers: list[tuple[str, str]]) -> list[str]:
    """Where a Spark table in `main` still names the person (`erasure.find_residue`'s rules:
    a person or identifier column holding their person_id or an identifier, or a text value
    mentioning one). One query per table over its text columns: (column, value) of the values
    that hold or contain one of the identifiers, judged here. (One query over every table
    took as long: Spark plans a union of a hundred such joins slowly.)"""
    exact = {*_PERSON_COLUMNS, *IDENTIFIER_TYPES, *(v for _, v in _PAIR_COLUMNS)}
    values = sorted({person_id, *(v for _, v in identifiers)})
    tomb = Tombstones.of([("person_id", person_id), *identifiers])
    found: set[str] = set()
    with engine.register("_forget_values", pa.table(
            {"identifier_value": pa.array(values, pa.string())})):
        for table in engine.tables("main"):
            text = _text_columns(engine, table)
            if not text:
                continue
            cells = " union all ".join(f"select {literal(c)} as c, {ident(c)} as v "
                                       f"from main.{ident(table)}" for c in text)
            hits = engine.rows(
                f"select distinct x.c, x.v from ({cells}) as x join _forget_values as f "
                "on x.v = f.identifier_value or (length(f.identifier_value) >= ? "
                "and contains(x.v, f.identifier_value))", [MIN_MENTION])
            found |= {f"spark main.{table}.{column}" for column, value in hits
                      if (column in exact and value in values) or tomb.mentions(value)}
    return sorted(found)
