"""The SQL model runner: one model per file in `sql/`, run by DuckDB in dependency order.

A model file `sql/<name>.sql` holds one `select`. It creates the table named after the file, with
the layer prefix dropped for published layers (`fct_sessions.sql` -> `sessions`, `mart_funnel.sql`
-> `funnel`; `stg_`/`int_` tables keep their name). A first-line comment `-- materialized: view`
makes it a view. Values are bound as named parameters (`$session_timeout_us`), never pasted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

_PUBLISHED_PREFIXES = ("fct_", "dim_", "mart_")
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


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
    def materialized(self) -> str:
        first = self.sql.lstrip().splitlines()[0] if self.sql.strip() else ""
        return "view" if first.replace(" ", "") == "--materialized:view" else "table"

    @property
    def parameters(self) -> list[str]:
        return sorted(set(_PARAM.findall(self.sql)))

    @property
    def references(self) -> set[str]:
        """Tables the model reads (CTE names excluded)."""
        tree = sqlglot.parse_one(self.sql, read="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        return {t.name for t in tree.find_all(exp.Table)} - ctes


def sql_dir() -> Path:
    """The `sql/` folder shipped with the project."""
    here = Path(str(resources.files("journey_core")))
    return here.parent / "sql"


def load_models(directory: Path | None = None) -> dict[str, Model]:
    """Every model in `sql/`, keyed by the table it creates."""
    directory = directory or sql_dir()
    models = {}
    for path in sorted(directory.glob("*.sql")):
        model = Model(path.stem, path, path.read_text(encoding="utf-8"))
        models[model.table] = model
    return models


def run_model(con: duckdb.DuckDBPyConnection, model: Model, params: dict[str, Any], *,
              target: str | None = None) -> None:
    """Create or replace the model's table (or view) from its select; `target` (a quoted,
    qualified name) overrides where it is created."""
    missing = [p for p in model.parameters if p not in params]
    if missing:
        raise ModelError(f"{model.path.name}: parameter(s) {missing} not provided")
    bound = {p: params[p] for p in model.parameters}
    body = model.sql.strip().rstrip(";")
    target = target or f'"{model.table}"'
    try:
        if model.materialized == "view":
            if bound:
                raise ModelError(f"{model.path.name}: a view cannot take parameters")
            con.execute(f"create or replace view {target} as\n{body}")
        else:
            con.execute(f"create or replace table {target} as\n{body}", bound)
    except duckdb.Error as exc:
        raise ModelError(f"{model.path.name}: {exc}") from exc
