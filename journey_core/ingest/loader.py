"""Loading: every new source file becomes canonical events, rejects, and a ledger row.

Rules:
- every record read ends up loaded, rejected (verbatim, with the reason), or counted as a
  duplicate of an event_id already loaded; the ledger row says so per file;
- a file whose content hash is in the ledger is skipped (the same file is never loaded twice);
- a path that comes back with new content is that file's next version (`file_version`, from
  1): all its records are read again, those already loaded count as duplicates, and its
  rejects are its own (the ledger and the rejects say which version);
- each file is committed in one transaction with its events, rejects and ledger row (new
  Parquet files of one schema: all of them in one transaction);
- emails and phone numbers are hashed with a salt here and never stored raw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from journey_core.config import Config, SourceConfig
from journey_core.contract.schema import INGEST_REJECTS, INGESTED_EVENTS
from journey_core.contract.vocabulary import CONFLICTING_DUPLICATE, FILE_LOADED, FILE_REJECTED
from journey_core.ingest.columnar import (
    TEXT_RECORDS,
    Schema,
    describe,
    not_simple,
    plan,
    plan_text,
    raw_records,
    text_table,
)
from journey_core.ingest.mapping import (
    SourceMapper,
    make_reject,
    map_record,
    parse_file,
    same_content,
)
from journey_core.ingest.readers import (
    IngestError,
    RawRecord,
    TextRecords,
    decode,
    read_file,
    split_text,
)
from journey_core.privacy import forgotten_filter, load_tombstones, require_salt
from journey_core.privacy.pii import redact
from journey_core.warehouse import ensure_tables, scalar

#: Redacted raw text of records by (file index, record number).
RawLookup = Callable[[list[tuple[int, int]]], dict[tuple[int, int], str]]


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
    #: The load time of this ingest: `ingested_at`, `rejected_at` and the ledger's `loaded_at`
    #: of every row it wrote (what `undo` removes).
    loaded_at: datetime | None = None

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files if not f.skipped)


def undo(con: duckdb.DuckDBPyConnection, summary: IngestSummary) -> int:
    """Remove everything one ingest wrote (its events, rejects and ledger rows), in one
    transaction, as if it had never run: its files are new again to the next run. Returns the
    ledger rows removed. For an ingest whose blocking checks failed, so that what it loaded
    cannot fail every later run too."""
    if summary.loaded_at is None:
        return 0
    files = scalar(con, "select count(*) from main.file_ledger where loaded_at = ?",
                   [summary.loaded_at])
    con.execute("begin transaction")
    try:
        for table, column in (("ingested_events", "ingested_at"),
                              ("ingest_rejects", "rejected_at"), ("file_ledger", "loaded_at")):
            con.execute(f"delete from main.{table} where {column} = ?", [summary.loaded_at])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return files


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
    ("source", pa.string()), ("file", pa.string()), ("file_version", pa.int64()),
    ("record_number", pa.int64()), ("raw_record", pa.string()), ("reason", pa.string()),
    ("detail", pa.string()), ("rejected_at", _TS),
])


def _ledger_row(con: duckdb.DuckDBPyConnection, result: FileResult, new: _NewFile,
                loaded_at: datetime, problem: str | None) -> None:
    row = {"content_hash": new.content_hash, "path": result.path, "file_version": new.version,
           "source": result.source, "size_bytes": new.size, "loaded_at": loaded_at,
           "records_read": result.read, "records_loaded": result.loaded,
           "records_rejected": result.rejected, "records_duplicate": result.duplicates,
           "records_forgotten": result.forgotten,
           "status": FILE_REJECTED if problem else FILE_LOADED, "problem": problem}
    con.execute(f"insert into file_ledger ({', '.join(row)}) "
                f"values ({', '.join('?' for _ in row)})", list(row.values()))


#: SQL: an event's properties as `ingested_events` stores them (DuckDB's JSON text when valid).
STORED_PROPERTIES = ("case when json_valid(properties) then json(properties)::varchar "
                     "else properties end")


def _stage_rows(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]], *,
                file_index: list[int] | None = None) -> None:
    """Events parsed record by record into the temp table `_new_events` (ingested_events
    columns with properties in DuckDB's JSON form, and the index of each event's file)."""
    table = _arrow(INGESTED_EVENTS.column_names, events, _EVENT_SCHEMA).append_column(
        "file_index", pa.array(file_index or [0] * len(events), pa.int64()))
    con.register("_rows", table)
    try:
        columns = ", ".join(f"{STORED_PROPERTIES} as properties" if c == "properties" else c
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
    #: 1 + the versions of this path already in the ledger.
    version: int = 1


@dataclass
class _Batch:
    """New Parquet files of one source and one schema, loaded together."""

    mapper: SourceMapper
    files: list[_NewFile]
    loaded_at: datetime
    results: dict[int, FileResult]
    rejects: list[dict[str, Any]] = field(default_factory=list)
    #: CSV and NDJSON files: each file's records as `split_text` split them.
    texts: list[TextRecords] | None = None

    def records(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], RawRecord]:
        """Records by (file index, record number), each file read once."""
        out = {}
        for index in sorted({i for i, _ in keys}):
            numbers = sorted({n for i, n in keys if i == index})
            if self.texts is not None:
                found = [self.texts[index].record(n) for n in numbers]
                out.update({(index, r.number): r for r in found if r is not None})
                continue
            for rec in raw_records(self.files[index].path, numbers):
                out[(index, rec.number)] = rec
        return out

    def raw(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """Redacted raw text of records by (file index, record number)."""
        return {key: redact(rec.raw, self.mapper.salt, self.mapper.personal_values(rec))
                for key, rec in self.records(keys).items()}

    def reject(self, index: int, number: int, raw: str, detail: str) -> None:
        """Record `number` of file `index` is a conflicting duplicate."""
        self.rejects.append(make_reject(self.mapper.source, self.files[index].rel, number, raw,
                                        CONFLICTING_DUPLICATE, detail, self.loaded_at))
        self.results[index].rejected += 1


#: The load time bound into the mapping statements (`ingested_at` of every event of a batch).
_LOADED_AT = "$_loaded_at::timestamptz"


def _map_in_sql(con: duckdb.DuckDBPyConnection, batch: _Batch, schema: Schema,
                latest: datetime | None) -> bool:
    """Every record of the batch's files mapped by one statement into the temp table `_cand`;
    False when the files must go record by record."""
    planned = plan(batch.mapper, schema, [f.path for f in batch.files],
                            salt=batch.mapper.salt, latest=latest)
    if planned is None:
        return False
    select, params = planned
    con.register("_files", pa.table({
        "filename": [str(f.path) for f in batch.files],
        "file_index": list(range(len(batch.files))), "file": [f.rel for f in batch.files]}))
    try:
        con.execute(f"create or replace temp table _cand as select f.file_index, f.file, "
                    f"{_LOADED_AT} as ingested_at, c.* from ({select}) as c "
                    "join _files as f using (filename)",
                    {**params, "_loaded_at": batch.loaded_at})
    except duckdb.Error:  # a damaged row group: file by file, record by record names it
        return False
    finally:
        con.unregister("_files")
    return True


def _map_text_in_sql(con: duckdb.DuckDBPyConnection, batch: _Batch,
                     header: tuple[str, ...] | None, latest: datetime | None) -> bool:
    """Every record of the batch's CSV (with this header) or NDJSON files mapped by one
    statement into the temp table `_cand`; False when the files must go record by record."""
    planned = plan_text(batch.mapper, header, salt=batch.mapper.salt, latest=latest)
    if planned is None or batch.texts is None:
        return False
    select, params = planned
    con.register(TEXT_RECORDS, text_table(batch.texts))
    con.register("_files", pa.table({"file_index": list(range(len(batch.files))),
                                     "file": [f.rel for f in batch.files]}))
    try:
        con.execute(f"create or replace temp table _cand as select f.file, "
                    f"{_LOADED_AT} as ingested_at, c.* from ({select}) as c "
                    "join _files as f using (file_index)",
                    {**params, "_loaded_at": batch.loaded_at})
    finally:
        con.unregister("_files")
        con.unregister(TEXT_RECORDS)
    return True


def _stage_candidates(con: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    """`_cand` becomes `_new_events`: clean records as the SQL mapped them, the others through
    the record-by-record rules (so their reject, or loaded value, is exactly as there). The
    table is renamed, not copied: one write of the batch fewer (extra columns such as `_clean`
    stay, and are null on the rows mapped record by record)."""
    try:
        for index, read in con.execute(
                "select file_index, count(*) from _cand group by all").fetchall():
            batch.results[index].read = read
        unclean = con.execute("select file_index, record_number from _cand where not _clean "
                              "order by all").fetchall()
        slow: list[dict[str, Any]] = []
        slow_index: list[int] = []
        for (index, _), rec in sorted(batch.records(unclean).items()):
            event, reject = map_record(batch.mapper, rec, batch.files[index].rel,
                                       batch.loaded_at)
            if reject is not None:
                batch.rejects.append(reject)
                batch.results[index].rejected += 1
            else:
                slow.append(event)
                slow_index.append(index)
        if unclean:
            con.execute("delete from _cand where not _clean")
        if slow:
            _stage_rows(con, slow, file_index=slow_index)
            con.execute("insert into _cand by name select * from _new_events")
        con.execute("drop table if exists _new_events")
        con.execute("alter table _cand rename to _new_events")
    finally:
        con.execute("drop table if exists _cand")


def _resolve_repeats(con: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    """The same event_id twice in the batch, judged as file after file would judge it: within
    a file the first record stays and a repeat of it is a duplicate, other content a
    conflicting_duplicate reject; then a later file's first record of an id that an earlier
    file of the batch loads first is compared with that one (ids already in ingested_events are
    left to `_commit`, which compares every file's first record with the loaded event)."""
    repeats = con.execute(f"""
        with ranked as (
            select *, row_number() over (partition by event_id, file_index
                                         order by record_number) as in_file
            from _new_events
            where event_id in (
                select event_id from _new_events group by event_id having count(*) > 1)
        ), firsts as (
            select *, row_number() over (partition by event_id order by file_index) as in_batch
            from ranked
            where in_file = 1
              and event_id not in (select event_id from main.ingested_events)
        )
        select b.file_index, b.record_number, b.event_id, a.file_index, a.record_number,
               {same_content('a', 'b')}
        from ranked as b join ranked as a
          on a.event_id = b.event_id and a.file_index = b.file_index and a.in_file = 1
        where b.in_file > 1
        union all
        select b.file_index, b.record_number, b.event_id, a.file_index, a.record_number,
               {same_content('a', 'b')}
        from firsts as b join firsts as a on a.event_id = b.event_id and a.in_batch = 1
        where b.in_batch > 1
        order by 1, 2
    """).fetchall()
    raws = batch.raw([(i, n) for i, n, _, _, _, same in repeats if not same])
    for index, number, event_id, first_index, first, same in repeats:
        if same:
            batch.results[index].duplicates += 1
            continue
        where = (f"already read at record {first}" if first_index == index else
                 f"already loaded from {batch.files[first_index].rel} record {first}")
        batch.reject(index, number, raws[(index, number)],
                     f"event_id {event_id} {where} with different content")
    if repeats:
        con.register("_repeats", pa.table({"file_index": [r[0] for r in repeats],
                                           "record_number": [r[1] for r in repeats]}))
        con.execute("delete from _new_events n using _repeats r where "
                    "n.file_index = r.file_index and n.record_number = r.record_number")
        con.unregister("_repeats")


def _ingest_columnar(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig,
                     files: list[_NewFile], schema: Schema | _TextKey, *, salt: str,
                     loaded_at: datetime,
                     texts: list[TextRecords] | None = None) -> list[FileResult] | None:
    """Parquet files of one schema (as `describe` gives it), or CSV files of one header and
    NDJSON files (`texts`: their records), mapped in DuckDB in one statement
    (`journey_core.ingest.columnar`) and committed in one transaction with their ledger rows.

    Loads what `ingest_file` loads file after file, with the same counts, rejects and ledger
    rows. None when the files must go record by record (a reader error, say)."""
    batch = _stage_batch(con, source, files, schema, salt=salt, loaded_at=loaded_at,
                         max_future=config.max_future, texts=texts)
    if batch is None:
        return None
    _commit(con, source, files, batch.results, batch.rejects, batch.raw, loaded_at)
    return [batch.results[i] for i in range(len(files))]


def _stage_batch(con: duckdb.DuckDBPyConnection, source: SourceConfig, files: list[_NewFile],
                 schema: Schema | _TextKey, *, salt: str, loaded_at: datetime,
                 max_future: timedelta | None,
                 texts: list[TextRecords] | None) -> _Batch | None:
    """The batch's events mapped in SQL into the temp table `_new_events`, repeats within the
    batch judged; None when the files must go record by record."""
    latest = loaded_at + max_future if max_future is not None else None
    batch = _Batch(SourceMapper(source, salt, latest), files, loaded_at,
                   {i: FileResult(path=f.rel, source=source.name) for i, f in enumerate(files)},
                   texts=texts)
    mapped = (_map_text_in_sql(con, batch, schema.header, latest)
              if isinstance(schema, _TextKey) else _map_in_sql(con, batch, schema, latest))
    if not mapped:
        return None
    _stage_candidates(con, batch)
    _resolve_repeats(con, batch)
    return batch


def _commit(con: duckdb.DuckDBPyConnection, source: SourceConfig, files: list[_NewFile],
            results: dict[int, FileResult], rejects: list[dict[str, Any]],
            raw: RawLookup,
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
            rejects.append(make_reject(
                source, files[index].rel, number, raws[(index, number)],
                CONFLICTING_DUPLICATE, f"event_id {event_id} already loaded from {file} "
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
        versions = {f.rel: f.version for f in files}
        for reject in rejects:
            reject["file_version"] = versions[reject["file"]]
        con.register("_new_rejects", _arrow(INGEST_REJECTS.column_names, rejects,
                                             _REJECT_SCHEMA))
        con.execute("insert into ingest_rejects by name select * from _new_rejects")
        for index, f in enumerate(files):
            _ledger_row(con, results[index], f, loaded_at, None)
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
        _ledger_row(con, result, new, loaded_at, result.problem)
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
    (`journey_core.ingest.columnar`; not with `columnar=False`, nor while tombstones must be
    applied); other files record by record, one transaction each. Both give the same rows."""
    ensure_tables(con, ["ingested_events", "ingest_rejects", "file_ledger"])
    loaded_at = loaded_at or datetime.now(UTC)
    salt = hash_salt(config)
    summary = IngestSummary(loaded_at=loaded_at)

    def done(result: FileResult) -> None:
        summary.files.append(result)
        if progress:
            progress(result)

    for source in config.sources:
        # Consecutive new files of one schema (CSV: one header) form a batch; files load in
        # path order.
        batch: list[_NewFile] = []
        texts: list[TextRecords] = []
        schema: Schema | _TextKey | None = None

        columnar_ok = columnar and source.format in ("parquet", "csv", "ndjson") and \
            not load_tombstones(con).hashes
        mapper = SourceMapper(source, salt)
        for path in config.source_files(source):
            data = read_file(path)
            rel, content_hash = display_path(config, path), hashlib.sha256(data).hexdigest()
            (loaded, versions), = con.execute(
                "select count(*) filter (where content_hash = ?), "
                "count(*) filter (where path = ?) from file_ledger",
                [content_hash, rel]).fetchall()
            new = _NewFile(path, rel, len(data), content_hash, 1 + versions)
            if loaded or any(f.content_hash == new.content_hash for f in batch):
                _flush(con, config, source, batch, schema, done, salt=salt,
                       loaded_at=loaded_at, texts=texts)
                done(FileResult(path=new.rel, source=source.name, skipped=True))
                continue
            file_schema, records = (_columnar_key(con, mapper, path, data) if columnar_ok
                                    else (None, None))
            held = sum(len(r) for r in texts)
            if batch and (file_schema != schema or held >= TEXT_BATCH_RECORDS):
                _flush(con, config, source, batch, schema, done, salt=salt,
                       loaded_at=loaded_at, texts=texts)
            if file_schema is not None:
                batch.append(new)
                schema = file_schema
                if records is not None:
                    texts.append(records)
            else:
                done(ingest_file(con, config, source, new, data, loaded_at=loaded_at, salt=salt))
        _flush(con, config, source, batch, schema, done, salt=salt, loaded_at=loaded_at,
               texts=texts)
    return summary


#: Records of CSV or NDJSON files mapped in one statement, at most (about): what the batch
#: holds in memory.
TEXT_BATCH_RECORDS = 1_000_000


@dataclass(frozen=True)
class _TextKey:
    """The batch key of a CSV file (its header) or an NDJSON file (None)."""

    header: tuple[str, ...] | None


def _text_records(mapper: SourceMapper, path: Path, data: bytes) -> TextRecords | None:
    """A CSV or NDJSON file's records for the set-based path; None when the file must go
    record by record (it cannot be decoded, a required column is missing from its header, or
    a CSV quote is never closed): that path names the problem, or reads what this one would
    not be sure of. (Quoting that is not RFC 4180's is found per batch, by `_flush`.)"""
    source = mapper.source
    try:
        text = decode(source, path, data)
    except IngestError:
        return None
    records = split_text(source, text or "")
    if records is None:
        return None
    if records.header is not None and any(
            c not in records.header for c in mapper.required_columns().values()):
        return None
    return records


def _columnar_key(con: duckdb.DuckDBPyConnection, mapper: SourceMapper, path: Path,
                  data: bytes) -> tuple[Schema | _TextKey | None, TextRecords | None]:
    """What a file of a source that may be mapped in SQL is batched by (a Parquet file's
    schema, a text file's header), and a text file's records; None when it goes record by
    record (empty, unreadable by DuckDB, or `_text_records` says so)."""
    if not data or mapper.source.format not in ("parquet", "csv", "ndjson"):
        return None, None
    if mapper.source.format == "parquet":
        return describe(con, path), None
    records = _text_records(mapper, path, data)
    return (None, None) if records is None else (_TextKey(records.header), records)


def _not_simple(con: duckdb.DuckDBPyConnection, texts: list[TextRecords]) -> list[int]:
    """The files (indexes of `texts`) with a CSV record that `columnar.not_simple` finds."""
    con.register(TEXT_RECORDS, text_table(texts))
    try:
        return not_simple(con)
    finally:
        con.unregister(TEXT_RECORDS)


def stage_file(con: duckdb.DuckDBPyConnection, source: SourceConfig, path: Path, rel: str,
               data: bytes, *, salt: str, loaded_at: datetime,
               max_future: timedelta | None) -> _Batch | None:
    """One file mapped as a batch of `ingest`'s set-based path maps it, up to the commit:
    its events in the temp table `_new_events` (`ingested_events` columns, `file_index` 0,
    repeats within the file judged), its rejects and counts in the batch returned. For Spark's
    executors (`journey_core.ingest.spark`), which judge repeats across files and commit.
    `path` must be a local copy of `data` (Parquet is read from it); `con` needs an
    `ingested_events` table (empty: repeats of events loaded before are judged later). None
    when the file must go record by record (`parse_file`)."""
    schema, records = _columnar_key(con, SourceMapper(source, salt), path, data)
    if schema is None:
        return None
    texts = None if records is None else [records]
    if texts and isinstance(schema, _TextKey) and schema.header is not None and \
            _not_simple(con, texts):
        return None
    return _stage_batch(con, source, [_NewFile(path, rel, len(data), "")], schema, salt=salt,
                        loaded_at=loaded_at, max_future=max_future, texts=texts)


def redacted_records(source: SourceConfig, path: Path, data: bytes, numbers: list[int], *,
                     salt: str) -> dict[int, str]:
    """The redacted raw text of records `numbers` of a file `stage_file` mapped (`path`: the
    same local copy of `data`), by record number: what a reject quotes of them."""
    mapper = SourceMapper(source, salt)
    texts = None
    if source.format != "parquet":
        records = _text_records(mapper, path, data)
        texts = [records] if records is not None else None
    batch = _Batch(mapper, [_NewFile(path, "", len(data), "")], datetime.now(UTC), {},
                   texts=texts)
    return {n: raw for (_, n), raw in batch.raw([(0, n) for n in numbers]).items()}


def _flush(con: duckdb.DuckDBPyConnection, config: Config, source: SourceConfig,
           batch: list[_NewFile], schema: Schema | _TextKey | None,
           done: Callable[[FileResult], None], *, salt: str, loaded_at: datetime,
           texts: list[TextRecords] | None = None) -> None:
    """Load a batch of files of one schema (file by file when it cannot be mapped in DuckDB),
    report each file, and empty the batch (and `texts`, the records of its text files).

    A CSV file whose quoting the SQL would not read as `csv` does goes record by record, in
    its place: the files before it and after it form batches of their own."""
    text = texts if isinstance(schema, _TextKey) else None
    if text and isinstance(schema, _TextKey) and schema.header is not None:
        bad = _not_simple(con, text)
        if bad:
            k = bad[0]
            _flush(con, config, source, batch[:k], schema, done, salt=salt,
                   loaded_at=loaded_at, texts=text[:k])
            _flush(con, config, source, batch[k:k + 1], None, done, salt=salt,
                   loaded_at=loaded_at)
            _flush(con, config, source, batch[k + 1:], schema, done, salt=salt,
                   loaded_at=loaded_at, texts=text[k + 1:])
            batch.clear()
            text.clear()
            return
    results = batch and schema and _ingest_columnar(con, config, source, batch, schema,
                                                    salt=salt, loaded_at=loaded_at, texts=text)
    for result in results or []:
        done(result)
    if not results:
        for new in batch:
            done(ingest_file(con, config, source, new, new.path.read_bytes(),
                             loaded_at=loaded_at, salt=salt))
    batch.clear()
    if texts is not None:
        texts.clear()
