"""Sessions and journeys: cut a person's ordered events at gaps strictly over the timeout."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tests.helpers import at, build_warehouse, event, make_config, rows

US = timedelta(microseconds=1)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _sessions_of_events(con) -> list[tuple[str, str]]:
    return rows(con, "select event_id, session_id from events order by event_id")


def test_gap_equal_to_session_timeout_keeps_the_session(tmp_path):
    """A gap of exactly session_timeout (30 min) does not start a new session."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1"),
        event("e2", at(30), customer_id="c1"),
    ])
    assert rows(con, "select count(distinct session_id) from events") == [(1,)]
    assert rows(con, "select started_at, ended_at, event_count, duration_seconds "
                     "from sessions") == [(at(0), at(30), 2, 1800.0)]


def test_gap_one_microsecond_over_session_timeout_starts_new_session(tmp_path):
    """A gap of session_timeout + 1 microsecond starts a new session."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1"),
        event("e2", at(30) + US, customer_id="c1"),
    ])
    assert _sessions_of_events(con) == [
        ("e1", _md5("session|e1")),
        ("e2", _md5("session|e2")),
    ]


def test_session_gap_is_measured_from_previous_event_not_session_start(tmp_path):
    """The gap is to the previous event: events every 20 min stay one session for an hour."""
    con = build_warehouse(tmp_path, [
        event(f"e{i}", at(20 * i), customer_id="c1") for i in range(4)
    ])
    assert rows(con, "select started_at, ended_at, event_count from sessions") == [
        (at(0), at(60), 4),
    ]


def test_configured_session_timeout_is_used(tmp_path):
    """session_timeout comes from the config: with 10m, a 10m gap keeps, an 11m gap cuts."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1"),
        event("e2", at(10), customer_id="c1"),
        event("e3", at(21), customer_id="c1"),
    ], make_config(session_timeout="10m"))
    assert _sessions_of_events(con) == [
        ("e1", _md5("session|e1")),
        ("e2", _md5("session|e1")),
        ("e3", _md5("session|e3")),
    ]


def test_gap_equal_to_journey_timeout_keeps_the_journey(tmp_path):
    """A gap of exactly journey_timeout (30 days) keeps the journey but starts a new session."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1"),
        event("e2", at(0, days=30), customer_id="c1"),
    ])
    assert rows(con, "select event_id, journey_id, session_id from events order by 1") == [
        ("e1", _md5("journey|e1"), _md5("session|e1")),
        ("e2", _md5("journey|e1"), _md5("session|e2")),
    ]
    assert rows(con, "select journey_id, event_count, session_count from journeys") == [
        (_md5("journey|e1"), 2, 2),
    ]


def test_gap_over_journey_timeout_starts_new_journey(tmp_path):
    """A gap of journey_timeout + 1 microsecond starts a new journey (and a new session)."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1"),
        event("e2", at(0, days=30) + US, customer_id="c1"),
    ])
    assert rows(con, "select event_id, journey_id from events order by 1") == [
        ("e1", _md5("journey|e1")),
        ("e2", _md5("journey|e2")),
    ]
    assert rows(con, "select journey_id, started_at, ended_at from journeys order by 2") == [
        (_md5("journey|e1"), at(0), at(0)),
        (_md5("journey|e2"), at(0, days=30) + US, at(0, days=30) + US),
    ]


def test_journey_open_at_exactly_timeout_and_closed_just_after(tmp_path):
    """A journey is open while as_of - ended_at <= journey_timeout (boundary included), else
    closed."""
    as_of = at(0, days=60)
    con = build_warehouse(tmp_path, [
        event("open_edge", as_of - timedelta(days=30), customer_id="c1"),
        event("closed_edge", as_of - timedelta(days=30) - US, customer_id="c2"),
        event("recent", as_of - timedelta(hours=1), customer_id="c3"),
    ], as_of=as_of)
    assert rows(con, "select person_id, status, as_of from journeys order by 1") == [
        ("c1", "open", as_of),
        ("c2", "closed", as_of),
        ("c3", "open", as_of),
    ]


def test_journey_status_uses_last_event_not_first(tmp_path):
    """Openness is measured from the journey's last event: an old start does not close it."""
    as_of = at(0, days=100)
    con = build_warehouse(tmp_path, [
        event("e1", at(0, days=50), customer_id="c1"),
        event("e2", at(0, days=75), customer_id="c1"),
    ], as_of=as_of)
    assert rows(con, "select started_at, ended_at, status from journeys") == [
        (at(0, days=50), at(0, days=75), "open"),
    ]


def test_exit_touchpoint_only_for_closed_non_converted_journeys(tmp_path):
    """exit_touchpoint is the last event's touchpoint of a closed, non-converted journey, and
    null for open or converted journeys."""
    as_of = at(0, days=60)
    con = build_warehouse(tmp_path, [
        event("a1", at(0), customer_id="closed_lost"),
        event("a2", at(5), customer_id="closed_lost", touchpoint="web/pricing"),
        event("b1", at(0), customer_id="closed_won", event_type="purchase"),
        event("b2", at(5), customer_id="closed_won", touchpoint="web/pricing"),
        event("c1", at(0, days=59), customer_id="open_lost", touchpoint="web/pricing"),
    ], as_of=as_of)
    assert rows(con, "select person_id, status, converted, exit_touchpoint from journeys "
                     "order by 1") == [
        ("closed_lost", "closed", False, "web/pricing"),
        ("closed_won", "closed", True, None),
        ("open_lost", "open", False, None),
    ]


def test_ids_are_md5_of_kind_and_first_event_id(tmp_path):
    """session_id = md5('session|' || first event_id); journey_id = md5('journey|' || first
    event_id), in the sessions and journeys tables too."""
    con = build_warehouse(tmp_path, [
        event("web:1", at(0), customer_id="c1"),
        event("web:2", at(5), customer_id="c1"),
        event("web:3", at(120), customer_id="c1"),
    ])
    s1, s2, j1 = _md5("session|web:1"), _md5("session|web:3"), _md5("journey|web:1")
    assert rows(con, "select event_id, session_id, journey_id from events order by 1") == [
        ("web:1", s1, j1), ("web:2", s1, j1), ("web:3", s2, j1),
    ]
    assert rows(con, "select session_id, journey_id, event_count from sessions order by 3") == [
        (s2, j1, 1), (s1, j1, 2),
    ]
    assert rows(con, "select journey_id, session_count from journeys") == [(j1, 2)]


def test_event_index_follows_occurred_at_then_event_id(tmp_path):
    """event_index numbers a person's events from 1 in (occurred_at, event_id) order; equal
    times are ordered by event_id, and the session starts at the smallest such event_id."""
    con = build_warehouse(tmp_path, [
        event("z", at(10), customer_id="c1"),
        event("b", at(0), customer_id="c1"),
        event("a", at(0), customer_id="c1"),
        event("y", at(0), customer_id="c2"),
    ])
    assert rows(con, "select event_id, event_index from events order by person_id, 2") == [
        ("a", 1), ("b", 2), ("z", 3), ("y", 1),
    ]
    assert rows(con, "select distinct session_id from events where person_id = 'c1'") == [
        (_md5("session|a"),),
    ]


def test_session_and_journey_counts_per_person(tmp_path):
    """Each person's sessions and journeys are cut independently: counts per person."""
    con = build_warehouse(tmp_path, [
        # c1: sessions {0,10}, {60}, {days 40}; journeys {0,10,60}, {days 40}
        event("a1", at(0), customer_id="c1"),
        event("a2", at(10), customer_id="c1"),
        event("a3", at(60), customer_id="c1"),
        event("a4", at(0, days=40), customer_id="c1"),
        # c2: one session, one journey
        event("b1", at(0), customer_id="c2"),
        event("b2", at(29), customer_id="c2"),
    ])
    assert rows(con, "select person_id, count(*) from sessions group by 1 order by 1") == [
        ("c1", 3), ("c2", 1),
    ]
    assert rows(con, "select person_id, count(*), sum(session_count), sum(event_count) "
                     "from journeys group by 1 order by 1") == [
        ("c1", 2, 3, 4), ("c2", 1, 1, 2),
    ]


def test_sessions_never_span_persons(tmp_path):
    """Interleaved events of two persons make separate sessions: each session has one person
    and the gap is measured within the person."""
    con = build_warehouse(tmp_path, [
        event("a1", at(0), customer_id="c1"),
        event("b1", at(20), customer_id="c2"),
        event("a2", at(40), customer_id="c1"),
        event("b2", at(45), customer_id="c2"),
    ])
    assert rows(con, "select session_id, count(distinct person_id) from events "
                     "group by 1 having count(distinct person_id) > 1") == []
    assert rows(con, "select event_id, session_id from events order by 1") == [
        ("a1", _md5("session|a1")),
        ("a2", _md5("session|a2")),  # 40 min after a1: c2's b1 in between does not count
        ("b1", _md5("session|b1")),
        ("b2", _md5("session|b1")),
    ]
    assert rows(con, "select person_id, event_count from sessions order by 1, 2") == [
        ("c1", 1), ("c1", 1), ("c2", 2),
    ]


def test_session_first_and_last_touchpoint_and_channel(tmp_path):
    """A session's first/last channel and touchpoint come from its first/last event in the
    person's event order."""
    con = build_warehouse(tmp_path, [
        event("e2", at(5), customer_id="c1", channel="app", touchpoint="app/cart"),
        event("e1", at(0), customer_id="c1", channel="email", touchpoint="email/promo"),
        event("e3", at(9), customer_id="c1", channel="web", touchpoint="web/checkout"),
    ])
    assert rows(con, "select first_channel, first_touchpoint, last_touchpoint from sessions") == [
        ("email", "email/promo", "web/checkout"),
    ]
