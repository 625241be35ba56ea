"""The DuckDB warehouse file: connections and their settings, table creation, and the one
quoting helper for names and paths in SQL text (`quoting`).

Layer 2: imports `contract` and `config` only.
"""

from journey_core.warehouse.connection import (
    WAREHOUSE_FILE,
    Params,
    apply_settings,
    connect,
    ensure_tables,
    exists,
    row_count,
    scalar,
    table_names,
)

__all__ = ["WAREHOUSE_FILE", "Params", "apply_settings", "connect", "ensure_tables", "exists",
           "row_count", "scalar", "table_names"]
