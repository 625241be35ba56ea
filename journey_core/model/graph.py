"""The table graph: which steps build the published tables, in which order, derived from the
models' references and the schema module; nothing here is a hand-kept list of tables.

- A **step** builds one published table: its model (`fct_`/`dim_`/`mart_`), preceded by the
  intermediate models (`stg_`/`int_`) it needs that no earlier step built. An intermediate model
  is built by the first step (in build order) that needs it; later steps that read it depend
  on that step.
- The **identity step** is the one step not made of SQL alone: it runs the models up to
  `int_identity_edges`, then stitches identities, and has two outputs, `identity_map` and
  `identity_conflicts`.
- A step depends on the steps whose outputs its models read; steps are ordered topologically,
  ties in the order of `journey_core.contract.schema.PUBLISHED`.
- A step is **person-scoped** when its table is (the schema's `person_scoped`): an incremental
  run rebuilds only the touched persons' rows of it, and runs its person-scoped models (its
  table's, and intermediate ones marked so) on those persons only.

Tables a model reads that no step builds are the step's sources: the ingest tables, the config
tables (`cfg_`), or published tables as they stand in `main`.

Adding a model: write `sql/<layer>_<table>.sql`, describe its table in the schema module
(published `Table`, or `Intermediate`); the graph, the Dagster assets and their dependencies
follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from journey_core.contract.schema import INTERMEDIATE, PUBLISHED, TABLES
from journey_core.model.runner import Model, load_models

#: The identity step: the model it reads and its two outputs (built in Python, not SQL).
IDENTITY_STEP = "identity"
IDENTITY_INPUT = "int_identity_edges"
IDENTITY_OUTPUTS = ("identity_map", "identity_conflicts")


class GraphError(ValueError):
    """The models and the schema module disagree (a model without a table description, a
    cycle, ...); the message names the model."""


@dataclass(frozen=True)
class Step:
    """One unit of the build: the models it runs, in order, and the tables it publishes."""

    name: str
    outputs: tuple[str, ...]
    models: tuple[str, ...]
    upstream: tuple[str, ...]
    #: Tables it reads that no step builds (ingest, config and `main` tables).
    sources: frozenset[str]
    person_scoped: bool

    @property
    def is_identity(self) -> bool:
        return self.name == IDENTITY_STEP


@dataclass(frozen=True)
class TableGraph:
    """Every step, in build order."""

    steps: tuple[Step, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        """The published tables, in build order."""
        return tuple(t for s in self.steps for t in s.outputs)

    @property
    def person_tables(self) -> tuple[str, ...]:
        """Published tables whose every row is one person's, in build order."""
        return tuple(t for s in self.steps if s.person_scoped for t in s.outputs)

    @property
    def person_models(self) -> frozenset[str]:
        """Models (by table) that build person rows: rerun on the touched persons only."""
        inter = {t.name for t in INTERMEDIATE if t.person_scoped}
        return frozenset(m for s in self.steps for m in s.models
                         if m in inter or (m in TABLES and TABLES[m].person_scoped))

    def step(self, name: str) -> Step:
        """The step of that name (a published table, or `identity`)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def step_of(self, table: str) -> Step:
        """The step that builds a published table."""
        for s in self.steps:
            if table in s.outputs:
                return s
        raise KeyError(table)


def _closure(start: str, models: dict[str, Model], intermediate: set[str]) -> list[str]:
    """The intermediate models `start` needs, transitively, in dependency order (each after
    the ones it reads)."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        for ref in sorted(models[name].references):
            if ref in intermediate and ref not in order:
                if ref in path:
                    raise GraphError(f"{models[ref].path.name}: reads itself through {path}")
                visit(ref, (*path, ref))
                order.append(ref)

    visit(start, (start,))
    return order


def _topological(needs: dict[str, set[str]], rank: dict[str, int]) -> list[str]:
    """Steps in dependency order; among steps ready together, the lowest rank first."""
    done: list[str] = []
    waiting = dict(needs)
    while waiting:
        ready = [s for s, deps in waiting.items() if deps <= set(done)]
        if not ready:
            raise GraphError(f"the models form a cycle among {sorted(waiting)}")
        first = min(ready, key=rank.__getitem__)
        done.append(first)
        del waiting[first]
    return done


def build_graph(models: dict[str, Model]) -> TableGraph:
    """The table graph of these models (the pipeline's: report models are left out)."""
    models = {t: m for t, m in models.items() if not m.is_report}
    intermediate = {t.name for t in INTERMEDIATE}
    published = {t.name for t in PUBLISHED}
    for table, model in models.items():
        if table not in intermediate and table not in published:
            raise GraphError(f"{model.path.name}: its table {table!r} is not described in "
                             "journey_core.contract.schema (PUBLISHED or INTERMEDIATE)")
    heads = {t: (t,) for t in models if t in published} | {IDENTITY_STEP: IDENTITY_OUTPUTS}
    last_model = {t: t for t in models if t in published} | {IDENTITY_STEP: IDENTITY_INPUT}
    producer = {out: step for step, outs in heads.items() for out in outs}
    closures = {s: _closure(last_model[s], models, intermediate) for s in heads}
    closures[IDENTITY_STEP].append(IDENTITY_INPUT)

    def reads(step: str) -> set[str]:
        own = [] if step == IDENTITY_STEP else [step]
        return {r for m in [*closures[step], *own] for r in models[m].references}

    needs = {s: {producer[r] for r in reads(s) if r in producer} - {s} for s in heads}
    rank = {t.name: i for i, t in enumerate(PUBLISHED)}
    order = _topological(needs, {s: rank[heads[s][0]] for s in heads})
    built_by: dict[str, str] = {}
    steps = []
    for name in order:
        own = [m for m in closures[name] if m not in built_by]
        built_by.update(dict.fromkeys(own, name))
        upstream = needs[name] | {built_by[m] for m in closures[name]} - {name}
        steps.append(Step(
            name=name, outputs=heads[name],
            models=tuple(own if name == IDENTITY_STEP else [*own, name]),
            upstream=tuple(s for s in order if s in upstream),
            sources=frozenset(r for r in reads(name) if r not in producer
                              and r not in models),
            person_scoped=all(TABLES[t].person_scoped for t in heads[name])))
    return TableGraph(tuple(steps))


@cache
def pipeline_graph() -> TableGraph:
    """The graph of the models shipped in `sql/`."""
    return build_graph(load_models())
