"""Fingerprint every table of a warehouse and every Parquet export, to show that a change kept
the outputs identical: `python bench/snapshot.py WAREHOUSE > a.json`, again after the change,
then `diff a.json b.json`.

Each table (and each export folder, read without Hive partition discovery) gives its columns
and types, its row count and the sha256 of its rows in sorted order; load-time columns
(`ingested_at`, `rejected_at`, `loaded_at`, which record when a run happened) are left out of
the hash. The export's file layout (relative paths) is listed too. Reads only DuckDB: it
imports nothing from the library, so it measures the library from outside.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import duckdb

LOAD_TIME = {"ingested_at", "rejected_at", "loaded_at", "published_at", "processed_at"}


def fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, object]:
    columns = con.execute(f"describe select * from {relation}").fetchall()
    kept = [c for c, _t, *_ in columns if c not in LOAD_TIME]
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in kept)
    digest = hashlib.sha256()
    rows = con.execute(f"select {quoted} from {relation} order by all").fetchall() \
        if kept else []
    for row in rows:
        digest.update(repr(row).encode())
    return {"columns": [[c, t] for c, t, *_ in columns], "rows": len(rows),
            "sha256": digest.hexdigest()}


def main(warehouse: Path) -> dict[str, object]:
    con = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    out: dict[str, object] = {"tables": {}, "parquet": {}}
    for (name,) in con.execute("select table_name from duckdb_tables() where schema_name = "
                               "'main' order by 1").fetchall():
        out["tables"][name] = fingerprint(con, f'main."{name}"')  # type: ignore[index]
    parquet = warehouse / "parquet"
    for folder in sorted(p for p in parquet.iterdir() if p.is_dir()):
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet"))
        glob = str(folder / "**" / "*.parquet").replace("'", "''")
        entry = fingerprint(con, f"read_parquet('{glob}', hive_partitioning = false)")
        out["parquet"][folder.name] = {**entry, "files": files}  # type: ignore[index]
    return out


if __name__ == "__main__":
    json.dump(main(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
    print()
