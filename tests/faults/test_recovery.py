"""Runs that fail or die: a failed blocking check at ingest, and SIGKILL at any moment. After
each, the next run proceeds once the cause is gone, and nothing is lost.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

import journey_core.ingest.loader as loader
from journey_core import quality
from journey_core.contract.schema import PUBLISHED
from tests.faults.test_faults import (
    HEADER,
    assert_reconciled,
    cli_run,
    parquet_snapshot,
    project,
)
from tests.helpers import CLOCK_COLUMNS, published_snapshot

B_CSV = (HEADER + "30,2026-09-02T10:00:00Z,c6,web,page_view,\n"
         "31,2026-09-02T10:05:00Z,c6,web,purchase,7\n"
         "32,2026-09-02T10:06:00Z,c6,web,purchase,,EXTRA\n")


def _books(wh: Path) -> dict[str, Any]:
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    try:
        return {
            "published": published_snapshot(con),
            "ledger": con.execute("select path, file_version, records_read, records_loaded, "
                                  "records_rejected, records_duplicate, status "
                                  "from file_ledger order by all").fetchall(),
            "rejects": con.execute("select file, file_version, record_number, reason "
                                   "from ingest_rejects order by all").fetchall(),
            "events": con.execute("select event_id, file, record_number from ingested_events "
                                  "order by all").fetchall(),
        }
    finally:
        con.close()


def test_a_failed_ingest_check_is_undone_and_the_next_run_proceeds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], published: tuple[Path, Path]) -> None:
    """A run whose ingest check fails (here an injected ledger-counting bug: the new file's
    ledger row says one record more than it read) publishes nothing and undoes its ingest;
    once the cause is gone the next run is green, loses nothing and equals a clean run."""
    cfg, wh = published  # after one run
    before = _books(wh)
    before_files = parquet_snapshot(wh)
    (tmp_path / "in" / "csv" / "b.csv").write_text(B_CSV)

    real = loader._ledger_row

    def miscounting(con: Any, result: loader.FileResult, *args: Any) -> None:
        if result.path == "csv/b.csv":
            result.read += 1
        real(con, result, *args)

    monkeypatch.setattr(loader, "_ledger_row", miscounting)
    capsys.readouterr()
    assert cli_run(cfg, wh) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "check file_ledger_contract on ingested_events failed" in error
    assert "this run's ingest was undone" in error and "run again" in error
    assert _books(wh) == before  # as if the run had never been: no trace of csv/b.csv
    assert parquet_snapshot(wh) == before_files

    monkeypatch.setattr(loader, "_ledger_row", real)  # the cause is gone
    assert cli_run(cfg, wh) == 0
    after = _books(wh)
    clean = tmp_path / "clean"
    assert cli_run(cfg, clean) == 0
    assert after == _books(clean)
    assert ("csv/b.csv", 1, 3, 2, 1, 0, "loaded") in after["ledger"]
    assert ("csv/b.csv", 1, 4, "malformed_record") in after["rejects"]
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    assert_reconciled(con)
    con.close()
    shutil.rmtree(clean)


# --- the Parquet exports switch as one set ------------------------------------------------------


def parquet_rows(wh: Path) -> dict[str, list]:
    """Every table's rows as BI tools read them (`parquet/<table>/**/*.parquet`), sorted,
    without the load-time columns."""
    out = {}
    for table in PUBLISHED:
        cols = ", ".join(f'"{c}"' for c in table.column_names if c not in CLOCK_COLUMNS)
        glob = (wh / "parquet" / table.name / "**" / "*.parquet").as_posix()
        out[table.name] = sorted(duckdb.sql(
            f"select {cols} from read_parquet('{glob}', hive_partitioning = false)").fetchall(),
            key=repr)
    return out


def test_exports_switch_as_one_set_and_old_versions_go(tmp_path: Path) -> None:
    """`parquet` is one link to a complete version: a publish moves it in one step. A reader
    that opened the folder before keeps a whole old set (the version before is kept for it);
    versions older than that are removed."""
    cfg = project(tmp_path / "in")
    wh = tmp_path / "wh"
    _run_ok(cfg, wh)
    first = (wh / "parquet").resolve()
    old = parquet_rows(wh)
    assert (wh / "parquet").is_symlink() and first.parent.name == ".parquet.versions"
    (tmp_path / "in" / "csv" / "b.csv").write_text(B_CSV)
    _run_ok(cfg, wh)
    second = (wh / "parquet").resolve()
    assert second != first
    new = parquet_rows(wh)
    assert new != old and ("csv:30",) in {(r[0],) for r in new["events"]}
    # A reader still on the first version reads it whole.
    for table in PUBLISHED:
        glob = (first / table.name / "**" / "*.parquet").as_posix()
        assert duckdb.sql(f"select count(*) from read_parquet('{glob}')").fetchall() == [
            (len(old[table.name]),)]
    _run_ok(cfg, wh)
    assert sorted(p.name for p in (wh / ".parquet.versions").iterdir()) == sorted(
        [second.name, (wh / "parquet").resolve().name])
    assert not first.exists()
    assert parquet_rows(wh) == new


def test_a_parquet_folder_of_an_older_release_becomes_a_version(tmp_path: Path) -> None:
    """A warehouse whose `parquet/` is a plain folder (releases before versions) keeps its BI
    paths: the next publish turns it into a link, and `parquet/<table>/` reads as before."""
    cfg = project(tmp_path / "in")
    wh = tmp_path / "wh"
    _run_ok(cfg, wh)
    target = (wh / "parquet").resolve()
    (wh / "parquet").unlink()
    shutil.move(target, wh / "parquet")  # as older releases left it
    shutil.rmtree(wh / ".parquet.versions")
    assert not (wh / "parquet").is_symlink()
    before = parquet_rows(wh)
    (tmp_path / "in" / "csv" / "b.csv").write_text(B_CSV)
    _run_ok(cfg, wh)
    assert (wh / "parquet").is_symlink()
    con = duckdb.connect(str(wh / "journeys.duckdb"), read_only=True)
    assert parquet_rows(wh) == {t: rows for t, rows in published_snapshot(con).items()}
    con.close()
    assert parquet_rows(wh) != before


def _run_ok(cfg: Path, wh: Path) -> None:
    assert cli_run(cfg, wh) == 0


def test_a_failed_check_on_a_later_table_leaves_a_run_that_can_proceed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], published: tuple[Path, Path]) -> None:
    """A blocking check failing on a built table (here an injected failure of the journeys
    contract): nothing is published, the new file stays loaded, the error says what to do, and
    once the cause is gone the next run publishes what a clean run publishes."""
    cfg, wh = published  # after one run
    before = _books(wh)["published"]
    (tmp_path / "in" / "csv" / "b.csv").write_text(B_CSV)
    real = quality.check_table

    def failing(con: Any, table: str, *args: Any, **kwargs: Any) -> quality.TableCheck:
        result = real(con, table, *args, **kwargs)
        if table == "journeys":  # one blocking rule says one row broke it
            first = next(o for o in result.outcomes if o.blocking)
            result.outcomes[0:0] = [dataclasses.replace(first, success=False,
                                                        unexpected_count=1)]
        return result

    monkeypatch.setattr(quality, "check_table", failing)
    capsys.readouterr()
    assert cli_run(cfg, wh) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "check journeys_contract on journeys failed" in error
    assert "nothing was published" in error and "fix the cause and run again" in error
    books = _books(wh)
    assert books["published"] == before
    assert ("csv:30", "csv/b.csv", 2) in books["events"]  # loaded, waiting to be published

    monkeypatch.setattr(quality, "check_table", real)
    assert cli_run(cfg, wh) == 0
    clean = tmp_path / "clean"
    assert cli_run(cfg, clean) == 0
    assert _books(wh) == _books(clean)
