"""Dagster: the assets materialize against a real DuckDB file and a real instance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from journey_core.contract.schema import PUBLISHED, TABLES
from journey_core.model import pipeline_graph
from pipelines.assets import all_assets
from pipelines.definitions import defs, journeys_run_failures
from pipelines.resources import JourneysResource
from pipelines.schedules import nightly_job, nightly_schedule

WEB = [
    {"id": "w1", "ts": "2026-09-01T10:00:00Z", "cookie": "c1", "event": "page_view",
     "page": "home"},
    {"id": "w2", "ts": "2026-09-01T10:05:00Z", "cookie": "c1", "user": "u1", "event": "login",
     "page": "account"},
    {"id": "w3", "ts": "2026-09-01T10:09:00Z", "cookie": "c1", "user": "u1",
     "event": "checkout_start", "page": "checkout"},
]
CALLS = "call_id,start,crm,queue\nk1,1788264000000,u1,billing\nk2,not-a-time,u1,billing\n"


def write_project(root: Path) -> Path:
    """Two sources (NDJSON web, CSV calls) and their config; returns the config path."""
    (root / "web").mkdir(parents=True)
    (root / "calls").mkdir()
    (root / "web" / "day1.ndjson").write_text("\n".join(json.dumps(r) for r in WEB) + "\n")
    (root / "calls" / "day1.csv").write_text(CALLS)
    config = {
        "sources": [
            {"name": "web", "path": "web/*.ndjson", "format": "ndjson",
             "constants": {"channel": "web"}, "touchpoint_prefix": "web/",
             "fields": {"event_id": "id", "occurred_at": "ts", "event_type": "event",
                        "anonymous_id": "cookie", "customer_id": "user", "touchpoint": "page"}},
            {"name": "calls", "path": "calls/*.csv", "format": "csv",
             "constants": {"channel": "call_center", "event_type": "call"},
             "touchpoint_prefix": "call_center/", "timestamp": {"format": "epoch_ms"},
             "fields": {"event_id": "call_id", "occurred_at": "start", "customer_id": "crm",
                        "touchpoint": "queue"}},
        ],
        "stages": {"rules": [{"stage": "awareness", "event_type": "page_view"},
                             {"stage": "consideration", "event_type": "checkout_start"},
                             {"stage": "retention", "event_type": "call"}]},
    }
    path = root / "journeys.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def instance(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


def test_definitions_load_with_graph_schedule_and_job() -> None:
    """The code location loads: every published table is an asset downstream of ingest, and a
    nightly schedule runs the job at 02:00 UTC; publishing comes after every table."""
    keys = {k.to_user_string() for a in all_assets for k in a.keys}
    assert keys == {"ingested_events", *(t.name for t in PUBLISHED), "published_tables"}
    graph = defs.resolve_asset_graph()
    for table in PUBLISHED:
        upstream = dg.AssetSelection.assets(table.name).upstream().resolve(graph)
        assert dg.AssetKey("ingested_events") in upstream, table.name
    publish_upstream = dg.AssetSelection.assets("published_tables").upstream().resolve(graph)
    assert {dg.AssetKey(t.name) for t in PUBLISHED} <= publish_upstream
    assert nightly_schedule.cron_schedule == "0 2 * * *"
    assert nightly_schedule.execution_timezone == "UTC"
    assert defs.resolve_job_def(nightly_job.name) is not None


def test_asset_dependencies_come_from_the_table_graph() -> None:
    """Each table asset depends on the tables its models read (and on ingest when they read
    its tables), as the SQL says: abandonment reads events and sessions, funnel reads
    funnel_by_segment, and identity's two tables come from the ingested events."""
    graph = defs.resolve_asset_graph()

    def parents(table: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(table)).parent_keys}

    assert parents("abandonment") == {"events", "sessions"}
    assert parents("funnel") == {"funnel_by_segment"}
    assert parents("identity_map") == parents("identity_conflicts") == {"ingested_events"}
    for step in pipeline_graph().steps:
        expected = {t for up in step.upstream for t in pipeline_graph().step(up).outputs}
        if step.sources & {"ingested_events", "ingest_rejects"}:
            expected.add("ingested_events")
        for table in step.outputs:
            assert parents(table) == expected, table


def test_every_asset_has_description_and_group() -> None:
    """In the UI every asset explains itself and sits in the journeys group."""
    for asset in all_assets:
        for spec in asset.specs:
            assert spec.description, spec.key
            assert spec.group_name == "journeys", spec.key


def test_materialize_all_assets(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    """A real run writes every published table to DuckDB and Parquet, with metadata that matches
    the warehouse: row count, the contract's column schema, a preview."""
    config_path = write_project(tmp_path / "landing")
    warehouse = tmp_path / "wh"
    resource = JourneysResource(config_path=str(config_path), warehouse_dir=str(warehouse))
    result = dg.materialize(all_assets, resources={"warehouse": resource}, instance=instance)
    assert result.success

    con = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
    materialized = {e.asset_key.to_user_string(): e.event_specific_data.materialization
                    for e in result.get_asset_materialization_events()}
    for table in PUBLISHED:
        mat = materialized[table.name]
        count = con.execute(f'select count(*) from "{table.name}"').fetchall()[0][0]
        assert mat.metadata["dagster/row_count"].value == count, table.name
        schema = mat.metadata["dagster/column_schema"].schema
        assert [c.name for c in schema.columns] == TABLES[table.name].column_names
        assert "preview" in mat.metadata
        cols = [r[0] for r in con.execute(f'describe "{table.name}"').fetchall()]
        assert cols == TABLES[table.name].column_names, table.name
        exported = duckdb.sql(
            f"select count(*) from read_parquet('{warehouse}/parquet/{table.name}/**/*.parquet')"
        ).fetchall()[0][0]
        assert exported == count, table.name
    # The hand-made input: 3 web events + 1 call loaded, 1 call rejected (bad timestamp).
    assert con.execute("select count(*) from events").fetchall() == [(4,)]
    assert con.execute("select reason, record_number from rejected_events").fetchall() == [
        ("bad_timestamp", 3)]
    (ingest,) = result.asset_materializations_for_node("ingested_events")
    assert ingest.metadata["records_read"].value == 5
    assert ingest.metadata["records_loaded"].value == 4
    assert ingest.metadata["records_rejected"].value == 1
    con.close()


def test_rerun_skips_loaded_files_and_keeps_tables(tmp_path: Path,
                                                   instance: dg.DagsterInstance) -> None:
    """Running the job twice loads each file once and publishes the same tables."""
    config_path = write_project(tmp_path / "landing")
    warehouse = tmp_path / "wh"
    resource = JourneysResource(config_path=str(config_path), warehouse_dir=str(warehouse))
    snapshots = []
    for _ in range(2):
        result = dg.materialize(all_assets, resources={"warehouse": resource}, instance=instance)
        assert result.success
        con = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
        snapshots.append({t.name: sorted(map(str, con.execute(f'select * from "{t.name}"')
                                             .fetchall())) for t in PUBLISHED})
        con.close()
    (second_ingest,) = result.asset_materializations_for_node("ingested_events")
    assert second_ingest.metadata["files_loaded"].value == 0
    assert second_ingest.metadata["files_skipped"].value == 2
    assert snapshots[0] == snapshots[1]


def test_code_location_loads_with_the_dagster_cli(repo_root: Path) -> None:
    """`dagster dev` / `dagster asset materialize -m pipelines.definitions` can load the code
    location: Dagster's own validator accepts it."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m",
         "pipelines.definitions"], cwd=repo_root, capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 0, result.stderr
    assert "Validation successful" in result.stderr + result.stdout


def test_run_failure_sensor_records_the_failed_step(tmp_path: Path,
                                                    instance: dg.DagsterInstance,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed run (here: a config whose timeout is not a duration) is appended to
    <warehouse>/run_failures.jsonl with its job, failed step and error."""
    config_path = write_project(tmp_path / "landing")
    config_path.write_text(config_path.read_text() + "session_timeout: soon\n")
    warehouse = tmp_path / "wh"
    monkeypatch.setenv("JOURNEYS_WAREHOUSE", str(warehouse))
    resource = JourneysResource(config_path=str(config_path), warehouse_dir=str(warehouse))
    result = dg.materialize(all_assets, resources={"warehouse": resource}, instance=instance,
                            raise_on_error=False)
    assert not result.success
    (entry,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = entry.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name="journeys_run_failures", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run).for_run_failure()
    journeys_run_failures(context)
    (record,) = [json.loads(line) for line in
                 (warehouse / "run_failures.jsonl").read_text().splitlines()]
    assert record["run_id"] == result.run_id
    assert [s["step"] for s in record["steps"]] == ["ingested_events"]
    assert "session_timeout" in record["steps"][0]["error"]
