"""SIGKILL at any moment of `journeys run`: the warehouse opens, every published table and
every Parquet export is wholly old or wholly new, and the next run equals a clean run.

Its own file so that the parallel test runner gives it a worker of its own (it takes minutes).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from journey_core.warehouse import connect
from tests.faults.test_faults import HEADER, _env, cli_run, project
from tests.faults.test_recovery import B_CSV, parquet_rows
from tests.helpers import published_snapshot

#: Kill moments, evenly spread over the run (5 keep the whole suite inside CI's time; each
#: costs a partial run and a full rerun).
KILLS = 5


def _published(wh: Path) -> tuple[dict[str, list], dict[str, list]]:
    """The published DuckDB tables and Parquet exports, as readers see them (opening the
    warehouse read-write first, as the next run does: it must open after any kill)."""
    connect(wh).close()
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    try:
        return published_snapshot(con), parquet_rows(wh)
    finally:
        con.close()


def _start(cfg: Path, wh: Path, log: Path) -> subprocess.Popen:
    """`journeys run` in a process group of its own (so a kill reaches all it started)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "run", "--config", str(cfg),
             "--warehouse", str(wh)], env=_env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)


def test_killed_at_any_moment(tmp_path: Path) -> None:
    """`journeys run` with new files (a re-export of a file with a rejected line, now grown,
    and a gzip file), SIGKILLed with every process it started at `KILLS` evenly spread moments of
    its run (its length measured on a run started the same way): after each kill the warehouse
    opens, the published tables and the Parquet exports are each wholly the old version or
    wholly the new one, and the next run succeeds and equals a clean run."""
    cfg = project(tmp_path / "in")
    csv = tmp_path / "in" / "csv"
    (csv / "b.csv").write_text(B_CSV)
    template = tmp_path / "template"
    assert cli_run(cfg, template) == 0
    old = _published(template)
    (csv / "b.csv").write_text(B_CSV + "33,2026-09-03T08:00:00Z,c6,web,page_view,\n")
    (csv / "c.csv.gz").write_bytes(gzip.compress(
        (HEADER + "40,2026-09-03T09:00:00Z,c9,web,page_view,\n").encode()))

    clean = tmp_path / "clean"
    shutil.copytree(template, clean, symlinks=True)
    started = time.monotonic()
    assert _start(cfg, clean, tmp_path / "clean.log").wait(300) == 0
    duration = time.monotonic() - started
    new = _published(clean)
    assert new != old
    assert {"csv:33", "csv:40"} <= {row[0] for row in new[0]["events"]}

    outcomes = []
    for i in range(1, KILLS + 1):
        wh = tmp_path / f"kill{i}"
        shutil.copytree(template, wh, symlinks=True)
        proc = _start(cfg, wh, tmp_path / f"kill{i}.log")
        time.sleep(duration * i / (KILLS + 1))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        tables, files = _published(wh)
        assert tables in (old[0], new[0]), f"kill {i}: the published tables are a mix"
        assert files in (old[1], new[1]), f"kill {i}: the Parquet exports are a mix"
        outcomes.append("new" if tables == new[0] else "old")
        assert cli_run(cfg, wh) == 0
        assert _published(wh) == new, f"kill {i}: the next run differs from a clean run"
        shutil.rmtree(wh)
    assert "old" in outcomes, outcomes  # (kills after the commit, if any, are "new")
