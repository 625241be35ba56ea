"""Data quality: the expectation suite of every checked table (`suites`), run on the staged
tables before anything is published. Great Expectations runs the row-level rules; DuckDB the
rules across rows. Results come back as `TableCheck`s, which `pipelines.checks` turns into
Dagster asset checks.

Layer 5: imports `contract`, `config` and `warehouse`.
"""

from journey_core.quality.suites import (
    ExpectationOutcome,
    Queries,
    TableCheck,
    check_table,
    has_advisory_rules,
    warm_up,
)

__all__ = ["ExpectationOutcome", "Queries", "TableCheck", "check_table", "has_advisory_rules",
           "warm_up"]
