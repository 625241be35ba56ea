"""The data dictionary is generated from the schema module and kept in the repository."""

from __future__ import annotations

from pathlib import Path

from journey_core.contract.dictionary import data_dictionary
from journey_core.contract.schema import PUBLISHED


def test_committed_dictionary_matches_schema(repo_root: Path) -> None:
    """docs/tables.md is exactly what `journeys docs` writes (regenerate with `make docs`)."""
    assert (repo_root / "docs" / "tables.md").read_text(encoding="utf-8") == data_dictionary()


def test_dictionary_names_every_published_column() -> None:
    """Every published table and each of its columns appears in the dictionary."""
    text = data_dictionary()
    for table in PUBLISHED:
        assert f"## `{table.name}`" in text
        for col in table.columns:
            assert f"| `{col.name}` | {col.type} |" in text
