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
import pyarrow as pa

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

    Returns (identifiers, conflicts).
    """
    edges = con.execute(
        """
        select anchor_type, anchor_value, identifier_type, identifier_value,
               first_at, first_event_id, events
        from int_identity_edges
        order by first_at, first_event_id, priority
        """
    ).fetchall()
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

    nodes = sorted(comps.parent)
    con.register("_identity", pa.table({
        "identifier_type": [n[0] for n in nodes],
        "identifier_value": [n[1] for n in nodes],
        "person_id": [person(n) for n in nodes],
    }))
    try:
        con.execute(
            """
            create or replace table identity_map as
            select i.identifier_type, i.identifier_value, i.person_id,
                   min(e.first_at) as first_seen_at
            from _identity as i
            join int_identity_edges as e
              on e.identifier_type = i.identifier_type
             and e.identifier_value = i.identifier_value
            group by all
            """
        )
    finally:
        con.unregister("_identity")

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
    return len(nodes), len(keys)
