"""Identity: identifiers seen together on events stitched into persons, with merge protection
(`stitch`). The identity step of the table graph reads `int_identity_edges` and writes its two
outputs, `identity_map` and `identity_conflicts`, through the engine it is given; the
connected components are labelled by scipy on DuckDB and in SQL alone elsewhere (Spark).

Layer 4: imports `contract` and `warehouse` only.
"""

from journey_core.identity.stitch import (
    StitchEngine,
    label_components_duckdb,
    label_components_sql,
    stitch_identities,
)

__all__ = ["StitchEngine", "label_components_duckdb", "label_components_sql",
           "stitch_identities"]
