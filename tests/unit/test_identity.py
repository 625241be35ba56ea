"""Identity stitching: identifiers on one event are one person, with merge protection."""

from __future__ import annotations

import hashlib
import itertools
import random

import duckdb

from journey_core.identity import label_components_sql
from journey_core.model import DuckDBEngine
from tests.helpers import at, build_warehouse, event, rows

MAP_SQL = "select identifier_type, identifier_value, person_id from identity_map order by all"
CONFLICTS_SQL = """
    select identifier_type, identifier_value, person_id, refused_person_id, first_event_id,
           first_conflict_at, events
    from identity_conflicts order by all"""


def _person_of(con, event_id: str) -> str:
    return rows(con, "select person_id from events where event_id = ?", [event_id])[0][0]


def test_identifiers_link_transitively_across_events(tmp_path):
    """Identifiers seen together on any event join one person, transitively across events:
    anonymous_id~email on one event, email~phone on another, phone~customer_id on a third."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), anonymous_id="a1", email_hash="h1"),
        event("e2", at(10), email_hash="h1", phone_hash="p1"),
        event("e3", at(20), customer_id="c1", phone_hash="p1"),
    ])
    assert rows(con, MAP_SQL) == [
        ("anonymous_id", "a1", "c1"),
        ("customer_id", "c1", "c1"),
        ("email_hash", "h1", "c1"),
        ("phone_hash", "p1", "c1"),
    ]
    assert rows(con, "select event_id, person_id from events order by event_id") == [
        ("e1", "c1"), ("e2", "c1"), ("e3", "c1"),
    ]
    assert rows(con, "select count(*) from identity_conflicts") == [(0,)]


def test_identity_map_first_seen_at_is_earliest_event_with_identifier(tmp_path):
    """identity_map.first_seen_at is the time of the earliest event carrying the identifier."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), anonymous_id="a1", email_hash="h1"),
        event("e2", at(10), email_hash="h1", phone_hash="p1"),
        event("e3", at(20), customer_id="c1", phone_hash="p1"),
        event("e4", at(30), customer_id="c1", anonymous_id="a1"),
    ])
    assert rows(con, "select identifier_value, first_seen_at from identity_map order by 1") == [
        ("a1", at(0)), ("c1", at(20)), ("h1", at(0)), ("p1", at(10)),
    ]


def test_unlinked_identifiers_stay_separate_persons(tmp_path):
    """Identifiers never seen on a common event are different persons."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", email_hash="h1"),
        event("e2", at(1), customer_id="c2", email_hash="h2"),
    ])
    assert rows(con, MAP_SQL) == [
        ("customer_id", "c1", "c1"),
        ("customer_id", "c2", "c2"),
        ("email_hash", "h1", "c1"),
        ("email_hash", "h2", "c2"),
    ]


def test_merge_of_two_customer_ids_is_refused_and_listed(tmp_path):
    """An identifier that would join two customer_ids stays with the person it was linked to
    first; the refusal is one identity_conflicts row naming the identifier, the person it stays
    with, the refused person, the first refused event, its time and the count of such events."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", email_hash="h"),
        event("e2", at(10), customer_id="c2", email_hash="h"),
        event("e3", at(20), customer_id="c2", email_hash="h"),
    ])
    assert rows(con, MAP_SQL) == [
        ("customer_id", "c1", "c1"),
        ("customer_id", "c2", "c2"),
        ("email_hash", "h", "c1"),
    ]
    assert rows(con, CONFLICTS_SQL) == [
        ("email_hash", "h", "c1", "c2", "e2", at(10), 2),
    ]
    # each event keeps the person of its own customer_id
    assert rows(con, "select event_id, person_id from events order by event_id") == [
        ("e1", "c1"), ("e2", "c2"), ("e3", "c2"),
    ]


def test_a_refused_link_between_two_non_customer_identifiers_lists_the_weaker(tmp_path):
    """A link runs from an event's anchor (its strongest identifier) to each other identifier on
    it. When one joining anonymous_id a1 (c1's) to email h1 (c2's) is refused, the conflict
    lists h1, the weaker, never the anchor: it stays with c2, the refused person is a1's (c1),
    and `events` counts every event that carried the refused link (two here)."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", anonymous_id="a1"),
        event("e2", at(10), customer_id="c2", email_hash="h1"),
        event("e3", at(20), anonymous_id="a1", email_hash="h1"),
        event("e4", at(30), anonymous_id="a1", email_hash="h1"),
    ])
    assert rows(con, CONFLICTS_SQL) == [
        ("email_hash", "h1", "c2", "c1", "e3", at(20), 2),
    ]
    assert rows(con, MAP_SQL) == [
        ("anonymous_id", "a1", "c1"),
        ("customer_id", "c1", "c1"),
        ("customer_id", "c2", "c2"),
        ("email_hash", "h1", "c2"),
    ]
    assert _person_of(con, "e3") == _person_of(con, "e4") == "c1"


def test_identifier_stays_with_earlier_person_not_smaller_customer_id(tmp_path):
    """'Earlier' means the first event in (occurred_at, event_id) order, not the smaller id:
    h is seen with c2 first, so it stays with c2 and the link to c1 is refused."""
    con = build_warehouse(tmp_path, [
        event("e2", at(5), customer_id="c1", email_hash="h"),
        event("e1", at(0), customer_id="c2", email_hash="h"),
    ])
    assert rows(con, MAP_SQL) == [
        ("customer_id", "c1", "c1"),
        ("customer_id", "c2", "c2"),
        ("email_hash", "h", "c2"),
    ]
    assert rows(con, CONFLICTS_SQL) == [
        ("email_hash", "h", "c2", "c1", "e2", at(5), 1),
    ]


def test_link_order_ties_on_time_are_broken_by_event_id(tmp_path):
    """Links at the same occurred_at are applied in event_id order: the event with the smaller
    event_id links first."""
    con = build_warehouse(tmp_path, [
        event("b", at(0), customer_id="c1", email_hash="h"),
        event("a", at(0), customer_id="c2", email_hash="h"),
    ])
    assert rows(con, CONFLICTS_SQL) == [
        ("email_hash", "h", "c2", "c1", "b", at(0), 1),
    ]


def test_conflict_through_transitive_component(tmp_path):
    """Merge protection holds for whole components: an anonymous id already joined to c1 cannot
    bring c2's email into c1's person."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", anonymous_id="a"),
        event("e2", at(1), customer_id="c2", email_hash="h"),
        event("e3", at(2), anonymous_id="a", email_hash="h"),
    ])
    assert rows(con, MAP_SQL) == [
        ("anonymous_id", "a", "c1"),
        ("customer_id", "c1", "c1"),
        ("customer_id", "c2", "c2"),
        ("email_hash", "h", "c2"),
    ]
    assert rows(con, CONFLICTS_SQL) == [
        ("email_hash", "h", "c2", "c1", "e3", at(2), 1),
    ]


def test_event_belongs_to_anonymous_id_before_email(tmp_path):
    """Anchor rule: an event without customer_id belongs to the person of its anonymous_id, even
    when its email belongs to another person."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", email_hash="h"),
        event("e2", at(1), customer_id="c2", anonymous_id="a"),
        event("e3", at(2), anonymous_id="a", email_hash="h"),
    ])
    assert _person_of(con, "e3") == "c2"


def test_event_belongs_to_email_before_phone(tmp_path):
    """Anchor rule: an event with only email_hash and phone_hash belongs to the email's person."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", email_hash="h"),
        event("e2", at(1), customer_id="c2", phone_hash="p"),
        event("e3", at(2), email_hash="h", phone_hash="p"),
    ])
    assert _person_of(con, "e3") == "c1"
    assert rows(con, CONFLICTS_SQL) == [
        ("phone_hash", "p", "c2", "c1", "e3", at(2), 1),
    ]


def test_event_belongs_to_customer_id_first(tmp_path):
    """Anchor rule: an event with a customer_id belongs to that customer, whatever else it
    carries."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", anonymous_id="a", email_hash="h", phone_hash="p"),
        event("e2", at(1), customer_id="c2", anonymous_id="a", email_hash="h", phone_hash="p"),
    ])
    assert _person_of(con, "e2") == "c2"


def test_anonymous_person_id_is_hash_of_smallest_identifier(tmp_path):
    """A person without customer_id is `anon-` + the first 16 hex digits of sha256 of its
    smallest `type:value` identifier."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), anonymous_id="b2", email_hash="zz"),
        event("e2", at(1), anonymous_id="a9", email_hash="zz"),
        event("e3", at(2), email_hash="m1", phone_hash="p1"),
    ])
    person_a = "anon-" + hashlib.sha256(b"anonymous_id:a9").hexdigest()[:16]
    person_m = "anon-" + hashlib.sha256(b"email_hash:m1").hexdigest()[:16]
    assert rows(con, MAP_SQL) == [
        ("anonymous_id", "a9", person_a),
        ("anonymous_id", "b2", person_a),
        ("email_hash", "m1", person_m),
        ("email_hash", "zz", person_a),
        ("phone_hash", "p1", person_m),
    ]
    assert rows(con, "select event_id, person_id from events order by event_id") == [
        ("e1", person_a), ("e2", person_a), ("e3", person_m),
    ]


def test_shuffled_input_gives_same_identity_tables(tmp_path):
    """Stitching depends only on the events, not the order they were loaded in."""
    events = [
        event("e1", at(0), customer_id="c1", anonymous_id="a1"),
        event("e2", at(1), anonymous_id="a1", email_hash="h1"),
        event("e3", at(2), customer_id="c2", email_hash="h1"),
        event("e4", at(2), customer_id="c3", phone_hash="p1"),
        event("e5", at(3), email_hash="h1", phone_hash="p1"),
        event("e6", at(4), anonymous_id="a2", email_hash="h2"),
        event("e7", at(4), anonymous_id="a3", email_hash="h2"),
        event("e8", at(5), customer_id="c2", email_hash="h1"),
    ]
    results = []
    for i, seed in enumerate((1, 2, 3)):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        con = build_warehouse(tmp_path / f"run{i}", shuffled)
        results.append((
            rows(con, "select * from identity_map order by all"),
            rows(con, CONFLICTS_SQL),
            rows(con, "select event_id, person_id from events order by all"),
        ))
        con.close()
    assert results[0] == results[1] == results[2]
    assert results[0][1] == [
        ("email_hash", "h1", "c1", "c2", "e3", at(2), 2),
        ("phone_hash", "p1", "c3", "c1", "e5", at(3), 1),
    ]


def _bfs_components(edges: list[tuple[str, str]]) -> set[frozenset[str]]:
    """The connected components by breadth-first search (the obviously correct reference)."""
    neighbours: dict[str, set[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    seen: set[str] = set()
    components = set()
    for start in neighbours:
        if start in seen:
            continue
        component, frontier = {start}, [start]
        while frontier:
            for nxt in neighbours[frontier.pop()] - component:
                component.add(nxt)
                frontier.append(nxt)
        seen |= component
        components.add(frozenset(component))
    return components


def test_components_in_sql_equal_breadth_first_search():
    """The labelling Spark uses (SQL alone: minimum labels with pointer jumping), run here on
    DuckDB: on random graphs with long chains, stars and isolated identifiers, exactly the
    components a breadth-first search finds, each labelled with its smallest `type:value`."""
    rng = random.Random(7)
    for _ in range(5):
        nodes = [("anonymous_id", f"a{i:03d}") for i in range(120)]
        rng.shuffle(nodes)
        links = [(n, n) for n in nodes]  # every identifier links to itself, as in the model
        links += list(itertools.pairwise(nodes[:41]))  # a chain of 41
        links += [(nodes[50], n) for n in nodes[51:70]]  # a star
        links += [(rng.choice(nodes[70:110]), rng.choice(nodes[70:110])) for _ in range(30)]
        con = duckdb.connect()
        con.execute("create table int_identity_edges (anchor_type varchar, anchor_value "
                    "varchar, identifier_type varchar, identifier_value varchar)")
        con.executemany("insert into int_identity_edges values (?, ?, ?, ?)",
                        [(*a, *b) for a, b in links])
        assert label_components_sql(DuckDBEngine(con)) == len(nodes)
        got: dict[str, set[str]] = {}
        for t, v, label in con.execute(
                "select identifier_type, identifier_value, component from _components").fetchall():
            got.setdefault(label, set()).add(f"{t}:{v}")
        expected = _bfs_components([(f"{a[0]}:{a[1]}", f"{b[0]}:{b[1]}") for a, b in links])
        assert {frozenset(c) for c in got.values()} == expected
        assert all(label == min(members) for label, members in got.items())
