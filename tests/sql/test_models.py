"""SQL models: they transpile to Spark SQL, and every published model keeps its contract."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from journey_core.contract.schema import PUBLISHED, TABLES
from journey_core.contract.vocabulary import IDENTIFIER_TYPES
from journey_core.model import Model, build_graph, load_models, pipeline_graph
from journey_core.model.config_tables import CONFIG_TABLES
from journey_core.model.graph import GraphError

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


def test_every_published_table_has_one_step() -> None:
    """The graph builds exactly the published tables of the contract, each in one step, and
    runs every pipeline model exactly once."""
    graph = pipeline_graph()
    assert sorted(graph.tables) == sorted(t.name for t in PUBLISHED)
    assert len(graph.tables) == len(set(graph.tables))
    ran = [m for s in graph.steps for m in s.models]
    assert sorted(ran) == sorted(t for t, m in MODELS.items() if not m.is_report)


def test_steps_run_after_everything_they_read() -> None:
    """A step comes after the steps that build the tables its models read, and within a step
    every model comes after the models of the step it reads."""
    graph = pipeline_graph()
    producer = {t: s.name for s in graph.steps for t in (*s.outputs, *s.models)}
    earlier: list[str] = []
    for step in graph.steps:
        assert set(step.upstream) <= set(earlier), step.name
        for position, name in enumerate(step.models):
            for ref in MODELS[name].references & producer.keys():
                if producer[ref] == step.name:
                    assert ref in step.models[:position], (step.name, name, ref)
                else:
                    assert producer[ref] in step.upstream, (step.name, name, ref)
        earlier.append(step.name)


def test_identity_is_one_step_with_two_outputs() -> None:
    """Identity is an explicit step: after the models up to the identity edges it stitches,
    and it publishes identity_map and identity_conflicts."""
    step = pipeline_graph().step("identity")
    assert step.outputs == ("identity_map", "identity_conflicts")
    assert step.models[-1] == "int_identity_edges"
    assert pipeline_graph().step_of("identity_conflicts") is step


def test_person_scope_comes_from_the_schema() -> None:
    """The person-scoped steps are exactly the tables the schema marks person-scoped."""
    graph = pipeline_graph()
    assert set(graph.person_tables) == {t.name for t in PUBLISHED if t.person_scoped}


def test_a_model_without_a_table_description_is_refused(tmp_path) -> None:
    """Adding a model means describing its table: a model the schema module does not know
    stops the graph, naming the file."""
    models = dict(MODELS)
    path = tmp_path / "fct_mystery.sql"
    path.write_text("select * from events")
    models["mystery"] = Model("fct_mystery", path, path.read_text())
    with pytest.raises(GraphError, match=r"fct_mystery\.sql"):
        build_graph(models)


def test_a_new_model_joins_the_graph_where_its_references_put_it(tmp_path) -> None:
    """A new mart reading sessions and funnel becomes a step after both, without touching any
    list: its dependencies come from what it reads."""
    models = dict(MODELS)
    path = tmp_path / "mart_funnel.sql"
    path.write_text(MODELS["funnel"].sql.replace("from funnel_by_segment",
                                                 "from funnel_by_segment, sessions"))
    models["funnel"] = Model("mart_funnel", path, path.read_text())
    step = build_graph(models).step("funnel")
    assert set(step.upstream) == {"funnel_by_segment", "sessions"}


def test_anchor_precedence_follows_the_vocabulary() -> None:
    """stg_events names the identifier columns in precedence order (SQL must name columns):
    the anchor's coalesce and case list them exactly as IDENTIFIER_TYPES does."""
    tree = sqlglot.parse_one(MODELS["stg_events"].sql, read="duckdb")
    coalesce = next(tree.find_all(exp.Coalesce))
    assert [c.name for c in [coalesce.this, *coalesce.expressions]] == list(IDENTIFIER_TYPES)
    case = next(tree.find_all(exp.Case))
    named = [w.args["true"].name for w in case.args["ifs"]] + [case.args["default"].name]
    assert named == list(IDENTIFIER_TYPES)


def test_models_spell_no_vocabulary_value() -> None:
    """Statuses, attributions, the `all` segment and score cut-offs reach the models as bound
    parameters, never as literals."""
    values = {"open", "closed", "completed", "abandoned", "pending", "named",
              "previous_touchpoint", "unattributed", "(unattributed)", "all"}
    for model in MODELS.values():
        tree = sqlglot.parse_one(model.sql, read="duckdb")
        spelled = {lit.name for lit in tree.find_all(exp.Literal) if lit.is_string} & values
        assert not spelled, (model.path.name, spelled)
