"""The hashing salt: secret in production, a public development default elsewhere.

In production mode (env `JOURNEYS_ENV=production`, or `identity.production: true`) the salt must
come from the environment variable named by `identity.salt_env`: unset, empty, or the
development default stops the run. Outside production the development salt is the fallback.
"""

from __future__ import annotations

import os

from journey_core.config import Config

#: Set to `production` to require a secret salt from the environment.
ENV_MODE = "JOURNEYS_ENV"


class PrivacyError(RuntimeError):
    """A privacy rule stops the command; the message says which, in one line."""


def production_mode(config: Config) -> bool:
    """Production is `JOURNEYS_ENV=production` or the config's `identity.production: true`."""
    if os.environ.get(ENV_MODE, "").strip().lower() == "production":
        return True
    # TODO(config): plain attribute access once IdentityConfig has `production: bool = False`.
    return bool(config.identity.production)


def require_salt(config: Config) -> str:
    """The hashing salt from the environment variable named by `identity.salt_env`.

    Outside production an unset (or empty) variable falls back to `identity.default_salt`; in
    production it raises PrivacyError, as does the development default itself (it is public)."""
    name = config.identity.salt_env
    salt = os.environ.get(name, "")
    if not production_mode(config):
        return salt or config.identity.default_salt
    if not salt.strip():
        raise PrivacyError(
            f"{name} is not set: production mode ({_mode_reason(config)}) needs a secret "
            "hashing salt in it")
    if salt == config.identity.default_salt:
        raise PrivacyError(
            f"{name} holds the public development salt: production mode "
            f"({_mode_reason(config)}) needs a secret one")
    return salt


def _mode_reason(config: Config) -> str:
    if os.environ.get(ENV_MODE, "").strip().lower() == "production":
        return f"{ENV_MODE}=production"
    return "identity.production: true"
