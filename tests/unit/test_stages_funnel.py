"""Stage rules, furthest stage, the funnel and stage transitions."""

from __future__ import annotations

from tests.helpers import at, build_warehouse, event, make_config, rows

STAGE_SQL = "select event_id, stage from events order by event_id"


def test_first_matching_rule_wins(tmp_path):
    """When several rules match an event, the first one in config order gives its stage."""
    config = make_config(stages={"rules": [
        {"stage": "consideration", "channel": "app", "event_type": "page_view"},
        {"stage": "awareness", "event_type": "page_view"},
        {"stage": "retention", "channel": "app"},
    ]})
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", channel="app", event_type="page_view"),
        event("e2", at(1), customer_id="c1", channel="web", event_type="page_view"),
        event("e3", at(2), customer_id="c1", channel="app", event_type="call"),
    ], config)
    assert rows(con, STAGE_SQL) == [
        ("e1", "consideration"), ("e2", "awareness"), ("e3", "retention"),
    ]


def test_rule_with_null_stage_gives_no_stage_and_stops_matching(tmp_path):
    """A rule with `stage: null` matches first and gives no stage; later rules are not tried."""
    config = make_config(stages={"rules": [
        {"stage": None, "touchpoint": "web/careers"},
        {"stage": "awareness", "event_type": "page_view"},
    ]})
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", touchpoint="web/careers"),
        event("e2", at(1), customer_id="c1", touchpoint="web/home"),
    ], config)
    assert rows(con, STAGE_SQL) == [("e1", None), ("e2", "awareness")]
    assert rows(con, "select event_id, stage_rank from events order by 1") == [
        ("e1", None), ("e2", 1),
    ]


def test_event_matching_no_rule_has_no_stage(tmp_path):
    """An event no rule matches has a null stage and stage_rank."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="email_open", channel="email"),
    ])
    assert rows(con, "select stage, stage_rank, is_conversion from events") == [
        (None, None, False),
    ]


def test_list_condition_matches_any_listed_value(tmp_path):
    """A condition given as a list matches any of its values; every given condition must hold."""
    config = make_config(stages={"rules": [
        {"stage": "consideration", "channel": ["web", "app"], "event_type": ["a", "b"]},
    ]})
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", channel="web", event_type="a"),
        event("e2", at(1), customer_id="c1", channel="app", event_type="b"),
        event("e3", at(2), customer_id="c1", channel="store", event_type="a"),
        event("e4", at(3), customer_id="c1", channel="web", event_type="c"),
    ], config)
    assert rows(con, STAGE_SQL) == [
        ("e1", "consideration"), ("e2", "consideration"), ("e3", None), ("e4", None),
    ]


def test_touchpoint_condition(tmp_path):
    """A touchpoint condition matches the event's touchpoint, whatever its channel or type."""
    config = make_config(stages={"rules": [
        {"stage": "advocacy", "touchpoint": ["web/referral", "app/referral"]},
    ]})
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", touchpoint="web/referral"),
        event("e2", at(1), customer_id="c1", channel="app", event_type="x",
              touchpoint="app/referral"),
        event("e3", at(2), customer_id="c1", touchpoint="web/home"),
    ], config)
    assert rows(con, STAGE_SQL) == [("e1", "advocacy"), ("e2", "advocacy"), ("e3", None)]


def test_furthest_stage_is_highest_rank_and_converted_needs_conversion_event(tmp_path):
    """A journey's furthest_stage is the highest-ranked stage of its events (not the last);
    it is converted when it has an event of the conversion stage, converted_at the first one."""
    con = build_warehouse(tmp_path, [
        # c1: awareness, retention (call), then awareness again: furthest retention, no purchase
        event("a1", at(0), customer_id="c1"),
        event("a2", at(1), customer_id="c1", event_type="call"),
        event("a3", at(2), customer_id="c1"),
        # c2: purchase twice, then a page view
        event("b1", at(0), customer_id="c2", event_type="purchase", revenue=10.0),
        event("b2", at(3), customer_id="c2", event_type="purchase", revenue=5.5),
        event("b3", at(4), customer_id="c2"),
        # c3: only unstaged events
        event("c1", at(0), customer_id="c3", event_type="email_open"),
    ])
    assert rows(con, "select person_id, furthest_stage, furthest_stage_rank, converted, "
                     "converted_at, revenue from journeys order by 1") == [
        ("c1", "retention", 4, False, None, 0.0),
        ("c2", "conversion", 3, True, at(0), 15.5),
        ("c3", None, None, False, None, 0.0),
    ]


def _funnel_events():
    """Six journeys, one per customer; as_of = day 40, so day-0 journeys are closed.

    j1 closed, awareness | j2 closed, consideration | j3 open, consideration
    j4 closed, conversion | j5 open, advocacy | j6 closed, no stage
    """
    return [
        event("j1a", at(0), customer_id="c1"),
        event("j2a", at(0), customer_id="c2"),
        event("j2b", at(1), customer_id="c2", event_type="product_view"),
        event("j3a", at(0, days=35), customer_id="c3", event_type="product_view"),
        event("j4a", at(0), customer_id="c4"),
        event("j4b", at(1), customer_id="c4", event_type="purchase"),
        event("j5a", at(0, days=35), customer_id="c5", event_type="purchase"),
        event("j5b", at(1, days=35), customer_id="c5", event_type="review"),
        event("j6a", at(0), customer_id="c6", event_type="email_open", channel="email"),
    ]


def test_funnel_reached_dropped_and_open_counts(tmp_path):
    """reached(s) = journeys with furthest stage >= s; dropped(s) = closed journeys whose
    furthest stage is s (null for the last stage); open_at_stage = open journeys whose furthest
    stage is s; journeys counts all, including those with no staged event."""
    as_of = at(0, days=40)
    con = build_warehouse(tmp_path, _funnel_events(), as_of=as_of)
    assert rows(con, "select stage, stage_rank, reached, reached_next, dropped, open_at_stage, "
                     "journeys, as_of from funnel order by stage_rank") == [
        ("awareness", 1, 5, 4, 1, 0, 6, as_of),
        ("consideration", 2, 4, 2, 1, 1, 6, as_of),
        ("conversion", 3, 2, 1, 1, 0, 6, as_of),
        ("retention", 4, 1, 1, 0, 0, 6, as_of),
        ("advocacy", 5, 1, None, None, 1, 6, as_of),
    ]


def test_funnel_step_conversion_is_reached_next_over_reached(tmp_path):
    """step_conversion(s) = reached(next) / reached(s); null for the last stage."""
    con = build_warehouse(tmp_path, _funnel_events(), as_of=at(0, days=40))
    assert rows(con, "select stage, step_conversion from funnel order by stage_rank") == [
        ("awareness", 4 / 5),
        ("consideration", 2 / 4),
        ("conversion", 1 / 2),
        ("retention", 1 / 1),
        ("advocacy", None),
    ]


def test_funnel_step_conversion_null_when_nobody_reached(tmp_path):
    """A stage no journey reached has reached 0 and a null step_conversion."""
    con = build_warehouse(tmp_path, [event("e1", at(0), customer_id="c1")])
    assert rows(con, "select stage, reached, step_conversion from funnel order by stage_rank") == [
        ("awareness", 1, 0.0),
        ("consideration", 0, None),
        ("conversion", 0, None),
        ("retention", 0, None),
        ("advocacy", 0, None),
    ]


def test_open_journeys_are_never_dropped(tmp_path):
    """An open journey that stopped at a stage counts in open_at_stage, never in dropped."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="product_view"),
        event("e2", at(0), customer_id="c2", event_type="product_view"),
    ], as_of=at(0, days=1))
    assert rows(con, "select dropped, open_at_stage from funnel "
                     "where stage = 'consideration'") == [(0, 2)]
    assert rows(con, "select sum(dropped) from funnel") == [(0,)]


def test_last_stage_dropped_is_null_even_when_closed_journeys_end_there(tmp_path):
    """dropped is null for the last stage: finishing the funnel is not a drop-off."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="review"),
    ], as_of=at(0, days=90))
    assert rows(con, "select stage, reached, dropped, open_at_stage from funnel "
                     "where stage_rank = 5") == [("advocacy", 1, None, 0)]


def test_funnel_follows_configured_stage_order(tmp_path):
    """Stage names and order come from the config: a three-stage funnel has three rows."""
    config = make_config(stages={
        "order": ["discover", "buy", "love"],
        "conversion": "buy",
        "rules": [
            {"stage": "discover", "event_type": "page_view"},
            {"stage": "buy", "event_type": "purchase"},
            {"stage": "love", "event_type": "review"},
        ],
    })
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1"),
        event("e2", at(0), customer_id="c2"),
        event("e3", at(1), customer_id="c2", event_type="purchase"),
    ], config, as_of=at(0, days=1))
    assert rows(con, "select stage, stage_rank, reached, open_at_stage from funnel "
                     "order by stage_rank") == [
        ("discover", 1, 2, 1), ("buy", 2, 1, 1), ("love", 3, 0, 0),
    ]
    assert rows(con, "select person_id, converted from journeys order by 1") == [
        ("c1", False), ("c2", True),
    ]


def test_stage_transitions_entry_changes_backward_and_skipped_events(tmp_path):
    """stage_transitions has one row per stage change between consecutive staged events of a
    journey: the first staged event enters from null, repeated stages make no row, unstaged
    events are skipped, and a move to an earlier stage has is_forward false."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="email_open", channel="email"),
        event("e2", at(1), customer_id="c1", touchpoint="web/home"),
        event("e3", at(2), customer_id="c1", touchpoint="web/blog"),
        event("e4", at(3), customer_id="c1", event_type="email_click", channel="email"),
        event("e5", at(4), customer_id="c1", event_type="product_view", touchpoint="web/pdp"),
        event("e6", at(5), customer_id="c1", touchpoint="web/home"),
        event("e7", at(6), customer_id="c1", event_type="purchase"),
    ])
    assert rows(con, "select transition_index, person_id, from_stage, to_stage, "
                     "from_touchpoint, to_touchpoint, event_id, transitioned_at, is_forward "
                     "from stage_transitions order by transition_index") == [
        (1, "c1", None, "awareness", None, "web/home", "e2", at(1), True),
        (2, "c1", "awareness", "consideration", "web/blog", "web/pdp", "e5", at(4), True),
        (3, "c1", "consideration", "awareness", "web/pdp", "web/home", "e6", at(5), False),
        (4, "c1", "awareness", "conversion", "web/home", "web/purchase", "e7", at(6), True),
    ]


def test_stage_transitions_restart_in_each_journey(tmp_path):
    """Each journey's first staged event enters from null: transitions never cross journeys."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="product_view"),
        event("e2", at(0, days=40), customer_id="c1", event_type="product_view"),
    ])
    assert rows(con, "select event_id, transition_index, from_stage, to_stage "
                     "from stage_transitions order by event_id") == [
        ("e1", 1, None, "consideration"),
        ("e2", 1, None, "consideration"),
    ]


def test_journey_without_staged_events_has_no_transitions(tmp_path):
    """A journey with no staged event has no stage_transitions rows."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="email_open", channel="email"),
    ])
    assert rows(con, "select count(*) from stage_transitions") == [(0,)]
