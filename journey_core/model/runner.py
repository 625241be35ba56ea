"""The SQL model runner: one model per file in `sql/`, run through the engine seam.

A model file `sql/<name>.sql` holds one `select`. It creates the table named after the file, with
the layer prefix dropped for published layers (`fct_sessions.sql` -> `sessions`, `mart_funnel.sql`
-> `funnel`; `stg_`/`int_` tables keep their name). A first-line comment `-- materialized: view`
makes it a view. Report models (`rpt_`) are queries the journey map report reads: they create
nothing (`-- materialized: temp` ones a temporary table the others read). Values are bound as
named parameters (`$session_timeout_us`), never pasted. The build order is not kept here:
`journey_core.model.graph` derives it from what each model reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from journey_core.model.engine import Engine
from journey_core.warehouse.quoting import ident

_PUBLISHED_PREFIXES = ("fct_", "dim_", "mart_")
#: Report models: queries for the journey map, outside the pipeline's table graph.
REPORT_PREFIX = "rpt_"
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
_MATERIALIZED = re.compile(r"^--\s*materialized:\s*(\w+)\s*$")


class ModelError(RuntimeError):
    """A model that failed; the message names the model file."""


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    sql: str

    @property
    def table(self) -> str:
        for prefix in _PUBLISHED_PREFIXES:
            if self.name.startswith(prefix):
                return self.name.removeprefix(prefix)
        return self.name

    @property
    def is_report(self) -> bool:
        return self.name.startswith(REPORT_PREFIX)

    @property
    def materialized(self) -> str:
        """`table` (the default), `view`, `temp` (a temporary table), or `query` (a report
        model without `-- materialized:`)."""
        first = self.sql.lstrip().splitlines()[0] if self.sql.strip() else ""
        match = _MATERIALIZED.match(first.strip())
        if match:
            return match.group(1)
        return "query" if self.is_report else "table"

    @property
    def parameters(self) -> list[str]:
        return sorted(set(_PARAM.findall(self.sql)))

    @property
    def references(self) -> frozenset[str]:
        """Tables the model reads (CTE names excluded)."""
        return _references(self.sql)

    def bound(self, params: dict[str, Any]) -> dict[str, Any]:
        """The model's parameters out of `params`; ModelError naming the missing ones."""
        missing = [p for p in self.parameters if p not in params]
        if missing:
            raise ModelError(f"{self.path.name}: parameter(s) {missing} not provided")
        return {p: params[p] for p in self.parameters}

    @property
    def body(self) -> str:
        return self.sql.strip().rstrip(";")


@cache
def _references(sql: str) -> frozenset[str]:
    """The tables a model's SQL reads, parsed once per process (each run builds the table
    graph again from the same texts; the parse is most of its time)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return frozenset({t.name for t in tree.find_all(exp.Table)} - ctes)


def sql_dir() -> Path:
    """The `sql/` folder shipped with the project (beside the `journey_core` package)."""
    return Path(str(resources.files("journey_core"))).parent / "sql"


def load_models(directory: Path | None = None) -> dict[str, Model]:
    """Every model in `sql/`, keyed by the table it creates."""
    directory = directory or sql_dir()
    models = {}
    for path in sorted(directory.glob("*.sql")):
        model = Model(path.stem, path, path.read_text(encoding="utf-8"))
        models[model.table] = model
    return models


def run_model(engine: Engine, model: Model, params: dict[str, Any], *,
              target: str | None = None) -> None:
    """Create or replace the model's table (or view) from its select; `target` (a quoted,
    qualified name) overrides where it is created."""
    bound = model.bound(params)
    target = target or ident(model.table)
    try:
        if model.materialized == "view":
            if bound:
                raise ModelError(f"{model.path.name}: a view cannot take parameters")
            engine.create_view(target, model.body)
        elif model.materialized == "temp":
            engine.execute(f"create or replace temp table {target} as\n{model.body}", bound)
        elif model.materialized == "table":
            engine.create_table(target, model.body, bound)
        else:
            raise ModelError(f"{model.path.name}: a {model.materialized} model creates no table")
    except engine.errors as exc:
        raise ModelError(f"{model.path.name}: {exc}") from exc


def query_model(engine: Engine, model: Model, params: dict[str, Any]) -> pa.Table:
    """The rows of a query model (a report model)."""
    try:
        return engine.arrow(model.body, model.bound(params))
    except engine.errors as exc:
        raise ModelError(f"{model.path.name}: {exc}") from exc
