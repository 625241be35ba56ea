"""Reading source files into raw records: CSV, NDJSON and Parquet, with record numbers.

CSV and NDJSON files may be compressed (`.gz`, `.zst`, `.zstd`, chosen by the name): they are
read as the text they decompress to, record numbers and raw records included.

A record keeps its raw text verbatim (a CSV record's lines, an NDJSON line, a Parquet row as
JSON) and its fields, or the reason it could not be parsed. A file that cannot be read at all
raises IngestError naming the file and the problem.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import re
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
        record = _csv_record(header, first, "\n".join(lines[first - 1:seen]).rstrip("\r\n"),
                             row)
        if record is not None:
            yield record


def _csv_record(header: Sequence[str], number: int, raw: str,
                row: list[str]) -> RawRecord | None:
    """The record of a parsed CSV row: its fields by the header (empty ones None), or why it
    has none; None for a blank line, which is not a record."""
    if not row:
        return None
    if len(row) != len(header):
        return RawRecord(number, raw, None,
                         f"has {len(row)} fields, the header has {len(header)}")
    return RawRecord(number, raw, {k: (v if v != "" else None)
                                   for k, v in zip(header, row, strict=True)})


@dataclass(frozen=True)
class TextRecords:
    """A text file split into its records without parsing them, for the set-based path
    (`journey_core.ingest.columnar`): each record's number and raw text, exactly as
    `read_records` numbers and keeps them (Arrow arrays); the header of a CSV file."""

    numbers: pa.Int64Array
    raws: pa.StringArray
    header: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.numbers)

    def record(self, number: int) -> RawRecord | None:
        """Record `number` parsed as `read_records` parses it; None for a blank record (which
        `read_records` skips)."""
        at = int(np.searchsorted(self.numbers.to_numpy(), number))
        raw = self.raws[at].as_py()
        if self.header is None:
            found = next(_read_ndjson(raw), None)
            return None if found is None else dataclasses.replace(found, number=number)
        try:
            row = next(csv.reader(io.StringIO(raw), strict=True), [])
        except csv.Error as exc:
            return RawRecord(number, raw, None, f"unparseable CSV: {exc}")
        return _csv_record(self.header, number, raw, row)


#: A CSV record the set-based path reads like `csv.reader`: every field unquoted without a
#: quote, comma, CR or LF, or quoted with inner quotes doubled (RFC 4180).
_SIMPLE_CSV_FIELD = '("(?:[^"]|"")*"|[^",\r\n]*)'
#: What `str.strip()` strips: every character for which `str.isspace()` holds.
_PY_WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


def csv_pattern(fields: int | None) -> str:
    """The regular expression (RE2, for DuckDB) of a simple CSV record of `fields` fields, each
    field a capture group (None: of any number of fields)."""
    if fields is None:
        return f"^{_SIMPLE_CSV_FIELD}(,{_SIMPLE_CSV_FIELD})*$"
    return "^" + ",".join([_SIMPLE_CSV_FIELD] * fields) + "$"


def split_text(source: SourceConfig, text: str) -> TextRecords | None:
    """The records of a CSV or NDJSON text, unparsed (split by Arrow); None when the set-based
    path cannot be sure where a CSV record ends (a quote never closed), so that the file must be
    read record by record.

    NDJSON: a record is a line (without its CR); blank lines (`not line.strip()`) are none.
    CSV: a record ends at the first LF outside quotes, which for simple quoting (see
    `csv_pattern`; the caller checks it) is where the count of quotes so far is even; its raw
    text is its lines without the trailing CRs and LFs, and its number that of its first line;
    the first record is the header."""
    lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    numbers = np.arange(1, len(lines) + 1, dtype=np.int64)
    if source.format == "ndjson":
        keep = pc.invert(pc.equal(pc.utf8_trim(lines, _PY_WHITESPACE), ""))
        raws = pc.replace_substring_regex(lines, "\r$", "", max_replacements=1)
        return TextRecords(pa.array(numbers[keep.to_numpy(zero_copy_only=False)]),
                           raws.filter(keep).cast(pa.string()))
    odd = pc.bit_wise_and(pc.count_substring(lines, '"'), 1).to_numpy().astype(bool)
    if odd.any():  # a record over several lines: join them
        starts, ends, inside = [], [], False
        for i in np.flatnonzero(odd):
            (ends if inside else starts).append(int(i))
            inside = not inside
        if inside:
            return None
        pieces = lines.to_pylist()
        continued = np.zeros(len(pieces), dtype=bool)
        for first, last in zip(starts, ends, strict=True):
            pieces[first] = "\n".join(pieces[first:last + 1])
            continued[first + 1:last + 1] = True
        lines = pa.array([p for p, c in zip(pieces, continued, strict=True) if not c],
                         pa.large_string())
        numbers = numbers[~continued]
    raws = pc.utf8_rtrim(lines, "\r\n")
    keep = pc.not_equal(raws, "")
    numbers, raws = numbers[keep.to_numpy(zero_copy_only=False)], raws.filter(keep)
    if not len(raws):
        return TextRecords(pa.array([], pa.int64()), pa.array([], pa.string()), ())
    try:
        header = next(csv.reader(io.StringIO(raws[0].as_py()), strict=True))
    except (csv.Error, StopIteration):
        return None
    if not re.fullmatch(csv_pattern(len(header)), raws[0].as_py()):
        return None
    return TextRecords(pa.array(numbers[1:]), raws.slice(1).cast(pa.string()), tuple(header))


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
        if "\\u" in line and not _unicode(value):
            yield RawRecord(number, line, None,
                            "not valid JSON: an escaped unpaired surrogate (\\ud800-\\udfff)")
            continue
        yield RawRecord(number, line, value)


def _unicode(value: Any) -> bool:
    """The parsed JSON holds only valid Unicode text (`json.loads` lets an escaped unpaired
    surrogate through, and no UTF-8 text can hold it)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parquet(path: Path, data: bytes | None) -> Path | pa.BufferReader:
    """Where a Parquet file is read from: its bytes when the caller has them (an executor
    holding what Spark's reader read need not see the path), else its path."""
    return path if data is None else pa.BufferReader(data)


def _read_parquet(path: Path, data: bytes | None = None) -> Iterator[RawRecord]:
    try:
        table = pq.read_table(_parquet(path, data))
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: unreadable Parquet file: {exc}") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield RawRecord(number, json.dumps(row, default=str, ensure_ascii=False), row)


def file_columns(source: SourceConfig, path: Path, text: str | None,
                 data: bytes | None = None) -> set[str] | None:
    """The file's column names, where the format has a header (CSV, Parquet: from `data`, its
    bytes, when given)."""
    if source.format == "csv":
        return set(_csv_header(text or ""))
    if source.format == "parquet":
        try:
            return set(pq.read_schema(_parquet(path, data)).names)
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


def read_records(source: SourceConfig, path: Path, text: str | None,
                 data: bytes | None = None) -> Iterator[RawRecord]:
    """The file's records in order, in the source's format (Parquet: from `data`, its bytes,
    when given)."""
    if source.format == "csv":
        return _read_csv(path, text or "")
    if source.format == "ndjson":
        return _read_ndjson(text or "")
    return _read_parquet(path, data)
