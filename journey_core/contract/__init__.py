"""The contract: every table's columns, grain and key (`schema`), the fixed values rules depend
on (`vocabulary`) and the data dictionary generated from them (`dictionary`).

The lowest layer: it imports nothing else of `journey_core`.
"""

from journey_core.contract.schema import (
    INTERMEDIATE,
    INTERNAL,
    PUBLISHED,
    TABLES,
    Column,
    Intermediate,
    Table,
)

__all__ = ["INTERMEDIATE", "INTERNAL", "PUBLISHED", "TABLES", "Column", "Intermediate", "Table"]
