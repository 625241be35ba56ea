"""Benchmark: the full pipeline against a DuckDB floor on synthetic canonical events.

    make bench                                   # 1M and 10M events, median of 3
    BENCH_SIZES=100000000 BENCH_REPEATS=1 BENCH_KINDS=floor,journeys make bench

For each size: generate (once, cached under bench/.data/<N>-<days>d/) deterministic events
with `bench/synthetic.py` over BENCH_DAYS days (default 90) as canonical Parquet, one file per
day; then, interleaved (alternating which goes first), `BENCH_REPEATS` times each (BENCH_KINDS
limits the kinds, default all):

- floor: DuckDB reads the same Parquet, orders by person key (customer_id, else anonymous_id),
  occurred_at, event_id, and writes Parquet;
- journeys: `journeys run` as users run it (its own process: Dagster, every blocking check,
  the Parquet exports) into a fresh warehouse folder, with the breakdown its `--timings` file
  gives: building and checking per step, publishing, Dagster's own overhead, start-up;
- pipeline (the stripped pipeline): `ingest_files`, then every published table staged and
  published, timed step by step (what `journeys run` does, without Dagster and without the
  Great Expectations checks) into a fresh warehouse folder;
- nightly: every day but the last loaded and published (untimed), then the last day's files
  land and `journeys run --from <last day>` (one daily partition) is timed; its share is of
  the full `journeys run` on the same events;
- nightly at 30 days: the same, on a history of 30 days at the same daily volume (N * 30 /
  BENCH_DAYS events), to show how the nightly grows with the history;
- spark: `journeys run --engine spark` (a `local[2]` session, driver memory
  BENCH_SPARK_MEMORY, default 4g) into a fresh warehouse folder, as a ratio to `journeys run`
  on the DuckDB engine; only at sizes up to BENCH_SPARK_MAX (default 1M; set it to 10000000
  for 10M).

Both run with DuckDB's memory_limit at BENCH_MEMORY_LIMIT (default 4GB), spilling to the run's
folder. Then `journeys run` on BENCH_TEXT_SIZE events (default 1M; 0 skips it) as canonical
Parquet, CSV and gzipped NDJSON (the same events), interleaved, each text format's time a
ratio to the Parquet run's.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import synthetic

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / ".data"
RESULTS = BENCH / "results"
#: DuckDB's memory limit for the pipeline (the spill folder is beside the warehouse).
MEMORY_LIMIT = os.environ.get("BENCH_MEMORY_LIMIT", "4GB")
#: Events for `journeys run` on CSV and gzipped NDJSON against Parquet (0 skips it).
TEXT_SIZE = int(os.environ.get("BENCH_TEXT_SIZE", "1000000"))
#: Days of history the synthetic events span (the nightly adds the last one).
DAYS = int(os.environ.get("BENCH_DAYS", str(synthetic.DAYS)))
#: The nightly's shorter history, at the same daily volume, for its growth with the history.
SHORT_DAYS = 30
KINDS = ("floor", "journeys", "pipeline", "nightly", "nightly_short", "spark")
#: The largest size the Spark engine is measured at.
SPARK_MAX = int(os.environ.get("BENCH_SPARK_MAX", "1000000"))
#: The Spark driver's memory (`local[2]`: the driver runs the tasks).
SPARK_MEMORY = os.environ.get("BENCH_SPARK_MEMORY", "4g")


# --- data ----------------------------------------------------------------------------------


def ensure_data(n: int, days: int = DAYS) -> tuple[Path, float | None]:
    """The synthetic events of size n over `days` days (generated once, cached under
    bench/.data/<n>-<days>d/)."""
    folder = DATA / f"{n}-{days}d"
    if (folder / "READY").is_file():
        return folder, None
    started = time.perf_counter()
    synthetic.generate(n, folder, days=days)
    (folder / "READY").write_text(str(n))
    return folder, time.perf_counter() - started


def short_size(n: int) -> int:
    """Events of the 30-day history at the daily volume of n events over DAYS days."""
    return n * SHORT_DAYS // DAYS


# --- one measurement (child process) ---------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure_floor(folder: Path, work: Path) -> dict[str, Any]:
    """DuckDB reads the events, sorts them by person and time, writes Parquet."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    con.execute("set temp_directory = ?", [str(work / "spill")])
    con.execute(
        f"copy (select * from read_parquet('{folder / 'events' / '*.parquet'}') "
        "order by coalesce(customer_id, anonymous_id), occurred_at, event_id) "
        f"to '{work / 'floor.parquet'}' (format parquet, compression zstd)")
    con.close()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": _rss_mb()}


def _config(config_path: Path, work: Path) -> Any:
    from journey_core.config import load_config

    config = load_config(config_path)
    return config.model_copy(update={"duckdb": config.duckdb.model_copy(update={
        "memory_limit": MEMORY_LIMIT, "temp_directory": str(work / "spill")})})


def measure_pipeline(config_path: Path, work: Path) -> dict[str, Any]:
    """`ingest_files`, then `rebuild` (every published table staged, timed step by step, and
    published): ingest through every published table and Parquet export."""
    from journey_core.ops import ingest_files, rebuild
    from journey_core.warehouse import connect

    started = time.perf_counter()
    config = _config(config_path, work)
    con = connect(work / "warehouse")
    summary = ingest_files(con, config)
    steps = {"ingest": time.perf_counter() - started}
    rss_ingest = _rss_mb()
    result = rebuild(con, config, work / "warehouse")
    steps.update(result.seconds)
    rows = result.row_counts["events"]
    con.close()
    return {"seconds": time.perf_counter() - started, "steps": steps,
            "peak_rss_mb": _rss_mb(), "peak_rss_ingest_mb": rss_ingest,
            "loaded": summary.total("loaded"), "rejected": summary.total("rejected"),
            "events_rows": rows}


def measure_journeys(config_path: Path, work: Path, *args: str) -> dict[str, Any]:
    """`journeys run` as users run it (its own process: Dagster, every blocking check, the
    exports) into the warehouse in `work` (fresh, unless the nightly made its history), with
    the breakdown of `journeys run --timings`: building, checking, publishing, Dagster's own
    overhead, and the process's start-up and exit."""
    import yaml

    raw = yaml.safe_load(config_path.read_text())
    raw["duckdb"] = {**raw.get("duckdb", {}), "memory_limit": MEMORY_LIMIT,
                     "temp_directory": str(work / "spill")}
    if "spark" in args:
        raw["spark"] = {"master": "local[2]", "conf": {
            "spark.driver.memory": SPARK_MEMORY,
            "spark.local.dir": str(work / "spill"),
            "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={work / 'spill'}"}}
    config = config_path.with_name(f"journeys-run-{os.getpid()}.yaml")  # sources stay relative
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    timings = work / "timings.json"
    try:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run", "--config", str(config),
             "--warehouse", str(work / "warehouse"), "--timings", str(timings), *args],
            cwd=ROOT, capture_output=True, text=True, check=False,
            env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"})
        seconds = time.perf_counter() - started
    finally:
        config.unlink(missing_ok=True)
    if proc.returncode:
        raise SystemExit(f"journeys run failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    run = json.loads(timings.read_text())[0]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "startup_seconds": seconds - run["seconds"],
            **{k: run[k] for k in ("build_seconds", "check_seconds", "publish_seconds",
                                   "dagster_seconds")},
            "steps": run["steps"], "peak_rss_mb": peak}


def measure_nightly(folder: Path, work: Path, days: int) -> dict[str, Any]:
    """A nightly run that adds the last day: the history (every day before it) is loaded and
    published first, untimed, then the last day's files land and `journeys run` of its
    partition (ingest, rebuild of the touched persons, checks, publish) is timed."""
    from journey_core.ops import run_pipeline
    from journey_core.warehouse import connect, scalar

    landing = work / "landing"
    (landing / "events").mkdir(parents=True)
    shutil.copy(folder / "journeys.yaml", landing / "journeys.yaml")
    files = sorted((folder / "events").glob("day-*.parquet"))
    last = days - 1

    def land(days: range) -> None:
        for path in files:
            if int(path.name.split("-")[1]) in days:
                (landing / "events" / path.name).symlink_to(path)

    config = _config(landing / "journeys.yaml", work)
    start = synthetic.START.date()
    land(range(last))
    con = connect(work / "warehouse")
    run_pipeline(con, config, work / "warehouse", partition=start + timedelta(days=last - 1))
    con.close()
    land(range(last, last + 2))  # the last day, and the sessions that spill past midnight
    con = connect(work / "warehouse")
    before = scalar(con, "select count(*) from ingested_events")
    con.close()
    run = measure_journeys(landing / "journeys.yaml", work,
                           "--from", (start + timedelta(days=last)).isoformat())
    con = connect(work / "warehouse", read_only=True)
    mode, persons = con.execute("select mode, persons_rebuilt from pipeline_state").fetchone()
    total = scalar(con, "select count(distinct person_id) from events")
    loaded = scalar(con, "select count(*) from ingested_events") - before
    con.close()
    if mode != "incremental":
        raise SystemExit(f"the nightly run was {mode}, not incremental")
    return {**run, "mode": mode, "persons_rebuilt": persons, "persons": total,
            "loaded": loaded}


def one(kind: str, n: int, fmt: str | None) -> None:
    days = SHORT_DAYS if kind == "nightly_short" else DAYS
    folder, _ = ensure_data(n, days)
    work = folder / "runs" / f"{kind}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if kind == "floor":
            out = measure_floor(folder, work)
        elif kind == "pipeline":
            out = measure_pipeline(folder / "journeys.yaml", work)
        elif kind == "journeys":
            config = folder / "journeys.yaml" if fmt is None else \
                folder / "text" / fmt / "journeys.yaml"
            out = measure_journeys(config, work)
        elif kind in ("nightly", "nightly_short"):
            out = measure_nightly(folder, work, days)
        elif kind == "spark":
            (work / "spill").mkdir()
            out = measure_journeys(folder / "journeys.yaml", work, "--engine", "spark")
        else:
            raise SystemExit(f"unknown measurement {kind!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


def child(kind: str, n: int, fmt: str | None = None) -> dict[str, Any]:
    args = [sys.executable, __file__, "--one", kind, "--size", str(n)]
    proc = subprocess.run([*args, *(["--format", fmt] if fmt else [])], capture_output=True,
                          text=True, cwd=ROOT, check=False)
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
            "pyarrow": pa.__version__, "polars": polars.__version__,
            "platform": platform.platform(), "machine": platform.machine()}


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def _kinds() -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in os.environ.get("BENCH_KINDS", ",".join(KINDS)).split(",")
                  if k.strip())
    unknown = set(kinds) - set(KINDS)
    if unknown or "floor" not in kinds:
        raise SystemExit(f"BENCH_KINDS: {sorted(unknown)} unknown, or floor missing "
                         f"(kinds: {', '.join(KINDS)})")
    return kinds


def _journeys_summary(runs: list[dict[str, Any]], n: int, floor_s: float,
                      prefix: str) -> dict[str, Any]:
    """Medians of `journeys run` measurements: seconds, the breakdown, steps, peak RSS."""
    run_s = _median(runs, "seconds")
    return {
        f"{prefix}_seconds": run_s, f"{prefix}_ratio": run_s / floor_s,
        f"{prefix}_events_per_s": n / run_s,
        f"{prefix}_peak_rss_mb": max(row["peak_rss_mb"] for row in runs),
        f"{prefix}_breakdown_seconds": {
            part: _median(runs, f"{part}_seconds")
            for part in ("build", "check", "publish", "dagster", "startup")},
        f"{prefix}_check_share": _median(runs, "check_seconds") / run_s,
        f"{prefix}_steps_seconds": {
            step: {part: statistics.median(r["steps"][step][part] for r in runs)
                   for part in ("build", "check")} for step in runs[0]["steps"]},
        f"{prefix}_runs": runs,
    }


def bench_size(n: int, repeats: int) -> dict[str, Any]:
    """The kinds at n events, interleaved, `repeats` times each; medians."""
    kinds = _kinds()
    for size, days in ((n, DAYS), *([(short_size(n), SHORT_DAYS)]
                                    if "nightly_short" in kinds else [])):
        _, gen_seconds = ensure_data(size, days)
        if gen_seconds is not None:
            print(f"generated {size:,} events over {days} days in {gen_seconds:.1f}s",
                  file=sys.stderr)
    if n > SPARK_MAX:
        kinds = tuple(k for k in kinds if k != "spark")
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for r in range(repeats):
        # Interleaved, alternating which goes first so drift hits all alike.
        for kind in kinds if r % 2 == 0 else tuple(reversed(kinds)):
            res = child(kind, short_size(n) if kind == "nightly_short" else n)
            runs[kind].append(res)
            print(f"  {n:,} repeat {r + 1}/{repeats} {kind}: {res['seconds']:.2f}s",
                  file=sys.stderr)
    floors = runs["floor"]
    floor_s = _median(floors, "seconds")
    out: dict[str, Any] = {
        "size": n, "days": DAYS, "repeats": repeats, "floor_seconds": floor_s,
        "floor_events_per_s": n / floor_s,
        "floor_peak_rss_mb": max(row["peak_rss_mb"] for row in floors), "floor_runs": floors}
    if "journeys" in kinds:
        out.update(_journeys_summary(runs["journeys"], n, floor_s, "journeys_run"))
    if "pipeline" in kinds:
        pipes = runs["pipeline"]
        pipe_s = _median(pipes, "seconds")
        steps = {step: statistics.median(p["steps"][step] for p in pipes)
                 for step in pipes[0]["steps"]}
        out.update({
            "pipeline_seconds": pipe_s, "pipeline_events_per_s": n / pipe_s,
            "ratio": pipe_s / floor_s, "steps_seconds": steps,
            "ingest_seconds": steps["ingest"], "build_publish_seconds": pipe_s - steps["ingest"],
            "pipeline_peak_rss_mb": max(row["peak_rss_mb"] for row in pipes),
            "ingest_peak_rss_mb": max(row["peak_rss_ingest_mb"] for row in pipes),
            "loaded": pipes[0]["loaded"], "rejected": pipes[0]["rejected"],
            "events_rows": pipes[0]["events_rows"], "pipeline_runs": pipes})
    for kind, days in (("nightly", DAYS), ("nightly_short", SHORT_DAYS)):
        if kind not in kinds:
            continue
        nightly = runs[kind]
        out.update({k: v for k, v in _journeys_summary(nightly, n, floor_s, kind).items()
                    if not k.endswith(("_ratio", "_events_per_s"))})
        out.update({f"{kind}_days": days, f"{kind}_persons_rebuilt": nightly[0]["persons_rebuilt"],
                    f"{kind}_persons": nightly[0]["persons"],
                    f"{kind}_loaded": nightly[0]["loaded"]})
        if "journeys" in kinds:
            out[f"{kind}_share"] = out[f"{kind}_seconds"] / out["journeys_run_seconds"]
    if "nightly" in kinds and "nightly_short" in kinds:
        out["nightly_growth"] = out["nightly_seconds"] / out["nightly_short_seconds"]
    if "spark" in kinds:
        out.update(_journeys_summary(runs["spark"], n, floor_s, "spark"))
        if "journeys" in kinds:
            out["spark_to_duckdb"] = out["spark_seconds"] / out["journeys_run_seconds"]
    return out


#: The text formats `journeys run` is measured on, against the same events in Parquet.
TEXT_FORMATS = ("csv", "ndjson-gz")


def bench_text(n: int, repeats: int) -> list[dict[str, Any]]:
    """`journeys run` on the same n events as Parquet, CSV and gzipped NDJSON, interleaved,
    `repeats` times each; medians and each text format's ratio to the Parquet run."""
    folder, _ = ensure_data(n)
    if not (folder / "text" / "READY").is_file() or not all(
            (folder / "text" / fmt / "journeys.yaml").is_file() for fmt in TEXT_FORMATS):
        synthetic.write_text_formats(folder, folder / "text")
        (folder / "text" / "READY").write_text("")
    runs: dict[str, list[dict[str, Any]]] = {fmt: [] for fmt in ("parquet", *TEXT_FORMATS)}
    for r in range(repeats):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for fmt in order:
            res = child("journeys", n, None if fmt == "parquet" else fmt)
            runs[fmt].append(res)
            print(f"  journeys run on {fmt} {n:,} repeat {r + 1}/{repeats}: "
                  f"{res['seconds']:.2f}s", file=sys.stderr)
    parquet_s = _median(runs["parquet"], "seconds")
    out = []
    for fmt, rows in runs.items():
        seconds = _median(rows, "seconds")
        ingest = statistics.median(row["steps"]["ingested_events"]["build"] for row in rows)
        out.append({"format": fmt, "size": n, "journeys_run_seconds": seconds,
                    "ratio_to_parquet": seconds / parquet_s, "ingest_build_seconds": ingest,
                    "peak_rss_mb": max(row["peak_rss_mb"] for row in rows), "runs": rows})
    return out


COLUMNS = (("size", "{:,}"), ("floor_seconds", "{:.2f}"), ("journeys_run_seconds", "{:.2f}"),
           ("journeys_run_ratio", "{:.2f}"), ("journeys_run_events_per_s", "{:,.0f}"),
           ("journeys_run_peak_rss_mb", "{:,.0f}"), ("pipeline_seconds", "{:.2f}"),
           ("ratio", "{:.2f}"), ("nightly_seconds", "{:.2f}"), ("nightly_share", "{:.0%}"),
           ("nightly_short_seconds", "{:.2f}"), ("nightly_growth", "{:.2f}"))
HEADERS = ("events", "floor s", "journeys run s", "ratio", "events/s", "RSS MB",
           "stripped s", "ratio", "nightly s", "share", "nightly 30d s", "growth")


def print_table(rows: list[dict[str, Any]], text: list[dict[str, Any]]) -> None:
    cells = [list(HEADERS)] + [[fmt.format(row[key]) if key in row else "-"
                                for key, fmt in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADERS))]
    for i, line in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for row in rows:
        for prefix, what in (("journeys_run", "journeys run"),
                             ("nightly", f"nightly journeys run ({DAYS} days of history)"),
                             ("nightly_short", f"nightly journeys run ({SHORT_DAYS} days of "
                                               "history, same daily volume)"),
                             ("spark", "journeys run --engine spark (local[2])")):
            if f"{prefix}_seconds" not in row:
                continue
            parts = row[f"{prefix}_breakdown_seconds"]
            ratio = f" = {row['journeys_run_ratio']:.2f}x the floor" \
                if prefix == "journeys_run" else \
                f" = {row['spark_to_duckdb']:.2f}x the DuckDB engine's run" \
                if prefix == "spark" and "spark_to_duckdb" in row else ""
            print(f"\n{what} at {row['size']:,} events: {row[f'{prefix}_seconds']:.2f}s{ratio}, "
                  "peak RSS "
                  f"{row[f'{prefix}_peak_rss_mb']:,.0f} MB; building {parts['build']:.2f}s, "
                  f"checks {parts['check']:.2f}s ({row[f'{prefix}_check_share']:.0%}), "
                  f"publishing {parts['publish']:.2f}s, Dagster {parts['dagster']:.2f}s, "
                  f"start-up and exit {parts['startup']:.2f}s")
            if prefix.startswith("nightly"):
                print(f"  {row[f'{prefix}_loaded']:,} events loaded, "
                      f"{row[f'{prefix}_persons_rebuilt']:,} of {row[f'{prefix}_persons']:,} "
                      "persons rebuilt" + (f"; {row[f'{prefix}_share']:.1%} of the full run"
                                           if f"{prefix}_share" in row else ""))
            for step, split in sorted(row[f"{prefix}_steps_seconds"].items(),
                                      key=lambda x: -sum(x[1].values())):
                print(f"  {split['build']:8.2f} build  {split['check']:8.2f} check  {step}")
        if "steps_seconds" in row:
            print(f"\nstripped pipeline steps at {row['size']:,} events (median seconds):")
            for step, seconds in sorted(row["steps_seconds"].items(), key=lambda x: -x[1]):
                print(f"  {seconds:8.2f}  {step}")
    for t in text:
        print(f"\njourneys run on {t['format']} at {t['size']:,} events: "
              f"{t['journeys_run_seconds']:.2f}s = {t['ratio_to_parquet']:.2f}x the run on "
              f"Parquet (ingest step {t['ingest_build_seconds']:.2f}s, peak RSS "
              f"{t['peak_rss_mb']:,.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", choices=KINDS,
                        help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.size, args.format)
        return
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "1000000,10000000").split(",")
             if s.strip()]
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    started = datetime.now(UTC)
    rows = [bench_size(n, repeats) for n in sizes]
    text = bench_text(TEXT_SIZE, repeats) if TEXT_SIZE else []
    print_table(rows, text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({"started": started.isoformat(), "machine": machine(),
                               "memory_limit": MEMORY_LIMIT, "seed": synthetic.SEED,
                               "days": DAYS,
                               "results": rows, "text_formats": text}, indent=2))
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
