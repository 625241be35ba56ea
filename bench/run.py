"""Benchmark: the full pipeline against a DuckDB floor on synthetic canonical events.

    BENCH_SIZES=1000000,10000000 BENCH_REPEATS=3 .venv/bin/python bench/run.py

For each size: generate (once, cached under bench/.data/<N>/) deterministic events as one
Parquet file per day plus a config; then, interleaved, `BENCH_REPEATS` times each:

- floor: DuckDB reads the same Parquet, orders by person key (customer_id, else anonymous_id),
  occurred_at, event_id, and writes Parquet;
- pipeline: `ingest_files` then `rebuild` (the two parts of `run_pipeline`) into a fresh
  warehouse folder: ingest through every published table and Parquet export.

Each measurement runs in its own child process (`bench/run.py --one ...`), which reports its
timings and its peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`). Medians go to stdout and, with
machine info, to bench/results/<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / ".data"
RESULTS = BENCH / "results"
SEED = 20261123
DAYS = 30
START = datetime(2025, 10, 1, tzinfo=UTC)  # in the past: never rejected as "future"

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


def generate(n: int, folder: Path) -> None:
    """n events: ~n/12 persons (1 in 5 anonymous only), ~6-event sessions, 30 days."""
    rng = np.random.default_rng(SEED)
    persons = max(1, n // 12)
    sessions = max(1, n // 6)
    # Events grouped into sessions (sorted session index: variable session lengths).
    session = np.sort(rng.integers(0, sessions, n))
    s_person = rng.integers(0, persons, sessions)
    s_day = rng.integers(0, DAYS, sessions)
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
        "event_id": _prefixed("e", np.arange(n)),
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
    events = folder / "events"
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    for d in np.unique(day):  # a late session may spill into day 31
        part = table.filter(pa.array(day == d))
        pq.write_table(part, events / f"day-{d:02d}.parquet", compression="zstd")
    config = {"sources": [{"name": "events", "path": "events/*.parquet", "format": "parquet"}],
              **CONFIG}
    (folder / "journeys.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "READY").write_text(str(n))


def ensure_data(n: int) -> tuple[Path, float | None]:
    folder = DATA / str(n)
    if (folder / "READY").is_file():
        return folder, None
    started = time.perf_counter()
    generate(n, folder)
    return folder, time.perf_counter() - started


# --- one measurement (child process) ---------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure_floor(folder: Path, work: Path) -> dict[str, float]:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(
        f"copy (select * from read_parquet('{folder / 'events' / '*.parquet'}') "
        "order by coalesce(customer_id, anonymous_id), occurred_at, event_id) "
        f"to '{work / 'floor.parquet'}' (format parquet, compression zstd)")
    con.close()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": _rss_mb()}


def measure_pipeline(folder: Path, work: Path) -> dict[str, float]:
    from journey_core.config import load_config
    from journey_core.pipeline import ingest_files, rebuild
    from journey_core.warehouse import connect

    config = load_config(folder / "journeys.yaml")
    started = time.perf_counter()
    con = connect(work / "warehouse")
    summary = ingest_files(con, config)  # run_pipeline = ingest_files, then rebuild
    ingested = time.perf_counter()
    rss_ingest = _rss_mb()
    result = rebuild(con, config, work / "warehouse")
    con.close()
    done = time.perf_counter()
    return {"seconds": done - started, "ingest_seconds": ingested - started,
            "build_publish_seconds": done - ingested, "peak_rss_mb": _rss_mb(),
            "peak_rss_ingest_mb": rss_ingest, "loaded": summary.total("loaded"),
            "rejected": summary.total("rejected"), "events_rows": result.row_counts["events"]}


def one(kind: str, n: int) -> None:
    folder = DATA / str(n)
    work = folder / "runs" / f"{kind}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        out = measure_floor(folder, work) if kind == "floor" else measure_pipeline(folder, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


def child(kind: str, n: int) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--one", kind, "--size", str(n)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{kind} at {n} events failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- driver ------------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    import duckdb
    import polars

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"nproc": len(os.sched_getaffinity(0)), "total_memory_gb": round(pages / 2**30, 1),
            "python": platform.python_version(), "duckdb": duckdb.__version__,
            "pyarrow": pa.__version__, "polars": polars.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "machine": platform.machine()}


def bench_size(n: int, repeats: int) -> dict[str, object]:
    _, gen_seconds = ensure_data(n)
    if gen_seconds is not None:
        print(f"generated {n:,} events in {gen_seconds:.1f}s", file=sys.stderr)
    floors, pipes = [], []
    for r in range(repeats):
        # Interleaved, alternating which goes first so drift hits both alike.
        order = ("floor", "pipeline") if r % 2 == 0 else ("pipeline", "floor")
        for kind in order:
            res = child(kind, n)
            (floors if kind == "floor" else pipes).append(res)
            print(f"  {n:,} repeat {r + 1}/{repeats} {kind}: {res['seconds']:.2f}s",
                  file=sys.stderr)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    floor_s, pipe_s = med(floors, "seconds"), med(pipes, "seconds")
    return {
        "size": n, "repeats": repeats, "generate_seconds": gen_seconds,
        "floor_seconds": floor_s, "pipeline_seconds": pipe_s,
        "floor_events_per_s": n / floor_s, "pipeline_events_per_s": n / pipe_s,
        "ratio": pipe_s / floor_s,
        "ingest_seconds": med(pipes, "ingest_seconds"),
        "build_publish_seconds": med(pipes, "build_publish_seconds"),
        "floor_peak_rss_mb": max(row["peak_rss_mb"] for row in floors),
        "pipeline_peak_rss_mb": max(row["peak_rss_mb"] for row in pipes),
        "ingest_peak_rss_mb": max(row["peak_rss_ingest_mb"] for row in pipes),
        "loaded": pipes[0]["loaded"], "rejected": pipes[0]["rejected"],
        "events_rows": pipes[0]["events_rows"],
        "floor_runs": floors, "pipeline_runs": pipes,
    }


COLUMNS = (("size", "{:,}"), ("floor_seconds", "{:.2f}"), ("pipeline_seconds", "{:.2f}"),
           ("floor_events_per_s", "{:,.0f}"), ("pipeline_events_per_s", "{:,.0f}"),
           ("ratio", "{:.1f}"), ("ingest_seconds", "{:.2f}"), ("build_publish_seconds", "{:.2f}"),
           ("floor_peak_rss_mb", "{:,.0f}"), ("pipeline_peak_rss_mb", "{:,.0f}"))
HEADERS = ("size", "floor s", "pipeline s", "floor ev/s", "pipeline ev/s", "ratio",
           "ingest s", "build+publish s", "floor RSS MB", "pipeline RSS MB")


def print_table(rows: list[dict[str, object]]) -> None:
    cells = [list(HEADERS)] + [[fmt.format(row[key]) for key, fmt in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADERS))]
    for i, line in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", choices=("floor", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.size)
        return
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "1000000").split(",") if s.strip()]
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    started = datetime.now(UTC)
    rows = [bench_size(n, repeats) for n in sizes]
    print_table(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({"started": started.isoformat(), "machine": machine(),
                               "seed": SEED, "results": rows}, indent=2))
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
