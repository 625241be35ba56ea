"""Asset checks: the data-quality suites of `journey_core.quality` as Dagster asset checks.

Each checked table gets a blocking `<table>_contract` check (every correctness rule: keys,
not-null, ranges, stages, overlaps, furthest stage, reconciliation) and, when its suite has
advisory rules, a non-blocking `<table>_advisory` check. A failed contract check has severity
ERROR, so Dagster skips everything downstream (the publish step). Check metadata carries GX's
results: per rule the rows looked at, the rows that broke it and a sample of them.

Usage inside an asset (write to staging, then check)::

    @dg.asset(name="journeys", check_specs=check_specs("journeys"))
    def journeys(...):
        ...build staging.journeys...
        yield dg.MaterializeResult(metadata=...)
        yield from check_results(con, "journeys", config, as_of=as_of)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import duckdb

from journey_core import quality
from journey_core.config import Config
from journey_core.quality import ExpectationOutcome, TableCheck

#: Sample values shown per failing rule in the markdown summary (the JSON entry has them all).
_MD_SAMPLE = 3


def contract_check_name(table: str) -> str:
    return f"{table}_contract"


def advisory_check_name(table: str) -> str:
    return f"{table}_advisory"


def check_specs(table: str, *, asset: str | None = None) -> list[dg.AssetCheckSpec]:
    """The checks of `table`, on the asset `asset` (default: the asset named like the table;
    the ingest asset carries the checks of file_ledger and ingest_rejects too)."""
    key = dg.AssetKey(asset or table)
    specs = [dg.AssetCheckSpec(
        contract_check_name(table), asset=key, blocking=True,
        description=f"{table}: keys unique and not null, values in range and in their sets, "
        "cross-row rules and reconciliation (Great Expectations and DuckDB). Blocking: a "
        "failure skips publishing.")]
    if quality.has_advisory_rules(table):
        specs.append(dg.AssetCheckSpec(
            advisory_check_name(table), asset=key, blocking=False,
            description=f"{table}: surprising input worth a look; never blocks."))
    return specs


def check_results(con: duckdb.DuckDBPyConnection | quality.Queries, table: str, config: Config, *,
                  as_of: datetime | None, schema: str = "staging", asset: str | None = None,
                  tolerance: timedelta | None = None,
                  rows_schema: str | None = None) -> list[dg.AssetCheckResult]:
    """Run the suite of `<schema>.<table>` and return one result per spec of `check_specs`
    (arguments as for `journey_core.quality.check_table`: `con` is DuckDB's connection or
    the Spark engine)."""
    check = quality.check_table(con, table, config, schema=schema, as_of=as_of,
                                tolerance=tolerance, rows_schema=rows_schema)
    location = f"{schema}.{table}" + (f" (row rules on {rows_schema}.{table}, the rows this "
                                      "run rebuilt)" if rows_schema else "")
    return to_check_results(check, asset=asset, location=location)


def to_check_results(check: TableCheck, *, asset: str | None = None,
                     location: str | None = None) -> list[dg.AssetCheckResult]:
    """One AssetCheckResult for the blocking outcomes and, when the suite has advisory rules,
    one (severity WARN) for those."""
    key = dg.AssetKey(asset or check.table)
    blocking = [o for o in check.outcomes if o.blocking]
    results = [_result(key, contract_check_name(check.table), blocking,
                       dg.AssetCheckSeverity.ERROR, location or check.table)]
    if quality.has_advisory_rules(check.table):
        advisory = [o for o in check.outcomes if not o.blocking]
        results.append(_result(key, advisory_check_name(check.table), advisory,
                               dg.AssetCheckSeverity.WARN, location or check.table))
    return results


def outcome_key(outcome: ExpectationOutcome) -> str:
    """Metadata key of one rule: `<expectation>[<column>]`."""
    return f"{outcome.name}[{outcome.column}]" if outcome.column else outcome.name


def _result(key: dg.AssetKey, name: str, outcomes: list[ExpectationOutcome],
            severity: dg.AssetCheckSeverity, location: str) -> dg.AssetCheckResult:
    failed = [o for o in outcomes if not o.success]
    metadata: dict[str, Any] = {
        "table": location,
        "expectations": dg.MetadataValue.int(len(outcomes)),
        "failed_expectations": dg.MetadataValue.int(len(failed)),
        "rows": dg.MetadataValue.int(max((o.element_count for o in outcomes), default=0)),
        "summary": dg.MetadataValue.md(_summary(outcomes)),
    }
    for o in failed:
        metadata[outcome_key(o)] = dg.MetadataValue.json({
            "element_count": o.element_count, "unexpected_count": o.unexpected_count,
            "unexpected_sample": o.unexpected_sample, "details": o.details})
    if failed:
        description = f"{len(failed)} of {len(outcomes)} expectations failed: " + "; ".join(
            f"{outcome_key(o)} ({o.unexpected_count} of {o.element_count})" for o in failed)
    else:
        description = f"all {len(outcomes)} expectations passed"
    return dg.AssetCheckResult(asset_key=key, check_name=name, passed=not failed,
                               severity=severity, metadata=metadata, description=description)


def _summary(outcomes: list[ExpectationOutcome]) -> str:
    """Markdown table of every rule, failures first."""
    lines = ["| | expectation | column | rows | unexpected | sample |", "|---" * 6 + "|"]
    for o in sorted(outcomes, key=lambda o: o.success):
        sample = ", ".join(_cell(v) for v in o.unexpected_sample[:_MD_SAMPLE])
        lines.append(f"| {'ok' if o.success else 'FAILED'} | {o.name} | {o.column or ''} | "
                     f"{o.element_count} | {o.unexpected_count} | {sample} |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
