"""Privacy: the hashing salt (`salt`), personal data in normal form, hashed and redacted
(`pii`), the tombstones that keep a forgotten person forgotten (`tombstones`), and erasing a
person from the warehouse (`erasure`).

Layer 3: imports `contract`, `config` and `warehouse`. Forgetting a person also rebuilds every
table; that composition is `journey_core.ops.forget`'s, so this package never imports the
stages above it.
"""

from journey_core.privacy.salt import PrivacyError, require_salt
from journey_core.privacy.tombstones import Tombstones, forgotten_filter, load_tombstones

__all__ = ["PrivacyError", "Tombstones", "forgotten_filter", "load_tombstones", "require_salt"]
