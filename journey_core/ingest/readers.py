"""Reading source files into raw records: CSV, NDJSON and Parquet, with record numbers.

CSV and NDJSON files may be compressed (`.gz`, `.zst`, `.zstd`, chosen by the name): they are
read as the text they decompress to, record numbers and raw records included.

A record keeps its raw text verbatim (a CSV record's lines, an NDJSON line, a Parquet row as
JSON) and its fields, or the reason it could not be parsed. A file that cannot be read at all
raises IngestError naming the file and the problem.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from journey_core.config import SourceConfig
from journey_core.contract.vocabulary import COMPRESSION


class IngestError(RuntimeError):
    """A file that cannot be read at all; the message names the file and the problem."""


@dataclass(frozen=True)
class RawRecord:
    number: int
    raw: str
    fields: dict[str, Any] | None  # None when the record could not be parsed
    problem: str = ""


def _read_csv(path: Path, text: str) -> Iterator[RawRecord]:
    # csv counts lines by "\n" only; so must we (str.splitlines also splits on U+2028, ...).
    lines = text.split("\n")
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise IngestError(f"{path}: unreadable CSV header: {exc}") from None
    seen = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raw = "\n".join(lines[seen:reader.line_num]).rstrip("\r\n")
            first, seen = seen + 1, reader.line_num
            yield RawRecord(first, raw, None, f"unparseable CSV: {exc}")
            continue
        first, seen = seen + 1, reader.line_num
        raw = "\n".join(lines[first - 1:seen]).rstrip("\r\n")
        if not row:  # a blank line is not a record
            continue
        if len(row) != len(header):
            yield RawRecord(first, raw, None,
                            f"has {len(row)} fields, the header has {len(header)}")
            continue
        fields = {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)}
        yield RawRecord(first, raw, fields)


def _csv_header(text: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text)))
    except (StopIteration, csv.Error):
        return []


def _read_ndjson(text: str) -> Iterator[RawRecord]:
    # Records end at "\n" only: U+2028 and friends are legal inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRecord(number, line, None, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(value, dict):
            yield RawRecord(number, line, None, "is not a JSON object")
            continue
        yield RawRecord(number, line, value)


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: unreadable Parquet file: {exc}") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield RawRecord(number, json.dumps(row, default=str, ensure_ascii=False), row)


def file_columns(source: SourceConfig, path: Path, text: str | None) -> set[str] | None:
    """The file's column names, where the format has a header (CSV, Parquet)."""
    if source.format == "csv":
        return set(_csv_header(text or ""))
    if source.format == "parquet":
        try:
            return set(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"{path}: unreadable Parquet file: {exc}") from None
    return None


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read file: {exc.strerror}") from None


def compression(path: Path) -> str | None:
    """The codec of a compressed file (`gzip`, `zstd`), chosen by its name; None when plain."""
    return COMPRESSION.get(path.suffix.lower())


def decompress(path: Path, data: bytes) -> bytes:
    """The bytes of a file as written before compression (gzip: every member; zstd: every
    frame). A corrupt or truncated file raises IngestError."""
    codec = compression(path)
    if codec is None or not data:
        return data
    try:
        if codec == "gzip":
            return gzip.decompress(data)
        return pa.input_stream(pa.BufferReader(data), compression=codec).read()
    except (OSError, EOFError, zlib.error, pa.ArrowException) as exc:
        raise IngestError(f"{path}: corrupt or truncated {codec} file: {exc}") from None


def decode(source: SourceConfig, path: Path, data: bytes) -> str | None:
    """A text file's content (decompressed when its name says so; UTF-8, a BOM dropped); None
    for Parquet."""
    if source.format not in ("csv", "ndjson"):
        return None
    text = decompress(path, data)
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = "after decompression, " if text is not data else ""
        raise IngestError(f"{path}: not UTF-8 text ({where}byte {exc.start})") from None


def read_records(source: SourceConfig, path: Path, text: str | None) -> Iterator[RawRecord]:
    """The file's records in order, in the source's format."""
    if source.format == "csv":
        return _read_csv(path, text or "")
    if source.format == "ndjson":
        return _read_ndjson(text or "")
    return _read_parquet(path)
