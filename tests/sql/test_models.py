"""SQL models: they transpile to Spark SQL, and every published model keeps its contract."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from journey_core.models import load_models
from journey_core.pipeline import CONFIG_TABLES, STEPS
from journey_core.schema import PUBLISHED, TABLES

MODELS = load_models()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_transpiles_to_spark(name: str) -> None:
    """Every model parses as DuckDB SQL, uses only functions sqlglot knows (so it can map them
    to Spark), and transpiles to Spark SQL without unsupported constructs."""
    model = MODELS[name]
    tree = sqlglot.parse_one(model.sql, read="duckdb")
    unknown = sorted({f.name for f in tree.find_all(exp.Anonymous)})
    assert not unknown, f"{model.path.name}: functions sqlglot cannot translate: {unknown}"
    spark = sqlglot.transpile(model.sql, read="duckdb", write="spark",
                              unsupported_level=ErrorLevel.RAISE)[0]
    # The Spark text parses back as Spark SQL.
    sqlglot.parse_one(spark, read="spark")
    for param in model.parameters:
        assert f":{param}" in spark, f"parameter {param} must stay a bound parameter"


def test_models_read_only_known_tables() -> None:
    """Models read only tables that a model, ingest, identity or the config loader creates."""
    created = set(MODELS) | set(TABLES) | set(CONFIG_TABLES)
    for model in MODELS.values():
        assert model.references <= created, (model.path.name, model.references - created)


def test_every_published_table_has_a_step() -> None:
    """The pipeline builds exactly the published tables of the contract."""
    assert set(STEPS) == {t.name for t in PUBLISHED}
    for table, models in STEPS.items():
        for model in models:
            assert model in MODELS, (table, model)
