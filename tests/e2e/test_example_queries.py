"""The example queries in docs/queries/ run on the sample warehouse and answer their question.

Each answer is checked against the generator's ground truth or an independent computation in
Python over the base tables.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from statistics import median

import duckdb
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def con(sample_warehouse: Path):
    con = duckdb.connect(str(sample_warehouse / "journeys.duckdb"), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def truth(repo_root: Path) -> dict:
    return json.loads((repo_root / "data" / "sample" / "ground_truth.json").read_text())


def run(con: duckdb.DuckDBPyConnection, repo_root: Path, name: str) -> list[dict]:
    sql = (repo_root / "docs" / "queries" / f"{name}.sql").read_text(encoding="utf-8")
    cursor = con.execute(sql)
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]


def test_every_example_query_is_tested(repo_root: Path) -> None:
    """Each file in docs/queries has a test here."""
    names = {p.stem for p in (repo_root / "docs" / "queries").glob("*.sql")}
    assert names == {"funnel_by_segment_and_week", "top_exit_touchpoints", "abandonment_trend",
                     "nps_by_touchpoint_by_week", "web_then_call_center_then_churn",
                     "time_to_convert_by_first_channel"}


def test_funnel_by_segment_and_week(con, repo_root) -> None:
    """Summed over weeks and segments, reached per stage equals the overall funnel."""
    rows = run(con, repo_root, "funnel_by_segment_and_week")
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row["stage"]] += row["reached"]
    funnel = dict(con.execute("select stage, reached from funnel").fetchall())
    assert dict(totals) == funnel
    assert {r["segment"] for r in rows} == {"new", "returning", "(none)"}


def test_top_exit_touchpoints(con, repo_root) -> None:
    """The ten touchpoints most journeys exit from, computed here from journeys directly."""
    rows = run(con, repo_root, "top_exit_touchpoints")
    exits: dict[str, int] = defaultdict(int)
    for (tp,) in con.execute("select exit_touchpoint from journeys "
                             "where exit_touchpoint is not null").fetchall():
        exits[tp] += 1
    expected = sorted(exits.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(r["touchpoint"], r["exits"]) for r in rows] == expected


def test_abandonment_trend(con, repo_root, truth) -> None:
    """Weekly checkout abandonment equals the plan, with the planted problem week highest."""
    rows = [r for r in run(con, repo_root, "abandonment_trend") if r["rule"] == "checkout"]
    got = {str(r["week"]): (r["attempts"], r["abandoned"], r["completed"]) for r in rows}
    expected = {w: (v["attempts"], v["abandoned"], v["completed"])
                for w, v in truth["checkout_abandonment_by_week"].items()}
    assert got == expected
    worst = max(rows, key=lambda r: r["abandonment_rate"])
    assert str(worst["week"]) == truth["stories"]["checkout_problem_week"]


def test_nps_by_touchpoint_by_week(con, repo_root, truth) -> None:
    """Weekly NPS counts per touchpoint add up to the planted per-touchpoint answers."""
    rows = run(con, repo_root, "nps_by_touchpoint_by_week")
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        assert r["nps"] == pytest.approx(100 * (r["promoters"] - r["detractors"])
                                         / r["responses"])
        s = sums[r["touchpoint"]]
        s[0] += r["responses"]
        s[1] += r["promoters"]
        s[2] += r["detractors"]
    expected = {tp: [v["nps_responses"], v["nps_promoters"], v["nps_detractors"]]
                for tp, v in truth["touchpoint_kpis"].items() if v["nps_responses"]}
    assert dict(sums) == expected


def test_web_then_call_center_then_churn(con, repo_root) -> None:
    """The closed journeys with a web event, a later call center event, and no later journey of
    the person, found here by walking each person's events in order."""
    rows = run(con, repo_root, "web_then_call_center_then_churn")
    events = con.execute("select person_id, journey_id, channel from events "
                         "order by person_id, event_index").fetchall()
    closed = {j for (j,) in con.execute(
        "select journey_id from journeys where status = 'closed'").fetchall()}
    last_journey: dict[str, str] = {}
    seen_web: set[str] = set()
    web_then_call: set[str] = set()
    for person, journey, channel in events:
        last_journey[person] = journey  # events are in order: the final one wins
        if channel == "web":
            seen_web.add(journey)
        elif channel == "call_center" and journey in seen_web:
            web_then_call.add(journey)
    last = set(last_journey.values())
    expected = {j for j in web_then_call if j in closed and j in last}
    assert {r["journey_id"] for r in rows} == expected
    assert expected, "the sample has such journeys"


def test_time_to_convert_by_first_channel(con, repo_root) -> None:
    """Median and mean hours to convert per first channel, recomputed here."""
    rows = run(con, repo_root, "time_to_convert_by_first_channel")
    hours: dict[str, list[float]] = defaultdict(list)
    for channel, started, converted in con.execute(
            "select first_channel, started_at, converted_at from journeys "
            "where converted").fetchall():
        hours[channel].append((converted - started).total_seconds() / 3600)
    assert {r["first_channel"] for r in rows} == set(hours)
    for r in rows:
        values = hours[r["first_channel"]]
        assert r["converted_journeys"] == len(values)
        assert r["median_hours"] == pytest.approx(median(values))
        assert r["mean_hours"] == pytest.approx(sum(values) / len(values))
