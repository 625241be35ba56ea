"""Data-quality suites for the raw events, the file ledger and every published table.

`check_table` runs one table's suite and returns a `TableCheck`: one `ExpectationOutcome` per
rule, each with the rows it looked at, how many broke it and a small sample of those rows.

Two engines, one outcome format:

- Row-level rules (not null, value ranges, value sets, column pairs) are Great Expectations
  expectations, run through GX's pandas data source on chunks of at most `chunk_rows` rows
  streamed from DuckDB, their counts summed over chunks. Memory is bounded by the chunk, not the
  table. (GX's SQL data source fails on DuckDB, and dagster-ge does not support GX 1.x.)
- Rules that need more than one row at a time (a key is unique, the sessions of one person do not
  overlap, a journey's furthest stage is that of its events, reconciliation of the file ledger and
  of the published events with the ingested ones) cannot be checked chunk by chunk: DuckDB
  computes them with SQL and they are reported in the same format.

Blocking outcomes guard correctness (a table that fails one must not be published); advisory
ones (non-blocking) point at input that deserves a look.

`import great_expectations` takes seconds, so GX (and pandas) are imported on first use, and one
ephemeral GX context is created per process and reused.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any

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

    @property
    def columns(self) -> list[str]:
        return [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]


def check_table(con: duckdb.DuckDBPyConnection, table: str, config: Config, *,
                schema: str = "staging", as_of: datetime | None = None,
                tolerance: timedelta | None = None, chunk_rows: int = 200_000) -> TableCheck:
    """Run the suite of `table` on `<schema>.<table>`, reading at most `chunk_rows` rows at once.

    No event time may be later than `as_of` (default: the time of the check) + `tolerance`
    (default: the config's `max_future`). Cross-table rules read the ingest tables from `main`
    and the other published tables from `schema`.
    """
    spec = _spec(table)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    latest = _utc(as_of or datetime.now(UTC)) + (
        config.max_future if tolerance is None else tolerance)
    rules = [*_column_rules(spec, config, latest), *_advisory_rules(spec)]
    outcomes = _run_gx(con, qualified(schema, table), spec, rules, chunk_rows)
    outcomes += _sql_outcomes(con, spec, schema, config)
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
            between(name, None, _utc(latest).replace(tzinfo=None),
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


# --- Great Expectations on chunks -----------------------------------------------------------


@cache
def _gx() -> SimpleNamespace:
    """GX, imported and set up once per process: an ephemeral context with one pandas data
    source whose dataframe asset takes each chunk as a batch."""
    # The block also undoes GX's import-time `logging.captureWarnings(True)`, which would send
    # every later warning of the process to logging.
    with warnings.catch_warnings():
        # GX 1.24 imports the stdlib's deprecated sre_* modules; nothing to fix on our side.
        warnings.filterwarnings("ignore", message=r"module 'sre_(constants|parse)' is deprecated",
                                category=DeprecationWarning)
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.validator.v1_validator import Validator
    import pandas as pd
    import pyarrow as pa

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False,
                                                         metric_calculations=False)
    source = context.data_sources.add_pandas("journeys_quality")
    asset = source.add_dataframe_asset("chunk")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_chunk")
    # Nullable pandas dtypes, so an integer column with nulls stays integer (11, not 11.0).
    dtypes = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
              pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return SimpleNamespace(gx=gx, gxe=gxe, batch_definition=batch_definition,
                           Validator=Validator, types_mapper=dtypes.get)


@dataclass
class _Tally:
    elements: int = 0
    unexpected: int = 0
    sample: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _run_gx(con: duckdb.DuckDBPyConnection, qualified: str, spec: Table, rules: list[_Rule],
            chunk_rows: int) -> list[ExpectationOutcome]:
    """Validate `rules` on the table chunk by chunk and sum the results."""
    if not rules:
        return []
    g = _gx()
    suite = g.gx.ExpectationSuite(
        name=f"{spec.name}_rules",
        expectations=[getattr(g.gxe, r.expectation)(**r.kwargs, meta={"rule_index": i})
                      for i, r in enumerate(rules)])
    key = list(spec.primary_key)
    columns = list(dict.fromkeys([*key, *(c for r in rules for c in r.columns)]))
    types = {c.name: c.type for c in spec.columns}
    # Timestamps reach pandas as naive UTC: GX's column-pair metrics trip over tz-aware series.
    select = ", ".join(f"timezone('UTC', {ident(c)}) as {ident(c)}" if types[c] == "timestamptz"
                       else ident(c) for c in columns)
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE,
                     "unexpected_index_column_names": key}
    tallies = [_Tally() for _ in rules]
    gx_names: list[str] = []
    reader = con.sql(f"select {select} from {qualified}").to_arrow_reader(chunk_rows)
    try:
        validated = False
        for chunk in _chunks(reader, chunk_rows):
            frame = chunk.to_pandas(types_mapper=g.types_mapper)
            del chunk  # the Arrow copy goes before GX works on the pandas one
            gx_names = _validate(g, suite, frame, result_format, tallies)
            del frame
            validated = True
        if not validated:  # an empty table still reports every rule, with zero rows
            empty = reader.schema.empty_table().to_pandas(types_mapper=g.types_mapper)
            gx_names = _validate(g, suite, empty, result_format, tallies)
    finally:
        reader.close()
    return [
        ExpectationOutcome(
            name=type_name, column=rule.column,
            success=not t.errors and t.unexpected == 0, blocking=rule.blocking,
            element_count=t.elements, unexpected_count=t.unexpected,
            unexpected_sample=t.sample,
            details=rule.details + ("" if not t.errors else "; GX error: " + t.errors[0]))
        for rule, type_name, t in zip(rules, gx_names, tallies, strict=True)
    ]


def _chunks(reader: Any, rows: int) -> Iterator[Any]:
    """Regroup the reader's record batches (DuckDB caps them at 122,880 rows) into Arrow tables
    of exactly `rows` rows (the last one smaller)."""
    pending: list[Any] = []
    held = 0
    for batch in reader:
        while batch.num_rows:
            take = min(rows - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == rows:
                yield _take(pending)
                held = 0
    if pending:
        yield _take(pending)


def _take(batches: list[Any]) -> Any:
    """One table of `batches`, emptying the list (so the generator keeps no reference)."""
    import pyarrow as pa

    table = pa.Table.from_batches(batches)
    batches.clear()
    return table


def _validate(g: SimpleNamespace, suite: Any, frame: Any, result_format: dict[str, Any],
              tallies: list[_Tally]) -> list[str]:
    """Validate one chunk, add its counts to `tallies`; return the expectation types in order."""
    # What `batch_definition.get_batch(...).validate(suite)` does, minus loading (and hashing)
    # the chunk a second time.
    validator = g.Validator(batch_definition=g.batch_definition, result_format=result_format,
                            batch_parameters={"dataframe": frame})
    results = validator.validate_expectation_suite(suite).results
    # Results do not come back in suite order: each expectation carries its index in `meta`.
    by_index = {r.expectation_config.meta["rule_index"]: r for r in results}
    names = []
    for index, tally in enumerate(tallies):
        result = by_index[index]
        config = result.expectation_config
        names.append(config.type)
        info = result.exception_info or {}
        raised = info.get("raised_exception") or any(
            isinstance(v, dict) and v.get("raised_exception") for v in info.values())
        if raised:
            messages = [info.get("exception_message")] + [
                v.get("exception_message") for v in info.values() if isinstance(v, dict)]
            tally.errors.append(next((m for m in messages if m), "unknown error"))
            continue
        res = result.result
        tally.elements += int(res.get("element_count") or 0)
        tally.unexpected += int(res.get("unexpected_count") or 0)
        room = SAMPLE_SIZE - len(tally.sample)
        if room > 0:
            rows = res.get("partial_unexpected_index_list") or [
                {config.kwargs.get("column", "value"): v}
                for v in res.get("partial_unexpected_list") or []]
            tally.sample.extend(_jsonable(row) for row in rows[:room])
    return names


# --- rules across rows, in DuckDB -----------------------------------------------------------


def _sql_outcomes(con: duckdb.DuckDBPyConnection, spec: Table, schema: str,
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


def _unique_key(con: duckdb.DuckDBPyConnection, table: str,
                key: tuple[str, ...]) -> ExpectationOutcome:
    """No two rows share a primary key (rows with a null key part are left to not-null)."""
    cols = ", ".join(ident(c) for c in key)
    not_null = " and ".join(f"{ident(c)} is not null" for c in key)
    dups = (f"select {cols}, count(*) as \"rows\" from {table} where {not_null} "
            f"group by {cols} having count(*) > 1")
    elements, unexpected = _counts(
        con, f"select (select count(*) from {table}), "
             f"(select coalesce(sum(\"rows\"), 0) from ({dups}))")
    sample = _sample(con, f"select * from ({dups}) order by \"rows\" desc, {cols}")
    single = len(key) == 1
    return _outcome(
        "expect_column_values_to_be_unique" if single else "expect_compound_columns_to_be_unique",
        ", ".join(key), elements, unexpected, sample,
        f"primary key ({', '.join(key)}) unique; unexpected = rows sharing a key; "
        "sample = duplicated keys with their row counts (DuckDB)")


def _sessions_not_overlapping(con: duckdb.DuckDBPyConnection,
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
                          "order by person_id, started_at, session_id")
    return _outcome("expect_sessions_of_a_person_not_to_overlap", "started_at", elements,
                    unexpected, sample,
                    "each session of a person starts after the previous one (by started_at, "
                    "session_id) ended (DuckDB)")


def _furthest_stage_matches_events(con: duckdb.DuckDBPyConnection, table: str, key: str,
                                   events: str, config: Config) -> ExpectationOutcome:
    """furthest_stage is the highest stage (configured order) among the rows' events."""
    compared = (
        f"with reached as (select {ident(key)}, max(list_position($order, stage)) as stage_rank "
        f"from {events} group by {ident(key)}) "
        f"select t.{ident(key)}, t.furthest_stage, "
        "list_extract($order, r.stage_rank) as events_furthest_stage "
        f"from {table} as t left join reached as r on r.{ident(key)} = t.{ident(key)}")
    bad = "furthest_stage is distinct from events_furthest_stage"
    params = {"order": list(config.stages.order)}
    elements, unexpected = _counts(
        con, f"select count(*), count(*) filter (where {bad}) from ({compared})", params)
    sample = _sample(con, f"select * from ({compared}) where {bad} order by {ident(key)}", params)
    return _outcome("expect_furthest_stage_to_match_events", "furthest_stage", elements,
                    unexpected, sample,
                    f"furthest_stage = highest stage of the {key.removesuffix('_id')}'s events "
                    f"in {events} (order {list(config.stages.order)}) (DuckDB)")


def _same_keys(con: duckdb.DuckDBPyConnection, table: str, name: str, source: str,
               source_name: str, key: tuple[str, ...]) -> ExpectationOutcome:
    """The published table holds exactly the keys of the ingest table it publishes."""
    cols = ", ".join(ident(c) for c in key)
    mismatched = (
        f"select {cols}, {literal('missing from ' + name)} as problem from "
        f"(select {cols} from {source} except select {cols} from {table}) "
        f"union all select {cols}, {literal('not in ' + source_name)} from "
        f"(select {cols} from {table} except select {cols} from {source})")
    elements, unexpected, published = _counts(
        con, f"select (select count(*) from {source}), (select count(*) from ({mismatched})), "
             f"(select count(*) from {table})")
    sample = _sample(con, f"select * from ({mismatched}) order by problem, {cols}")
    return _outcome(f"expect_{name}_to_reconcile_with_{source_name}", ", ".join(key), elements,
                    unexpected, sample,
                    f"the keys ({', '.join(key)}) of {table} are those of {source} "
                    f"({published} rows published, {elements} in {source_name}) (DuckDB)")


def _ledger_reconciles(con: duckdb.DuckDBPyConnection, ledger: str) -> list[ExpectationOutcome]:
    """Per file: read = loaded + rejected + duplicates + forgotten, and loaded and rejected
    match the rows the ingest tables hold for that file path."""
    bad = ("records_read <> records_loaded + records_rejected + records_duplicate "
           "+ records_forgotten")
    elements, unexpected = _counts(
        con, f"select count(*), count(*) filter (where {bad}) from {ledger}")
    sample = _sample(con, "select content_hash, path, records_read, records_loaded, "
                          "records_rejected, records_duplicate, records_forgotten "
                          f"from {ledger} where {bad} order by path, content_hash")
    outcomes = [_outcome("expect_file_records_to_reconcile", "records_read", elements, unexpected,
                         sample, "per file: records_read = records_loaded + records_rejected + "
                         "records_duplicate + records_forgotten (DuckDB)")]
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
        sample = _sample(con, f"select * from ({per_file}) where {bad} order by path")
        outcomes.append(_outcome(
            f"expect_{counted}_to_match_{rows_name}", counted, elements, unexpected, sample,
            f"per file path: the ledger's {counted} = rows of {rows_table} from that file "
            f"(totals: {in_ledger} in the ledger, {in_table} rows) (DuckDB)"))
    return outcomes


# --- helpers ---------------------------------------------------------------------------------


def _outcome(name: str, column: str | None, elements: int, unexpected: int, sample: list,
             details: str) -> ExpectationOutcome:
    return ExpectationOutcome(name, column, unexpected == 0, True, elements, unexpected, sample,
                              details)


def _counts(con: duckdb.DuckDBPyConnection, query: str,
            params: dict[str, Any] | None = None) -> tuple[int, ...]:
    """The one row of a query of counts (the result is fully fetched)."""
    (row,) = con.execute(query, params or {}).fetchall()
    return tuple(int(v) for v in row)


def _sample(con: duckdb.DuckDBPyConnection, query: str,
            params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(f"{query} limit {SAMPLE_SIZE}", params or {})
    names = [d[0] for d in cursor.description]
    return [_jsonable(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


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
