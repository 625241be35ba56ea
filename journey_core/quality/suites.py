"""Data-quality suites for the raw events, the file ledger and every published table.

`check_table` runs one table's suite and returns a `TableCheck`: one `ExpectationOutcome` per
rule, each with the rows it looked at, how many broke it and a small sample of those rows.

Two engines, one outcome format:

- Row-level rules (not null, value ranges, value sets, column pairs) are Great Expectations
  expectations, validated by GX's SQL data source on the caller's own DuckDB connection
  (`gx_duckdb`, which fixes GX's SQL engine for DuckDB): GX computes each metric in SQL where the
  table is, so no row is copied out of DuckDB and memory does not grow with the table.
  (dagster-ge does not support GX 1.x.)
- Rules that need more than one row at a time (a key is unique, the sessions of one person do not
  overlap, a journey's furthest stage is that of its events, reconciliation of the file ledger and
  of the published events with the ingested ones) have no GX expectation: DuckDB computes them
  with SQL and they are reported in the same format.

Blocking outcomes guard correctness (a table that fails one must not be published); advisory
ones (non-blocking) point at input that deserves a look.

`import great_expectations` takes seconds, so GX is imported on first use, and one ephemeral GX
context is created per process and reused.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any, Protocol

import duckdb

from journey_core.config import Config
from journey_core.contract.schema import TABLES, Table
from journey_core.contract.vocabulary import (
    ABANDONMENT_STATUSES,
    ALL_SEGMENT,
    ATTRIBUTIONS,
    FILE_STATUSES,
    IDENTIFIER_TYPES,
    JOURNEY_STATUSES,
    KPI_RANGES,
    REJECT_REASONS,
    SCORE_RANGES,
)
from journey_core.warehouse.quoting import ident, literal, qualified

#: Failing rows kept per outcome.
SAMPLE_SIZE = 5
#: Where the ingest tables live (write-audit-publish stages only the published tables).
INGEST_SCHEMA = "main"

STATUS_VALUES: dict[str, tuple[str, ...]] = {
    "journeys": JOURNEY_STATUSES, "account_journeys": JOURNEY_STATUSES,
    "abandonment": ABANDONMENT_STATUSES, "file_ledger": FILE_STATUSES,
}
#: Published table -> the ingest table (in `main`) it publishes row for row.
PUBLISHED_COPIES = {"events": "ingested_events", "rejected_events": "ingest_rejects"}
FLAG_COLUMNS = ("is_completed", "is_abandoned", "is_pending")
#: Counters that start at 1; every other bigint column counts something and starts at 0.
ONE_BASED = ("record_number", "file_version", "event_index", "transition_index", "event_count",
             "session_count")
#: Timestamps that are not event times: wall-clock load times, as-of, and future deadlines.
NOT_EVENT_TIMES = ("ingested_at", "loaded_at", "rejected_at", "as_of", "deadline")
#: (later, earlier) column pairs: a row's `later` is never before its `earlier`.
ORDERED_PAIRS = (("ended_at", "started_at"), ("last_start_at", "started_at"),
                 ("deadline", "last_start_at"))


@dataclass(frozen=True)
class ExpectationOutcome:
    """One rule on one table: how many rows it looked at, how many broke it, and some of them.

    `name` is the GX expectation type for GX rules (`expect_column_values_to_not_be_null`), and a
    name in the same style for the rules computed in DuckDB. `unexpected_sample` holds up to
    SAMPLE_SIZE failing rows as JSON-ready dicts (the primary key and the offending values).
    """

    name: str
    column: str | None
    success: bool
    blocking: bool
    element_count: int
    unexpected_count: int
    unexpected_sample: list
    details: str


@dataclass(frozen=True)
class TableCheck:
    table: str
    outcomes: list[ExpectationOutcome]

    @property
    def passed(self) -> bool:
        """Every blocking rule held (advisory ones may have failed)."""
        return all(o.success for o in self.outcomes if o.blocking)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


@dataclass(frozen=True)
class _Rule:
    """A GX expectation to build once GX is imported: its class name and arguments."""

    expectation: str
    kwargs: dict[str, Any]
    blocking: bool
    details: str

    @property
    def column(self) -> str:
        if "column" in self.kwargs:
            return self.kwargs["column"]
        return f"{self.kwargs['column_A']}, {self.kwargs['column_B']}"



class Queries(Protocol):
    """What the rules ask of an engine: the model layer's `Engine` (DuckDB's or Spark's) has
    it; a DuckDB connection is wrapped in `_DuckDBQueries`. An engine with a `spark` session
    has its GX rules validated by GX's Spark data source."""

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...

    def arrow(self, sql: str, params: Any = None) -> Any: ...


class _DuckDBQueries:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def arrow(self, sql: str, params: Any = None) -> Any:
        return self.con.sql(sql, params=params or None).to_arrow_table()


def check_table(db: duckdb.DuckDBPyConnection | Queries, table: str, config: Config, *,
                schema: str = "staging", as_of: datetime | None = None,
                tolerance: timedelta | None = None,
                rows_schema: str | None = None) -> TableCheck:
    """Run the suite of `table` on `<schema>.<table>`.

    No event time may be later than `as_of` (default: the time of the check) + `tolerance`
    (default: the config's `max_future`). Cross-table rules read the ingest tables from `main`
    and the other published tables from `schema`.

    `rows_schema`: where the row-level rules look instead (an incremental run's rebuilt rows,
    `delta.<table>`: the other rows of `<schema>.<table>` are published rows that passed them
    when they were published). The rules across rows always look at all of `<schema>.<table>`.
    """
    spec = _spec(table)
    latest = _utc(as_of or datetime.now(UTC)) + (
        config.max_future if tolerance is None else tolerance)
    rules = [*_column_rules(spec, config, latest), *_advisory_rules(spec)]
    if isinstance(db, duckdb.DuckDBPyConnection):
        queries: Queries = _DuckDBQueries(db)
        outcomes = _run_gx(db, rows_schema or schema, spec, rules)
    else:
        queries = db
        outcomes = _run_gx_spark(db.spark, rows_schema or schema, spec, rules)  # type: ignore[attr-defined]
    outcomes += _sql_outcomes(queries, spec, schema, config)
    return TableCheck(table, outcomes)


def _spec(table: str) -> Table:
    try:
        return TABLES[table]
    except KeyError:
        raise ValueError(f"no quality suite for unknown table {table!r}; known: "
                         f"{', '.join(TABLES)}") from None


def has_advisory_rules(table: str) -> bool:
    """The suite of `table` has non-blocking rules (they get their own asset check)."""
    return bool(_advisory_rules(_spec(table)))


def _column_rules(spec: Table, config: Config, latest: datetime) -> list[_Rule]:
    """The blocking row-level rules of a table, derived from its schema and the config; no
    event time may be after `latest`."""
    rules: list[_Rule] = []
    names = set(spec.column_names)
    order = list(config.stages.order)
    value_sets: dict[str, tuple[Any, ...]] = {
        "identifier_type": IDENTIFIER_TYPES,
        "attribution": ATTRIBUTIONS,
        "rule": tuple(r.name for r in config.abandonment),
        "dimension": (ALL_SEGMENT, *(d.name for d in config.segments)),
        **dict.fromkeys(FLAG_COLUMNS, (0, 1)),
    }
    if spec.name in STATUS_VALUES:
        value_sets["status"] = STATUS_VALUES[spec.name]

    def between(column: str, low: Any, high: Any, what: str) -> None:
        kwargs = {"column": column, "min_value": low, "max_value": high}
        rules.append(_Rule("ExpectColumnValuesToBeBetween",
                           {k: v for k, v in kwargs.items() if v is not None}, True, what))

    def in_set(column: str, values: Sequence[Any]) -> None:
        rules.append(_Rule("ExpectColumnValuesToBeInSet",
                           {"column": column, "value_set": list(values)}, True,
                           f"{column} in {list(values)} (nulls allowed)"))

    for col in spec.columns:
        name = col.name
        if not col.nullable or name in spec.primary_key:
            rules.append(_Rule("ExpectColumnValuesToNotBeNull", {"column": name}, True,
                               f"{name} is never null"))
        if name in SCORE_RANGES:
            low, high = SCORE_RANGES[name]
            between(name, low, high, f"{name} within its {low}-{high} scale")
        elif name in KPI_RANGES:
            low, high = KPI_RANGES[name]
            between(name, low, high, f"{name} between {low} and {high}")
        elif (name == "stage" or name.endswith("_stage")) and col.type == "varchar":
            in_set(name, order)
        elif name == "stage_rank" or name.endswith("_stage_rank"):
            between(name, 1, len(order), f"{name} between 1 and {len(order)} (stages)")
        elif name in value_sets:
            in_set(name, value_sets[name])
        elif col.type == "bigint" or name == "duration_seconds":
            low = 1 if name in ONE_BASED else 0
            between(name, low, None, f"{name} >= {low}")
        elif col.type == "timestamptz" and name not in NOT_EVENT_TIMES:
            between(name, None, _utc(latest),
                    f"{name} not later than as_of + tolerance = {_utc(latest).isoformat()}")
    for later, earlier in ORDERED_PAIRS:
        if later in names and earlier in names:
            rules.append(_Rule(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": later, "column_B": earlier, "or_equal": True,
                 "ignore_row_if": "either_value_is_missing"},
                True, f"{later} >= {earlier}"))
    return rules


def _advisory_rules(spec: Table) -> list[_Rule]:
    """Non-blocking rules: surprising input that is not wrong by contract."""
    rules: list[_Rule] = []
    if spec.name == "ingested_events":
        rules.append(_Rule(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {"column_A": "ingested_at", "column_B": "occurred_at", "or_equal": True,
             "ignore_row_if": "either_value_is_missing"},
            False, "ingested_at >= occurred_at: an event loaded before it happened points at a "
            "source clock or time-zone problem"))
    if "raw_record" in spec.column_names and "reason" in spec.column_names:
        rules.append(_Rule("ExpectColumnValuesToBeInSet",
                           {"column": "reason", "value_set": list(REJECT_REASONS)}, False,
                           f"reason in the known reject reasons {list(REJECT_REASONS)}"))
    return rules


# --- Great Expectations in SQL -------------------------------------------------------------


def warm_up() -> threading.Thread:
    """Import and set up GX in a background thread (it costs seconds), so that the first check
    does not wait for it; DuckDB work in the meantime runs beside it."""
    thread = threading.Thread(target=_gx, name="journeys-gx-import", daemon=True)
    thread.start()
    return thread


def _gx() -> SimpleNamespace:
    """GX, imported and set up once per process (thread-safe, for `warm_up`)."""
    with _GX_SETUP:
        return _gx_setup()


#: Held while GX is set up.
_GX_SETUP = threading.Lock()


@cache
def _gx_setup() -> SimpleNamespace:
    """An ephemeral GX context with one SQL data source that runs on the caller's DuckDB
    connection (`gx_duckdb`)."""
    # The block also undoes GX's import-time `logging.captureWarnings(True)`, which would send
    # every later warning of the process to logging.
    with warnings.catch_warnings():
        # GX 1.24 imports the stdlib's deprecated sre_* modules; nothing to fix on our side.
        warnings.filterwarnings("ignore", message=r"module 'sre_(constants|parse)' is deprecated",
                                category=DeprecationWarning)
        # GX imports PySpark (the spark extra) when it is installed, which warns that it does
        # not fully support pandas 3; nothing of ours goes through pandas.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.validator.v1_validator import Validator

        from journey_core.quality.gx_duckdb import context_source

    context, source = context_source()
    # the Spark data source is added on first use (GX's needs pyspark, an optional extra)
    return SimpleNamespace(gx=gx, gxe=gxe, context=context, source=source, spark_source=None,
                           Validator=Validator)


#: GX's data source is bound to one connection at a time.
_GX_LOCK = threading.Lock()


def _run_gx(con: duckdb.DuckDBPyConnection, schema: str, spec: Table,
            rules: list[_Rule]) -> list[ExpectationOutcome]:
    """Validate `rules` on `<schema>.<table>` with GX, every metric computed in DuckDB."""
    if not rules:
        return []
    g = _gx()
    (rows,), = con.execute(f"select count(*) from {qualified(schema, spec.name)}").fetchall()
    with _GX_LOCK, g.source.bind(con, schema):
        return _validate(g, _batch_definition(g.source.table(spec.name)), None, spec, rules,
                         rows)


def _run_gx_spark(spark: Any, schema: str, spec: Table,
                  rules: list[_Rule]) -> list[ExpectationOutcome]:
    """Validate `rules` on the Spark table `<schema>.<table>` with GX's Spark data source,
    every metric computed by Spark where the table is."""
    if not rules:
        return []
    g = _gx()
    with _GX_LOCK:
        if g.spark_source is None:
            g.spark_source = g.context.data_sources.add_spark("journeys_spark")
        try:
            asset = g.spark_source.get_asset(spec.name)
        except LookupError:
            asset = g.spark_source.add_dataframe_asset(spec.name)
        try:
            batch_definition = asset.get_batch_definition("whole_table")
        except KeyError:
            batch_definition = asset.add_batch_definition_whole_dataframe("whole_table")
        frame = spark.table(f"`{schema}`.`{spec.name}`")
        return _validate(g, batch_definition, {"dataframe": frame}, spec, rules, frame.count())


def _validate(g: SimpleNamespace, batch_definition: Any, batch_parameters: dict | None,
              spec: Table, rules: list[_Rule], rows: int) -> list[ExpectationOutcome]:
    """All rules are validated for whether they hold (GX's BOOLEAN_ONLY result format); the
    rules that failed are validated again for their counts and a sample of their rows with the
    table's key (SUMMARY). A table that passes pays for neither: GX computes every rule's
    unexpected count either way, but BASIC also asks for a list of unexpected values (one more
    query, or Spark job, per rule) and builds a larger metric graph, together nearly half of the
    checks' time. A rule that held has no unexpected row of the `rows` rows it was checked on
    (GX's element count of every row-level rule is the table's row count)."""
    key = list(spec.primary_key)

    def validate(indexes: list[int], result_format: dict[str, Any]) -> dict[int, Any]:
        suite = g.gx.ExpectationSuite(name=f"{spec.name}_rules", expectations=[
            getattr(g.gxe, rules[i].expectation)(**rules[i].kwargs, meta={"rule_index": i})
            for i in indexes])
        validator = g.Validator(batch_definition=batch_definition, result_format=result_format,
                                batch_parameters=batch_parameters)
        # Results do not come back in suite order: each carries its index in `meta`.
        return {r.expectation_config.meta["rule_index"]: r
                for r in validator.validate_expectation_suite(suite).results}

    results = validate(list(range(len(rules))), {"result_format": "BOOLEAN_ONLY"})
    failed = [i for i, r in results.items() if not r.success and not _gx_error(r)]
    if failed:
        results.update(validate(failed, {
            "result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE,
            "unexpected_index_column_names": key}))
    return [_gx_outcome(rule, results[i], rows) for i, rule in enumerate(rules)]


def _batch_definition(asset: Any) -> Any:
    """The asset's whole-table batch definition (added on first use)."""
    try:
        return asset.get_batch_definition("whole_table")
    except KeyError:
        return asset.add_batch_definition_whole_table("whole_table")


def _gx_error(result: Any) -> str:
    """GX's message when the expectation raised (GX reports that as an exception, not as
    failed rows); empty when it ran."""
    info = result.exception_info or {}
    raised = info.get("raised_exception") or any(
        isinstance(v, dict) and v.get("raised_exception") for v in info.values())
    if not raised:
        return ""
    messages = [info.get("exception_message")] + [
        v.get("exception_message") for v in info.values() if isinstance(v, dict)]
    return next((m for m in messages if m), "unknown error")


def _gx_outcome(rule: _Rule, result: Any, row_count: int) -> ExpectationOutcome:
    """One GX validation result as an outcome; an expectation that raised fails. A result
    without counts (BOOLEAN_ONLY) is of a rule that held on all `row_count` rows or that
    raised."""
    config = result.expectation_config
    error = _gx_error(result)
    res = result.result or ({} if error else {"element_count": row_count})
    unexpected = int(res.get("unexpected_count") or 0)
    rows = res.get("partial_unexpected_index_list") or [
        {config.kwargs.get("column", "value"): v} for v in res.get("partial_unexpected_list") or []]
    return ExpectationOutcome(
        name=config.type, column=rule.column, success=not error and unexpected == 0,
        blocking=rule.blocking, element_count=int(res.get("element_count") or 0),
        unexpected_count=unexpected, unexpected_sample=[_jsonable(r) for r in rows[:SAMPLE_SIZE]],
        details=rule.details + ("" if not error else "; GX error: " + error))


# --- rules across rows, in DuckDB -----------------------------------------------------------


def _sql_outcomes(con: Queries, spec: Table, schema: str,
                  config: Config) -> list[ExpectationOutcome]:
    table = qualified(schema, spec.name)
    outcomes = [_unique_key(con, table, spec.primary_key)]
    if spec.name == "sessions":
        outcomes.append(_sessions_not_overlapping(con, table))
    if spec.name in ("sessions", "journeys"):
        outcomes.append(_furthest_stage_matches_events(
            con, table, spec.primary_key[0], qualified(schema, "events"), config))
    if spec.name in PUBLISHED_COPIES:
        source = PUBLISHED_COPIES[spec.name]
        outcomes.append(_same_keys(con, table, spec.name, qualified(INGEST_SCHEMA, source),
                                   source, spec.primary_key))
    if spec.name == "file_ledger":  # one row per version of a path, too
        outcomes += [_unique_key(con, table, ("path", "file_version")),
                     *_ledger_reconciles(con, table)]
    return outcomes


def _unique_key(con: Queries, table: str,
                key: tuple[str, ...]) -> ExpectationOutcome:
    """No two rows share a primary key (rows with a null key part are left to not-null)."""
    cols = ", ".join(ident(c) for c in key)
    not_null = " and ".join(f"{ident(c)} is not null" for c in key)
    dups = (f"select {cols}, count(*) as \"rows\" from {table} where {not_null} "
            f"group by {cols} having count(*) > 1")
    # one scan (on Spark one job, not one per subquery): the rows of every key, null keys too
    keys = f"select {cols}, count(*) as \"rows\" from {table} group by {cols}"
    elements, unexpected = _counts(
        con, f"select coalesce(sum(\"rows\"), 0), "
             f"coalesce(sum(\"rows\") filter (where \"rows\" > 1 and {not_null}), 0) "
             f"from ({keys})")
    sample = _sample(con, f"select * from ({dups}) order by \"rows\" desc, {cols}", unexpected)
    single = len(key) == 1
    return _outcome(
        "expect_column_values_to_be_unique" if single else "expect_compound_columns_to_be_unique",
        ", ".join(key), elements, unexpected, sample,
        f"primary key ({', '.join(key)}) unique; unexpected = rows sharing a key; "
        "sample = duplicated keys with their row counts (SQL)")


def _sessions_not_overlapping(con: Queries,
                              table: str) -> ExpectationOutcome:
    """A person's session starts strictly after the previous one (by started_at) ended."""
    ordered = (
        "select person_id, session_id, started_at, ended_at, "
        "lag(session_id) over w as previous_session_id, "
        "lag(ended_at) over w as previous_ended_at "
        f"from {table} window w as (partition by person_id order by started_at, session_id)")
    bad = "started_at <= previous_ended_at"
    elements, unexpected = _counts(
        con, f"select count(*), count(*) filter (where {bad}) from ({ordered})")
    sample = _sample(con, f"select person_id, session_id, started_at, previous_session_id, "
                          f"previous_ended_at from ({ordered}) where {bad} "
                          "order by person_id, started_at, session_id", unexpected)
    return _outcome("expect_sessions_of_a_person_not_to_overlap", "started_at", elements,
                    unexpected, sample,
                    "each session of a person starts after the previous one (by started_at, "
                    "session_id) ended (SQL)")


def _furthest_stage_matches_events(con: Queries, table: str, key: str,
                                   events: str, config: Config) -> ExpectationOutcome:
    """furthest_stage is the highest stage (configured order) among the rows' events."""
    compared = (
        f"with reached as (select {ident(key)}, "
        "cast(max(array_position($order, stage)) as integer) as stage_rank "
        f"from {events} group by {ident(key)}) "
        f"select t.{ident(key)}, t.furthest_stage, "
        # (Spark 4.3's element_at gives the last element for a NULL index: guarded)
        "case when r.stage_rank is not null then list_extract($order, r.stage_rank) end "
        "as events_furthest_stage "
        f"from {table} as t left join reached as r on r.{ident(key)} = t.{ident(key)}")
    bad = "furthest_stage is distinct from events_furthest_stage"
    params = {"order": list(config.stages.order)}
    elements, unexpected = _counts(
        con, f"select count(*), count(*) filter (where {bad}) from ({compared})", params)
    sample = _sample(con, f"select * from ({compared}) where {bad} order by {ident(key)}",
                     unexpected, params)
    return _outcome("expect_furthest_stage_to_match_events", "furthest_stage", elements,
                    unexpected, sample,
                    f"furthest_stage = highest stage of the {key.removesuffix('_id')}'s events "
                    f"in {events} (order {list(config.stages.order)}) (SQL)")


def _same_keys(con: Queries, table: str, name: str, source: str,
               source_name: str, key: tuple[str, ...]) -> ExpectationOutcome:
    """The published table holds exactly the keys of the ingest table it publishes.

    Each side is summed up in one scan: its row count and the sum of a 64-bit hash of each
    key. Equal sums pass (keys repeated on one side are the unique-key rule's business; two
    different key sets with equal sums are a 1 in 2^64 accident); otherwise a join of the two
    tables counts the mismatched keys and samples them."""
    hashed = f"cast(hash({', '.join(ident(c) for c in key)}) as decimal(38, 0))"
    digest = f"count(*), coalesce(sum({hashed}), 0)"
    elements, source_sum, published, table_sum = _counts(
        con, f"select * from (select {digest} from {source}), (select {digest} from {table})")
    unexpected = 0
    on = " and ".join(f"s.{ident(c)} = t.{ident(c)}" for c in key)
    first = ident(key[0])
    joined = f"from {source} as s full join {table} as t on {on}"
    mismatch = f"s.{first} is null or t.{first} is null"
    if (elements, source_sum) != (published, table_sum):
        (unexpected,) = _counts(con, f"select count(*) filter (where {mismatch}) {joined}")
    problem = (f"case when t.{first} is null then {literal('missing from ' + name)} "
               f"else {literal('not in ' + source_name)} end")
    keys = ", ".join(f"coalesce(s.{ident(c)}, t.{ident(c)}) as {ident(c)}" for c in key)
    sample = _sample(con, f"select {keys}, {problem} as problem {joined} where {mismatch} "
                          f"order by problem, {', '.join(ident(c) for c in key)}", unexpected)
    return _outcome(f"expect_{name}_to_reconcile_with_{source_name}", ", ".join(key), elements,
                    unexpected, sample,
                    f"the keys ({', '.join(key)}) of {table} are those of {source} "
                    f"({published} rows published, {elements} in {source_name}; compared by "
                    "count and key-hash sum, joined where they differ) (SQL)")


def _ledger_reconciles(con: Queries, ledger: str) -> list[ExpectationOutcome]:
    """Per file: read = loaded + rejected + duplicates + forgotten, and loaded and rejected
    match the rows the ingest tables hold for that file path."""
    bad = ("records_read <> records_loaded + records_rejected + records_duplicate "
           "+ records_forgotten")
    elements, unexpected = _counts(
        con, f"select count(*), count(*) filter (where {bad}) from {ledger}")
    sample = _sample(con, "select content_hash, path, records_read, records_loaded, "
                          "records_rejected, records_duplicate, records_forgotten "
                          f"from {ledger} where {bad} order by path, content_hash", unexpected)
    outcomes = [_outcome("expect_file_records_to_reconcile", "records_read", elements, unexpected,
                         sample, "per file: records_read = records_loaded + records_rejected + "
                         "records_duplicate + records_forgotten (SQL)")]
    for counted, rows_name in (("records_loaded", "ingested_events"),
                               ("records_rejected", "ingest_rejects")):
        rows_table = qualified(INGEST_SCHEMA, rows_name)
        per_file = (
            f"select coalesce(l.path, r.file) as path, coalesce(l.n, 0) as {counted}, "
            f"coalesce(r.n, 0) as {rows_name}_rows "
            f"from (select path, sum({counted}) as n from {ledger} group by path) as l "
            f"full join (select file, count(*) as n from {rows_table} group by file) as r "
            "on r.file = l.path")
        bad = f"{counted} <> {rows_name}_rows"
        elements, unexpected, in_ledger, in_table = _counts(
            con, f"select count(*), count(*) filter (where {bad}), "
                 f"coalesce(sum({counted}), 0), coalesce(sum({rows_name}_rows), 0) "
                 f"from ({per_file})")
        sample = _sample(con, f"select * from ({per_file}) where {bad} order by path",
                         unexpected)
        outcomes.append(_outcome(
            f"expect_{counted}_to_match_{rows_name}", counted, elements, unexpected, sample,
            f"per file path: the ledger's {counted} = rows of {rows_table} from that file "
            f"(totals: {in_ledger} in the ledger, {in_table} rows) (SQL)"))
    return outcomes


# --- helpers ---------------------------------------------------------------------------------


def _outcome(name: str, column: str | None, elements: int, unexpected: int, sample: list,
             details: str) -> ExpectationOutcome:
    return ExpectationOutcome(name, column, unexpected == 0, True, elements, unexpected, sample,
                              details)


def _counts(con: Queries, query: str,
            params: dict[str, Any] | None = None) -> tuple[int, ...]:
    """The one row of a query of counts (the result is fully fetched)."""
    (row,) = con.rows(query, params or {})
    return tuple(int(v) for v in row)


def _sample(con: Queries, query: str, unexpected: int,
            params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Up to SAMPLE_SIZE rows of `query` (the failing rows), queried only when there are any
    (`unexpected`): a rule that holds costs one scan."""
    if not unexpected:
        return []
    return [_jsonable(row) for row in
            con.arrow(f"{query} limit {SAMPLE_SIZE}", params or {}).to_pylist()]


def _utc(moment: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken to be UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars as Python values, NaN/NaT as None, times in ISO 8601
    (naive ones are UTC: that is how they left DuckDB)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):  # pandas Timestamps are datetimes
        if value != value:  # NaT
            return None
        return _utc(value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
                    ).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    if value.__class__.__name__ in ("NAType", "NaTType"):
        return None
    return str(value)
