"""Rules of the journey map report on tiny inline inputs (no sample warehouse, no browser)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journey_core.report import (
    ReportError,
    ReportOptions,
    find_pain_points,
    render_html,
    write_report,
)
from journey_core.report.payload import _abandonment

OPTIONS = ReportOptions()


def kpi(touchpoint: str, journeys: int, exits: int) -> dict[str, Any]:
    return {"touchpoint": touchpoint, "journeys": journeys, "exits": exits,
            "exit_rate": exits / journeys if journeys else None}


def entry(touchpoint: str, journeys: int, converted: int) -> dict[str, Any]:
    return {"touchpoint": touchpoint, "journeys": journeys, "converted": converted}


def answers(touchpoint: str, n: int, detractors: int, promoters: int = 0,
            stage: str | None = "retention") -> dict[str, Any]:
    """n answers with NPS, CSAT and CES each; detractors are also dissatisfied, effort 6."""
    return {"touchpoint": touchpoint, "stage": stage, "nps_n": n, "promoters": promoters,
            "detractors": detractors, "csat_n": n, "satisfied": n - detractors, "ces_n": n,
            "ces_sum": 6 * detractors + 2 * (n - detractors)}


def week(day: str, abandoned: int, completed: int) -> dict[str, Any]:
    return {"rule": "checkout", "week": day, "attempts": abandoned + completed,
            "abandoned": abandoned, "completed": completed, "pending": 0,
            "abandonment_rate": abandoned / (abandoned + completed)}


def pains(kpis=(), entries=(), scores=(), weeks=(), home=None, conversion_rank=3):
    home = home if home is not None else {}
    return find_pain_points(list(kpis), list(entries), list(scores),
                            _abandonment([dict(w) for w in weeks], OPTIONS.min_attempts),
                            home, conversion_rank, OPTIONS)


def test_exit_point_above_the_visit_exit_rate_is_flagged_with_excess_exits() -> None:
    """A touchpoint whose exit rate is well above exits / visits over all touchpoints is a pain
    point; its impact is the exits beyond that rate. A small touchpoint is not."""
    kpis = [kpi("web/help", 200, 100), kpi("web/home", 800, 20), kpi("web/tiny", 10, 9)]
    [point] = pains(kpis=kpis)
    base = 129 / 1010
    assert point["kind"] == "exits" and point["touchpoint"] == "web/help"
    assert point["baseline"] == pytest.approx(base)
    assert point["impact"] == pytest.approx(100 - 200 * base)


def test_entry_point_that_rarely_converts_is_flagged_against_the_other_entries() -> None:
    """A pre-conversion entry point converting far less than journeys entering elsewhere is a
    pain point (impact: conversions missing); entry points at or after conversion are not."""
    entries = [entry("ads/flash", 400, 4), entry("web/home", 600, 180),
               entry("call_center/billing", 300, 0)]
    home = {"ads/flash": 1, "web/home": 1, "call_center/billing": 4}
    [point] = pains(entries=entries, home=home)
    assert point["kind"] == "low_conversion_entry" and point["touchpoint"] == "ads/flash"
    assert point["rate"] == pytest.approx(0.01)
    assert point["baseline"] == pytest.approx(0.3)
    assert point["impact"] == pytest.approx(400 * 0.3 - 4)


def test_touchpoint_with_many_detractors_is_flagged_with_enough_answers_only() -> None:
    """Poor scores need `min_answers` answers and a detractor (or dissatisfied) share well above
    that of all other answers; impact scales the excess share to the touchpoint's journeys."""
    scores = [answers("call_center/billing", 100, 80), answers("store/berlin", 200, 20, 150),
              answers("chat/returns", 10, 10)]
    kpis = [kpi("call_center/billing", 300, 0), kpi("store/berlin", 400, 0),
            kpi("chat/returns", 50, 0)]
    [point] = pains(kpis=kpis, scores=scores)
    assert point["kind"] == "poor_scores" and point["touchpoint"] == "call_center/billing"
    assert set(point["metrics"]) == {"nps", "csat", "ces"}
    assert point["nps"] == pytest.approx(-80.0)
    assert point["impact"] == pytest.approx((0.8 - 30 / 210) * 300)


def test_abandonment_week_far_above_the_median_week_is_a_spike() -> None:
    """A week whose rate is well above the rule's median weekly rate is a spike; the median
    leaves out weeks with too few decided attempts, and so does the spike test."""
    weeks = [week("2026-08-31", 40, 160), week("2026-09-07", 44, 156),
             week("2026-09-14", 130, 70), week("2026-09-21", 38, 162), week("2026-10-05", 9, 1)]
    [rule] = _abandonment([dict(w) for w in weeks], OPTIONS.min_attempts)
    assert rule["median_rate"] == pytest.approx(0.21)
    [point] = pains(weeks=weeks)
    assert (point["kind"], point["rule"], point["week"]) == ("abandonment_spike", "checkout",
                                                             "2026-09-14")
    assert point["impact"] == pytest.approx(130 - 200 * 0.21)


def test_pain_points_are_ranked_by_impact() -> None:
    """Whatever their kind, pain points are ranked by impact, largest first, from 1."""
    kpis = [kpi("web/help", 200, 100), kpi("web/home", 800, 20)]
    weeks = [week("2026-08-31", 40, 160), week("2026-09-07", 44, 156),
             week("2026-09-14", 190, 10), week("2026-09-21", 38, 162)]
    points = pains(kpis=kpis, weeks=weeks)
    assert [(p["rank"], p["kind"]) for p in points] == [(1, "abandonment_spike"), (2, "exits")]
    assert points[0]["impact"] > points[1]["impact"]


def test_nothing_stands_out_in_an_even_population() -> None:
    """Touchpoints, entries, scores and weeks that match their baselines give no pain point."""
    kpis = [kpi("a", 500, 50), kpi("b", 500, 52)]
    entries = [entry("a", 500, 150), entry("b", 500, 140)]
    scores = [answers("a", 100, 20, 50), answers("b", 100, 22, 50)]
    weeks = [week("2026-08-31", 40, 160), week("2026-09-07", 44, 156)]
    assert pains(kpis, entries, scores, weeks, home={"a": 1, "b": 1}) == []


def test_missing_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    """Reporting on a folder without a warehouse names the folder and what to run."""
    with pytest.raises(ReportError, match="journeys run"):
        write_report(tmp_path)


def test_warehouse_without_the_report_tables_is_a_clear_error(tmp_path: Path) -> None:
    """A warehouse built before the segment tables existed names the tables it lacks."""
    con = duckdb.connect(str(tmp_path / "journeys.duckdb"))
    con.execute("create table journeys (journey_id varchar)")
    con.close()
    with pytest.raises(ReportError, match="funnel_by_segment"):
        write_report(tmp_path)


def test_data_cannot_end_the_embedded_script() -> None:
    """Values from the data (touchpoint names, ...) cannot close the page's script element."""
    payload = {"meta": {"as_of_label": "2026-10-06 00:00 UTC"},
               "segments": {"all": {"all": {"touchpoint": "web/</script><script>alert(1)"}}}}
    page = render_html(payload)
    assert "</script><script>alert(1)" not in page
    data = page.split('id="journey-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data) == payload
