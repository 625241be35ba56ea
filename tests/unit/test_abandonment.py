"""Abandonment: a session with a start event is an attempt; completed, abandoned or pending."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tests.helpers import at, build_warehouse, event, make_config, rows

US = timedelta(microseconds=1)
FAR = at(0, days=10)  # an as_of long after every window
CART_ONLY = [{"name": "cart", "start": "add_to_cart", "complete": "purchase", "window": "24h"}]
STATUS_SQL = "select rule, status, completed_at from abandonment order by rule"


def _cart(tmp_path, events, as_of=FAR):
    return build_warehouse(tmp_path, events, make_config(abandonment=CART_ONLY), as_of=as_of)


def test_completed_by_purchase_in_same_session(tmp_path):
    """A completing event in the attempt's session completes it."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(10), customer_id="c1", event_type="purchase"),
    ])
    assert rows(con, STATUS_SQL) == [("cart", "completed", at(10))]
    assert rows(con, "select is_completed, is_abandoned, is_pending from abandonment") == [
        (1, 0, 0),
    ]


def test_completing_event_earlier_in_same_session_also_completes(tmp_path):
    """A completing event anywhere in the session counts, even one before the start event."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="purchase"),
        event("e2", at(10), customer_id="c1", event_type="add_to_cart"),
    ])
    assert rows(con, STATUS_SQL) == [("cart", "completed", at(0))]


def test_completed_within_window_after_the_session(tmp_path):
    """A completing event in a later session within the window after the last start completes
    the attempt."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(300), customer_id="c1", event_type="purchase"),
    ])
    assert rows(con, "select count(distinct session_id) from events") == [(2,)]
    assert rows(con, STATUS_SQL) == [("cart", "completed", at(300))]


def test_completed_exactly_at_window_edge(tmp_path):
    """The window is inclusive: a purchase exactly 24 h after the last start completes it."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(0, days=1), customer_id="c1", event_type="purchase"),
    ])
    assert rows(con, STATUS_SQL) == [("cart", "completed", at(0, days=1))]


def test_abandoned_when_purchase_just_after_window(tmp_path):
    """A purchase 24 h + 1 microsecond after the last start is too late: abandoned."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(0, days=1) + US, customer_id="c1", event_type="purchase"),
    ])
    assert rows(con, STATUS_SQL) == [("cart", "abandoned", None)]
    assert rows(con, "select is_completed, is_abandoned, is_pending from abandonment") == [
        (0, 1, 0),
    ]


def test_purchase_by_another_person_does_not_complete(tmp_path):
    """Only the same person's completing event completes an attempt."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(5), customer_id="c2", event_type="purchase"),
    ])
    assert rows(con, "select person_id, status from abandonment") == [("c1", "abandoned")]


def test_pending_while_window_not_elapsed_at_as_of(tmp_path):
    """Not completed and as_of - last start < window: pending."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
    ], as_of=at(0, days=1) - US)
    assert rows(con, STATUS_SQL) == [("cart", "pending", None)]
    assert rows(con, "select is_completed, is_abandoned, is_pending from abandonment") == [
        (0, 0, 1),
    ]


def test_abandoned_when_window_elapsed_exactly_at_as_of(tmp_path):
    """When as_of - last start equals the window exactly, the attempt is abandoned."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
    ], as_of=at(0, days=1))
    assert rows(con, STATUS_SQL) == [("cart", "abandoned", None)]


def test_window_counts_from_the_sessions_last_start_event(tmp_path):
    """With several start events in a session, the window runs from the last one: a purchase
    24 h 10 min after the first start but 23 h 50 min after the last one completes it."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(20), customer_id="c1", event_type="add_to_cart"),
        event("e3", at(10, days=1), customer_id="c1", event_type="purchase"),
    ])
    assert rows(con, "select started_at, last_start_at, deadline, status, completed_at "
                     "from abandonment") == [
        (at(0), at(20), at(20, days=1), "completed", at(10, days=1)),
    ]


def test_one_attempt_per_session_and_rule(tmp_path):
    """Each session with a start event is one attempt, with its session's person and journey."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(5), customer_id="c1", event_type="add_to_cart"),
        event("e3", at(120), customer_id="c1", event_type="add_to_cart"),
        event("e4", at(125), customer_id="c1", event_type="page_view"),
    ])
    s1 = hashlib.md5(b"session|e1").hexdigest()
    s2 = hashlib.md5(b"session|e3").hexdigest()
    j1 = hashlib.md5(b"journey|e1").hexdigest()
    assert rows(con, "select session_id, person_id, journey_id, started_at, status "
                     "from abandonment order by started_at") == [
        (s1, "c1", j1, at(0), "abandoned"),
        (s2, "c1", j1, at(120), "abandoned"),
    ]


def test_touchpoint_is_the_sessions_last_event_touchpoint(tmp_path):
    """The abandonment touchpoint is the touchpoint of the session's last event, not of the
    start event."""
    con = _cart(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart", touchpoint="web/pdp"),
        event("e2", at(3), customer_id="c1", touchpoint="web/shipping"),
        event("e3", at(120), customer_id="c1", touchpoint="web/home"),  # a later session
    ])
    assert rows(con, "select touchpoint, status from abandonment") == [
        ("web/shipping", "abandoned"),
    ]


def test_default_rules_cart_24h_and_checkout_1h(tmp_path):
    """Default rules: cart = add_to_cart then purchase within 24 h; checkout = checkout_start
    then purchase within 1 h. A purchase 1 h + 1 s after both starts (in a later session)
    completes the cart attempt and abandons the checkout attempt."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="add_to_cart"),
        event("e2", at(1), customer_id="c1", event_type="checkout_start"),
        event("e3", at(61, seconds=1), customer_id="c1", event_type="purchase"),
    ], as_of=FAR)
    assert rows(con, "select rule, status, completed_at, deadline from abandonment "
                     "order by rule") == [
        ("cart", "completed", at(61, seconds=1), at(0, days=1)),
        ("checkout", "abandoned", None, at(61)),
    ]


def test_default_checkout_window_inclusive_at_one_hour(tmp_path):
    """Default checkout rule: a purchase exactly 1 h after checkout_start completes it."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1", event_type="checkout_start"),
        event("e2", at(60), customer_id="c1", event_type="purchase"),
    ], as_of=FAR)
    assert rows(con, STATUS_SQL) == [("checkout", "completed", at(60))]


def test_session_without_start_event_is_no_attempt(tmp_path):
    """Sessions without a start event make no abandonment rows."""
    con = build_warehouse(tmp_path, [
        event("e1", at(0), customer_id="c1"),
        event("e2", at(5), customer_id="c1", event_type="purchase"),
    ], as_of=FAR)
    assert rows(con, "select count(*) from abandonment") == [(0,)]
