"""`journeys forget`: erase a person (a GDPR erasure), rebuild everything, prove they are gone.

The steps are the privacy layer's (`journey_core.privacy.erasure`); this composes them with a
full rebuild of every published table and Parquet export. A warehouse whose ingest runs on
Spark (`Config.ingest_on_spark`) is erased there too (`journey_core.ops.spark_erasure`) and
rebuilt on Spark; the tombstones stay in the DuckDB file, whose own tables are erased as well
(they may hold what DuckDB's ingest loaded before the warehouse moved to Spark's).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from journey_core.config import Config
from journey_core.model import DuckDBEngine, Engine
from journey_core.ops.run import HANDOVER, rebuild
from journey_core.ops.spark_erasure import erase_on_spark, spark_residue
from journey_core.privacy import PrivacyError
from journey_core.privacy.erasure import (
    ForgetResult,
    erase_person,
    find_residue,
    identifiers_of,
    published_is_stale,
)
from journey_core.privacy.tombstones import ensure_tombstone_table
from journey_core.publish.parquet import prune
from journey_core.warehouse import ensure_tables

__all__ = ["ForgetResult", "forget_person"]


def forget_person(con: duckdb.DuckDBPyConnection, config: Config, warehouse_dir: Path,
                  person_id: str, *, forgotten_at: datetime | None = None,
                  progress: Callable[[str], None] | None = None,
                  engine: Engine | None = None) -> ForgetResult:
    """Erase a person from every table and Parquet export and tombstone their identifiers.

    Idempotent: forgetting a forgotten person rebuilds again and changes nothing (a forget cut
    off anywhere is finished by the next). Raises PrivacyError for a person the warehouse never
    knew, or when a table or Parquet file still names the person after the rebuild.

    `engine`: the Spark engine, when the warehouse's ingest runs on Spark
    (`Config.ingest_on_spark`; `journeys forget` starts the config's session then): the ingest
    tables are that engine's, the person is erased there and everything is rebuilt there."""
    warehouse_dir = Path(warehouse_dir)
    tables = engine or DuckDBEngine(con)
    ensure_tables(con, ["ingested_events", "ingest_rejects", "file_ledger"])
    ensure_tombstone_table(con)
    if engine is not None:
        engine.create_schema("main")
        engine.ensure_tables(["ingested_events", "ingest_rejects", "file_ledger"])
    if published_is_stale(tables):
        # identity_map must know every loaded event, or a person's newest identifiers escape
        rebuild(con, config, warehouse_dir, full=True, progress=progress, engine=engine)
    result, identifiers = erase_person(con, person_id, where=warehouse_dir,
                                       forgotten_at=forgotten_at,
                                       identifiers=identifiers_of(tables, person_id))
    if engine is not None:
        # the tombstones are committed first: a forget cut off from here on is finished by
        # the next, which finds the person in the Spark tables' identity_map still (what an
        # unpublished run staged goes with the rebuild's `clear_staging`)
        erase_on_spark(engine, person_id, identifiers, result)
        # DuckDB's copy of the ingest tables from before the warehouse ingested on Spark
        shutil.rmtree(warehouse_dir / HANDOVER, ignore_errors=True)
    rebuild(con, config, warehouse_dir, full=True, progress=progress, engine=engine)
    prune(warehouse_dir, keep_previous=False)  # the export version from before goes too
    residue = find_residue(con, warehouse_dir, person_id, identifiers)
    if engine is not None:
        residue += spark_residue(engine, person_id, identifiers)
    if residue:
        raise PrivacyError(f"person {person_id!r} is still named in: {', '.join(residue)}")
    return result
