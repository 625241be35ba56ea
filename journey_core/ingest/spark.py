"""Ingest on Spark (`spark.ingest: spark`): the loader's rules, with Spark's readers, into the
Spark engine's `main.ingested_events`, `main.ingest_rejects` and `main.file_ledger`.

The steps of `docs/spark-ingest.md`:

1. **Hash pass.** Spark's `binaryFile` reader hashes every listed file (`sha2(content, 256)`,
   the digest `hashlib.sha256` gives; a source given as a URI is listed by the reader too,
   `list_files`); the driver decides, in source then path order as the
   DuckDB loader does, which files are skipped (hash in the ledger, or of a file earlier in this
   ingest) and each new file's `file_version`.
2. **Mapping, per file.** The new files are read again by `binaryFile`, one file per Arrow
   batch, and `mapInArrow` maps each on the executors by the DuckDB loader's set-based
   statements (`journey_core.ingest.loader.stage_file`: `columnar`'s SQL for the clean
   records, the record rules for the others, repeats within the file judged, in an in-memory
   DuckDB of the worker process), or record by record (`journey_core.ingest.mapping.parse_file`,
   properties normalized by DuckDB's `json()` as the loader stores them) where the DuckDB
   loader goes record by record: a file its SQL cannot map, and every file while tombstones
   must be applied. The salt and the tombstones are shipped with the function. Its rows are
   events, rejects and one row per file. An event mapped in SQL carries no raw text: only a
   conflicting duplicate of a later file quotes it, and those few are read again (`_raws`).
3. **Across files, in Spark SQL.** An event_id already loaded, or loaded by an earlier file of
   this ingest, is a duplicate when the content is the same, else a `conflicting_duplicate`
   reject naming the file and record that loaded it: the loader's `_resolve_repeats` and
   `_commit`, as joins and a window.
4. **Commit without a transaction.** Spark has none across tables: events, then rejects, then
   the ledger rows are appended, all stamped with the ingest's `loaded_at`. An ingest cut off
   before its ledger rows leaves rows newer than the ledger's newest `loaded_at`; `recover`
   (at the start of every ingest) removes them, so those files are new again and nothing is
   counted twice. `undo` removes an ingest's ledger rows, then recovers.

The mapping is the DuckDB loader's own code, so its rules are exact by construction
(`tests/unit/test_ingest_spark_mapping.py` compares both ways per file). The statements of
steps 3 and 4 are written in DuckDB's dialect and run through the Spark engine, which
transpiles them.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from journey_core.config import Config, SourceConfig, source_patterns, source_uri
from journey_core.contract.schema import FILE_LEDGER, INGEST_REJECTS, INGESTED_EVENTS
from journey_core.contract.vocabulary import CONFLICTING_DUPLICATE, FILE_LOADED, FILE_REJECTED
from journey_core.ingest.loader import (
    _EVENT_SCHEMA,
    STORED_PROPERTIES,
    FileResult,
    IngestSummary,
    display_path,
    hash_salt,
    redacted_records,
    stage_file,
)
from journey_core.ingest.mapping import parse_file, same_content
from journey_core.ingest.readers import IngestError
from journey_core.privacy.tombstones import Tombstones
from journey_core.warehouse import ensure_tables

#: The ingest tables, and the load-time column of each (what recovery and undo compare).
LOAD_TIME = {"ingested_events": "ingested_at", "ingest_rejects": "rejected_at",
             "file_ledger": "loaded_at"}

#: The rows `mapInArrow` yields: events (the `ingested_events` columns), rejects (in the same
#: columns where they share one: source, file, record_number; `ingested_at` is the reject's
#: `rejected_at`) and one row per file.
_MAPPED = pa.schema([
    ("kind", pa.string()), ("file_index", pa.int64()), ("file_version", pa.int64()),
    *_EVENT_SCHEMA,
    ("raw", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("read", pa.int64()), ("duplicates", pa.int64()), ("forgotten", pa.int64()),
    ("problem", pa.string()),
])
_EVENT, _REJECT, _FILE = "event", "reject", "file"


class SparkTables(Protocol):
    """What ingest needs of the Spark engine (`journey_core.model.spark.SparkEngine`)."""

    spark: Any

    def execute(self, sql: str, params: Any = None) -> None: ...
    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...
    def scalar(self, sql: str, params: Any = None) -> Any: ...
    def exists(self, schema: str, name: str) -> bool: ...
    def ensure_tables(self, names: list[str]) -> None: ...
    def create_schema(self, name: str) -> None: ...
    def register(self, name: str, table: pa.Table) -> Any: ...
    def view(self, name: str, frame: Any) -> Any: ...

    errors: tuple[type[Exception], ...]


@dataclass(frozen=True)
class Listed:
    """A source's file as the hash pass found it."""

    source: SourceConfig
    #: What Spark's reader is given: a local path, or a URI (`s3a://...`, `file:/...`).
    location: str
    #: What the record rules name in a file's problem.
    path: Path
    #: The ledger's path: relative to the config's folder when below it; a URI as listed.
    rel: str
    size: int
    content_hash: str


@dataclass(frozen=True)
class _Task:
    """What an executor needs to map one new file."""

    file: Listed
    index: int
    version: int


def _local(uri: str) -> str:
    """A `file:` URI as `binaryFile` gives it (`file:/tmp/x`), as the path it names."""
    return uri.removeprefix("file://").removeprefix("file:")


#: The sha256 of no bytes: Spark's file sources read no row of an empty file.
_EMPTY = hashlib.sha256(b"").hexdigest()


def _hashed(frame: Any) -> list[tuple[str, int, str]]:
    """(path, size, sha256 hex digest) of every file `binaryFile` read into `frame`."""
    table = frame.selectExpr("path", "length", "sha2(content, 256) as content_hash").toArrow()
    return list(zip(*(table[c].to_pylist() for c in ("path", "length", "content_hash")),
                    strict=True))


def list_files(engine: SparkTables, config: Config) -> list[Listed]:
    """Every source's files, in source order then sorted path order, hashed by Spark's
    `binaryFile` reader: a source given as a path is listed here (`Config.source_files`) and
    hashed in one pass with the others; a source given as a URI (`source_uri`) is listed by
    the reader, its file-name patterns as `pathGlobFilter` (empty files are not listed: Spark's
    file sources skip them)."""
    local = [(s, p) for s in config.sources if source_uri(s) is None
             for p in config.source_files(s)]
    hashes = _hashes(engine.spark, [p for _, p in local])
    found: list[Listed] = []
    for source in config.sources:
        folder = source_uri(source)
        if folder is None:
            found += [Listed(s, str(p), p, display_path(config, p), *hashes[str(p)])
                      for s, p in local if s is source]
        else:
            found += _list_uri(engine, source, folder)
    return found


def _list_uri(engine: SparkTables, source: SourceConfig, folder: str) -> list[Listed]:
    patterns = source_patterns(source)
    glob = patterns[0] if len(patterns) == 1 else "{" + ",".join(patterns) + "}"
    try:
        rows = sorted(_hashed(engine.spark.read.format("binaryFile").option(
            "pathGlobFilter", glob).load(folder)))
    except engine.errors as exc:
        raise IngestError(f"source {source.name!r}: cannot list {folder}: "
                          f"{str(exc).splitlines()[0]}") from None
    return [Listed(source, uri, Path(uri), uri, size, digest) for uri, size, digest in rows]


def _hashes(spark: Any, paths: list[Path]) -> dict[str, tuple[int, str]]:
    """(size, sha256 hex digest) of every file, by path: Spark's `binaryFile` reader (an
    empty file, which it yields no row for, is hashed here)."""
    if not paths:
        return {}
    found = {_local(path): (size, digest) for path, size, digest in _hashed(
        spark.read.format("binaryFile").load([str(p) for p in paths]))}
    for path in paths:
        if str(path) not in found:
            if path.stat().st_size:
                raise IngestError(f"{path}: Spark's binaryFile reader did not read it")
            found[str(path)] = (0, _EMPTY)
    return found


@functools.cache
def _duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB of this (worker) process, opened once: a connection costs tens of
    milliseconds, a file's mapping often less. Its `ingested_events` stays empty (`stage_file`
    judges repeats within the file only)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    ensure_tables(con, ["ingested_events"])
    return con


def _normalized(table: pa.Table) -> pa.Table:
    """Properties as the DuckDB loader stores them (`json(properties)::varchar` when valid)."""
    con = _duckdb()
    con.register("_rows", table)
    try:
        return con.sql(f"select * replace ({STORED_PROPERTIES} as properties) "
                       "from _rows").to_arrow_table().cast(_MAPPED)
    finally:
        con.unregister("_rows")


def _map_in_sql(task: _Task, data: bytes, *, salt: str, loaded_at: datetime,
                max_future: timedelta | None) -> pa.Table | None:
    """One file's rows of `_MAPPED` by the DuckDB loader's set-based mapping
    (`journey_core.ingest.loader.stage_file`: `columnar`'s SQL for the clean records, the
    record rules for the others); None when the file must go record by record."""
    con = _duckdb()
    base = {"file_index": task.index, "file_version": task.version}
    events = ", ".join(INGESTED_EVENTS.column_names)
    with tempfile.TemporaryDirectory(prefix="journeys-") as folder:
        # DuckDB reads Parquet from a file: a local copy of the bytes the hash pass hashed
        copy = Path(folder) / f"file{task.file.path.suffix}"
        if task.file.source.format == "parquet":
            copy.write_bytes(data)
        try:
            batch = stage_file(con, task.file.source, copy, task.file.rel, data, salt=salt,
                               loaded_at=loaded_at, max_future=max_future)
            if batch is None:
                return None
            table = con.sql(f"select {events} from _new_events").to_arrow_table()
        finally:
            con.execute("drop table if exists _new_events")
    result = batch.results[0]
    n = len(table)
    columns = {"kind": pa.array([_EVENT] * n),
               "file_index": pa.array([task.index] * n, pa.int64()),
               "file_version": pa.array([task.version] * n, pa.int64()),
               **{c: table.column(c) for c in INGESTED_EVENTS.column_names}}
    # no raw text: only a conflicting duplicate quotes it, and `_raws` finds those few
    rows = pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in _MAPPED}
                    ).cast(_MAPPED)
    others = [{**base, "kind": _FILE, "read": result.read, "duplicates": result.duplicates,
               "forgotten": 0}]
    others += [{**base, "kind": _REJECT, "source": r["source"], "file": r["file"],
                "record_number": r["record_number"], "raw": r["raw_record"],
                "reason": r["reason"], "detail": r["detail"], "ingested_at": r["rejected_at"]}
               for r in batch.rejects]
    return pa.concat_tables([rows, pa.Table.from_pylist(others, schema=_MAPPED)])


def _map_file(task: _Task, data: bytes, *, salt: str, loaded_at: datetime,
              max_future: timedelta | None, tombstones: Tombstones) -> pa.Table:
    """One file's rows of `_MAPPED`: the loader's `ingest` up to the commit. Set-based
    (`_map_in_sql`) unless tombstones must be applied (as in the DuckDB loader) or the file
    cannot be mapped in SQL; else record by record (`ingest_file`'s `parse_file`)."""
    mapped = None if tombstones else _map_in_sql(task, data, salt=salt, loaded_at=loaded_at,
                                                 max_future=max_future)
    if mapped is not None:
        return mapped
    return _map_records(task, data, salt=salt, loaded_at=loaded_at, max_future=max_future,
                        tombstones=tombstones)


def _map_records(task: _Task, data: bytes, *, salt: str, loaded_at: datetime,
                 max_future: timedelta | None, tombstones: Tombstones) -> pa.Table:
    """One file's rows of `_MAPPED` record by record (`ingest_file`'s `parse_file`), events
    with their raw text."""
    base = {"file_index": task.index, "file_version": task.version}
    try:
        parsed = parse_file(task.file.source, task.file.path, task.file.rel, data, salt=salt,
                            loaded_at=loaded_at, max_future=max_future)
    except IngestError as exc:
        # the rules name the file by its path; a URI's (`s3a://b/x` as a path is `s3a:/b/x`)
        # is named as the reader listed it
        problem = str(exc).replace(str(task.file.path), task.file.location, 1)
        return pa.Table.from_pylist([{**base, "kind": _FILE, "problem": problem}],
                                    schema=_MAPPED)
    keep = tombstones.apply  # a forgotten person's records stay out; others lose their ids
    events = [e for v in parsed.events.values() if (e := keep(v)) is not None]
    rejects = [r for r in parsed.rejects if keep(r) is not None]
    forgotten = len(parsed.events) + len(parsed.rejects) - len(events) - len(rejects)
    rows = [{**base, "kind": _FILE, "read": parsed.read, "duplicates": parsed.duplicates,
             "forgotten": forgotten}]
    rows += [{**base, **{c: e.get(c) for c in INGESTED_EVENTS.column_names}, "kind": _EVENT,
              "raw": e["_raw"]} for e in events]
    rows += [{**base, "kind": _REJECT, "source": r["source"], "file": r["file"],
              "record_number": r["record_number"], "raw": r["raw_record"],
              "reason": r["reason"], "detail": r["detail"], "ingested_at": r["rejected_at"]}
             for r in rejects]
    return _normalized(pa.Table.from_pylist(rows, schema=_MAPPED))


def _mapper(tasks: dict[str, _Task], **rules: Any
            ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function `mapInArrow` runs on the executors: `binaryFile` batches (path, content)
    to `_MAPPED` batches."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for uri, content in zip(batch.column("path").to_pylist(),
                                    batch.column("content").to_pylist(), strict=True):
                yield from _map_file(tasks[_local(uri)], content, **rules).to_batches()

    return run


def _mapped(engine: SparkTables, tasks: list[_Task], **rules: Any) -> Any:
    """The new files mapped on the executors, kept without their lineage (a local
    checkpoint: the files are read once)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    spark = engine.spark
    schema = from_arrow_schema(_MAPPED, prefer_timestamp_ntz=False)
    by_path = {_local(t.file.location): t for t in tasks if t.file.size}
    # empty files (Spark's readers yield no row of them) are mapped here: a ledger row each
    frame = spark.createDataFrame(pa.concat_tables(
        [_MAPPED.empty_table(), *(_map_file(t, b"", **rules) for t in tasks if not t.file.size)]),
        schema=schema)
    setting = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(setting)
    spark.conf.set(setting, "1")  # one file's bytes per batch
    try:
        if by_path:
            files = spark.read.format("binaryFile").load(
                [t.file.location for t in by_path.values()]).select("path", "content")
            frame = frame.unionByName(files.mapInArrow(_mapper(by_path, **rules), schema))
        return frame.localCheckpoint(eager=True)
    finally:
        spark.conf.set(setting, before)


def _raw_text(task: _Task, data: bytes, numbers: list[int], *, salt: str) -> pa.Table:
    """(file_index, record_number, raw) of records `numbers` of one file: their redacted raw
    text, as `_map_in_sql` would have given it."""
    with tempfile.TemporaryDirectory(prefix="journeys-") as folder:
        copy = Path(folder) / f"file{task.file.path.suffix}"
        if task.file.source.format == "parquet":
            copy.write_bytes(data)
        raws = redacted_records(task.file.source, copy, data, numbers, salt=salt)
    return pa.table({"file_index": pa.array([task.index] * len(raws), pa.int64()),
                     "record_number": pa.array(list(raws), pa.int64()),
                     "raw": pa.array(list(raws.values()), pa.string())})


_RAWS = pa.schema([("file_index", pa.int64()), ("record_number", pa.int64()),
                   ("raw", pa.string())])


def _raws(engine: SparkTables, tasks: list[_Task], wanted: list[tuple[int, int]], *,
          salt: str) -> Any:
    """The redacted raw text of these (file_index, record_number) records, which the
    set-based mapping left out, read again on the executors: a frame of `_RAWS`."""
    from pyspark.sql.pandas.types import from_arrow_schema

    numbers: dict[int, list[int]] = {}
    for index, number in wanted:
        numbers.setdefault(index, []).append(number)
    by_path = {_local(t.file.location): t for t in tasks if t.index in numbers}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for uri, content in zip(batch.column("path").to_pylist(),
                                    batch.column("content").to_pylist(), strict=True):
                task = by_path[_local(uri)]
                yield from _raw_text(task, content, numbers[task.index],
                                     salt=salt).to_batches()

    files = engine.spark.read.format("binaryFile").load(
        [t.file.location for t in by_path.values()]).select("path", "content")
    return files.mapInArrow(run, from_arrow_schema(_RAWS))


def _rewrite(engine: SparkTables, table: str, keep: str, params: Any = None) -> None:
    """Keep only the rows of `main.<table>` where `keep` holds (`replace_table`)."""
    replace_table(engine, table, f"select * from main.{table} where {keep}", params)


def replace_table(engine: SparkTables, table: str, select: str, params: Any = None) -> None:
    """`main.<table>` becomes the rows of `select` (which may read it, and must give its
    columns in its order): they are written to a new table, which is renamed into place
    (Spark's Parquet tables cannot delete or update rows). Cut off anywhere, `_settle` puts the
    table back as it was or as it is meant to be."""
    _settle(engine, table)
    engine.execute(f"create table main._{table}_kept as {select}", params)
    engine.execute(f"alter table main.{table} rename to _{table}_old")
    engine.execute(f"alter table main._{table}_kept rename to {table}")
    engine.execute(f"drop table main._{table}_old")


def _settle(engine: SparkTables, table: str) -> None:
    """What a `_rewrite` cut off left: the table renamed away is put back, the copies go."""
    if not engine.exists("main", table) and engine.exists("main", f"_{table}_old"):
        engine.execute(f"alter table main._{table}_old rename to {table}")
    for leftover in (f"_{table}_old", f"_{table}_kept"):
        if engine.exists("main", leftover):
            engine.execute(f"drop table main.{leftover}")


def settle(engine: SparkTables) -> None:
    """What every `replace_table` cut off left in `main` (an ingest's, an undo's or a
    forget's) is put back or finished."""
    cut_off = {m.group(1) for name in engine.tables("main")
               if (m := re.fullmatch(r"_(.+)_(?:old|kept)", name))}
    for table in sorted(cut_off | set(LOAD_TIME)):
        _settle(engine, table)


def recover(engine: SparkTables) -> int:
    """Remove the events and rejects of an ingest cut off before its ledger rows (newer than
    the ledger's newest `loaded_at`: load times only grow), after `settle`. Returns the tables
    rewritten."""
    settle(engine)
    latest = engine.scalar("select max(loaded_at) from main.file_ledger")
    rewritten = 0
    for table in ("ingested_events", "ingest_rejects"):
        column = LOAD_TIME[table]
        newest = engine.scalar(f"select max({column}) from main.{table}")
        if newest is not None and (latest is None or newest > latest):
            if latest is None:
                _rewrite(engine, table, "false")
            else:
                _rewrite(engine, table, f"{column} <= ?", [latest])
            rewritten += 1
    return rewritten


def undo(engine: SparkTables, summary: IngestSummary) -> int:
    """Remove everything one ingest wrote, as `journey_core.ingest.undo` does on DuckDB: its
    ledger rows first, then its events and rejects by `recover` (an undo cut off between the
    two is finished by the next ingest's recovery). Returns the ledger rows removed."""
    if summary.loaded_at is None:
        return 0
    files = engine.scalar("select count(*) from main.file_ledger where loaded_at = ?",
                          [summary.loaded_at])
    if files:
        _rewrite(engine, "file_ledger", "loaded_at <> ?", [summary.loaded_at])
    recover(engine)
    return files


def ingest(engine: SparkTables, config: Config, tombstones: Tombstones, *,
           loaded_at: datetime | None = None, files: list[Listed] | None = None,
           progress: Callable[[FileResult], None] | None = None) -> IngestSummary:
    """Load every new file of every source (`files`, as `list_files` lists them) into the
    Spark engine's ingest tables: the same rows, rejects and ledger rows as
    `journey_core.ingest.ingest` writes in DuckDB."""
    engine.create_schema("main")
    engine.ensure_tables(list(LOAD_TIME))
    recover(engine)
    loaded_at = loaded_at or datetime.now(UTC)
    summary = IngestSummary(loaded_at=loaded_at)
    listed = list_files(engine, config) if files is None else files
    ledger = engine.rows("select content_hash, path from main.file_ledger")
    known = {h for h, _ in ledger}
    versions = Counter(p for _, p in ledger)
    results: list[FileResult] = []
    tasks: list[_Task] = []
    for file in listed:
        result = FileResult(path=file.rel, source=file.source.name)
        results.append(result)
        if file.content_hash in known:
            result.skipped = True
            continue
        known.add(file.content_hash)
        tasks.append(_Task(file, len(tasks), 1 + versions[file.rel]))
    if tasks:
        frame = _mapped(engine, tasks, salt=hash_salt(config), loaded_at=loaded_at,
                        max_future=config.max_future, tombstones=tombstones)
        with engine.view("_mapped", frame):
            _judge_and_commit(engine, tasks, [r for r in results if not r.skipped],
                              loaded_at, salt=hash_salt(config))
    for result in results:
        summary.files.append(result)
        if progress:
            progress(result)
    return summary


def _judge_and_commit(engine: SparkTables, tasks: list[_Task], results: list[FileResult],
                      loaded_at: datetime, *, salt: str) -> None:
    """Judge the mapped events against each other and the loaded ones (step 3), then append
    events, rejects and ledger rows, in that order (step 4)."""
    events = ", ".join(INGESTED_EVENTS.column_names)
    engine.execute(f"create temp table _new_events as select file_index, file_version, raw, "
                   f"{events} from _mapped where kind = '{_EVENT}'")
    # a repeat: (file, record) of an event not loaded, whether it says what the one loaded
    # says, and the file and record of that one
    engine.execute(f"""
        create temp table _repeats as
        with firsts as (
            select *, row_number() over (partition by event_id order by file_index) as in_batch
            from _new_events as n
            where event_id in (  -- (the window sorts only the ids this ingest repeats)
                select event_id from _new_events group by event_id having count(*) > 1)
              and not exists (select 1 from main.ingested_events as e
                              where e.event_id = n.event_id)
        )
        select n.file_index, n.record_number, {same_content('n', 'e')} as same,
               e.file as first_file, e.record_number as first_record
        from _new_events as n join main.ingested_events as e on e.event_id = n.event_id
        union all
        select b.file_index, b.record_number, {same_content('a', 'b')} as same,
               a.file as first_file, a.record_number as first_record
        from firsts as b join firsts as a on a.event_id = b.event_id and a.in_batch = 1
        where b.in_batch > 1
    """)
    try:
        counts = {i: (read, dup, forgotten, problem) for i, read, dup, forgotten, problem in
                  engine.rows(f"select file_index, read, duplicates, forgotten, problem "
                              f"from _mapped where kind = '{_FILE}'")}
        loaded = dict(engine.rows(
            "select file_index, count(*) from _new_events as n where not exists "
            "(select 1 from _repeats as r where r.file_index = n.file_index "
            "and r.record_number = n.record_number) group by file_index"))
        rejected = Counter(dict(engine.rows(
            f"select file_index, count(*) from _mapped where kind = '{_REJECT}' "
            "group by file_index")))
        repeated = Counter[int]()  # repeats with the same content: duplicates
        for index, same, other in engine.rows(
                "select file_index, count(*) filter (where same), "
                "count(*) filter (where not same) from _repeats group by file_index"):
            repeated[index] += same
            rejected[index] += other
        for task, result in zip(tasks, results, strict=True):
            read, duplicates, forgotten, problem = counts[task.index]
            if problem is not None:
                result.problem = problem
                continue
            result.read, result.forgotten = read, forgotten
            result.duplicates = duplicates + repeated[task.index]
            result.loaded, result.rejected = loaded.get(task.index, 0), rejected[task.index]
        engine.execute(f"""
            insert into main.ingested_events ({events})
            select {events} from _new_events as n
            where not exists (select 1 from _repeats as r where r.file_index = n.file_index
                              and r.record_number = n.record_number)
        """)
        rejects = ", ".join(INGEST_REJECTS.column_names)
        # the conflicting duplicates' raw text, where the set-based mapping left it out
        wanted = engine.rows("select n.file_index, n.record_number from _new_events as n "
                             "join _repeats as r on r.file_index = n.file_index and "
                             "r.record_number = n.record_number where not r.same and "
                             "n.raw is null")
        with (engine.view("_raws", _raws(engine, tasks, wanted, salt=salt)) if wanted else
              engine.register("_raws", _RAWS.empty_table())):
            engine.execute(f"""
                insert into main.ingest_rejects ({rejects})
                select source, file, file_version, record_number, raw as raw_record, reason,
                       detail, ingested_at as rejected_at
                from _mapped where kind = '{_REJECT}'
                union all
                select n.source, n.file, n.file_version, n.record_number,
                       coalesce(n.raw, w.raw), '{CONFLICTING_DUPLICATE}',
                       concat(n.file, ' record ', cast(n.record_number as varchar),
                              ': event_id ', n.event_id, ' already loaded from ', r.first_file,
                              ' record ', cast(r.first_record as varchar),
                              ' with different content'),
                       ?
                from _new_events as n join _repeats as r
                  on r.file_index = n.file_index and r.record_number = n.record_number
                left join _raws as w
                  on w.file_index = n.file_index and w.record_number = n.record_number
                where not r.same
            """, [loaded_at])
        ledger = pa.Table.from_pylist([{
            "content_hash": t.file.content_hash, "path": r.path, "file_version": t.version,
            "source": r.source, "size_bytes": t.file.size, "loaded_at": loaded_at,
            "records_read": r.read, "records_loaded": r.loaded,
            "records_rejected": r.rejected, "records_duplicate": r.duplicates,
            "records_forgotten": r.forgotten,
            "status": FILE_REJECTED if r.problem else FILE_LOADED, "problem": r.problem}
            for t, r in zip(tasks, results, strict=True)])
        ledger_columns = ", ".join(FILE_LEDGER.column_names)
        with engine.register("_ledger", ledger):
            engine.execute(f"insert into main.file_ledger ({ledger_columns}) "
                           f"select {ledger_columns} from _ledger")
    finally:
        engine.execute("drop table if exists _repeats")
        engine.execute("drop table if exists _new_events")
