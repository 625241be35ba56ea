"""Publishing: the staged tables replace the published ones in one DuckDB transaction
(`tables`), and the Parquet exports switch to their new version as one set, by moving the
`parquet` link (`parquet`).

Layer 6: imports `contract`, `warehouse` and `model`.
"""

from journey_core.publish.tables import publish, staged_tables

__all__ = ["publish", "staged_tables"]
