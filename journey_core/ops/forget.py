"""`journeys forget`: erase a person (a GDPR erasure), rebuild everything, prove they are gone.

The steps are the privacy layer's (`journey_core.privacy.erasure`); this composes them with a
full rebuild of every published table and Parquet export.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from journey_core.config import Config
from journey_core.ops.run import PipelineError, rebuild
from journey_core.privacy import PrivacyError
from journey_core.privacy.erasure import (
    ForgetResult,
    erase_person,
    find_residue,
    published_is_stale,
)
from journey_core.privacy.tombstones import ensure_tombstone_table
from journey_core.publish.parquet import prune
from journey_core.warehouse import ensure_tables

__all__ = ["ForgetResult", "forget_person"]


def forget_person(con: duckdb.DuckDBPyConnection, config: Config, warehouse_dir: Path,
                  person_id: str, *, forgotten_at: datetime | None = None,
                  progress: Callable[[str], None] | None = None) -> ForgetResult:
    """Erase a person from every table and Parquet export and tombstone their identifiers.

    Idempotent: forgetting a forgotten person rebuilds again and changes nothing. Raises
    PrivacyError for a person the warehouse never knew, or when a table or Parquet file still
    names the person after the rebuild."""
    warehouse_dir = Path(warehouse_dir)
    if config.spark.ingest == "spark":  # for runs with `--engine spark` too
        raise PipelineError("journeys forget erases from the DuckDB file's tables; this "
                            "config ingests into the Spark tables (spark.ingest: spark), "
                            "where forget does not reach yet (docs/spark-ingest.md)")
    ensure_tables(con, ["ingested_events", "ingest_rejects", "file_ledger"])
    ensure_tombstone_table(con)
    if published_is_stale(con):
        # identity_map must know every loaded event, or a person's newest identifiers escape
        rebuild(con, config, warehouse_dir, full=True, progress=progress)
    result, identifiers = erase_person(con, person_id, where=warehouse_dir,
                                       forgotten_at=forgotten_at)
    rebuild(con, config, warehouse_dir, full=True, progress=progress)
    prune(warehouse_dir, keep_previous=False)  # the export version from before goes too
    residue = find_residue(con, warehouse_dir, person_id, identifiers)
    if residue:
        raise PrivacyError(f"person {person_id!r} is still named in: {', '.join(residue)}")
    return result
