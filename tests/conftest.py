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


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory, sample_config_path: Path) -> Path:
    """One real run of `journeys run` (a Dagster materialize) on the committed sample."""
    from pipelines.cli import main

    out = tmp_path_factory.mktemp("sample") / "wh"
    assert main(["run", "--config", str(sample_config_path), "--warehouse", str(out)]) == 0
    return out


#: Tests that take minutes, longest first: collected first, so that the parallel runner (`-n 2
#: --dist loadfile --no-loadscope-reorder`, as `make test` runs it) starts each on a worker of
#: its own at once and runs the rest beside them instead of after them. (Without
#: `--no-loadscope-reorder`, pytest-xdist 3 hands out the files with the most tests first,
#: whatever the collection order: these, of one to three tests each, came last and ran alone at
#: the end, minutes after the rest.)
LONG_FIRST = ("tests/spark/test_spark_run.py", "tests/spark/test_spark_engine.py",
              "tests/faults/test_kill_anywhere.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)
