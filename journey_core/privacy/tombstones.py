"""Tombstones: what keeps a forgotten person forgotten.

A tombstone keeps the sha256 of each forgotten identifier (never the identifier), so ingest
treats a re-ingested old file the same way and cannot bring the person back. "Mention" means a
whole value (a JSON value, a CSV field, a redaction token, a word) equal to an identifier of
six characters or more: shorter ones would match unrelated values.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from journey_core.contract.schema import FORGOTTEN_IDENTIFIERS
from journey_core.contract.vocabulary import IDENTIFIER_TYPES
from journey_core.warehouse import exists

#: Identifiers shorter than this are matched in identifier columns only, never as mentions.
MIN_MENTION = 6
_REDACTED = re.compile(r"\[redacted sha256:([0-9a-f]{64})\]")
_WORD = re.compile(r"[^\w.@+:\-]+")


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
        present = [(c, record[c]) for c in IDENTIFIER_TYPES if record.get(c) is not None]
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


def ensure_tombstone_table(con: duckdb.DuckDBPyConnection) -> None:
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
