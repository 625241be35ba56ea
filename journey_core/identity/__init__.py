"""Identity: identifiers seen together on events stitched into persons, with merge protection
(`stitch`). The identity step of the table graph reads `int_identity_edges` and writes its two
outputs, `identity_map` and `identity_conflicts`.

Layer 4: imports `contract` and `warehouse` only.
"""

from journey_core.identity.stitch import stitch_identities

__all__ = ["stitch_identities"]
