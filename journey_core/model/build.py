"""Building a step of the table graph into `staging`, where its checks run before publishing.

Write, audit, publish: a step writes its tables to the `staging` schema (reads find staging
first, then the published tables in `main`). A published table rebuilt whole is written to
`main."_staged_<table>"` with `staging.<table>` a view of it, so that publishing renames it into
place instead of copying it. A person-scoped step of an incremental run builds only the touched
persons' rows (`journey_core.model.incremental`).
"""

from __future__ import annotations

from journey_core.contract.schema import TABLES
from journey_core.identity import stitch_identities
from journey_core.model.context import RunContext
from journey_core.model.engine import Engine
from journey_core.model.graph import Step
from journey_core.model.incremental import DELTA, STAGING, as_of_tables
from journey_core.model.runner import run_model
from journey_core.warehouse.quoting import ident, qualified

#: A published table rebuilt whole is written to `main."_staged_<table>"`.
STAGED_PREFIX = "_staged_"


def staged_name(table: str) -> str:
    """Where a published table rebuilt whole is written (`staging.<table>` is its view)."""
    return qualified("main", STAGED_PREFIX + table)


def clear_staging(engine: Engine) -> None:
    """Drop what an unpublished run left (staging, delta, `_staged_` tables): tables staged by a
    run that failed its checks must never be published by a later one."""
    engine.drop_schema(STAGING)
    engine.drop_schema(DELTA)
    for name in engine.tables("main"):
        if name.startswith(STAGED_PREFIX):
            engine.execute(f"drop table {qualified('main', name)}")


def _build_whole(engine: Engine, ctx: RunContext, step: Step) -> None:
    """Every model of the step over all persons; the identity step then stitches."""
    for name in step.models:
        model = ctx.models[name]
        if name in step.outputs and model.materialized == "table":
            run_model(engine, model, ctx.params, target=staged_name(name))
            engine.create_view(qualified(STAGING, name), f"select * from {staged_name(name)}")
        else:
            run_model(engine, model, ctx.params)
    if step.is_identity:
        stitch_identities(engine)


def build_person_step(engine: Engine, ctx: RunContext, step: Step) -> None:
    """Build the touched persons' rows of the step's table in `delta`, then
    `staging.<table>` as a view: the published rows of everyone else (with this run's as-of)
    plus those. The step's other models (over all persons) run in staging."""
    (table,) = step.outputs
    person = ctx.graph.person_models
    engine.create_schema(DELTA)
    engine.create_view(qualified(DELTA, "identity_map"),
                       f"select * from {STAGING}.identity_map where person_id in "
                       f"(select person_id from {STAGING}._touched)")
    engine.use(DELTA, STAGING, "main")
    for name in step.models:
        if name in person:
            run_model(engine, ctx.models[name], ctx.params)
    engine.use(STAGING, "main")
    # the contract's columns by name (SQL every engine runs: no `* replace`, no `by name`)
    columns = TABLES[table].column_names
    stamp = table in as_of_tables(ctx.graph.person_tables)
    kept = ", ".join(f"(select as_of from {STAGING}._run) as as_of" if stamp and c == "as_of"
                     else ident(c) for c in columns)
    engine.create_view(qualified(STAGING, table), f"""
        select {kept} from {qualified("main", table)}
        where person_id not in (select person_id from {STAGING}._touched)
        union all
        select {", ".join(ident(c) for c in columns)} from {qualified(DELTA, table)}""")
    for name in step.models:
        if name not in person:
            run_model(engine, ctx.models[name], ctx.params)


def build_step(engine: Engine, ctx: RunContext, step: Step) -> dict[str, int]:
    """Write: build one step's tables in `staging`; return their row counts.

    The run's plan (full or incremental) is made once, right after the identity step (or by
    the first person-scoped step of a run without it); a `full` context forces a full
    rebuild."""
    ctx.prepare(engine)
    engine.create_schema(STAGING)
    engine.use(STAGING, "main")
    if step.person_scoped and ctx.plan(engine).incremental:
        build_person_step(engine, ctx, step)
    else:
        _build_whole(engine, ctx, step)
    if step.is_identity:
        ctx.plan(engine)  # the run's plan needs the new identity map, and nothing else new
    return {t: engine.scalar(f"select count(*) from {qualified(STAGING, t)}")
            for t in step.outputs}
