"""Asset checks: a failed contract check stops what is downstream and reports GX's results.

A minimal asset writes `staging.funnel` into a real DuckDB file and yields its checks; a
downstream asset stands for the publish step.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from journey_core.contract.schema import TABLES
from journey_core.quality import ExpectationOutcome, TableCheck
from pipelines.checks import check_results, check_specs, to_check_results
from tests.helpers import make_config

AS_OF = datetime(2026, 9, 2, tzinfo=UTC)
CONFIG = make_config()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


def funnel_row(stage: str, rank: int) -> list[Any]:
    values = {"stage": stage, "stage_rank": rank, "reached": 1, "open_at_stage": 0,
              "journeys": 1, "as_of": AS_OF}
    return [values.get(c) for c in TABLES["funnel"].column_names]


def assets(db: Path, stages: list[str]) -> list[dg.AssetsDefinition]:
    """`funnel`: stage the table (one row per stage name given), then check it; `published`
    depends on it and records that it ran."""

    @dg.asset(name="funnel", check_specs=check_specs("funnel"))
    def funnel() -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        con = duckdb.connect(str(db))
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute("create schema if not exists staging")
            con.execute("drop table if exists staging.funnel")
            con.execute(TABLES["funnel"].ddl("staging"))
            marks = ", ".join("?" for _ in TABLES["funnel"].columns)
            con.executemany(f"insert into staging.funnel values ({marks})",
                            [funnel_row(s, i) for i, s in enumerate(stages, start=1)])
            yield dg.MaterializeResult(metadata={"rows": len(stages)})
            yield from check_results(con, "funnel", CONFIG, as_of=AS_OF)
        finally:
            con.close()

    @dg.asset(deps=[funnel])
    def published() -> None:
        (db.parent / "published").touch()

    return [funnel, published]


def test_a_failed_contract_check_skips_downstream_and_reports_its_results(
        tmp_path: Path, instance: dg.DagsterInstance) -> None:
    """A stage outside the configured order fails the blocking check: the checked asset keeps
    its materialization, `published` does not run, and the check's metadata names the rule,
    its counts and the failing rows."""
    db = tmp_path / "wh.duckdb"
    result = dg.materialize(assets(db, ["awareness", "checkout"]), instance=instance,
                            raise_on_error=False)
    assert not result.success  # the checked step fails, so the run does
    assert not (tmp_path / "published").exists()
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("funnel")}
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == ("funnel_contract", False)
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    metadata = evaluation.metadata
    assert metadata["failed_expectations"].value == 1
    assert metadata["expect_column_values_to_be_in_set[stage]"].value == {
        "element_count": 2, "unexpected_count": 1, "unexpected_sample": [{"stage": "checkout"}],
        "details": "stage in ['awareness', 'consideration', 'conversion', 'retention', "
                   "'advocacy'] (nulls allowed)"}
    assert "| FAILED | expect_column_values_to_be_in_set | stage | 2 | 1 |" in (
        metadata["summary"].value)
    assert metadata["table"].value == "staging.funnel"


def test_a_passing_contract_check_lets_downstream_run(
        tmp_path: Path, instance: dg.DagsterInstance) -> None:
    """A valid funnel passes every rule and `published` runs."""
    db = tmp_path / "wh.duckdb"
    result = dg.materialize(assets(db, ["awareness", "consideration"]), instance=instance)
    assert result.success
    assert (tmp_path / "published").exists()
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == ("funnel_contract", True)
    assert evaluation.metadata["failed_expectations"].value == 0
    assert evaluation.metadata["expectations"].value > 10


def test_tables_with_advisory_rules_get_a_non_blocking_check() -> None:
    """ingested_events has advisory rules: a second, non-blocking check; funnel has none."""
    specs = check_specs("ingested_events")
    assert [(s.name, s.blocking) for s in specs] == [("ingested_events_contract", True),
                                                     ("ingested_events_advisory", False)]
    ledger = check_specs("file_ledger", asset="ingested_events")
    assert {s.asset_key for s in ledger} == {dg.AssetKey("ingested_events")}
    assert [s.name for s in check_specs("funnel")] == ["funnel_contract"]


def test_advisory_failures_are_warnings_beside_a_passing_contract() -> None:
    """Blocking outcomes feed the contract check (ERROR), advisory ones the advisory check
    (WARN): a failed advisory rule never fails the contract."""
    late = ExpectationOutcome("expect_column_pair_values_a_to_be_greater_than_b",
                              "ingested_at, occurred_at", False, False, 4, 1,
                              [{"event_id": "e1"}], "ingested_at >= occurred_at")
    key = ExpectationOutcome("expect_column_values_to_be_unique", "event_id", True, True, 4, 0,
                             [], "unique")
    contract, advisory = to_check_results(TableCheck("ingested_events", [key, late]))
    assert (contract.check_name, contract.passed, contract.severity) == (
        "ingested_events_contract", True, dg.AssetCheckSeverity.ERROR)
    assert (advisory.check_name, advisory.passed, advisory.severity) == (
        "ingested_events_advisory", False, dg.AssetCheckSeverity.WARN)
    assert advisory.metadata[
        "expect_column_pair_values_a_to_be_greater_than_b[ingested_at, occurred_at]"].value == {
        "element_count": 4, "unexpected_count": 1, "unexpected_sample": [{"event_id": "e1"}],
        "details": "ingested_at >= occurred_at"}
