"""Touchpoint KPIs: survey attribution, NPS / CSAT / CES, exits, conversions."""

from __future__ import annotations

import pytest

from tests.helpers import at, build_warehouse, event, rows

SURVEY = {"channel": "survey", "event_type": "survey_response"}
SCORES_SQL = ("select touchpoint, nps_responses, nps_promoters, nps_detractors "
              "from touchpoint_kpis where nps_responses > 0 order by touchpoint")


def test_survey_rates_its_rated_touchpoint(tmp_path):
    """A survey answer with rated_touchpoint rates that touchpoint, even one with no events and
    even when another touchpoint came just before it."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", touchpoint="web/home"),
        event("e2", at(1), customer_id="c1", rated_touchpoint="store/berlin", nps_score=10,
              **SURVEY),
    ])
    assert rows(con, SCORES_SQL) == [("store/berlin", 1, 1, 0)]
    assert rows(con, "select events, persons, journeys from touchpoint_kpis "
                     "where touchpoint = 'store/berlin'") == [(0, 0, 0)]


def test_survey_without_rated_touchpoint_rates_previous_non_survey_touchpoint(tmp_path):
    """Without rated_touchpoint an answer rates the most recent earlier non-survey touchpoint of
    the same journey: earlier survey answers are skipped."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", touchpoint="web/home"),
        event("e2", at(1), customer_id="c1", event_type="product_view", touchpoint="web/pdp"),
        event("e3", at(2), customer_id="c1", nps_score=9, **SURVEY),
        event("e4", at(3), customer_id="c1", nps_score=2, **SURVEY),
    ])
    assert rows(con, SCORES_SQL) == [("web/pdp", 2, 1, 1)]


def test_survey_never_attributed_to_an_earlier_journey(tmp_path):
    """A journey's first event being a survey answer (no rated_touchpoint) is '(unattributed)',
    even though the person's previous journey had touchpoints."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", touchpoint="web/home"),
        event("e2", at(0, days=40), customer_id="c1", nps_score=7, **SURVEY),
    ])
    assert rows(con, "select count(distinct journey_id) from events") == [(2,)]
    assert rows(con, "select touchpoint, nps_responses, nps_passives from touchpoint_kpis "
                     "where nps_responses > 0") == [("(unattributed)", 1, 1)]


def test_survey_attribution_uses_event_order_for_equal_times(tmp_path):
    """'Earlier' is (occurred_at, event_id) order: a page view at the same instant but with a
    larger event_id comes after the answer and is not what it rates."""
    con = build_warehouse(tmp_path, [
        event("a", at(0), customer_id="c1", nps_score=0, **SURVEY),
        event("b", at(0), customer_id="c1", touchpoint="web/home"),
        event("c", at(1), customer_id="c1", nps_score=10, **SURVEY),
    ])
    assert rows(con, SCORES_SQL) == [("(unattributed)", 1, 0, 1), ("web/home", 1, 1, 0)]


def test_a_touchpoint_at_the_same_instant_with_a_smaller_id_is_rated(tmp_path):
    """The other half of the rule: a page view at the answer's very instant whose event_id sorts
    lower comes before the answer in (occurred_at, event_id) order, so the answer rates it."""
    con = build_warehouse(tmp_path, [
        event("a", at(0), customer_id="c1", touchpoint="web/home"),
        event("b", at(0), customer_id="c1", nps_score=3, **SURVEY),
    ])
    assert rows(con, SCORES_SQL) == [("web/home", 1, 0, 1)]


def test_nps_csat_ces_formulas_and_counts(tmp_path):
    """NPS = 100 * (answers 9-10 - answers 0-6) / answers; CSAT = 100 * answers 4-5 / answers;
    CES = mean answer; null answers are not counted; the counts and sums are kept."""
    answers = [  # (nps, csat, ces)
        (10, 5, 2), (9, 4, 3), (9, 3, 7), (8, 1, None), (7, None, None), (6, None, None),
        (None, 2, None),
    ]
    events = [
        event(f"s{i}", at(i), customer_id="c1", rated_touchpoint="app/checkout",
              nps_score=nps, csat_score=csat, ces_score=ces, **SURVEY)
        for i, (nps, csat, ces) in enumerate(answers)
    ]
    con = build_warehouse(tmp_path, events)
    (row,) = rows(con, """
        select nps_responses, nps_promoters, nps_passives, nps_detractors, nps,
               csat_responses, csat_satisfied, csat, ces_responses, ces_sum, ces
        from touchpoint_kpis where touchpoint = 'app/checkout'""")
    # nps: promoters 10, 9, 9; passives 8, 7; detractors 6 -> 100 * (3 - 1) / 6
    # csat: 5, 4, 3, 1, 2 -> satisfied 2 of 5; ces: 2, 3, 7 -> 12 / 3
    assert row[:4] == (6, 3, 2, 1)
    assert row[4] == pytest.approx(100 * 2 / 6)
    assert row[5:7] == (5, 2)
    assert row[7] == pytest.approx(40.0)
    assert row[8:10] == (3, 12)
    assert row[10] == pytest.approx(4.0)


def test_scores_are_null_without_answers(tmp_path):
    """A touchpoint without answers has zero counts and null NPS, CSAT and CES."""
    con = build_warehouse(tmp_path, [event("e1", at(0), customer_id="c1")])
    assert rows(con, "select nps_responses, nps, csat_responses, csat, ces_responses, ces_sum, "
                     "ces from touchpoint_kpis") == [(0, None, 0, None, 0, 0, None)]


def _exit_events():
    """Four journeys; as_of = day 40 closes the day-0 ones.

    c1 closed, not converted, ends at web/pdp (visits it twice)
    c2 closed, not converted, ends at web/pdp
    c3 closed, converted (web/home, web/pdp, web/purchase)
    c4 open, not converted (web/home, web/pdp)
    """
    home = {"touchpoint": "web/home"}
    pdp = {"event_type": "product_view", "touchpoint": "web/pdp"}
    return [
        event("a1", at(0), customer_id="c1", **pdp),
        event("a2", at(1), customer_id="c1", **home),
        event("a3", at(2), customer_id="c1", **pdp),
        event("b1", at(0), customer_id="c2", **pdp),
        event("c1", at(0), customer_id="c3", **home),
        event("c2", at(1), customer_id="c3", **pdp),
        event("c3", at(2), customer_id="c3", event_type="purchase"),
        event("d1", at(0, days=35), customer_id="c4", **home),
        event("d2", at(1, days=35), customer_id="c4", **pdp),
    ]


def test_exits_and_exit_rate(tmp_path):
    """exits(t) = closed non-converted journeys whose last event is at t; exit_rate = exits /
    journeys that touched t (a journey touching t twice counts once)."""
    con = build_warehouse(tmp_path, _exit_events(), as_of=at(0, days=40))
    assert rows(con, "select touchpoint, events, persons, journeys, exits, exit_rate "
                     "from touchpoint_kpis order by touchpoint") == [
        ("web/home", 3, 3, 3, 0, 0.0),
        ("web/pdp", 5, 4, 4, 2, 0.5),
        ("web/purchase", 1, 1, 1, 0, 0.0),
    ]


def test_conversion_counts_per_touchpoint(tmp_path):
    """converted_journeys(t) = converted journeys that touched t; conversion_rate = that /
    journeys that touched t."""
    con = build_warehouse(tmp_path, _exit_events(), as_of=at(0, days=40))
    assert rows(con, "select touchpoint, converted_journeys, conversion_rate "
                     "from touchpoint_kpis order by touchpoint") == [
        ("web/home", 1, 1 / 3),
        ("web/pdp", 1, 1 / 4),
        ("web/purchase", 1, 1.0),
    ]


def test_abandoned_attempts_counted_at_abandonment_touchpoint(tmp_path):
    """abandoned_attempts(t) counts abandoned attempts (any rule) whose abandonment touchpoint
    is t; completed attempts do not count."""
    con = build_warehouse(tmp_path, [
        event("a1", at(0), customer_id="c1", event_type="add_to_cart", touchpoint="web/cart"),
        event("a2", at(1), customer_id="c1", event_type="checkout_start",
              touchpoint="web/checkout"),
        event("b1", at(0), customer_id="c2", event_type="add_to_cart", touchpoint="web/cart"),
        event("b2", at(5), customer_id="c2", event_type="purchase", touchpoint="web/checkout"),
    ], as_of=at(0, days=10))
    assert rows(con, "select touchpoint, abandoned_attempts from touchpoint_kpis "
                     "order by touchpoint") == [("web/cart", 0), ("web/checkout", 2)]


def test_touchpoint_channel_is_the_most_frequent_channel(tmp_path):
    """touchpoint_kpis.channel is the most frequent channel of the touchpoint's events."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", channel="web", touchpoint="promo/spring"),
        event("e2", at(1), customer_id="c1", channel="web", touchpoint="promo/spring"),
        event("e3", at(2), customer_id="c1", channel="app", touchpoint="promo/spring"),
    ])
    assert rows(con, "select touchpoint, channel from touchpoint_kpis") == [
        ("promo/spring", "web"),
    ]
