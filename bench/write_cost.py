"""What the published outputs cost to write, against the benchmark's floor and full run.

    .venv/bin/python bench/write_cost.py             # 10M events (BENCH_SIZES picks others)

The contract (DESIGN.md) publishes every table twice: as a DuckDB table and as a plain Parquet
export. This measures, at each size, in one process after one full pipeline run:

- floor: as in `make bench` (DuckDB reads the events, sorts them, writes Parquet), median of
  three runs (before the pipeline, after it, and at the end);
- pipeline: as in `make bench` (ingest through every published table and export);
- ingested_table, events_table: writing the ingested events (`ingested_events`, kept so that
  nothing is lost) and the published `events` table into the DuckDB file once more, each from
  an in-memory copy, so nothing is computed: the cost of the write alone, checkpoint included;
- events_export: writing its Parquet export (month folders, as `publish` does);
- all_exports: writing the Parquet export of every published table, which a nightly run
  repeats because plain Parquet files cannot have rows deleted.

It prints (ingested_table + events_table + events_export) / floor, what writing the events
three times costs against the floor (a lower bound of this design's ratio), and
all_exports / pipeline (a lower bound of a nightly run's share of the full run).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import run as bench

from journey_core.model import DuckDBEngine, pipeline_graph
from journey_core.ops import ingest_files, rebuild
from journey_core.publish.parquet import export_table
from journey_core.warehouse import connect
from journey_core.warehouse.quoting import qualified


def measure(n: int) -> dict[str, float]:
    folder, _ = bench.ensure_data(n)
    work = Path(tempfile.mkdtemp(dir=folder))
    try:
        floors = [bench.measure_floor(folder, work)["seconds"]]
        started = time.perf_counter()
        config = bench._config(folder / "journeys.yaml", work)
        con = connect(work / "warehouse")
        ingest_files(con, config)
        rebuild(con, config, work / "warehouse")
        pipeline = time.perf_counter() - started
        floors.append(bench.measure_floor(folder, work)["seconds"])
        written = {}
        for table in ("ingested_events", "events"):
            con.execute(f"create temp table _copy as select * from main.{table}")
            started = time.perf_counter()
            con.execute("create table main._again as select * from _copy")
            con.execute("checkpoint")
            written[table] = time.perf_counter() - started
            con.execute("drop table main._again")
            con.execute("drop table _copy")
        exports = work / "exports"
        seconds = {}
        for table in pipeline_graph().tables:
            started = time.perf_counter()
            export_table(DuckDBEngine(con), qualified("main", table), table, exports / table)
            seconds[table] = time.perf_counter() - started
        con.close()
        floors.append(bench.measure_floor(folder, work)["seconds"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = statistics.median(floors)
    out = {"size": n, "floor_seconds": floor, "floor_runs": floors,
           "pipeline_seconds": pipeline, "ingested_table_seconds": written["ingested_events"],
           "events_table_seconds": written["events"], "events_export_seconds": seconds["events"],
           "all_exports_seconds": sum(seconds.values())}
    out["events_writes_ratio"] = (written["ingested_events"] + written["events"]
                                  + seconds["events"]) / floor
    out["all_exports_share"] = out["all_exports_seconds"] / pipeline
    return out


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "10000000").split(",") if s.strip()]
    for n in sizes:
        r = measure(n)
        print(f"{n:,} events: floor {r['floor_seconds']:.2f}s, pipeline "
              f"{r['pipeline_seconds']:.2f}s; writing ingested_events "
              f"{r['ingested_table_seconds']:.2f}s + events {r['events_table_seconds']:.2f}s + "
              f"the events export {r['events_export_seconds']:.2f}s = "
              f"{r['events_writes_ratio']:.2f}x the floor; exports of every table "
              f"{r['all_exports_seconds']:.2f}s = {r['all_exports_share']:.1%} of the pipeline")
        print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    main()
