"""The `journeys` command: exit codes and one-line reasons a data engineer can act on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

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


def test_run_succeeds_and_prints_summary(tmp_path: Path) -> None:
    """A good config exits 0, writes DIR/journeys.duckdb and DIR/parquet/<table>/, and prints
    what was loaded, rejected and published."""
    config = write_project(tmp_path / "landing")
    result = journeys("run", "--config", str(config), "--warehouse", str(tmp_path / "wh"),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 records read, 4 loaded, 1 rejected, 0 duplicates" in result.stdout
    assert "published events: 4 rows" in result.stdout
    con = duckdb.connect(str(tmp_path / "wh" / "journeys.duckdb"), read_only=True)
    assert con.execute("select count(*) from journeys").fetchall() == [(1,)]
    assert (tmp_path / "wh" / "parquet" / "touchpoint_kpis" / "data.parquet").is_file()


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
    """A file that cannot be read (here: not UTF-8) exits 1 with one line naming it."""
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
