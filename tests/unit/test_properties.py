"""Property-based tests: sessions and journeys against a small obviously-correct reference."""

from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from journey_core.contract.schema import PUBLISHED
from tests.helpers import T0, build_warehouse, event, make_config, rows

SESSION = timedelta(minutes=30)
JOURNEY = timedelta(hours=2)  # short, so that drawn gaps hit both timeouts often
CONFIG = make_config(session_timeout="30m", journey_timeout="2h")
US = timedelta(microseconds=1)
EVENT_TYPES = ["page_view", "product_view", "add_to_cart", "checkout_start", "purchase",
               "email_open", "call", "review"]

#: Gaps in microseconds: exactly at, just under and just over each timeout, or anything.
_EDGES = [0, 1, SESSION - US, SESSION, SESSION + US, JOURNEY - US, JOURNEY, JOURNEY + US]
GAPS = st.one_of(
    st.sampled_from([edge // US if isinstance(edge, timedelta) else edge for edge in _EDGES]),
    st.integers(min_value=0, max_value=(JOURNEY + SESSION) // US),
)

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, database=None)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@st.composite
def event_logs(draw, *, rich: bool = False) -> list[dict[str, Any]]:
    """A few persons' events with edge-hitting gaps, random ids (so equal times are ordered by
    event_id, not by insertion), random types, in shuffled insertion order.

    Plain logs give every event only a customer_id (one person per customer); rich logs draw
    identifiers from small pools and add revenue and survey answers.
    """
    persons = draw(st.lists(st.lists(GAPS, min_size=1, max_size=6), min_size=1, max_size=3))
    count = sum(len(gaps) for gaps in persons)
    ids = draw(st.permutations([f"e{i:02d}" for i in range(count)]))
    events = []
    for p, gaps in enumerate(persons):
        occurred_at = T0
        for gap in gaps:
            occurred_at += gap * US
            extra: dict[str, Any] = {"customer_id": f"c{p}"}
            event_type = draw(st.sampled_from(EVENT_TYPES))
            if rich:
                extra = {
                    "customer_id": draw(st.sampled_from([None, f"c{p}", "c9"])),
                    "anonymous_id": draw(st.sampled_from([None, "a1", "a2"])),
                    "email_hash": draw(st.sampled_from([None, "h1", "h2"])),
                    "phone_hash": f"p{p}",
                    "revenue": draw(st.sampled_from([None, 0.1, 0.2, 0.3])),
                }
                if draw(st.booleans()):
                    event_type = "survey_response"
                    extra.update(channel="survey", nps_score=draw(st.integers(0, 10)),
                                 rated_touchpoint=draw(st.sampled_from([None, "web/page_view"])))
            events.append(event(ids[len(events)], occurred_at, event_type=event_type, **extra))
    return draw(st.permutations(events))


def reference(events: list[dict[str, Any]], as_of: datetime) -> dict[str, Any]:
    """Sessions and journeys the slow, obvious way: per person, sort by (occurred_at, event_id),
    walk, and cut where the gap to the previous event is strictly over the timeout."""
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_person[e["customer_id"]].append(e)
    assigned, sessions, journeys = {}, {}, {}
    for person, history in by_person.items():
        history.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
        previous = None
        for e in history:
            gap = None if previous is None else e["occurred_at"] - previous
            if gap is None or gap > JOURNEY:
                journey = _md5("journey|" + e["event_id"])
                journeys[journey] = [person, e["occurred_at"], None, 0, set()]
            if gap is None or gap > SESSION:
                session = _md5("session|" + e["event_id"])
                sessions[session] = [person, journey, e["occurred_at"], None, 0]
            assigned[e["event_id"]] = (person, session, journey)
            sessions[session][3:] = [e["occurred_at"], sessions[session][4] + 1]
            journeys[journey][2:4] = [e["occurred_at"], journeys[journey][3] + 1]
            journeys[journey][4].add(session)
            previous = e["occurred_at"]
    return {
        "events": assigned,
        "sessions": {k: tuple(v) for k, v in sessions.items()},
        "journeys": {
            k: (person, start, end, count, len(ses), "open" if as_of - end <= JOURNEY else "closed")
            for k, (person, start, end, count, ses) in journeys.items()
        },
    }


@PROPERTY_SETTINGS
@given(events=event_logs(), as_of_after=GAPS)
def test_sessions_and_journeys_match_reference(events, as_of_after):
    """events.session_id / journey_id and the sessions and journeys tables (person, bounds,
    counts, open/closed at as_of) equal the reference walk over (occurred_at, event_id)."""
    as_of = max(e["occurred_at"] for e in events) + as_of_after * US
    expected = reference(events, as_of)
    with tempfile.TemporaryDirectory() as folder:
        con = build_warehouse(Path(folder), events, CONFIG, as_of=as_of)
        got_events = {r[0]: r[1:] for r in rows(
            con, "select event_id, person_id, session_id, journey_id from events")}
        got_sessions = {r[0]: r[1:] for r in rows(
            con, "select session_id, person_id, journey_id, started_at, ended_at, event_count "
                 "from sessions")}
        got_journeys = {r[0]: r[1:] for r in rows(
            con, "select journey_id, person_id, started_at, ended_at, event_count, "
                 "session_count, status from journeys")}
        con.close()
    assert got_events == expected["events"]
    assert got_sessions == expected["sessions"]
    assert got_journeys == expected["journeys"]


TABLES = [t.name for t in PUBLISHED]


def _all_tables(events: list[dict[str, Any]], folder: Path) -> dict[str, list[tuple]]:
    con = build_warehouse(folder, events, CONFIG)
    tables = {t: sorted(rows(con, f'select * from "{t}"'), key=repr) for t in TABLES}
    con.close()
    return tables


@settings(max_examples=20, deadline=None, database=None)
@given(events=event_logs(rich=True), data=st.data())
def test_shuffled_input_gives_identical_tables(events, data):
    """Every published table depends only on the set of events, not on the order they were
    loaded in (identity, sessions, journeys, stages, funnel, abandonment, KPIs)."""
    shuffled = data.draw(st.permutations(events))
    with tempfile.TemporaryDirectory() as folder:
        first = _all_tables(events, Path(folder) / "first")
        second = _all_tables(shuffled, Path(folder) / "second")
    for table in TABLES:
        assert first[table] == second[table], table
