"""Identity stitching: identifiers seen on one event belong to one person.

Rules (DESIGN.md, identity):
- identifiers on the same event are linked; a person is a connected component;
- merge protection: a component never holds two different customer_ids. Links are applied in
  the order of the first event that carried them, `(occurred_at, event_id)`; a link that would
  join two customer_ids is refused, the identifier keeps its earlier person, and the refusal is
  listed in `identity_conflicts`;
- person_id is the component's customer_id, else `anon-` + the first 16 hex digits of the
  sha256 of its smallest `type:value` identifier.
An event belongs to the person of its anchor: its customer_id, else anonymous_id, email_hash,
phone_hash (the first present).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from journey_core.warehouse import scalar

Node = tuple[str, str]  # (identifier_type, identifier_value)


@dataclass
class _Components:
    parent: dict[Node, Node] = field(default_factory=dict)
    customer: dict[Node, str | None] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.customer[node] = node[1] if node[0] == "customer_id" else None

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


def anonymous_person_id(smallest: Node) -> str:
    return "anon-" + hashlib.sha256(f"{smallest[0]}:{smallest[1]}".encode()).hexdigest()[:16]


def stitch_identities(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Build `identity_map` and `identity_conflicts` from `int_identity_edges`.

    Connected components of all links come first (scipy, on integer node ids). A component
    holding at most one customer_id is a person as it is: merge protection never refuses a
    link inside it. Only the links of components holding two or more customer_ids are applied
    one by one in first-event order (`_Components`), exactly as the rules say.

    Returns (identifiers, conflicts).
    """
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
    con.execute("""
        create or replace temp table _persons as
        select component,
               count(distinct identifier_value) filter (identifier_type = 'customer_id')
                   as customers,
               coalesce(max(identifier_value) filter (identifier_type = 'customer_id'),
                        'anon-' || left(sha256(min(identifier_type || ':' || identifier_value)),
                                        16)) as person_id
        from _components
        group by component
    """)
    # Components with two or more customer_ids: links one by one, in first-event order.
    edges = con.execute("""
        select e.anchor_type, e.anchor_value, e.identifier_type, e.identifier_value,
               e.first_at, e.first_event_id, e.events
        from int_identity_edges as e
        join _components as c
          on c.identifier_type = e.identifier_type and c.identifier_value = e.identifier_value
        join _persons as p on p.component = c.component and p.customers > 1
        order by e.first_at, e.first_event_id, e.priority
    """).fetchall()
    comps = _Components()
    refused: list[tuple[Node, Node, object, str, int]] = []
    for a_type, a_value, o_type, o_value, first_at, first_event_id, events in edges:
        anchor, other = (a_type, a_value), (o_type, o_value)
        comps.add(anchor)
        comps.add(other)
        if not comps.union(anchor, other):
            refused.append((other, anchor, first_at, first_event_id, events))

    smallest: dict[Node, Node] = {}
    for node in comps.parent:
        root = comps.find(node)
        key = f"{node[0]}:{node[1]}"
        if root not in smallest or key < f"{smallest[root][0]}:{smallest[root][1]}":
            smallest[root] = node

    def person(node: Node) -> str:
        root = comps.find(node)
        return comps.customer[root] or anonymous_person_id(smallest[root])

    split = sorted(comps.parent)
    con.register("_split", pa.table({
        "identifier_type": pa.array([n[0] for n in split], pa.string()),
        "identifier_value": pa.array([n[1] for n in split], pa.string()),
        "person_id": pa.array([person(n) for n in split], pa.string()),
    }))
    try:
        con.execute(
            """
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
            """
        )
    finally:
        con.unregister("_split")
        for name in ("_nodes", "_components", "_persons"):
            con.execute(f"drop table if exists {name}")

    conflicts: dict[tuple[str, str, str], dict[str, object]] = {}
    for other, anchor, first_at, first_event_id, events in refused:  # already in link order
        key = (other[0], other[1], person(anchor))
        if key in conflicts:
            conflicts[key]["events"] += events  # type: ignore[operator]
        else:
            conflicts[key] = {"person_id": person(other), "first_event_id": first_event_id,
                              "first_conflict_at": first_at, "events": events}
    keys = sorted(conflicts)
    con.register("_conflicts", pa.table({
        "identifier_type": pa.array([k[0] for k in keys], pa.string()),
        "identifier_value": pa.array([k[1] for k in keys], pa.string()),
        "person_id": pa.array([conflicts[k]["person_id"] for k in keys], pa.string()),
        "refused_person_id": pa.array([k[2] for k in keys], pa.string()),
        "first_event_id": pa.array([conflicts[k]["first_event_id"] for k in keys], pa.string()),
        "first_conflict_at": pa.array([conflicts[k]["first_conflict_at"] for k in keys],
                                      pa.timestamp("us", tz="UTC")),
        "events": pa.array([conflicts[k]["events"] for k in keys], pa.int64()),
    }))
    try:
        con.execute("create or replace table identity_conflicts as select * from _conflicts")
    finally:
        con.unregister("_conflicts")
    return n, len(keys)
