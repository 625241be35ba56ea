"""The one place SQL text is made from names and paths: everything else is a bound parameter.

DuckDB binds values (`?`, `$name`) everywhere a value may stand, but not identifiers (table,
schema and column names) and not every path (`COPY ... TO`, a glob inside a view). Those go
through these helpers, which quote them so that no name or path can change the statement.
"""

from __future__ import annotations

from pathlib import Path


def ident(name: str) -> str:
    """A quoted SQL identifier: `"name"`, with embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """`"schema"."name"`."""
    return f"{ident(schema)}.{ident(name)}"


def columns(names: list[str] | tuple[str, ...]) -> str:
    """A comma-separated list of quoted column names."""
    return ", ".join(ident(n) for n in names)


def literal(value: str | Path) -> str:
    """A quoted SQL string literal, for a path or text where DuckDB cannot bind a parameter."""
    return "'" + str(value).replace("'", "''") + "'"
