"""The nightly schedule, the landing sensor and backfills, against a real Dagster instance in a
temporary DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.assets import PARTITIONS, all_assets
from pipelines.cli import main
from pipelines.definitions import defs
from pipelines.resources import JourneysResource
from pipelines.schedules import nightly_schedule
from pipelines.sensors import SETTLE_SECONDS, journeys_landing
from tests.helpers import rows

HEADER = "event_id,occurred_at,channel,event_type,customer_id\n"


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as inst:
        yield inst


@pytest.fixture
def landing(tmp_path) -> Path:
    """A landing folder with a config of one canonical CSV source; returns the config path."""
    (tmp_path / "landing").mkdir()
    config = tmp_path / "journeys.yaml"
    config.write_text("sources:\n  - {name: crm, path: landing/*.csv, format: csv}\n",
                      encoding="utf-8")
    return config


def _drop(config: Path, name: str, *events: tuple[str, str, str], age: float = 3600) -> None:
    """A file of (event_id, occurred_at, customer_id) page views, modified `age` s ago."""
    path = config.parent / "landing" / name
    path.write_text(HEADER + "".join(f"{i},{t},web,page_view,{c}\n" for i, t, c in events),
                    encoding="utf-8")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def _state(warehouse: Path) -> tuple:
    con = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
    try:
        return rows(con, "select as_of, latest_partition, mode from pipeline_state")[0]
    finally:
        con.close()


def test_schedule_runs_the_day_that_just_ended(instance, landing, tmp_path) -> None:
    """At 02:00 UTC the schedule requests the previous day's partition; that run publishes
    with as-of the end of that day."""
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2026, 9, 16, 2, 0, tzinfo=UTC))
    assert defs.resolve_schedule_def("journeys_nightly_schedule").job_name == "journeys_nightly"
    request = nightly_schedule(context)
    assert request.partition_key == "2026-09-15"
    _drop(landing, "a.csv", ("e1", "2026-09-14T10:00:00Z", "c1"))
    resource = JourneysResource(config_path=str(landing), warehouse_dir=str(tmp_path / "wh"))
    result = dg.materialize(all_assets, partition_key=request.partition_key, instance=instance,
                            resources={"warehouse": resource}, tags=request.tags)
    assert result.success
    assert _state(tmp_path / "wh") == (datetime(2026, 9, 16, tzinfo=UTC), date(2026, 9, 15),
                                       "full")
    assert instance.get_materialized_partitions(dg.AssetKey("ingested_events")) == {
        "2026-09-15"}


def test_landing_sensor_requests_each_new_file_once(instance, landing, tmp_path) -> None:
    """A new file gives one run request for the latest partition; the next tick with the
    returned cursor gives none; a further file gives a request for it alone (another run
    key); a file still being written (modified less than a minute ago) waits."""
    resource = JourneysResource(config_path=str(landing), warehouse_dir=str(tmp_path / "wh"))

    def tick(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"warehouse": resource})
        return journeys_landing(context)

    assert isinstance(tick(None), dg.SkipReason)
    _drop(landing, "a.csv", ("e1", "2026-09-14T10:00:00Z", "c1"))
    first = tick(None)
    (request,) = first.run_requests
    assert request.partition_key == PARTITIONS.get_last_partition_key()
    assert request.tags["journeys/new_files"] == "1"
    result = dg.materialize(all_assets, partition_key=request.partition_key, instance=instance,
                            resources={"warehouse": resource}, tags=request.tags)
    assert result.success
    assert isinstance(tick(first.cursor), dg.SkipReason)

    _drop(landing, "b.csv", ("e2", "2026-09-15T10:00:00Z", "c2"))
    _drop(landing, "c.csv", ("e3", "2026-09-15T11:00:00Z", "c3"), age=SETTLE_SECONDS / 4)
    second = tick(first.cursor)
    (again,) = second.run_requests
    assert again.run_key != request.run_key
    assert again.tags["journeys/new_files"] == "1"
    assert "b.csv" in second.cursor and "c.csv" not in second.cursor


def test_cli_backfill_runs_each_day_in_order(instance, landing, tmp_path, capsys) -> None:
    """`journeys run --from D1 --to D3` runs one Dagster run per day, in date order, each a
    partition of the nightly job; the first builds everything, the others are incremental,
    and as-of ends at the end of the last day."""
    _drop(landing, "a.csv", ("e1", "2026-09-01T10:00:00Z", "c1"),
          ("e2", "2026-09-02T10:00:00Z", "c2"))
    warehouse = tmp_path / "wh"
    assert main(["run", "--config", str(landing), "--warehouse", str(warehouse),
                 "--from", "2026-09-01", "--to", "2026-09-03"]) == 0
    assert "partition 2026-09-03" in capsys.readouterr().err
    runs = sorted(instance.get_runs(), key=lambda r: r.tags["dagster/partition"])
    assert [r.tags["dagster/partition"] for r in runs] == ["2026-09-01", "2026-09-02",
                                                          "2026-09-03"]
    assert all(r.is_success for r in runs)
    assert _state(warehouse) == (datetime(2026, 9, 4, tzinfo=UTC), date(2026, 9, 3),
                                 "incremental")
    assert main(["run", "--config", str(landing), "--warehouse", str(warehouse),
                 "--from", "2026-09-03", "--to", "2026-09-01"]) == 2


def _rows_checked(result: dg.ExecuteInProcessResult, check: str) -> dict[str, int]:
    """Rows each rule of an asset check looked at, from its summary (`| ok | rule | column |
    rows | ...`), by `rule[column]`."""
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == check]
    lines = evaluation.metadata["summary"].value.splitlines()[2:]
    return {f"{c[2].strip()}[{c[3].strip()}]": int(c[4]) for c in (line.split("|")
                                                                      for line in lines)}


def test_nightly_checks_the_rows_it_rebuilt(instance, landing, tmp_path) -> None:
    """An incremental run checks the row rules on the touched persons' rebuilt rows only (c2's
    two events, not c1's), and the rules across rows on the whole table (three events)."""
    _drop(landing, "a.csv", ("e1", "2026-09-01T10:00:00Z", "c1"),
          ("e2", "2026-09-01T11:00:00Z", "c2"))
    resource = JourneysResource(config_path=str(landing), warehouse_dir=str(tmp_path / "wh"))
    full = dg.materialize(all_assets, partition_key="2026-09-01", instance=instance,
                          resources={"warehouse": resource})
    assert full.success
    assert _rows_checked(full, "events_contract")["expect_column_values_to_not_be_null"
                                                   "[event_id]"] == 2
    _drop(landing, "b.csv", ("e3", "2026-09-02T10:00:00Z", "c2"))
    nightly = dg.materialize(all_assets, partition_key="2026-09-02", instance=instance,
                             resources={"warehouse": resource})
    assert nightly.success
    assert _state(tmp_path / "wh")[2] == "incremental"
    checked = _rows_checked(nightly, "events_contract")
    assert checked["expect_column_values_to_not_be_null[event_id]"] == 2
    assert checked["expect_column_values_to_be_unique[event_id]"] == 3
    (evaluation,) = [e for e in nightly.get_asset_check_evaluations()
                     if e.check_name == "events_contract"]
    assert "delta.events" in evaluation.metadata["table"].value


def test_unpartitioned_run_takes_as_of_from_the_data(instance, landing, tmp_path) -> None:
    """`journeys run` without dates is one unpartitioned run: as-of is the end of the day of
    the latest event."""
    _drop(landing, "a.csv", ("e1", "2026-09-01T10:00:00Z", "c1"))
    warehouse = tmp_path / "wh"
    assert main(["run", "--config", str(landing), "--warehouse", str(warehouse)]) == 0
    assert _state(warehouse) == (datetime(2026, 9, 2, tzinfo=UTC), None, "full")
    shutil.rmtree(warehouse)
    assert main(["run", "--config", str(landing), "--warehouse", str(warehouse),
                 "--from", (date(2026, 9, 1) + timedelta(days=4)).isoformat()]) == 0
    assert _state(warehouse)[:2] == (datetime(2026, 9, 6, tzinfo=UTC), date(2026, 9, 5))
