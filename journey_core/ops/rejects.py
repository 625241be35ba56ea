"""Rejected records: a summary, and the replay path (the failure types are the vocabulary's
`REJECT_REASONS`).

Rules:
- every record ingest cannot load stays in `ingest_rejects` with its failure type, the raw
  record (emails and phone numbers redacted), its source, file, file version and record number;
- a record rejected again in a later version of its file (a re-export) is summarized per
  version, and exported once: from its newest version;
- `export_for_replay` writes each source's rejected records in the source's own format (CSV:
  the original file's header line, then the raw lines; NDJSON: the raw lines; Parquet: the rows
  of the raw JSON records, typed like the original file), in a file whose name matches the
  source's path pattern, plus a manifest mapping every exported record to its original file and
  record number. Fixed and moved into the source's landing folder, the file is new content to
  the ledger, so the next run loads it.
"""

from __future__ import annotations

import csv
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from journey_core.config import Config, SourceConfig
from journey_core.contract.vocabulary import FILE_REJECTED
from journey_core.ingest.readers import IngestError, decode, read_file
from journey_core.model import DuckDBEngine, Engine

#: Written next to the exported files; never matches a source's `*.csv` / `*.ndjson` pattern.
MANIFEST = "replay_manifest.tsv"
MANIFEST_COLUMNS = ("replay_file", "replay_record", "source", "landing_folder", "original_file",
                    "original_record", "reason", "detail", "original_version")


class RejectsError(RuntimeError):
    """Rejected records cannot be summarized or exported; the message says why."""


@dataclass(frozen=True)
class RejectGroup:
    """Rejected records of one source, failure type and file version."""

    source: str
    reason: str
    file: str
    records: int
    first_record: int
    #: The detail of the group's first record (what exactly was wrong).
    example: str
    #: Which version of the file (see `file_ledger.file_version`).
    version: int = 1


#: The warehouse connection (the DuckDB file's tables), or the engine whose tables ingest
#: wrote (Spark's, with `spark.ingest: spark`).
Tables = duckdb.DuckDBPyConnection | Engine


def _engine(db: Tables) -> Engine:
    """The engine the statements run on (they are written in DuckDB's dialect)."""
    engine = DuckDBEngine(db) if isinstance(db, duckdb.DuckDBPyConnection) else db
    if not engine.exists("main", "ingest_rejects"):
        raise RejectsError("the warehouse has no ingest_rejects table: run `journeys run` first")
    return engine


def summarize(db: Tables, source: str | None = None) -> list[RejectGroup]:
    """Rejected records counted by source, failure type and file version (optionally of one
    source)."""
    rows = _engine(db).rows(
        """
        select source, reason, file, count(*) as records, min(record_number),
               arg_min(detail, record_number), file_version
        from main.ingest_rejects
        where $source is null or source = $source
        group by source, reason, file, file_version
        order by source, reason, file, file_version
        """, {"source": source})
    return [RejectGroup(*row) for row in rows]


@dataclass(frozen=True)
class RejectedFile:
    """A file that could not be read at all (kept in the ledger, never loaded)."""

    source: str
    path: str
    problem: str


def rejected_files(db: Tables, source: str | None = None) -> list[RejectedFile]:
    """Files rejected whole: fix or replace the file in its landing folder (new content loads)."""
    return [RejectedFile(*row) for row in _engine(db).rows(
        """
        select source, path, problem from main.file_ledger
        where status = $rejected and ($source is null or source = $source)
        order by source, path
        """, {"source": source, "rejected": FILE_REJECTED})]


def matches_source(source: SourceConfig, name: str) -> bool:
    """A file of this name in the landing folder is read as one of the source's files."""
    return fnmatch.fnmatchcase(name, Path(source.path).name)


def replay_name(source: SourceConfig, tag: str) -> str:
    """A file name the source's path pattern matches, made unique by `tag`."""
    pattern = Path(source.path).name
    if "*" in pattern:
        name = pattern.replace("*", tag, 1).replace("*", "").replace("?", "x")
        if matches_source(source, name):
            return name
    stem, dot, suffix = pattern.partition(".")
    return f"{stem.replace('*', '').replace('?', 'x')}.{tag}{dot}{suffix}"


def export_for_replay(db: Tables, config: Config, out_dir: Path,
                      source: str | None = None, *, now: datetime | None = None) -> list[Path]:
    """Write the rejected records of each source (or of one) for fixing and replay.

    One file per source under `out_dir/<source>/` (one per distinct CSV header or Parquet
    schema), named to match the source's path pattern, and `out_dir/replay_manifest.tsv`.
    Returns the data files. Raises RejectsError for an unknown source, or a CSV file whose
    original (needed for its header line) is gone."""
    engine = _engine(db)
    sources = {s.name: s for s in config.sources}
    if source is not None and source not in sources:
        raise RejectsError(f"unknown source {source!r}; the config has: {', '.join(sources)}")
    tag = "replay-" + (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    rows = engine.rows(
        """
        select source, file, record_number, raw_record, reason, detail, file_version
        from main.ingest_rejects
        where $source is null or source = $source
        -- the same record rejected again in a later version of its file: once, the newest
        qualify row_number() over (partition by source, file, record_number, raw_record
                                   order by file_version desc) = 1
        order by source, file, record_number
        """, {"source": source})
    by_source: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_source.setdefault(row[0], []).append(row)
    unknown = sorted(set(by_source) - set(sources))
    if unknown:
        raise RejectsError(f"rejected records of source(s) {unknown} that the config does not "
                           "have: pass the config the warehouse was built with")

    out_dir = Path(out_dir)
    written: list[Path] = []
    manifest: list[list[Any]] = []
    for name, records in by_source.items():
        spec = sources[name]
        groups = _groups(config, spec, records)
        for index, (key, group) in enumerate(groups.items(), start=1):
            suffix = f"-{index}" if len(groups) > 1 else ""
            path = out_dir / name / replay_name(spec, tag + suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            numbers = _write(spec, path, key, [r[3] for r in group])
            written.append(path)
            folder = config.landing_folder(spec)
            manifest += [[path.relative_to(out_dir).as_posix(), number, name, folder.as_posix(),
                          r[1], r[2], r[4], r[5], r[6]]
                         for number, r in zip(numbers, group, strict=True)]
    if written:
        with (out_dir / MANIFEST).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(MANIFEST_COLUMNS)
            writer.writerows(manifest)
    return written


def _original(config: Config, file: str) -> Path:
    path = Path(file)
    return path if path.is_absolute() else config.base_dir / path


def _groups(config: Config, source: SourceConfig,
            records: list[tuple[Any, ...]]) -> dict[Any, list[tuple[Any, ...]]]:
    """Records that can share one replay file: same CSV header line, same Parquet schema."""
    keys: dict[str, Any] = {}
    groups: dict[Any, list[tuple[Any, ...]]] = {}
    for record in records:
        file = record[1]
        if file not in keys:
            keys[file] = _file_key(config, source, file)
        groups.setdefault(keys[file], []).append(record)
    return groups


def _file_key(config: Config, source: SourceConfig, file: str) -> Any:
    original = _original(config, file)
    if source.format == "csv":
        if not original.is_file():
            raise RejectsError(
                f"{original}: the original file is gone, and its header line is needed to "
                f"replay its rejected records (source {source.name!r})")
        try:  # read as ingest reads it (a compressed file decompressed)
            text = decode(source, original, read_file(original)) or ""
        except IngestError as exc:
            raise RejectsError(f"{exc}: its header line is needed to replay its rejected "
                               f"records (source {source.name!r})") from None
        return text.split("\n", 1)[0].rstrip("\r")
    if source.format == "parquet":
        try:
            return pq.read_schema(original)
        except (OSError, pa.ArrowException):
            return None  # types are then read from the JSON values
    return None


def _write(source: SourceConfig, path: Path, key: Any, raws: list[str]) -> list[int]:
    """Write the records; return each one's record number in the new file (ingest's
    numbering: CSV header = line 1, NDJSON line, Parquet row from 1)."""
    if source.format == "parquet":
        pq.write_table(_parquet_rows([json.loads(r) for r in raws], key), path)
        return list(range(1, len(raws) + 1))
    lines, numbers = [], []
    line = 1
    if source.format == "csv":
        lines.append(key)
        line += 1
    for raw in raws:
        numbers.append(line)
        lines.append(raw)
        line += raw.count("\n") + 1
    path.write_text("".join(f"{text}\n" for text in lines), encoding="utf-8")
    return numbers


def _parquet_rows(rows: list[dict[str, Any]], schema: pa.Schema | None) -> pa.Table:
    """Rows typed like the original file when they fit its schema, else as read from JSON."""
    if schema is not None:
        try:
            return pa.Table.from_pylist([_typed(row, schema) for row in rows], schema=schema)
        except (pa.ArrowException, ValueError, TypeError):
            pass
    return pa.Table.from_pylist(rows)


def _typed(row: dict[str, Any], schema: Iterable[pa.Field]) -> dict[str, Any]:
    """JSON turned timestamps and dates into text; give them back their type."""
    out = dict(row)
    for f in schema:
        value = row.get(f.name)
        if isinstance(value, str) and pa.types.is_timestamp(f.type):
            out[f.name] = datetime.fromisoformat(value)
        elif isinstance(value, str) and pa.types.is_date(f.type):
            out[f.name] = date.fromisoformat(value)
    return out
