"""Shared test helpers: build a warehouse from tiny inline event lists."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from journey_core.config import Config
from journey_core.contract.schema import INGESTED_EVENTS, PUBLISHED
from journey_core.ingest.loader import _EVENT_SCHEMA
from journey_core.ops import rebuild
from journey_core.warehouse import connect, ensure_tables

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)

DEFAULT_RULES = [
    {"stage": "awareness", "event_type": ["page_view", "ad_click"]},
    {"stage": "consideration", "event_type": ["product_view", "add_to_cart", "checkout_start"]},
    {"stage": "conversion", "event_type": "purchase"},
    {"stage": "retention", "event_type": ["call", "complaint"]},
    {"stage": "advocacy", "event_type": ["review", "referral"]},
]


def at(minutes: float = 0, *, days: float = 0, seconds: float = 0) -> datetime:
    """T0 plus an offset: `at(30)` is 30 minutes after T0."""
    return T0 + timedelta(days=days, minutes=minutes, seconds=seconds)


def make_config(**overrides: Any) -> Config:
    """A config with one dummy source and the default stage rules; override any key."""
    raw: dict[str, Any] = {
        "sources": [{"name": "test", "path": "none/*.csv", "format": "csv"}],
        "stages": {"rules": DEFAULT_RULES},
    }
    raw.update(overrides)
    return Config.model_validate(raw)


def event(event_id: str, occurred_at: datetime, *, customer_id: str | None = None,
          anonymous_id: str | None = None, email_hash: str | None = None,
          phone_hash: str | None = None, event_type: str = "page_view", channel: str = "web",
          touchpoint: str | None = None, **extra: Any) -> dict[str, Any]:
    """One canonical ingested event; at least one identifier must be given."""
    row = {c: None for c in INGESTED_EVENTS.column_names}
    row.update(
        event_id=event_id, occurred_at=occurred_at, ingested_at=T0, source="test",
        channel=channel, event_type=event_type,
        touchpoint=touchpoint or f"{channel}/{event_type}", customer_id=customer_id,
        anonymous_id=anonymous_id, email_hash=email_hash, phone_hash=phone_hash,
        file="inline", record_number=1, properties="{}",
    )
    row.update(extra)
    return row


def build_warehouse(tmp_path: Path, events: list[dict[str, Any]], config: Config | None = None,
                    *, as_of: datetime | None = None) -> duckdb.DuckDBPyConnection:
    """Load `events` as ingested events and build every published table; return the connection."""
    config = config or make_config()
    con = connect(tmp_path / "wh")
    ensure_tables(con)
    con.register("_rows", pa.Table.from_pylist(events, schema=_EVENT_SCHEMA))
    con.execute("insert into ingested_events select * from _rows")
    con.unregister("_rows")
    rebuild(con, config, tmp_path / "wh", as_of=as_of)
    return con


def rows(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> list:
    return con.execute(query, params or []).fetchall()


#: Columns that record when the pipeline loaded a record: the wall clock, not the inputs.
CLOCK_COLUMNS = frozenset({"ingested_at", "rejected_at"})


def published_snapshot(con: duckdb.DuckDBPyConnection,
                       ignore: dict[str, set[str]] | None = None) -> dict[str, list]:
    """Every published table's rows, sorted, without the load timestamps (nor the columns
    `ignore` names per table)."""
    snapshot = {}
    for table in PUBLISHED:
        drop = CLOCK_COLUMNS | (ignore or {}).get(table.name, set())
        cols = ", ".join(f'"{c}"' for c in table.column_names if c not in drop)
        data = con.execute(f'select {cols} from main."{table.name}"').fetchall()
        snapshot[table.name] = sorted(data, key=repr)
    return snapshot


def file_day(rel: Path) -> date:
    """The day a sample file covers: `ads_2026-09-01.csv` -> that day; `app_2026-W37` -> the
    Sunday that ends the ISO week."""
    tail = rel.stem.rsplit("_", 1)[1]
    if "-W" in tail:
        year, week = tail.split("-W")
        return date.fromisocalendar(int(year), int(week), 7)
    return date.fromisoformat(tail)


#: The nightly tests' landing schedule (`arrival_day`): days after its own day (its date, or
#: the Sunday ending its ISO week) that a file lands.
DELAYS = {"store": 3, "surveys": 7}


def arrival_day(rel: Path) -> date:
    """Stores upload three days at once, the survey tool a week late, and every tenth day's
    web export lands four days late, after the days that follow it."""
    delay = DELAYS.get(rel.parts[0], 0)
    if rel.parts[0] == "web" and file_day(rel).day % 10 == 0:
        delay = 4
    return file_day(rel) + timedelta(days=delay)


def sample_files(sample: Path) -> list[Path]:
    return sorted(p.relative_to(sample) for p in sample.rglob("*")
                  if p.is_file() and p.parent != sample)


def landing(tmp: Path, sample: Path, name: str) -> Path:
    """An empty landing folder with the sample's config; returns the config path."""
    root = tmp / name
    root.mkdir()
    shutil.copy(sample / "journeys.yaml", root / "journeys.yaml")
    for folder in {p.parts[0] for p in sample_files(sample)}:
        (root / folder).mkdir()
    return root / "journeys.yaml"
