"""Segments: journey_segments, survey_answers, and the funnel, touchpoint KPIs and abandonment
broken down by segment (dimension `all` being everyone); segment dimensions in the config.

Each scenario is built once per module and read by several tests, one rule each.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from journey_core.config import ConfigError, load_config
from tests.helpers import at, build_warehouse, event, make_config, rows

SURVEY = {"channel": "survey", "event_type": "survey_response"}
STAGES = ["awareness", "consideration", "conversion", "retention", "advocacy"]


def props(**values: object) -> dict[str, str]:
    """The `properties` keyword of `event` holding `values` as JSON."""
    return {"properties": json.dumps(values)}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Build a warehouse in a fresh folder; every connection is closed at the module's end."""
    connections = []

    def _build(events, config=None, *, as_of=None):
        con = build_warehouse(tmp_path_factory.mktemp("wh"), events, config, as_of=as_of)
        connections.append(con)
        return con

    yield _build
    for con in connections:
        con.close()


# --- journey_segments ---------------------------------------------------------------------------

SEGMENT_DIMENSIONS = [
    {"name": "persona", "property": "segment", "scope": "person"},
    {"name": "device", "property": "device", "scope": "journey", "missing": "unknown"},
    {"name": "first_channel", "column": "channel"},
    {"name": "account", "column": "account_id"},
    {"name": "business", "column": "account_id", "scope": "person", "present": "b2b",
     "missing": "b2c"},
]


@pytest.fixture(scope="module")
def segments_wh(build):
    """c1 has two journeys (day 0 and day 40), c2 and c3 one each.

    c1#1: ads {device: null}, web {segment: new, device: mobile}, web {segment: returning,
          device: desktop}
    c1#2: email {device: tablet, account acme}, web {segment: vip}
    c2#1: web, no properties
    c3#1: two events at the same instant: id c3b {segment: late}, id c3a {segment: early}
    """
    return build([
        event("c1a", at(0), customer_id="c1", channel="ads", **props(device=None)),
        event("c1b", at(1), customer_id="c1", **props(segment="new", device="mobile")),
        event("c1c", at(2), customer_id="c1", **props(segment="returning", device="desktop")),
        event("c1d", at(0, days=40), customer_id="c1", channel="email", account_id="acme",
              **props(device="tablet")),
        event("c1e", at(1, days=40), customer_id="c1", **props(segment="vip")),
        event("c2a", at(0), customer_id="c2"),
        event("c3b", at(0), customer_id="c3", **props(segment="late")),
        event("c3a", at(0), customer_id="c3", **props(segment="early")),
    ], make_config(segments=SEGMENT_DIMENSIONS))


def segments_of(con, dimension: str) -> dict[str, str]:
    """{`person#n` (their n-th journey): segment} for one dimension."""
    return dict(rows(con, """
        select j.person_id || '#' || row_number() over (
                   partition by j.person_id order by j.started_at),
               s.segment
        from journey_segments as s
        inner join journeys as j on s.journey_id = j.journey_id
        where s.dimension = ?""", [dimension]))


def test_person_scope_takes_first_value_of_whole_history(segments_wh):
    """Scope person: the first non-null value in the person's whole history (event order), the
    same for every journey of theirs, even where a journey has its own, different value."""
    persona = segments_of(segments_wh, "persona")
    assert (persona["c1#1"], persona["c1#2"]) == ("new", "new")


def test_person_scope_event_order_breaks_ties_by_event_id(segments_wh):
    """Events at the same instant are ordered by event_id: c3a comes before c3b."""
    assert segments_of(segments_wh, "persona")["c3#1"] == "early"


def test_journey_scope_takes_first_value_within_journey(segments_wh):
    """Scope journey: the first non-null value within the journey (a JSON null is no value)."""
    device = segments_of(segments_wh, "device")
    assert (device["c1#1"], device["c1#2"]) == ("mobile", "tablet")


def test_channel_column_is_first_touch_channel(segments_wh):
    """A `column: channel` dimension (scope journey) is the channel of the journey's first
    event."""
    assert segments_of(segments_wh, "first_channel") == {
        "c1#1": "ads", "c1#2": "email", "c2#1": "web", "c3#1": "web",
    }


def test_account_id_column(segments_wh):
    """A `column: account_id` dimension is the journey's first account_id, `(none)` without."""
    assert segments_of(segments_wh, "account") == {
        "c1#1": "(none)", "c1#2": "acme", "c2#1": "(none)", "c3#1": "(none)",
    }


def test_present_and_missing_labels(segments_wh):
    """With `present`, the segment is that label when a value exists anywhere in scope (b2b: an
    account_id anywhere in the person's history, even in a later journey), else `missing`."""
    assert segments_of(segments_wh, "business") == {
        "c1#1": "b2b", "c1#2": "b2b", "c2#1": "b2c", "c3#1": "b2c",
    }


def test_journey_without_value_gets_missing_label(segments_wh):
    """A journey with no value gets the dimension's `missing` label, `(none)` by default."""
    assert segments_of(segments_wh, "persona")["c2#1"] == "(none)"
    assert segments_of(segments_wh, "device")["c2#1"] == "unknown"


def test_one_row_per_journey_and_dimension(segments_wh):
    """journey_segments has one row per journey and configured dimension: 4 journeys x 5."""
    assert rows(segments_wh, "select count(*), count(distinct (journey_id, dimension)) "
                             "from journey_segments") == [(20, 20)]
    assert rows(segments_wh, "select count(*) from journey_segments as s "
                             "inner join journeys as j on s.journey_id = j.journey_id "
                             "and s.person_id = j.person_id") == [(20,)]


def test_no_segments_configured_gives_no_rows(build):
    """Without `segments` in the config journey_segments is empty, and the breakdowns hold only
    dimension `all`."""
    con = build([event("e1", at(0), customer_id="c1")])
    assert rows(con, "select count(*) from journey_segments") == [(0,)]
    assert rows(con, "select distinct dimension, segment from funnel_by_segment") == [
        ("all", "all"),
    ]


# --- funnel_by_segment --------------------------------------------------------------------------

PERSONA = [{"name": "persona", "property": "segment", "scope": "person"}]
FUNNEL_COLUMNS = ("stage, reached, reached_next, step_conversion, dropped, open_at_stage, "
                  "journeys")


@pytest.fixture(scope="module")
def funnel_wh(build):
    """Six journeys; as_of = day 40 closes the day-0 ones.

    new:       c1 page_view, product_view (consideration, closed)
               c2 page_view, purchase (conversion, closed)
               c3 page_view on day 35 (awareness, open)
    returning: c4 purchase, review (advocacy, closed)
               c5 page_view (awareness, closed)
    (none):    c6 email_open, no stage (closed)
    """
    new, returning = props(segment="new"), props(segment="returning")
    return build([
        event("a1", at(0), customer_id="c1", **new),
        event("a2", at(1), customer_id="c1", event_type="product_view"),
        event("b1", at(0), customer_id="c2", **new),
        event("b2", at(1), customer_id="c2", event_type="purchase"),
        event("c1", at(0, days=35), customer_id="c3", **new),
        event("d1", at(0), customer_id="c4", event_type="purchase", **returning),
        event("d2", at(1), customer_id="c4", event_type="review"),
        event("e1", at(0), customer_id="c5", **returning),
        event("f1", at(0), customer_id="c6", channel="email", event_type="email_open"),
    ], make_config(segments=PERSONA), as_of=at(0, days=40))


def test_funnel_by_segment_applies_funnel_rules_within_each_segment(funnel_wh):
    """Per segment: reached(s) = its journeys with furthest_stage >= s, step_conversion =
    reached(next) / reached(s), dropped(s) = its closed journeys whose furthest stage is s (null
    for the last stage), open_at_stage(s) = its open ones; a journey with no stage reaches
    nothing."""
    got = rows(funnel_wh, f"select segment, {FUNNEL_COLUMNS} from funnel_by_segment "
                          "where dimension = 'persona' order by segment, stage_rank")
    assert got == [
        ("(none)", "awareness", 0, 0, None, 0, 0, 1),
        ("(none)", "consideration", 0, 0, None, 0, 0, 1),
        ("(none)", "conversion", 0, 0, None, 0, 0, 1),
        ("(none)", "retention", 0, 0, None, 0, 0, 1),
        ("(none)", "advocacy", 0, None, None, None, 0, 1),
        ("new", "awareness", 3, 2, pytest.approx(2 / 3), 0, 1, 3),
        ("new", "consideration", 2, 1, 0.5, 1, 0, 3),
        ("new", "conversion", 1, 0, 0.0, 1, 0, 3),
        ("new", "retention", 0, 0, None, 0, 0, 3),
        ("new", "advocacy", 0, None, None, None, 0, 3),
        ("returning", "awareness", 2, 1, 0.5, 1, 0, 2),
        ("returning", "consideration", 1, 1, 1.0, 0, 0, 2),
        ("returning", "conversion", 1, 1, 1.0, 0, 0, 2),
        ("returning", "retention", 1, 1, 1.0, 0, 0, 2),
        ("returning", "advocacy", 1, None, None, None, 0, 2),
    ]


def test_funnel_all_rows_equal_funnel(funnel_wh):
    """Dimension `all` (segment `all`) covers every journey and equals the `funnel` table."""
    all_rows = rows(funnel_wh, f"select {FUNNEL_COLUMNS} from funnel_by_segment "
                               "where dimension = 'all' and segment = 'all' order by stage_rank")
    assert all_rows == [
        ("awareness", 5, 3, 0.6, 1, 1, 6),
        ("consideration", 3, 2, pytest.approx(2 / 3), 1, 0, 6),
        ("conversion", 2, 1, 0.5, 1, 0, 6),
        ("retention", 1, 1, 1.0, 0, 0, 6),
        ("advocacy", 1, None, None, None, 0, 6),
    ]
    assert rows(funnel_wh, f"select {FUNNEL_COLUMNS} from funnel order by stage_rank") \
        == all_rows


def test_funnel_by_segment_counts_reaggregate_to_all(funnel_wh):
    """Summing reached, dropped, open_at_stage and journeys over the segments of one dimension
    gives the `all` row of each stage."""
    summed = rows(funnel_wh, """
        select stage, sum(reached), sum(dropped), sum(open_at_stage), sum(journeys)
        from funnel_by_segment where dimension = 'persona'
        group by stage, stage_rank order by stage_rank""")
    assert summed == rows(funnel_wh, """
        select stage, reached, dropped, open_at_stage, journeys
        from funnel_by_segment where dimension = 'all' order by stage_rank""")
    assert [r[1] for r in summed] == [5, 3, 2, 1, 1]


# --- touchpoint_kpis_by_segment -----------------------------------------------------------------

TOUCH_COLUMNS = "touchpoint, events, persons, journeys, converted_journeys, exits, " \
                "abandoned_attempts"
SCORE_COLUMNS = "touchpoint, nps_responses, nps_promoters, nps_detractors, csat_responses, " \
                "csat_satisfied, ces_responses, ces_sum"
COUNT_COLUMNS = ("events", "journeys", "converted_journeys", "exits", "abandoned_attempts",
                 "nps_responses", "nps_promoters", "nps_passives", "nps_detractors",
                 "csat_responses", "csat_satisfied", "ces_responses", "ces_sum")


@pytest.fixture(scope="module")
def kpis_wh(build):
    """Four journeys; as_of = day 40 closes the day-0 ones.

    new:       c1 web/home, survey (nps 9), web/pdp          closed, exits at web/pdp
               c2 web/home, web/pdp, web/purchase            closed, converted
    returning: c3 web/pdp, survey (nps 3, csat 2, ces 5), add_to_cart at web/pdp
                                                              closed, exits at web/pdp,
                                                              abandoned cart at web/pdp
    (none):    c4 web/home on day 35                          open
    """
    home = {"touchpoint": "web/home"}
    pdp = {"event_type": "product_view", "touchpoint": "web/pdp"}
    return build([
        event("a1", at(0), customer_id="c1", **home, **props(segment="new")),
        event("a2", at(1), customer_id="c1", nps_score=9, **SURVEY),
        event("a3", at(2), customer_id="c1", **pdp),
        event("b1", at(0), customer_id="c2", **home, **props(segment="new")),
        event("b2", at(1), customer_id="c2", **pdp),
        event("b3", at(2), customer_id="c2", event_type="purchase"),
        event("c1", at(0), customer_id="c3", **pdp, **props(segment="returning")),
        event("c2", at(1), customer_id="c3", nps_score=3, csat_score=2, ces_score=5, **SURVEY),
        event("c3", at(2), customer_id="c3", event_type="add_to_cart", touchpoint="web/pdp"),
        event("d1", at(0, days=35), customer_id="c4", **home),
    ], make_config(segments=PERSONA), as_of=at(0, days=40))


def test_touchpoint_kpis_by_segment_counts(kpis_wh):
    """Per segment and touchpoint: events there, distinct persons, journeys that touched it,
    converted journeys among them, exits (closed non-converted journeys ending there) and
    abandoned attempts whose abandonment touchpoint is there, counting that segment's journeys
    only."""
    got = rows(kpis_wh, f"select segment, {TOUCH_COLUMNS} from touchpoint_kpis_by_segment "
                        "where dimension = 'persona' order by segment, touchpoint")
    assert got == [
        ("(none)", "web/home", 1, 1, 1, 0, 0, 0),
        ("new", "survey/survey_response", 1, 1, 1, 0, 0, 0),
        ("new", "web/home", 2, 2, 2, 1, 0, 0),
        ("new", "web/pdp", 2, 2, 2, 1, 1, 0),
        ("new", "web/purchase", 1, 1, 1, 1, 0, 0),
        ("returning", "survey/survey_response", 1, 1, 1, 0, 0, 0),
        ("returning", "web/pdp", 2, 1, 1, 0, 1, 1),
    ]


def test_touchpoint_kpis_by_segment_survey_counts(kpis_wh):
    """A segment's scores count the answers given in its journeys, at the touchpoint each
    answer rates (here the previous non-survey touchpoint)."""
    got = rows(kpis_wh, f"select segment, {SCORE_COLUMNS} from touchpoint_kpis_by_segment "
                        "where dimension = 'persona' and (nps_responses > 0 or csat_responses > 0 "
                        "or ces_responses > 0) order by segment, touchpoint")
    assert got == [
        ("new", "web/home", 1, 1, 0, 0, 0, 0, 0),
        ("returning", "web/pdp", 1, 0, 1, 1, 0, 1, 5),
    ]


def test_touchpoint_kpis_all_rows_equal_touchpoint_kpis(kpis_wh):
    """Dimension `all` (segment `all`) counts every journey and equals `touchpoint_kpis`."""
    all_rows = rows(kpis_wh, f"select {TOUCH_COLUMNS} from touchpoint_kpis_by_segment "
                             "where dimension = 'all' and segment = 'all' order by touchpoint")
    assert all_rows == [
        ("survey/survey_response", 2, 2, 2, 0, 0, 0),
        ("web/home", 3, 3, 3, 1, 0, 0),
        ("web/pdp", 4, 3, 3, 1, 2, 1),
        ("web/purchase", 1, 1, 1, 1, 0, 0),
    ]
    columns = ", ".join(name for name in (
        "touchpoint", "channel", *COUNT_COLUMNS, "persons", "conversion_rate", "exit_rate", "nps",
        "csat", "ces"))
    assert rows(kpis_wh, f"select {columns} from touchpoint_kpis order by touchpoint") == rows(
        kpis_wh, f"select {columns} from touchpoint_kpis_by_segment where dimension = 'all' "
                 "order by touchpoint")


def test_touchpoint_kpis_by_segment_counts_reaggregate_to_all(kpis_wh):
    """Summing the kept counts and sums over the segments of one dimension gives the `all` row
    of each touchpoint (persons are distinct counts and are left out)."""
    sums = ", ".join(f"sum({c})" for c in COUNT_COLUMNS)
    summed = rows(kpis_wh, f"select touchpoint, {sums} from touchpoint_kpis_by_segment "
                           "where dimension = 'persona' group by touchpoint order by touchpoint")
    assert summed == rows(kpis_wh, f"select touchpoint, {', '.join(COUNT_COLUMNS)} "
                                   "from touchpoint_kpis_by_segment where dimension = 'all' "
                                   "order by touchpoint")
    assert [(r[0], r[1]) for r in summed] == [
        ("survey/survey_response", 2), ("web/home", 3), ("web/pdp", 4), ("web/purchase", 1),
    ]


# --- abandonment_by_segment ---------------------------------------------------------------------

SUNDAY_LATE = datetime(2026, 9, 6, 23, 50, tzinfo=UTC)
MONDAY_EARLY = datetime(2026, 9, 7, 0, 10, tzinfo=UTC)
WEEK_1 = date(2026, 8, 31)  # Monday
WEEK_2 = date(2026, 9, 7)  # the next Monday
ABANDONMENT_COLUMNS = "rule, week, attempts, completed, abandoned, pending, abandonment_rate"


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def abandonment_wh(build):
    """Default rules (cart 24 h, checkout 1 h); as_of = 2026-09-10 00:00 UTC.

    new:       p1 cart Sun 23:50 (app), cart Mon 00:05, purchase Mon 00:08: one session, completed
               p2 cart Mon 00:10 (store)                                           abandoned
               p3 cart Tue 1 Sep 10:00                                             abandoned
               p6 cart Wed 9 Sep 20:00                                             pending
    returning: p4 cart Wed 9 Sep 12:00                                             pending
               p5 checkout Tue 8 Sep 10:00, purchase 10:30                         completed
    """
    new, returning = props(segment="new"), props(segment="returning")
    cart = {"event_type": "add_to_cart"}
    config = make_config(segments=[*PERSONA, {"name": "first_channel", "column": "channel"}])
    return build([
        event("p1a", SUNDAY_LATE, customer_id="p1", channel="app", **cart, **new),
        event("p1b", _utc(7, 0, 5), customer_id="p1", **cart),
        event("p1c", _utc(7, 0, 8), customer_id="p1", event_type="purchase"),
        event("p2a", MONDAY_EARLY, customer_id="p2", channel="store", **cart, **new),
        event("p3a", _utc(1, 10), customer_id="p3", **cart, **new),
        event("p6a", _utc(9, 20), customer_id="p6", **cart, **new),
        event("p4a", _utc(9, 12), customer_id="p4", **cart, **returning),
        event("p5a", _utc(8, 10), customer_id="p5", event_type="checkout_start", **returning),
        event("p5b", _utc(8, 10, 30), customer_id="p5", event_type="purchase"),
    ], config, as_of=_utc(10, 0))


def test_abandonment_week_is_monday_utc_of_first_start_event(abandonment_wh):
    """week = the Monday (UTC) of the attempt's first start event: p1's attempt starts late on
    Sunday and belongs to the week before, though its session runs past midnight; p2's starts
    just after midnight on Monday and opens the new week."""
    assert rows(abandonment_wh, f"select segment, {ABANDONMENT_COLUMNS} "
                                "from abandonment_by_segment where dimension = 'first_channel' "
                                "and segment in ('app', 'store') order by segment") == [
        ("app", "cart", WEEK_1, 1, 1, 0, 0, 0.0),
        ("store", "cart", WEEK_2, 1, 0, 1, 0, 1.0),
    ]


def test_abandonment_by_segment_counts_and_rate(abandonment_wh):
    """Per segment, rule and week: attempts, completed, abandoned, pending; rate = abandoned /
    (abandoned + completed), pending attempts left out; null when every attempt is pending."""
    got = rows(abandonment_wh, f"select segment, {ABANDONMENT_COLUMNS} "
                               "from abandonment_by_segment where dimension = 'persona' "
                               "order by segment, rule, week")
    assert got == [
        ("new", "cart", WEEK_1, 2, 1, 1, 0, 0.5),
        ("new", "cart", WEEK_2, 2, 0, 1, 1, 1.0),
        ("returning", "cart", WEEK_2, 1, 0, 0, 1, None),
        ("returning", "checkout", WEEK_2, 1, 1, 0, 0, 0.0),
    ]


def test_abandonment_all_rows_equal_abandonment_totals(abandonment_wh):
    """Dimension `all` (segment `all`) holds the abandonment table's totals per rule and week."""
    all_rows = rows(abandonment_wh, f"select {ABANDONMENT_COLUMNS} from abandonment_by_segment "
                                    "where dimension = 'all' and segment = 'all' "
                                    "order by rule, week")
    assert all_rows == [
        ("cart", WEEK_1, 2, 1, 1, 0, 0.5),
        ("cart", WEEK_2, 3, 0, 1, 2, 1.0),
        ("checkout", WEEK_2, 1, 1, 0, 0, 0.0),
    ]
    assert rows(abandonment_wh, """
        select rule, cast(date_trunc('week', started_at) as date) as week, count(*),
               sum(is_completed), sum(is_abandoned), sum(is_pending)
        from abandonment group by all order by rule, week""") == [r[:6] for r in all_rows]


# --- survey_answers -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def survey_wh(build):
    """web/home has two awareness events and one consideration event (most frequent stage:
    awareness); store/berlin one of each (a tie).

    c1: s1 web/home page_view, s2 web/pdp product_view, s3 survey, s4 survey rating web/home
    c2: u1 survey, u2 web/home page_view, u3 web/home product_view, u4 survey
    c3: v1 web/pdp product_view, v2 email/newsletter email_open (no stage), v3 survey
    c4: w1 store/berlin page_view, w2 store/berlin product_view, w3 survey rating store/berlin
    """
    return build([
        event("s1", at(0), customer_id="c1", touchpoint="web/home"),
        event("s2", at(1), customer_id="c1", event_type="product_view", touchpoint="web/pdp"),
        event("s3", at(2), customer_id="c1", nps_score=8, **SURVEY),
        event("s4", at(3), customer_id="c1", rated_touchpoint="web/home", nps_score=9, **SURVEY),
        event("u1", at(0), customer_id="c2", csat_score=4, **SURVEY),
        event("u2", at(1), customer_id="c2", touchpoint="web/home"),
        event("u3", at(2), customer_id="c2", event_type="product_view", touchpoint="web/home"),
        event("u4", at(3), customer_id="c2", ces_score=2, **SURVEY),
        event("v1", at(0), customer_id="c3", event_type="product_view", touchpoint="web/pdp"),
        event("v2", at(1), customer_id="c3", channel="email", event_type="email_open",
              touchpoint="email/newsletter"),
        event("v3", at(2), customer_id="c3", nps_score=5, **SURVEY),
        event("w1", at(0), customer_id="c4", channel="store", touchpoint="store/berlin"),
        event("w2", at(1), customer_id="c4", channel="store", event_type="product_view",
              touchpoint="store/berlin"),
        event("w3", at(2), customer_id="c4", rated_touchpoint="store/berlin", nps_score=10,
              **SURVEY),
    ])


def answers(con, columns: str) -> list[tuple]:
    return rows(con, f"select event_id, {columns} from survey_answers order by event_id")


def test_survey_answer_attribution(survey_wh):
    """attribution is `named` when the answer has a rated_touchpoint, else
    `previous_touchpoint` when its journey has an earlier non-survey event, else
    `unattributed` (touchpoint `(unattributed)`)."""
    assert answers(survey_wh, "attribution, touchpoint") == [
        ("s3", "previous_touchpoint", "web/pdp"),
        ("s4", "named", "web/home"),
        ("u1", "unattributed", "(unattributed)"),
        ("u4", "previous_touchpoint", "web/home"),
        ("v3", "previous_touchpoint", "email/newsletter"),
        ("w3", "named", "store/berlin"),
    ]


def test_previous_touchpoint_answer_takes_rated_events_stage(survey_wh):
    """An answer attributed by previous touchpoint has the stage of that previous event, not its
    touchpoint's most frequent stage (u4 rates u3: consideration, though web/home is mostly
    awareness)."""
    got = dict(rows(survey_wh, "select event_id, stage from survey_answers "
                               "where event_id in ('s3', 'u4')"))
    assert got == {"s3": "consideration", "u4": "consideration"}


def test_previous_touchpoint_stage_never_comes_from_an_older_event(survey_wh):
    """When the rated previous event has no stage (v2, an email_open at a touchpoint that never
    has a stage), the answer has no stage: the stage of an older event (v1, consideration)
    belongs to another touchpoint."""
    assert rows(survey_wh, "select touchpoint, stage, stage_rank from survey_answers "
                           "where event_id = 'v3'") == [("email/newsletter", None, None)]


def test_named_answer_takes_touchpoints_most_frequent_stage(survey_wh):
    """An answer naming its touchpoint has that touchpoint's most frequent stage over all events
    (s4: web/home is awareness twice, consideration once), not the stage of the event before
    it (s2, consideration); a tie goes to the earlier stage (w3: store/berlin)."""
    got = dict(rows(survey_wh, "select event_id, stage from survey_answers "
                               "where attribution = 'named'"))
    assert got == {"s4": "awareness", "w3": "awareness"}


def test_unattributed_answer_has_no_stage(survey_wh):
    """An unattributed answer has no stage and no stage_rank."""
    assert rows(survey_wh, "select touchpoint, stage, stage_rank from survey_answers "
                           "where event_id = 'u1'") == [("(unattributed)", None, None)]


def test_survey_stage_rank_matches_stage(survey_wh):
    """stage_rank is the position of `stage` in the configured order, from 1 (null without a
    stage)."""
    for _, stage, rank in answers(survey_wh, "stage, stage_rank"):
        assert rank == (STAGES.index(stage) + 1 if stage else None)
    assert rows(survey_wh, "select stage_rank from survey_answers where event_id = 's4'") == [
        (1,),
    ]


def test_survey_answers_keep_their_scores(survey_wh):
    """Each answer keeps its own NPS, CSAT and CES scores (one row per survey event)."""
    assert answers(survey_wh, "nps_score, csat_score, ces_score") == [
        ("s3", 8, None, None), ("s4", 9, None, None), ("u1", None, 4, None),
        ("u4", None, None, 2), ("v3", 5, None, None), ("w3", 10, None, None),
    ]


# --- config -------------------------------------------------------------------------------------

SOURCE = "sources:\n  - {name: web, path: landing/web/*.csv, format: csv}\n"


def config_error(tmp_path: Path, segments_yaml: str) -> str:
    """The load error for a config with these `segments` (file path replaced by `<file>`)."""
    path = tmp_path / "journeys.yaml"
    path.write_text(SOURCE + "segments:\n" + segments_yaml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value).replace(str(path), "<file>")


def test_segments_load_from_yaml(tmp_path):
    """A valid `segments` list loads with its defaults: scope journey, no present label,
    missing label `(none)`."""
    path = tmp_path / "journeys.yaml"
    path.write_text(SOURCE + "segments:\n  - {name: device, property: device}\n",
                    encoding="utf-8")
    (dim,) = load_config(path).segments
    assert (dim.name, dim.property, dim.column, dim.scope, dim.present, dim.missing) == (
        "device", "device", None, "journey", None, "(none)",
    )


def test_segment_with_property_and_column_is_refused(tmp_path):
    """A dimension giving both `property` and `column` is refused; the message names the
    dimension's key path and both keys."""
    message = config_error(tmp_path, "  - {name: x, property: plan, column: channel}\n")
    assert "segments.0" in message
    assert "property" in message
    assert "column" in message


def test_segment_with_neither_property_nor_column_is_refused(tmp_path):
    """A dimension giving neither `property` nor `column` is refused; the message names the
    dimension's key path and both keys."""
    message = config_error(tmp_path, "  - {name: x, scope: person}\n")
    assert "segments.0" in message
    assert "property" in message
    assert "column" in message


def test_segment_named_all_is_refused(tmp_path):
    """The name `all` is reserved for the whole population; the message names the key
    (`segments.1` and `name`) and the value."""
    message = config_error(tmp_path, "  - {name: device, property: device}\n"
                                     "  - {name: all, column: channel}\n")
    assert "segments.1" in message
    assert "name" in message
    assert "`all`" in message or "'all'" in message


def test_duplicate_segment_names_are_refused(tmp_path):
    """Two dimensions with one name are refused; the message names the `segments` key and the
    repeated name."""
    message = config_error(tmp_path, "  - {name: device, property: device}\n"
                                     "  - {name: device, column: channel}\n")
    assert "segments" in message
    assert "device" in message


@pytest.mark.parametrize("name", ["user.plan", "user plan"])
def test_segment_property_with_dot_or_space_is_refused(tmp_path, name):
    """A property name must be a plain JSON key (no dot, no space: it becomes a JSON path); the
    message names the key path."""
    message = config_error(tmp_path, f"  - {{name: plan, property: '{name}'}}\n")
    assert "segments.0.property" in message
