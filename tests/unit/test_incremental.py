"""Incremental runs: late events land in their sessions and journeys, identity moves and
as-of moves rebuild the right persons, and every run equals a full rebuild of the same files."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from journey_core.config import Config
from journey_core.ops import run_pipeline
from journey_core.warehouse import connect
from tests.helpers import DEFAULT_RULES, published_snapshot, rows

DAY1 = date(2026, 9, 1)
HEADER = "event_id,occurred_at,channel,event_type,customer_id,anonymous_id\n"


def _at(day: int, hour: int, minute: int = 0) -> str:
    """An ISO time `day` days after DAY1."""
    moment = datetime(DAY1.year, DAY1.month, DAY1.day, hour, minute, tzinfo=UTC)
    return (moment + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _config(root: Path, **overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "sources": [{"name": "crm", "path": "landing/*.csv", "format": "csv"}],
        "stages": {"rules": DEFAULT_RULES},
        "journey_timeout": "7 days",
        "base_dir": str(root),
    }
    raw.update(overrides)
    return Config.model_validate(raw)


class Landing:
    """A landing folder that receives files, and a warehouse that runs a partition a night."""

    def __init__(self, root: Path, **config: Any) -> None:
        self.root = root
        (root / "landing").mkdir(parents=True)
        self.config = _config(root, **config)
        self.modes: list[str] = []

    def drop(self, name: str, *records: tuple[str, str, str, str | None, str | None]) -> None:
        """A file of (event_id, occurred_at, event_type, customer_id, anonymous_id)."""
        lines = [f"{i},{t},web,{kind},{c or ''},{a or ''}\n" for i, t, kind, c, a in records]
        (self.root / "landing" / name).write_text(HEADER + "".join(lines), encoding="utf-8")

    def run(self, day: int, warehouse: str = "wh") -> None:
        con = connect(self.root / warehouse)
        try:
            result = run_pipeline(con, self.config, self.root / warehouse,
                                  partition=DAY1 + timedelta(days=day))
        finally:
            con.close()
        self.modes.append(result.mode)

    def query(self, sql: str, warehouse: str = "wh") -> list:
        con = connect(self.root / warehouse)
        try:
            return rows(con, sql)
        finally:
            con.close()

    def snapshot(self, warehouse: str = "wh") -> dict[str, list]:
        con = connect(self.root / warehouse)
        try:
            return published_snapshot(con)
        finally:
            con.close()

    def full_rebuild(self, day: int) -> dict[str, list]:
        """All files so far in one run of partition `day`, in a fresh warehouse."""
        self.run(day, warehouse="full")
        assert self.modes.pop() == "full"
        return self.snapshot("full")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_late_event_bridging_two_sessions_merges_them(tmp_path) -> None:
    """Events at 10:00 and 10:50 are two sessions (gap > 30 min). An event at 10:25 that
    arrives two days later closes both gaps: one session of three events, whose id is still
    that of its first event; the 10:50 session is gone."""
    land = Landing(tmp_path)
    land.drop("day1.csv", ("a", _at(0, 10), "page_view", "c1", None),
              ("b", _at(0, 10, 50), "page_view", "c1", None))
    land.run(0)
    assert land.query("select session_id, event_count from sessions order by started_at") == [
        (_md5("session|crm:a"), 1), (_md5("session|crm:b"), 1)]
    land.drop("day3.csv", ("late", _at(0, 10, 25), "product_view", "c1", None))
    land.run(2)
    assert land.modes == ["full", "incremental"]
    assert land.query("select session_id, event_count from sessions") == [
        (_md5("session|crm:a"), 3)]
    assert land.query("select distinct session_id from events") == [(_md5("session|crm:a"),)]
    assert land.snapshot() == land.full_rebuild(2)


def test_late_event_after_a_journey_closed_joins_and_reopens(tmp_path) -> None:
    """Journey timeout 7 days. Events on day 0 and day 12 are two journeys; by day 20 both
    are closed. An event of day 6 arriving then joins them into one journey (gaps of 6 days);
    it is closed (its last event is 8 days before as-of). A day-19 event arriving a day late
    extends it and reopens it. The day-6 event is listed in late_events: it happened 13 days 15 h
    before the published as-of (the end of day 19), more than max_lateness (3 days); the
    day-19 one is not."""
    land = Landing(tmp_path)
    land.drop("d0.csv", ("a", _at(0, 9), "page_view", "c1", None))
    land.run(0)
    land.drop("d12.csv", ("b", _at(12, 9), "product_view", "c1", None))
    land.run(12)
    land.run(19)
    assert land.query("select journey_id, status from journeys order by started_at") == [
        (_md5("journey|crm:a"), "closed"), (_md5("journey|crm:b"), "closed")]

    land.drop("late6.csv", ("late6", _at(6, 9), "add_to_cart", "c1", None))
    land.run(20)
    assert land.query("select journey_id, event_count, status, ended_at from journeys") == [
        (_md5("journey|crm:a"), 3, "closed", datetime.fromisoformat(_at(12, 9)))]
    land.drop("late19.csv", ("late19", _at(19, 9), "purchase", "c1", None))
    land.run(21)
    assert land.query("select journey_id, event_count, status, converted from journeys") == [
        (_md5("journey|crm:a"), 4, "open", True)]
    assert land.query("select event_id, late_by_seconds, max_lateness_seconds from "
                      "late_events") == [("crm:late6", (20 - 6) * 86_400 - 9 * 3600, 3 * 86_400)]
    assert land.modes == ["full"] + ["incremental"] * 4
    assert land.snapshot() == land.full_rebuild(21)


def test_new_event_linking_identifiers_moves_the_anonymous_persons_rows(tmp_path) -> None:
    """An anonymous visitor's events belong to an `anon-` person until an event carries both
    their cookie and a customer id: then every one of their events, sessions and journeys is
    the customer's and the anonymous person is gone from every table."""
    land = Landing(tmp_path)
    land.drop("d0.csv", ("v1", _at(0, 9), "page_view", None, "cookie1"),
              ("k1", _at(0, 15), "page_view", "c1", None))
    land.run(0)
    persons = {p for (p,) in land.query("select distinct person_id from events")}
    assert len(persons) == 2 and "c1" in persons
    land.drop("d1.csv", ("login", _at(1, 9), "page_view", "c1", "cookie1"))
    land.run(1)
    for table in ("events", "sessions", "journeys"):
        assert land.query(f"select distinct person_id from {table}") == [("c1",)], table
    assert land.query("select count(*) from events where person_id = 'c1'") == [(3,)]
    assert land.snapshot() == land.full_rebuild(1)


def test_as_of_moves_forward_only_and_a_rerun_changes_nothing(tmp_path) -> None:
    """An earlier partition run after a later one keeps the later as-of: the tables do not
    change. Quiet days still move as-of, closing journeys that ended more than 7 days before."""
    land = Landing(tmp_path)
    land.drop("d0.csv", ("a", _at(0, 9), "page_view", "c1", None))
    land.run(0)
    assert land.query("select status, as_of from journeys") == [
        ("open", datetime(2026, 9, 2, tzinfo=UTC))]
    land.run(10)
    after = land.snapshot()
    assert land.query("select status, as_of from journeys") == [
        ("closed", datetime(2026, 9, 12, tzinfo=UTC))]
    land.run(3)
    land.run(10)
    assert land.snapshot() == after
    assert land.query("select as_of, latest_partition from pipeline_state") == [
        (datetime(2026, 9, 12, tzinfo=UTC), date(2026, 9, 11))]


def test_changed_settings_rebuild_everything(tmp_path) -> None:
    """A run with other settings (here the session timeout) is a full rebuild: every session
    is cut again, not only those of persons with new events."""
    land = Landing(tmp_path)
    land.drop("d0.csv", ("a", _at(0, 9), "page_view", "c1", None),
              ("b", _at(0, 9, 45), "page_view", "c1", None))
    land.run(0)
    assert land.query("select count(*) from sessions") == [(2,)]
    land.config = _config(tmp_path, session_timeout="1h")
    land.run(1)
    assert land.modes == ["full", "full"]
    assert land.query("select count(*) from sessions") == [(1,)]


def test_other_engine_resources_stay_incremental(tmp_path) -> None:
    """Resources do not change what the tables hold: a run with another DuckDB memory limit and
    thread count, or other Spark settings (master, memory), is still incremental, and equals a
    full rebuild."""
    land = Landing(tmp_path)
    land.drop("d0.csv", ("a", _at(0, 9), "page_view", "c1", None))
    land.run(0)
    land.config = _config(tmp_path, duckdb={"memory_limit": "2GB", "threads": 1},
                          spark={"master": "sc://spark-connect:15002",
                                 "conf": {"spark.driver.memory": "8g"}})
    land.drop("d1.csv", ("b", _at(1, 9), "page_view", "c2", None))
    land.run(1)
    assert land.modes == ["full", "incremental"]
    assert land.snapshot() == land.full_rebuild(1)


def test_pending_abandonment_expires_as_as_of_moves(tmp_path) -> None:
    """A checkout started an hour before midnight is pending at as-of (window 1 h not over);
    the next night, with no new event of that person, it is abandoned."""
    land = Landing(tmp_path)
    land.drop("d0.csv", ("s", _at(0, 23, 30), "checkout_start", "c1", None))
    land.run(0)
    assert land.query("select status from abandonment where rule = 'checkout'") == [
        ("pending",)]
    land.run(1)
    assert land.query("select status from abandonment where rule = 'checkout'") == [
        ("abandoned",)]
    assert land.modes == ["full", "incremental"]
    assert land.snapshot() == land.full_rebuild(1)
