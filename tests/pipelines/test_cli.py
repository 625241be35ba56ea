"""The `journeys` command: exit codes and one-line reasons a data engineer can act on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from tests.pipelines.test_definitions import write_project


def journeys(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a user would, in a clean process."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_help_documents_run() -> None:
    """`journeys --help` and `journeys run --help` describe the command and its options."""
    top = journeys("--help", cwd=Path.cwd())
    assert top.returncode == 0
    assert "run" in top.stdout and "generate" in top.stdout
    run = journeys("run", "--help", cwd=Path.cwd())
    assert run.returncode == 0
    assert "--config" in run.stdout and "--warehouse" in run.stdout


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One `journeys run --timings FILE` of a small good project, as a user runs it: what it
    printed and wrote (the tests below read it, each for its own promise)."""
    tmp = tmp_path_factory.mktemp("good_run")
    config = write_project(tmp / "landing")
    timings = tmp / "timings.json"
    result = journeys("run", "--config", str(config), "--warehouse", str(tmp / "wh"),
                      "--timings", str(timings), cwd=tmp)
    assert result.returncode == 0, result.stderr
    return SimpleNamespace(result=result, warehouse=tmp / "wh", timings=timings)


def test_run_succeeds_and_prints_summary(good_run: SimpleNamespace) -> None:
    """A good config exits 0, writes DIR/journeys.duckdb and DIR/parquet/<table>/, and prints
    what was loaded, rejected and published."""
    assert "5 records read, 4 loaded, 1 rejected, 0 duplicates" in good_run.result.stdout
    assert "published events: 4 rows" in good_run.result.stdout
    con = duckdb.connect(str(good_run.warehouse / "journeys.duckdb"), read_only=True)
    assert con.execute("select count(*) from journeys").fetchall() == [(1,)]
    con.close()
    assert (good_run.warehouse / "parquet" / "touchpoint_kpis" / "data.parquet").is_file()


def test_run_timings_account_for_every_step(good_run: SimpleNamespace) -> None:
    """`journeys run --timings FILE` says where the run went: every step of the table graph
    and ingest with its building and checking time, publishing, and Dagster's own time, which
    together make the run's time."""
    from journey_core.model import pipeline_graph

    (run,) = json.loads(good_run.timings.read_text())
    assert set(run["steps"]) == {"ingested_events", *(s.name for s in pipeline_graph().steps)}
    assert all(v["build"] >= 0 and v["check"] >= 0 for v in run["steps"].values())
    assert run["check_seconds"] > 0 and run["publish_seconds"] > 0 and run["dagster_seconds"] > 0
    parts = run["build_seconds"] + run["check_seconds"] + run["publish_seconds"]
    assert abs(parts + run["dagster_seconds"] - run["seconds"]) < 0.01
    assert abs(run["build_seconds"] - sum(v["build"] for v in run["steps"].values())) < 0.01


def test_run_shows_progress_per_file_and_table(good_run: SimpleNamespace) -> None:
    """Long runs show where they are: one line per file ingested and per table built."""
    assert "[1/2] ingest web/day1.ndjson: 3 read, 3 loaded" in good_run.result.stderr
    assert "[2/2] ingest calls/day1.csv: 2 read, 1 loaded, 1 rejected" in good_run.result.stderr
    assert "built sessions: 2 rows" in good_run.result.stderr


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    """A bad config exits 2 with one line naming the file, the key and the problem."""
    config = write_project(tmp_path / "landing")
    config.write_text(config.read_text() + "session_timeout: soon\n")
    result = journeys("run", "--config", str(config), "--warehouse", str(tmp_path / "wh"),
                      cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "journeys.yaml" in lines[0] and "session_timeout" in lines[0]
    assert "'soon' is not a duration" in lines[0]
    assert not (tmp_path / "wh").exists()


def test_rejects_on_spark_needs_the_config(tmp_path: Path) -> None:
    """`journeys rejects --engine spark` without `--config` (the Spark settings) exits 2 and
    says what it needs, before it opens anything."""
    result = journeys("rejects", "--engine", "spark", "--warehouse", str(tmp_path / "wh"),
                      cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("journeys: journeys rejects --engine spark needs --config "
                                     "(the Spark settings)")


def test_missing_config_file(tmp_path: Path) -> None:
    """A config path that does not exist exits 2 and says so."""
    result = journeys("run", "--config", str(tmp_path / "nope.yaml"), "--warehouse",
                      str(tmp_path / "wh"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"journeys: {tmp_path / 'nope.yaml'}: config file not found"


def test_missing_source_folder(tmp_path: Path) -> None:
    """A source folder that does not exist exits 1 naming the source and the folder."""
    config = write_project(tmp_path / "landing")
    (tmp_path / "landing" / "calls" / "day1.csv").unlink()
    (tmp_path / "landing" / "calls").rmdir()
    result = journeys("run", "--config", str(config), "--warehouse", str(tmp_path / "wh"),
                      cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "source 'calls'" in lines[0] and "does not exist" in lines[0]


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    """A file that cannot be read (here: not UTF-8) is rejected whole and named in one line, and
    the run exits 1; the readable files are still loaded and published."""
    config = write_project(tmp_path / "landing")
    bad = tmp_path / "landing" / "calls" / "day2.csv"
    bad.write_bytes(b"call_id,start,crm,queue\n\xff\xfe,1,u1,billing\n")
    result = journeys("run", "--config", str(config), "--warehouse", str(tmp_path / "wh"),
                      cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("journeys: ") and "day2.csv" in lines[-1]
    assert "not UTF-8" in lines[-1]
    assert not any("Traceback" in line or "Stack Trace" in line for line in lines)
    con = duckdb.connect(str(tmp_path / "wh" / "journeys.duckdb"), read_only=True)
    assert con.execute("select count(*) from events").fetchall() == [(4,)]
    assert con.execute("select path, status from file_ledger where status = 'rejected'")\
        .fetchall() == [("calls/day2.csv", "rejected")]
    con.close()


def test_validate_reports_every_file_without_writing(tmp_path: Path) -> None:
    """`journeys validate` reads every file as ingest would, reports records and rejects per
    file, exits 0, and writes nothing next to the config."""
    config = write_project(tmp_path / "landing")
    before = sorted(p.name for p in (tmp_path / "landing").rglob("*"))
    result = journeys("validate", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "calls/day1.csv: 2 records, 1 to load, rejected: 1 bad_timestamp" in result.stdout
    assert "web/day1.ndjson: 3 records, 3 to load" in result.stdout
    assert "2 files, 5 records, 1 would be rejected, 0 files unreadable" in result.stdout
    assert sorted(p.name for p in (tmp_path / "landing").rglob("*")) == before


def test_validate_lists_every_unreadable_file(tmp_path: Path) -> None:
    """A dry run keeps going past an unreadable file, names each one, and exits 1."""
    config = write_project(tmp_path / "landing")
    (tmp_path / "landing" / "calls" / "day2.csv").write_text("call_id,crm\nk9,u1\n")
    (tmp_path / "landing" / "calls" / "day3.csv").write_bytes(b"call_id\n\xff\n")
    result = journeys("validate", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL calls/day2.csv" in result.stdout and "'start' (for occurred_at)" in result.stdout
    assert "FAIL calls/day3.csv" in result.stdout and "not UTF-8" in result.stdout
    assert "2 files unreadable" in result.stdout


def test_report_needs_a_built_warehouse(tmp_path: Path) -> None:
    """`journeys report` on a folder without a warehouse says what to do, in one line."""
    result = journeys("report", "--warehouse", str(tmp_path / "empty"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("run `journeys run` first")


def test_rejects_and_forget_commands(tmp_path: Path) -> None:
    """`journeys rejects` lists the rejected record by source, type and file; `journeys forget`
    erases a person from the tables and Parquet files, and a rerun does not bring them back.
    (Forgetting in the Spark tables is `tests/spark/test_spark_engine.py`'s.)"""
    config = write_project(tmp_path / "landing")
    wh = tmp_path / "wh"
    assert journeys("run", "--config", str(config), "--warehouse", str(wh),
                    cwd=tmp_path).returncode == 0
    rejects = journeys("rejects", "--warehouse", str(wh), cwd=tmp_path)
    assert rejects.returncode == 0, rejects.stderr
    assert "rejected records in" in rejects.stdout and ": 1" in rejects.stdout
    assert "bad_timestamp" in rejects.stdout and "calls/day1.csv" in rejects.stdout

    forget = journeys("forget", "--config", str(config), "--warehouse", str(wh), "--person",
                      "u1", cwd=tmp_path)
    assert forget.returncode == 0, forget.stderr
    again = journeys("run", "--config", str(config), "--warehouse", str(wh), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    assert con.execute("select count(*) from events").fetchall() == [(0,)]
    assert con.execute("select count(*) from identity_map where identifier_value in "
                       "('u1', 'c1')").fetchall() == [(0,)]
    con.close()
    exported = duckdb.sql(f"select count(*) from read_parquet('{wh}/parquet/events/**/*.parquet')")
    assert exported.fetchall() == [(0,)]
    unknown = journeys("forget", "--config", str(config), "--warehouse", str(wh), "--person",
                       "nobody", cwd=tmp_path)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
