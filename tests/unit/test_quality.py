"""Data-quality suites: every rule passes on good rows and counts exactly the bad ones.

Each test builds tiny contract tables in a real in-memory DuckDB (published tables in the
`staging` schema, ingest tables in `main`), runs `check_table` and compares the counts and the
sample of failing rows with values worked out by hand.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pytest

from journey_core.contract.schema import TABLES
from journey_core.quality import ExpectationOutcome, TableCheck, check_table
from journey_core.quality.suites import _Rule, _run_gx
from tests.helpers import make_config

CONFIG = make_config()
T0 = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
AS_OF = datetime(2026, 9, 2, tzinfo=UTC)
#: The rules computed in DuckDB (all others are GX expectations).
SQL_RULES = {
    "expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
    "expect_sessions_of_a_person_not_to_overlap", "expect_furthest_stage_to_match_events",
    "expect_events_to_reconcile_with_ingested_events",
    "expect_rejected_events_to_reconcile_with_ingest_rejects",
    "expect_file_records_to_reconcile", "expect_records_loaded_to_match_ingested_events",
    "expect_records_rejected_to_match_ingest_rejects",
}

_BY_TYPE: dict[str, Any] = {"varchar": "x", "bigint": 1, "integer": 1, "double": 1.0,
                            "timestamptz": T0, "date": date(2026, 9, 1), "boolean": False,
                            "json": "{}"}
_BY_NAME: dict[str, Any] = {"stage": "awareness", "to_stage": "awareness", "stage_rank": 1,
                            "rule": "cart", "dimension": "all", "identifier_type": "customer_id",
                            "attribution": "named", "reason": "bad_value", "is_completed": 1,
                            "is_abandoned": 0, "is_pending": 0}
_STATUS = {"journeys": "closed", "account_journeys": "closed", "abandonment": "completed",
           "file_ledger": "loaded"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def schema_of(table: str) -> str:
    return "staging" if TABLES[table].published else "main"


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """Every contract table, empty: published ones in `staging`, ingest ones in `main`.

    Without not-null constraints: staged tables are built by `create table as` and have none,
    which is why the suites check nulls."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema staging")
    for spec in TABLES.values():
        columns = ", ".join(f'"{c.name}" {c.type}' for c in spec.columns)
        con.execute(f'create table {schema_of(spec.name)}."{spec.name}" ({columns})')
    yield con
    con.close()


def put(con: duckdb.DuckDBPyConnection, table: str, *rows: dict[str, Any]) -> None:
    """Insert rows: given values, the rest valid defaults (nullable columns null)."""
    spec = TABLES[table]
    full = []
    for given in rows:
        unknown = set(given) - set(spec.column_names)
        assert not unknown, f"{table} has no column(s) {unknown}"
        defaults = {c.name: None if c.nullable else
                    _STATUS.get(table) if c.name == "status" else
                    _BY_NAME.get(c.name, _BY_TYPE[c.type]) for c in spec.columns}
        full.append([{**defaults, **given}[c] for c in spec.column_names])
    marks = ", ".join("?" for _ in spec.columns)
    con.executemany(f'insert into {schema_of(table)}."{table}" values ({marks})', full)


def check(con: duckdb.DuckDBPyConnection, table: str, **kwargs: Any) -> TableCheck:
    kwargs.setdefault("as_of", AS_OF)
    return check_table(con, table, CONFIG, schema=schema_of(table), **kwargs)


def outcome(result: TableCheck, name: str, column: str | None) -> ExpectationOutcome:
    found = [o for o in result.outcomes if o.name == name and o.column == column]
    assert len(found) == 1, (name, column, [(o.name, o.column) for o in result.outcomes])
    return found[0]


def failed(result: TableCheck) -> dict[tuple[str, str | None], tuple[int, int, list]]:
    """(name, column) -> (element_count, unexpected_count, sample) of every failed outcome."""
    return {(o.name, o.column): (o.element_count, o.unexpected_count, o.unexpected_sample)
            for o in result.failures}


def valid_rows(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """One valid row in `table`, plus what its cross-table rules need."""
    if table == "events":
        put(con, "ingested_events", {"event_id": "e1"})
        put(con, "events", {"event_id": "e1"})
    elif table == "rejected_events":
        put(con, "ingest_rejects", {"file": "f", "record_number": 2})
        put(con, "rejected_events", {"file": "f", "record_number": 2})
    elif table == "file_ledger":
        put(con, "file_ledger", {"path": "f", "records_read": 2, "records_loaded": 1,
                                 "records_rejected": 1, "records_duplicate": 0,
                                 "records_forgotten": 0})
        put(con, "ingested_events", {"event_id": "e1", "file": "f"})
        put(con, "ingest_rejects", {"file": "f", "record_number": 2})
    else:
        put(con, table, {})


@pytest.mark.parametrize("table", list(TABLES))
def test_a_valid_row_passes_every_rule(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Every table has a suite; a valid row breaks no rule, blocking or advisory."""
    valid_rows(con, table)
    result = check(con, table)
    assert result.passed
    assert result.failures == []
    assert {o.element_count for o in result.outcomes} == {1}
    assert any(o.name == "expect_column_values_to_not_be_null" for o in result.outcomes)


def test_an_empty_table_reports_every_rule_with_zero_rows(
        con: duckdb.DuckDBPyConnection) -> None:
    """An empty table passes, and still lists each rule (zero rows looked at)."""
    empty = check(con, "funnel")
    put(con, "funnel", {"stage": "awareness"})
    one = check(con, "funnel")
    assert empty.passed
    assert [(o.name, o.column) for o in empty.outcomes] == [
        (o.name, o.column) for o in one.outcomes]
    assert {o.element_count for o in empty.outcomes} == {0}


def test_non_nullable_columns_are_not_null(con: duckdb.DuckDBPyConnection) -> None:
    """A null in a non-nullable column is counted, with the row's key in the sample."""
    put(con, "funnel", {"stage": "awareness"}, {"stage": "consideration", "reached": None},
        {"stage": "conversion"})
    result = check(con, "funnel")
    assert not result.passed
    assert failed(result) == {("expect_column_values_to_not_be_null", "reached"):
                              (3, 1, [{"stage": "consideration", "reached": None}])}
    assert outcome(result, "expect_column_values_to_not_be_null", "reached").blocking


def test_primary_key_is_not_null(con: duckdb.DuckDBPyConnection) -> None:
    """A null key is a not-null failure; uniqueness looks only at complete keys."""
    put(con, "ingested_events", {"event_id": "e1"}, {"event_id": None}, {"event_id": None})
    result = check(con, "ingested_events")
    assert failed(result) == {("expect_column_values_to_not_be_null", "event_id"):
                              (3, 2, [{"event_id": None}, {"event_id": None}])}


def test_scores_are_within_their_scales(con: duckdb.DuckDBPyConnection) -> None:
    """nps_score 0-10, csat_score 1-5, ces_score 1-7, bounds included, nulls allowed."""
    put(con, "ingested_events",
        {"event_id": "low", "nps_score": 0, "csat_score": 1, "ces_score": 1},
        {"event_id": "high", "nps_score": 10, "csat_score": 5, "ces_score": 7},
        {"event_id": "nps", "nps_score": 11},
        {"event_id": "csat", "csat_score": 0},
        {"event_id": "ces", "ces_score": 8})
    assert failed(check(con, "ingested_events")) == {
        ("expect_column_values_to_be_between", "nps_score"):
            (5, 1, [{"event_id": "nps", "nps_score": 11}]),
        ("expect_column_values_to_be_between", "csat_score"):
            (5, 1, [{"event_id": "csat", "csat_score": 0}]),
        ("expect_column_values_to_be_between", "ces_score"):
            (5, 1, [{"event_id": "ces", "ces_score": 8}]),
    }


def test_kpis_and_rates_are_within_range(con: duckdb.DuckDBPyConnection) -> None:
    """nps -100..100, csat 0..100, ces 1..7, rates 0..1."""
    put(con, "touchpoint_kpis",
        {"touchpoint": "ok", "nps": -100.0, "csat": 0.0, "ces": 7.0, "conversion_rate": 0.0,
         "exit_rate": 1.0},
        {"touchpoint": "bad", "nps": 100.5, "csat": 101.0, "ces": 0.5, "conversion_rate": 1.5,
         "exit_rate": -0.25})
    assert failed(check(con, "touchpoint_kpis")) == {
        ("expect_column_values_to_be_between", column): (2, 1, [{"touchpoint": "bad",
                                                                 column: value}])
        for column, value in (("nps", 100.5), ("csat", 101.0), ("ces", 0.5),
                              ("conversion_rate", 1.5), ("exit_rate", -0.25))
    }


def test_event_times_are_not_later_than_as_of_plus_tolerance(
        con: duckdb.DuckDBPyConnection) -> None:
    """occurred_at <= as_of + max_future (1 day): the bound itself passes, a second more
    fails; a smaller tolerance catches more."""
    bound = AS_OF + timedelta(days=1)
    put(con, "ingested_events", {"event_id": "past", "occurred_at": T0},
        {"event_id": "bound", "occurred_at": bound, "ingested_at": bound},
        {"event_id": "late", "occurred_at": bound + timedelta(seconds=1),
         "ingested_at": bound + timedelta(seconds=1)})
    late = {"event_id": "late", "occurred_at": "2026-09-03T00:00:01+00:00"}
    assert failed(check(con, "ingested_events")) == {
        ("expect_column_values_to_be_between", "occurred_at"): (3, 1, [late])}
    strict = check(con, "ingested_events", tolerance=timedelta(0))
    assert outcome(strict, "expect_column_values_to_be_between", "occurred_at"
                   ).unexpected_count == 2


def test_without_as_of_the_check_time_is_the_reference(con: duckdb.DuckDBPyConnection) -> None:
    """No as_of: event times are compared with the time of the check."""
    future = datetime.now(UTC) + timedelta(days=3)
    put(con, "ingested_events", {"event_id": "e1", "occurred_at": future, "ingested_at": future})
    result = check_table(con, "ingested_events", CONFIG, schema="main")
    assert not result.passed
    assert outcome(result, "expect_column_values_to_be_between", "occurred_at"
                   ).unexpected_count == 1


def test_stages_are_the_configured_ones(con: duckdb.DuckDBPyConnection) -> None:
    """Stage columns hold a configured stage (or null); ranks are within 1..len(order)."""
    put(con, "funnel", {"stage": "awareness", "stage_rank": 1},
        {"stage": "checkout", "stage_rank": 6})
    assert failed(check(con, "funnel")) == {
        ("expect_column_values_to_be_in_set", "stage"): (2, 1, [{"stage": "checkout"}]),
        ("expect_column_values_to_be_between", "stage_rank"):
            (2, 1, [{"stage": "checkout", "stage_rank": 6}]),
    }
    put(con, "stage_transitions",
        {"journey_id": "j1", "transition_index": 1, "from_stage": None, "to_stage": "awareness"},
        {"journey_id": "j1", "transition_index": 2, "from_stage": "Awareness",
         "to_stage": "conversion"})
    assert failed(check(con, "stage_transitions")) == {
        ("expect_column_values_to_be_in_set", "from_stage"):
            (2, 1, [{"journey_id": "j1", "transition_index": 2, "from_stage": "Awareness"}])}


def test_statuses_are_in_their_sets(con: duckdb.DuckDBPyConnection) -> None:
    """journeys: open or closed; abandonment: completed, abandoned or pending."""
    put(con, "journeys", {"journey_id": "j1", "status": "open"},
        {"journey_id": "j2", "status": "pending"})
    put(con, "abandonment", {"session_id": "s1", "rule": "cart", "status": "open"},
        {"session_id": "s1", "rule": "checkout", "status": "pending"})
    assert failed(check(con, "journeys")) == {("expect_column_values_to_be_in_set", "status"):
                                              (2, 1, [{"journey_id": "j2", "status": "pending"}])}
    assert failed(check(con, "abandonment")) == {
        ("expect_column_values_to_be_in_set", "status"):
            (2, 1, [{"session_id": "s1", "rule": "cart", "status": "open"}])}


def test_counts_are_not_negative(con: duckdb.DuckDBPyConnection) -> None:
    """Counters are >= 0 (event and session counts >= 1)."""
    put(con, "funnel", {"stage": "awareness", "reached": -1})
    put(con, "journeys", {"journey_id": "j1", "event_count": 0, "session_count": 1})
    assert failed(check(con, "funnel")) == {("expect_column_values_to_be_between", "reached"):
                                            (1, 1, [{"stage": "awareness", "reached": -1}])}
    assert failed(check(con, "journeys")) == {
        ("expect_column_values_to_be_between", "event_count"):
            (1, 1, [{"journey_id": "j1", "event_count": 0}])}


def test_a_row_never_ends_before_it_starts(con: duckdb.DuckDBPyConnection) -> None:
    """ended_at >= started_at (equal is fine: a one-event session)."""
    put(con, "sessions", {"session_id": "s1", "person_id": "p", "started_at": at(0),
                          "ended_at": at(0)},
        {"session_id": "s2", "person_id": "q", "started_at": at(10), "ended_at": at(5)})
    assert failed(check(con, "sessions")) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", "ended_at, started_at"):
            (2, 1, [{"session_id": "s2", "ended_at": iso(at(5)), "started_at": iso(at(10))}])}


def test_a_primary_key_is_unique(con: duckdb.DuckDBPyConnection) -> None:
    """Rows sharing a key are counted (all of them); the sample names the key and its rows."""
    put(con, "funnel", {"stage": "awareness"}, {"stage": "awareness"},
        {"stage": "consideration"})
    assert failed(check(con, "funnel")) == {("expect_column_values_to_be_unique", "stage"):
                                            (3, 2, [{"stage": "awareness", "rows": 2}])}


def test_row_rules_can_look_at_the_rebuilt_rows_only(con: duckdb.DuckDBPyConnection) -> None:
    """With `rows_schema` (an incremental run's rebuilt rows), the row rules count those rows
    only, so a bad rebuilt row fails and a published row is not checked again; the key rule
    still looks at the whole staged table."""
    put(con, "funnel", {"stage": "awareness"}, {"stage": "awareness", "reached": None})
    con.execute("create schema delta")
    con.execute("create table delta.funnel as select * from staging.funnel where false")
    con.execute("insert into delta.funnel select * replace ('consideration' as stage) "
                "from staging.funnel where reached is not null")
    result = check(con, "funnel", rows_schema="delta")
    assert failed(result) == {("expect_column_values_to_be_unique", "stage"):
                              (2, 2, [{"stage": "awareness", "rows": 2}])}
    assert outcome(result, "expect_column_values_to_not_be_null", "reached").element_count == 1
    con.execute("update delta.funnel set reached = null")
    assert failed(check(con, "funnel", rows_schema="delta"))[
        ("expect_column_values_to_not_be_null", "reached")][:2] == (1, 1)


def test_a_compound_primary_key_is_unique(con: duckdb.DuckDBPyConnection) -> None:
    """Uniqueness of a compound key is checked over the whole table, in DuckDB."""
    put(con, "identity_map", *[{"identifier_type": "customer_id", "identifier_value": "c1"}] * 3,
        {"identifier_type": "email_hash", "identifier_value": "c1"})
    assert failed(check(con, "identity_map")) == {
        ("expect_compound_columns_to_be_unique", "identifier_type, identifier_value"):
            (4, 3, [{"identifier_type": "customer_id", "identifier_value": "c1", "rows": 3}])}


def test_sessions_of_a_person_do_not_overlap(con: duckdb.DuckDBPyConnection) -> None:
    """Each session of a person starts strictly after the previous one (by started_at) ended;
    other persons' sessions do not count."""
    put(con, "sessions",
        {"session_id": "s1", "person_id": "p", "started_at": at(0), "ended_at": at(20)},
        {"session_id": "s2", "person_id": "p", "started_at": at(15), "ended_at": at(30)},
        {"session_id": "s3", "person_id": "p", "started_at": at(30), "ended_at": at(40)},
        {"session_id": "s4", "person_id": "p", "started_at": at(90), "ended_at": at(95)},
        {"session_id": "q1", "person_id": "q", "started_at": at(0), "ended_at": at(120)})
    assert failed(check(con, "sessions")) == {
        ("expect_sessions_of_a_person_not_to_overlap", "started_at"): (5, 2, [
            {"person_id": "p", "session_id": "s2", "started_at": iso(at(15)),
             "previous_session_id": "s1", "previous_ended_at": iso(at(20))},
            {"person_id": "p", "session_id": "s3", "started_at": iso(at(30)),
             "previous_session_id": "s2", "previous_ended_at": iso(at(30))},
        ])}


def test_furthest_stage_is_the_highest_stage_of_the_events(
        con: duckdb.DuckDBPyConnection) -> None:
    """A journey's (and a session's) furthest_stage is the highest stage, in the configured
    order, of its events; null when none has a stage or it has no events."""
    put(con, "events",
        {"event_id": "e1", "journey_id": "j1", "session_id": "s1", "stage": "awareness"},
        {"event_id": "e2", "journey_id": "j1", "session_id": "s1", "stage": "conversion"},
        {"event_id": "e3", "journey_id": "j2", "session_id": "s2", "stage": None},
        {"event_id": "e4", "journey_id": "j3", "session_id": "s3", "stage": "consideration"})
    put(con, "journeys", {"journey_id": "j1", "furthest_stage": "conversion"},
        {"journey_id": "j2", "furthest_stage": None},
        {"journey_id": "j3", "furthest_stage": "awareness"},
        {"journey_id": "j4", "furthest_stage": "awareness"})
    assert failed(check(con, "journeys")) == {
        ("expect_furthest_stage_to_match_events", "furthest_stage"): (4, 2, [
            {"journey_id": "j3", "furthest_stage": "awareness",
             "events_furthest_stage": "consideration"},
            {"journey_id": "j4", "furthest_stage": "awareness", "events_furthest_stage": None},
        ])}
    put(con, "sessions",
        {"session_id": "s1", "person_id": "p", "started_at": at(0), "ended_at": at(0),
         "furthest_stage": "awareness"},
        {"session_id": "s3", "person_id": "q", "started_at": at(0), "ended_at": at(0),
         "furthest_stage": "consideration"})
    assert failed(check(con, "sessions")) == {
        ("expect_furthest_stage_to_match_events", "furthest_stage"): (2, 1, [
            {"session_id": "s1", "furthest_stage": "awareness",
             "events_furthest_stage": "conversion"}])}


def test_published_events_are_the_ingested_events(con: duckdb.DuckDBPyConnection) -> None:
    """events (staging) holds exactly the event_ids of main.ingested_events."""
    put(con, "ingested_events", *[{"event_id": e} for e in ("e1", "e2", "e3")])
    put(con, "events", *[{"event_id": e} for e in ("e1", "e2", "e4")])
    assert failed(check(con, "events")) == {
        ("expect_events_to_reconcile_with_ingested_events", "event_id"): (3, 2, [
            {"event_id": "e3", "problem": "missing from events"},
            {"event_id": "e4", "problem": "not in ingested_events"}])}


def test_published_rejects_are_the_ingest_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """rejected_events (staging) holds exactly the (file, file_version, record_number) of
    ingest_rejects; the same record rejected in two versions of its file is two keys."""
    put(con, "ingest_rejects", {"file": "f", "record_number": 1},
        {"file": "f", "record_number": 2}, {"file": "f", "file_version": 2, "record_number": 1})
    put(con, "rejected_events", {"file": "f", "record_number": 1},
        {"file": "f", "file_version": 2, "record_number": 1})
    assert failed(check(con, "rejected_events")) == {
        ("expect_rejected_events_to_reconcile_with_ingest_rejects",
         "file, file_version, record_number"):
            (3, 1, [{"file": "f", "file_version": 1, "record_number": 2,
                     "problem": "missing from rejected_events"}])}


def test_the_file_ledger_reconciles(con: duckdb.DuckDBPyConnection) -> None:
    """Per file: read = loaded + rejected + duplicates + forgotten; per path, the ledger's
    loaded and rejected counts are the rows of ingested_events and ingest_rejects from that
    file."""
    put(con, "file_ledger",
        {"content_hash": "h1", "path": "a", "records_read": 3, "records_loaded": 2,
         "records_rejected": 1, "records_duplicate": 0, "records_forgotten": 0},
        {"content_hash": "h2", "path": "b", "records_read": 5, "records_loaded": 2,
         "records_rejected": 1, "records_duplicate": 1, "records_forgotten": 0})
    put(con, "ingested_events", {"event_id": "a1", "file": "a"}, {"event_id": "a2", "file": "a"},
        {"event_id": "b1", "file": "b"}, {"event_id": "c1", "file": "c"})
    put(con, "ingest_rejects", {"file": "a", "record_number": 4},
        {"file": "b", "record_number": 2})
    assert failed(check(con, "file_ledger")) == {
        ("expect_file_records_to_reconcile", "records_read"): (2, 1, [
            {"content_hash": "h2", "path": "b", "records_read": 5, "records_loaded": 2,
             "records_rejected": 1, "records_duplicate": 1, "records_forgotten": 0}]),
        ("expect_records_loaded_to_match_ingested_events", "records_loaded"): (3, 2, [
            {"path": "b", "records_loaded": 2, "ingested_events_rows": 1},
            {"path": "c", "records_loaded": 0, "ingested_events_rows": 1}]),
    }


def test_advisory_rules_never_block(con: duckdb.DuckDBPyConnection) -> None:
    """An event loaded before it happened, or an unknown reject reason, is reported but
    does not fail the table."""
    put(con, "ingested_events", {"event_id": "e1", "occurred_at": at(60), "ingested_at": at(0)})
    put(con, "ingest_rejects", {"file": "f", "record_number": 2, "reason": "gremlins"})
    events = check(con, "ingested_events")
    rejects = check(con, "ingest_rejects")
    assert events.passed and rejects.passed
    assert failed(events) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", "ingested_at, occurred_at"):
            (1, 1, [{"event_id": "e1", "ingested_at": iso(at(0)), "occurred_at": iso(at(60))}])}
    assert [o.blocking for o in events.failures + rejects.failures] == [False, False]
    assert failed(rejects) == {("expect_column_values_to_be_in_set", "reason"):
                               (1, 1, [{"file": "f", "file_version": 1, "record_number": 2,
                                        "reason": "gremlins"}])}


def test_counts_cover_the_whole_table_and_the_sample_keeps_table_order(
        con: duckdb.DuckDBPyConnection) -> None:
    """Counts are over every row; the sample holds the first SAMPLE_SIZE failing rows in the
    table's order, with their keys."""
    put(con, "ingested_events",
        *[{"event_id": f"e{i}", "nps_score": 11, "channel": None if i % 3 == 0 else "web",
           "occurred_at": at(60 * 24 * 3) if i == 6 else T0} for i in range(1, 8)])
    result = check(con, "ingested_events")
    nps = outcome(result, "expect_column_values_to_be_between", "nps_score")
    assert (nps.element_count, nps.unexpected_count) == (7, 7)
    assert [r["event_id"] for r in nps.unexpected_sample] == ["e1", "e2", "e3", "e4", "e5"]
    assert failed(result)[("expect_column_values_to_not_be_null", "channel")] == (
        7, 2, [{"event_id": "e3", "channel": None}, {"event_id": "e6", "channel": None}])


def test_rules_run_in_great_expectations(con: duckdb.DuckDBPyConnection) -> None:
    """Row-level outcomes are GX expectation types, validated by GX (not re-implemented)."""
    put(con, "funnel", {"stage": "awareness"})
    result = check(con, "funnel")
    assert "great_expectations" in sys.modules
    from great_expectations.expectations.registry import get_expectation_impl

    gx_names = {o.name for o in result.outcomes} - SQL_RULES
    assert gx_names == {"expect_column_values_to_not_be_null",
                        "expect_column_values_to_be_between",
                        "expect_column_values_to_be_in_set"}
    for name in gx_names:
        assert get_expectation_impl(name).__name__.startswith("ExpectColumnValues")


def test_an_error_inside_gx_is_a_failure_never_a_pass(con: duckdb.DuckDBPyConnection) -> None:
    """GX reports an expectation that raised as an exception, not as failed rows: the outcome
    must still fail, with GX's message."""
    put(con, "funnel", {"stage": "awareness"})
    nonsense = _Rule("ExpectColumnValuesToBeBetween", {"column": "stage", "min_value": 0}, True,
                     "stage >= 0")
    (result,) = _run_gx(con, "staging", TABLES["funnel"], [nonsense])
    assert not result.success
    assert "GX error: (_duckdb.BinderException) Binder Error: Cannot compare values of type " \
           "VARCHAR and type DOUBLE" in result.details


def test_importing_the_module_does_not_import_great_expectations() -> None:
    """GX costs seconds to import: journey_core.quality imports it on first use only."""
    code = ("import sys, journey_core.quality; "
            "assert 'great_expectations' not in sys.modules; "
            "assert 'dagster' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_table_is_named(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="'nope'"):
        check_table(con, "nope", CONFIG)
