"""A config dry run: read every source file as ingest would, write nothing, report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from journey_core.config import Config
from journey_core.ingest.loader import display_path, hash_salt
from journey_core.ingest.mapping import parse_file
from journey_core.ingest.readers import IngestError, read_file


@dataclass
class FileCheck:
    path: str
    source: str
    read: int = 0
    would_load: int = 0
    duplicates: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"  FAIL {self.path}: {self.error}"
        rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejects.items()))
        return (f"  ok   {self.path}: {self.read} records, {self.would_load} to load"
                + (f", {self.duplicates} duplicates" if self.duplicates else "")
                + (f", rejected: {rejected}" if rejected else ""))


@dataclass
class SourceCheck:
    name: str
    pattern: str
    files: list[FileCheck]


def dry_run(config: Config) -> list[SourceCheck]:
    """Parse every file of every source with the config's mapping; collect, never raise, the
    problems of each file so one run shows them all."""
    salt = hash_salt(config)
    seen: set[str] = set()  # event ids of earlier files: those are duplicates, as in ingest
    checks = []
    for source in config.sources:
        files = []
        for path in config.source_files(source):
            rel = display_path(config, path)
            check = FileCheck(rel, source.name)
            try:
                parsed = parse_file(source, path, rel, read_file(path), salt=salt,
                                    loaded_at=datetime(1970, 1, 1, tzinfo=UTC))
            except IngestError as exc:
                check.error = str(exc)
            else:
                again = parsed.events.keys() & seen
                seen.update(parsed.events)
                check.read = parsed.read
                check.duplicates = parsed.duplicates + len(again)
                check.would_load = len(parsed.events) - len(again)
                check.rejects.update(r["reason"] for r in parsed.rejects)
            files.append(check)
        checks.append(SourceCheck(source.name, source.path, files))
    return checks
