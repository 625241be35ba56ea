"""The fault tests' shared start: a small landing folder and its warehouse after one run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.test_faults import cli_run, project


@pytest.fixture(scope="session")
def _published_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("published")
    assert cli_run(project(root / "in"), root / "wh") == 0
    return root


@pytest.fixture
def published(_published_once: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(config, warehouse) of `project(tmp_path / "in")` after one `journeys run` into
    `tmp_path / "wh"`: a copy of one such run made once per worker (a run costs seconds; the
    warehouse keeps nothing of where it was, its `parquet` link is relative)."""
    for folder in ("in", "wh"):
        shutil.copytree(_published_once / folder, tmp_path / folder, symlinks=True)
    return tmp_path / "in" / "journeys.yaml", tmp_path / "wh"
