"""B2B accounts: account_journeys joins the journeys of an account's people, with their roles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journey_core.config import ConfigError, load_config
from tests.helpers import at, build_warehouse, event, make_config, rows

ACCOUNT_OF = "select distinct person_id, account_id from account_journeys order by person_id"
ROLE_OF = "select distinct person_id, role from account_journeys order by person_id"


def props(**values: object) -> dict[str, str]:
    """The `properties` keyword of `event` holding `values` as JSON."""
    return {"properties": json.dumps(values)}


@pytest.fixture(scope="module")
def accounts_wh(tmp_path_factory):
    """as_of = day 45: the day-0 journeys are closed, c1's day-40 journey is open.

    c1: day 0: page_view (no account), product_view (acme, role buyer), page_view (globex,
        role user); day 40: purchase of 100 (globex)
    c2: page_view (acme), page_view (no account, role blocker)
    c3: page_view (role buyer) and no account_id at all
    c4: page_view (globex), no role
    c5: two page_views at one instant: id t_b (zeta, role user), id t_a (initech, role admin)
    """
    con = build_warehouse(tmp_path_factory.mktemp("accounts"), [
        event("a1", at(0), customer_id="c1"),
        event("a2", at(1), customer_id="c1", event_type="product_view", account_id="acme",
              **props(role="buyer")),
        event("a3", at(2), customer_id="c1", account_id="globex", **props(role="user")),
        event("a4", at(0, days=40), customer_id="c1", event_type="purchase", revenue=100.0,
              account_id="globex"),
        event("b1", at(0), customer_id="c2", account_id="acme"),
        event("b2", at(1), customer_id="c2", **props(role="blocker")),
        event("c1", at(0), customer_id="c3", **props(role="buyer")),
        event("d1", at(0), customer_id="c4", account_id="globex"),
        event("t_b", at(0), customer_id="c5", account_id="zeta", **props(role="user")),
        event("t_a", at(0), customer_id="c5", account_id="initech", **props(role="admin")),
    ], as_of=at(0, days=45))
    yield con
    con.close()


def test_person_account_is_first_account_id(accounts_wh):
    """A person belongs to the account of their first account_id in event order (c1: acme,
    though later events say globex; c5: ties at one instant go to the smaller event_id)."""
    assert rows(accounts_wh, ACCOUNT_OF) == [
        ("c1", "acme"), ("c2", "acme"), ("c4", "globex"), ("c5", "initech"),
    ]


def test_role_is_first_value_of_role_property(accounts_wh):
    """A person's role is the first value (event order) of the `role` property in their
    history, also on events without an account_id; null when they never have one."""
    assert rows(accounts_wh, ROLE_OF) == [
        ("c1", "buyer"), ("c2", "blocker"), ("c4", None), ("c5", "admin"),
    ]


def test_people_without_account_id_are_absent(accounts_wh):
    """A person who never has an account_id is in no account (c3), whatever their role."""
    assert rows(accounts_wh, "select count(*) from account_journeys where person_id = 'c3'") \
        == [(0,)]


def test_every_journey_of_an_accounts_people_is_listed(accounts_wh):
    """Each journey of an account's people is one row under the person's account, with its
    furthest stage, conversion, status and revenue (c1's day-40 journey stays under acme)."""
    got = rows(accounts_wh, """
        select account_id, person_id, started_at, furthest_stage, converted, status, revenue
        from account_journeys order by account_id, person_id, started_at""")
    assert got == [
        ("acme", "c1", at(0), "consideration", False, "closed", 0.0),
        ("acme", "c1", at(0, days=40), "conversion", True, "open", 100.0),
        ("acme", "c2", at(0), "awareness", False, "closed", 0.0),
        ("globex", "c4", at(0), "awareness", False, "closed", 0.0),
        ("initech", "c5", at(0), "awareness", False, "closed", 0.0),
    ]


def test_account_journeys_key_and_journey_columns(accounts_wh):
    """(account_id, journey_id) is unique and journey_id, ended_at match `journeys`."""
    assert rows(accounts_wh, "select count(*), count(distinct (account_id, journey_id)) "
                             "from account_journeys") == [(5, 5)]
    assert rows(accounts_wh, """
        select count(*) from account_journeys as a
        inner join journeys as j
            on a.journey_id = j.journey_id and a.person_id = j.person_id
            and a.started_at = j.started_at and a.ended_at = j.ended_at""") == [(5,)]


def test_role_property_is_configurable(tmp_path):
    """`accounts: {role_property: title}` reads the role from `title`, ignoring `role`."""
    config = make_config(accounts={"role_property": "title"})
    con = build_warehouse(tmp_path, [
        event("a1", at(0), customer_id="c1", account_id="acme", **props(role="buyer")),
        event("a2", at(1), customer_id="c1", **props(title="CFO", role="user")),
        event("b1", at(0), customer_id="c2", account_id="acme", **props(role="buyer")),
    ], config)
    assert rows(con, ROLE_OF) == [("c1", "CFO"), ("c2", None)]
    con.close()


def test_role_property_with_dot_is_refused(tmp_path):
    """A role property must be a plain JSON key; the message names `accounts.role_property`."""
    path = tmp_path / "journeys.yaml"
    path.write_text("sources:\n  - {name: web, path: landing/web/*.csv, format: csv}\n"
                    "accounts: {role_property: 'contact.role'}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "accounts.role_property" in str(info.value).replace(str(Path(path)), "<file>")
