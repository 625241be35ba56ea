"""Synthetic multichannel events at any scale, for the benchmark (`make bench`).

Deterministic for a given size and seed: persons (one in five anonymous only, one in ten in a
B2B account), sessions of about six events 5 s to 5 min apart over 90 days (or `days`),
web/app/email/call center/survey events with revenue on purchases and NPS on survey answers.
Written as canonical Parquet (one file per day and chunk, already in the canonical column names
and types) so that the benchmark measures the pipeline rather than text parsing;
`write_text_formats` writes the same events as CSV and NDJSON for the ingest comparison.

Vectorized with numpy and Arrow, in chunks of sessions, so 100M events need a few GB at most.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

SEED = 20261123
DAYS = 90
START = datetime(2025, 10, 1, tzinfo=UTC)  # in the past: never rejected as "future"
CHUNK_EVENTS = 10_000_000

#: event type -> (probability, channel of the event)
EVENT_TYPES = {
    "page_view": (0.45, "web"),
    "product_view": (0.22, "web"),
    "add_to_cart": (0.08, "web"),
    "checkout_start": (0.04, "web"),
    "purchase": (0.03, "web"),
    "email_open": (0.10, "email"),
    "call": (0.03, "call_center"),
    "survey_response": (0.05, "survey"),
}

CONFIG = {
    "session_timeout": "30m",
    "journey_timeout": "7 days",
    "stages": {
        "order": ["awareness", "consideration", "conversion", "retention", "advocacy"],
        "conversion": "conversion",
        "rules": [
            {"stage": None, "event_type": ["survey_response"]},
            {"stage": "awareness", "event_type": ["email_open", "page_view"]},
            {"stage": "consideration",
             "event_type": ["product_view", "add_to_cart", "checkout_start"]},
            {"stage": "conversion", "event_type": "purchase"},
            {"stage": "retention", "event_type": ["call"]},
        ],
    },
    "segments": [
        {"name": "business", "column": "account_id", "scope": "person", "present": "b2b",
         "missing": "b2c"},
        {"name": "first_channel", "column": "channel", "scope": "journey"},
    ],
}


# --- data ----------------------------------------------------------------------------------


def _prefixed(prefix: str, numbers: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """`prefix` + number as strings, null where `null` is true (vectorized in Arrow)."""
    text = pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")
    if null is None:
        return text
    return pc.if_else(pa.array(null), pa.scalar(None, pa.string()), text)


def generate(n: int, folder: Path, *, seed: int = SEED, days: int = DAYS) -> None:
    """n events: ~n/12 persons (1 in 5 anonymous only), ~6-event sessions, over `days` days
    from START, written to `folder/events/day-DDD-KKK.parquet` with `folder/journeys.yaml`."""
    events = folder / "events"
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    persons = max(1, n // 12)
    chunks = max(1, -(-n // CHUNK_EVENTS))
    for k in range(chunks):
        lo, hi = n * k // chunks, n * (k + 1) // chunks
        _chunk(np.random.default_rng([seed, k]), lo, hi - lo, persons, events, k, days)
    config = {"sources": [{"name": "events", "path": "events/*.parquet", "format": "parquet"}],
              **CONFIG}
    (folder / "journeys.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _chunk(rng: np.random.Generator, id_base: int, n: int, persons: int, events: Path,
           k: int, days: int) -> None:
    sessions = max(1, n // 6)
    # Events grouped into sessions (sorted session index: variable session lengths).
    session = np.sort(rng.integers(0, sessions, n))
    s_person = rng.integers(0, persons, sessions)
    s_day = rng.integers(0, days, sessions)
    s_start = s_day * 86_400 + rng.integers(0, 86_400 - 3_600, sessions)
    # Within a session: events 5 s to 5 min apart.
    gaps = rng.integers(5, 300, n)
    cum = np.cumsum(gaps)
    first = np.searchsorted(session, session)  # index of the session's first event
    offset = cum - cum[first]
    seconds = s_start[session] + offset
    micros = seconds * 1_000_000 + rng.integers(0, 1_000_000, n)
    person = s_person[session]

    names = list(EVENT_TYPES)
    probs = np.array([EVENT_TYPES[t][0] for t in names])
    kind = rng.choice(len(names), n, p=probs / probs.sum())
    channels = sorted({c for _, c in EVENT_TYPES.values()})
    kind_channel = np.array([channels.index(EVENT_TYPES[t][1]) for t in names])
    channel_idx = kind_channel[kind]
    # 30% of web traffic is the app.
    is_web = channel_idx == channels.index("web")
    app = is_web & (rng.random(n) < 0.3)
    channels.append("app")
    channel_idx = np.where(app, len(channels) - 1, channel_idx)

    anonymous_person = person % 5 == 0
    logged_in = rng.random(n) < 0.6
    web_like = is_web
    customer_null = anonymous_person | (web_like & ~logged_in)
    anonymous_null = ~web_like & ~anonymous_person  # offline channels carry the customer id
    is_purchase = kind == names.index("purchase")
    is_survey = kind == names.index("survey_response")

    event_type = pa.DictionaryArray.from_arrays(pa.array(kind.astype(np.int32)), names)
    channel = pa.DictionaryArray.from_arrays(pa.array(channel_idx.astype(np.int32)), channels)
    event_type = event_type.cast(pa.string())
    channel = channel.cast(pa.string())
    touchpoint = pc.binary_join_element_wise(channel, event_type, "/")
    revenue = np.round(rng.gamma(2.0, 40.0, n), 2)
    nps = rng.integers(0, 11, n)
    account_null = ~(person % 10 == 1)
    table = pa.table({
        "event_id": _prefixed("e", np.arange(id_base, id_base + n)),
        "occurred_at": pa.array(micros + int(START.timestamp()) * 1_000_000,
                                pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "channel": channel,
        "touchpoint": touchpoint,
        "event_type": event_type,
        "customer_id": _prefixed("c", person, customer_null),
        "anonymous_id": _prefixed("a", person, anonymous_null),
        "account_id": _prefixed("acct", person // 7, account_null),
        "revenue": pa.array(revenue, mask=~is_purchase),
        "nps_score": pa.array(nps, mask=~is_survey),
        "rated_touchpoint": pc.if_else(pa.array(is_survey), "web/purchase",
                                       pa.scalar(None, pa.string())),
    })
    day = (seconds // 86_400).astype(np.int32)
    for d in np.unique(day):  # a late session may spill into day 31
        part = table.filter(pa.array(day == d))
        pq.write_table(part, events / f"day-{d:03d}-{k:03d}.parquet", compression="zstd")


def write_text_formats(folder: Path, target: Path) -> dict[str, Path]:
    """The events of `folder` as CSV, NDJSON and gzipped NDJSON files (one per Parquet file)
    under `target`, with a config for each format; returns format -> config path."""
    configs = {}
    for fmt, ext in (("csv", "csv"), ("ndjson", "ndjson"), ("ndjson-gz", "ndjson.gz")):
        out = target / fmt / "events"
        shutil.rmtree(out.parent, ignore_errors=True)
        out.mkdir(parents=True)
        for path in sorted((folder / "events").glob("*.parquet")):
            table = pq.read_table(path)
            table = table.set_column(
                1, "occurred_at", pc.strftime(table["occurred_at"], "%Y-%m-%dT%H:%M:%SZ"))
            if fmt == "csv":
                pacsv.write_csv(table, out / f"{path.stem}.{ext}")
                continue
            lines = "".join(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n"
                            for row in table.to_pylist()).encode()
            (out / f"{path.stem}.{ext}").write_bytes(
                gzip.compress(lines, compresslevel=6) if ext.endswith(".gz") else lines)
        source = {"name": "events", "path": f"events/*.{ext}", "format": fmt.split("-")[0]}
        config = {"sources": [source], **CONFIG}
        (out.parent / "journeys.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        configs[fmt] = out.parent / "journeys.yaml"
    return configs


