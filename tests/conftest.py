"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def repo_root(pytestconfig: pytest.Config) -> Path:
    """The repository root (where pyproject.toml is)."""
    return pytestconfig.rootpath


@pytest.fixture(scope="session")
def sample_config_path(repo_root: Path) -> Path:
    return repo_root / "data" / "sample" / "journeys.yaml"
