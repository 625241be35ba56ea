"""Identity stitching: identifiers seen on one event belong to one person.

Rules (DESIGN.md, identity):
- identifiers on the same event are linked; a person is a connected component;
- merge protection: a component never holds two different customer_ids. Links are applied in
  the order of the first event that carried them, `(occurred_at, event_id)`, and within one
  event in identifier precedence (`IDENTIFIER_TYPES`); a link that would join two
  customer_ids is refused, the identifier keeps its earlier person, and the refusal is listed
  in `identity_conflicts`;
- person_id is the component's customer_id, else `anon-` + the first 16 hex digits of the
  sha256 of its smallest `type:value` identifier.
An event belongs to the person of its anchor: its customer_id, else anonymous_id, email_hash,
phone_hash (the first present).

What `identity_conflicts` lists: a link runs from an event's anchor to another identifier on
the same event (`int_identity_edges`). When it is refused, the row names that other
identifier (never the anchor), whatever the types of the two: `person_id` is the person the
identifier stays with, `refused_person_id` the anchor's person, and `events` the number of
events that carried a refused link from an identifier of the refused person to it (summed over
every such anchor), `first_event_id` and `first_conflict_at` the first of them.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from journey_core.contract.vocabulary import ANONYMOUS_PREFIX, CUSTOMER_ID
from journey_core.warehouse import Params, scalar

Node = tuple[str, str]  # (identifier_type, identifier_value)
#: A refused link: (identifier kept out, anchor, first_at, first_event_id, events).
Refusal = tuple[Node, Node, object, str, int]


class StitchEngine(Protocol):
    """What stitching asks of a SQL engine (the model layer's `Engine` has all of it):
    statements in DuckDB's dialect, temporary tables, Arrow tables read as tables, and a
    labelling of the connected components (`label_components_duckdb` on DuckDB,
    `label_components_sql` where the graph cannot leave the engine)."""

    def execute(self, sql: str, params: Params = None) -> None: ...

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]: ...

    def scalar(self, sql: str, params: Params = None) -> Any: ...

    def register(self, name: str, table: pa.Table) -> AbstractContextManager[Any]: ...

    def label_components(self) -> int:
        """`_components` (identifier_type, identifier_value, component) as a temporary table:
        every identifier of `int_identity_edges` and a label shared by exactly the identifiers
        of its connected component. Returns the number of identifiers."""


@dataclass
class _Components:
    """Union-find with merge protection, for the components holding two customer_ids."""

    parent: dict[Node, Node] = field(default_factory=dict)
    customer: dict[Node, str | None] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.customer[node] = node[1] if node[0] == CUSTOMER_ID else None

    def find(self, node: Node) -> Node:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:  # path compression
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: Node, b: Node) -> bool:
        """Join the components of a and b unless that would join two customer_ids."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ca, cb = self.customer[ra], self.customer[rb]
        if ca is not None and cb is not None and ca != cb:
            return False
        self.parent[rb] = ra
        self.customer[ra] = ca if ca is not None else cb
        return True

    def person_of(self) -> dict[Node, str]:
        """Every node's person_id: its component's customer_id, else the anonymous id of the
        component's smallest identifier."""
        smallest: dict[Node, Node] = {}
        for node in self.parent:
            root = self.find(node)
            key = f"{node[0]}:{node[1]}"
            if root not in smallest or key < f"{smallest[root][0]}:{smallest[root][1]}":
                smallest[root] = node
        return {node: self.customer[self.find(node)]
                or anonymous_person_id(smallest[self.find(node)]) for node in self.parent}


def anonymous_person_id(smallest: Node) -> str:
    return ANONYMOUS_PREFIX + hashlib.sha256(
        f"{smallest[0]}:{smallest[1]}".encode()).hexdigest()[:16]


def label_components_duckdb(con: duckdb.DuckDBPyConnection) -> int:
    """`StitchEngine.label_components` on DuckDB: number every identifier (`_nodes`) and label
    its connected component over all links (`_components`, scipy on integer ids, in one
    pass over the edges)."""
    con.execute("""
        create or replace temp table _nodes as
        select identifier_type, identifier_value, (row_number() over () - 1)::bigint as node
        from (select distinct identifier_type, identifier_value from int_identity_edges)
    """)
    n = scalar(con, "select count(*) from _nodes")
    pairs = con.execute("""
        select a.node as a, b.node as b
        from int_identity_edges as e
        join _nodes as a
          on a.identifier_type = e.anchor_type and a.identifier_value = e.anchor_value
        join _nodes as b
          on b.identifier_type = e.identifier_type and b.identifier_value = e.identifier_value
    """).fetchnumpy()
    graph = coo_matrix((np.ones(len(pairs["a"]), np.int8), (pairs["a"], pairs["b"])),
                       shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    con.register("_labels", pa.table({"node": np.arange(n, dtype=np.int64),
                                      "component": labels.astype(np.int64)}))
    try:
        con.execute("""
            create or replace temp table _components as
            select n.identifier_type, n.identifier_value, l.component
            from _nodes as n join _labels as l using (node)
        """)
    finally:
        con.unregister("_labels")
        con.execute("drop table _nodes")
    return n


def label_components_sql(engine: StitchEngine) -> int:
    """`StitchEngine.label_components` in SQL alone, for engines where the edges cannot be
    pulled into one process (Spark): minimum-label propagation with pointer jumping.

    Every identifier starts with its own key (`type:value`) as label. A round gives each
    identifier the smallest label among its own and its neighbours' (one hop), then the label
    of that label's identifier (a jump, which halves chains). A label is always an identifier
    of the same component and never grows; when a round changes nothing, neighbours share
    one label, so the whole component does, and it is the component's smallest key (whose
    label can only ever be itself). Chains shorten geometrically with the jumps, so the
    number of rounds grows with the log of the component's diameter, not with the graph."""
    key = "{t} || ':' || {v}"
    engine.execute(f"""
        create or replace temp table _links as
        select {key.format(t="anchor_type", v="anchor_value")} as a,
               {key.format(t="identifier_type", v="identifier_value")} as b
        from int_identity_edges
        where anchor_type <> identifier_type or anchor_value <> identifier_value
    """)
    engine.execute("""
        create or replace temp table _links as
        select a, b from _links union select b, a from _links
    """)
    engine.execute(f"""
        create or replace temp table _labels as
        select distinct identifier_type, identifier_value,
               {key.format(t="identifier_type", v="identifier_value")} as node,
               {key.format(t="identifier_type", v="identifier_value")} as label
        from int_identity_edges
    """)
    while True:
        engine.execute("""
            create or replace temp table _hop as
            select l.node, least(min(l.label), coalesce(min(m.label), min(l.label))) as label
            from _labels as l
            left join _links as k on k.a = l.node
            left join _labels as m on m.node = k.b
            group by l.node
        """)
        engine.execute("""
            create or replace temp table _next as
            select l.identifier_type, l.identifier_value, l.node,
                   least(h.label, j.label) as label
            from _labels as l
            join _hop as h on h.node = l.node
            join _hop as j on j.node = h.label
        """)
        changed = engine.scalar("""
            select count(*) from _next as n join _labels as l on l.node = n.node
            where n.label <> l.label
        """)
        engine.execute("create or replace temp table _labels as select * from _next")
        if not changed:
            break
    engine.execute("""
        create or replace temp table _components as
        select identifier_type, identifier_value, label as component from _labels
    """)
    n = engine.scalar("select count(*) from _components")
    for name in ("_links", "_hop", "_next", "_labels"):
        engine.execute(f"drop table if exists {name}")
    return n


def _component_persons(engine: StitchEngine) -> None:
    """Per component (`_persons`): how many customer_ids it holds, and its person_id when it
    holds at most one."""
    engine.execute("""
        create or replace temp table _persons as
        select component,
               count(distinct identifier_value) filter (identifier_type = $customer_id)
                   as customers,
               coalesce(max(identifier_value) filter (identifier_type = $customer_id),
                        $anonymous_prefix
                        || left(sha256(min(identifier_type || ':' || identifier_value)), 16))
                   as person_id
        from _components
        group by component
    """, {"customer_id": CUSTOMER_ID, "anonymous_prefix": ANONYMOUS_PREFIX})


def _split_components(engine: StitchEngine) -> tuple[dict[Node, str], list[Refusal]]:
    """Components with two or more customer_ids: their links one by one, in first-event
    order, with merge protection. Returns each of their identifiers' person_id and the
    refused links, in link order."""
    edges = engine.rows("""
        select e.anchor_type, e.anchor_value, e.identifier_type, e.identifier_value,
               e.first_at, e.first_event_id, e.events
        from int_identity_edges as e
        join _components as c
          on c.identifier_type = e.identifier_type and c.identifier_value = e.identifier_value
        join _persons as p on p.component = c.component and p.customers > 1
        order by e.first_at, e.first_event_id, e.priority
    """)
    comps = _Components()
    refused: list[Refusal] = []
    for a_type, a_value, o_type, o_value, first_at, first_event_id, events in edges:
        anchor, other = (a_type, a_value), (o_type, o_value)
        comps.add(anchor)
        comps.add(other)
        if not comps.union(anchor, other):
            refused.append((other, anchor, first_at, first_event_id, events))
    return comps.person_of(), refused


def _write_identity_map(engine: StitchEngine, split: dict[Node, str]) -> None:
    """`identity_map`: each identifier's person (that of its split component, else of its
    component) and when it was first seen."""
    nodes = sorted(split)
    split_table = pa.table({
        "identifier_type": pa.array([n[0] for n in nodes], pa.string()),
        "identifier_value": pa.array([n[1] for n in nodes], pa.string()),
        "person_id": pa.array([split[n] for n in nodes], pa.string()),
    })
    with engine.register("_split", split_table):
        engine.execute("""
            create or replace table identity_map as
            with persons as (
                select c.identifier_type, c.identifier_value,
                       coalesce(s.person_id, p.person_id) as person_id
                from _components as c
                join _persons as p using (component)
                left join _split as s using (identifier_type, identifier_value)
            ),
            first_seen as (
                select identifier_type, identifier_value, min(first_at) as first_seen_at
                from int_identity_edges
                group by all
            )
            select p.identifier_type, p.identifier_value, p.person_id, f.first_seen_at
            from persons as p join first_seen as f using (identifier_type, identifier_value)
        """)
    for name in ("_components", "_persons"):
        engine.execute(f"drop table if exists {name}")


def _write_conflicts(engine: StitchEngine, split: dict[Node, str],
                     refused: list[Refusal]) -> int:
    """`identity_conflicts`: one row per identifier kept out and refused person (see the
    module docstring); returns the number of rows."""
    conflicts: dict[tuple[str, str, str], dict[str, object]] = {}
    for other, anchor, first_at, first_event_id, events in refused:  # already in link order
        key = (other[0], other[1], split[anchor])
        if key in conflicts:
            conflicts[key]["events"] += events  # type: ignore[operator]
        else:
            conflicts[key] = {"person_id": split[other], "first_event_id": first_event_id,
                              "first_conflict_at": first_at, "events": events}
    keys = sorted(conflicts)
    table = pa.table({
        "identifier_type": pa.array([k[0] for k in keys], pa.string()),
        "identifier_value": pa.array([k[1] for k in keys], pa.string()),
        "person_id": pa.array([conflicts[k]["person_id"] for k in keys], pa.string()),
        "refused_person_id": pa.array([k[2] for k in keys], pa.string()),
        "first_event_id": pa.array([conflicts[k]["first_event_id"] for k in keys], pa.string()),
        "first_conflict_at": pa.array([conflicts[k]["first_conflict_at"] for k in keys],
                                      pa.timestamp("us", tz="UTC")),
        "events": pa.array([conflicts[k]["events"] for k in keys], pa.int64()),
    })
    with engine.register("_conflicts", table):
        engine.execute("create or replace table identity_conflicts as select * from _conflicts")
    return len(keys)


def stitch_identities(engine: StitchEngine) -> tuple[int, int]:
    """Build the identity step's two tables, `identity_map` and `identity_conflicts`, from
    `int_identity_edges` (both where the connection's search path creates tables).

    Connected components of all links come first. A component holding at most one
    customer_id is a person as it is: merge protection never refuses a link inside it. Only
    the links of components holding two or more customer_ids are applied one by one in
    first-event order, exactly as the rules say.

    Returns (identifiers, conflicts).
    """
    n = engine.label_components()
    _component_persons(engine)
    split, refused = _split_components(engine)
    _write_identity_map(engine, split)
    return n, _write_conflicts(engine, split, refused)
