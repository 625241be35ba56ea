"""GX's SQL data source on DuckDB: the stock engine still fails, ours gives GX's counts.

If the first test starts to fail, GX (or duckdb-engine) has fixed the bug that
`journey_core.quality.gx_duckdb` works around: the subclass can then go.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import duckdb
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import great_expectations as gx
    import great_expectations.expectations as gxe

from journey_core.quality import gx_duckdb


def _warehouse(path: Path) -> None:
    """A table of 10 rows: `n` 1..10, `tag` null on the 3 rows with n divisible by 3."""
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select i as n, case when i % 3 = 0 then null "
                    "else 'x' end as tag from range(1, 11) as r(i)")


def _suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="t", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="tag"),
        gxe.ExpectColumnValuesToBeBetween(column="n", max_value=8)])


def test_the_stock_sql_data_source_still_fails_on_duckdb(tmp_path: Path) -> None:
    """GX's own SQL data source over duckdb-engine loses the rows of its metric queries."""
    _warehouse(tmp_path / "w.duckdb")
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql("stock",
                                          connection_string=f"duckdb:///{tmp_path}/w.duckdb")
    batch = source.add_table_asset("t", table_name="t").add_batch_definition_whole_table("all")
    results = batch.get_batch().validate(_suite()).results
    assert [(r.success, r.result) for r in results] == [(False, {}), (False, {})]
    for r in results:  # every metric of the bundle failed with the lost rows
        (error,) = r.exception_info.values()
        assert "IndexError: list index out of range" in error["exception_traceback"]
        assert "resolve_metric_bundle" in error["exception_traceback"]


def test_the_warehouse_data_source_counts_in_sql_on_the_callers_connection(
        tmp_path: Path) -> None:
    """Bound to an open connection, GX validates with the right counts and samples, reading
    the caller's database (no second handle on the file)."""
    _warehouse(tmp_path / "w.duckdb")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))  # a writer: a second handle would fail
    _context, source = gx_duckdb.context_source()
    with source.bind(con, "main"):
        batch = source.table("t").add_batch_definition_whole_table("all")
        results = batch.get_batch().validate(
            _suite(), result_format={"result_format": "SUMMARY",
                                     "unexpected_index_column_names": ["n"]}).results
    got = {r.expectation_config.type: (r.result["element_count"], r.result["unexpected_count"],
                                       r.result["partial_unexpected_index_list"])
           for r in results}
    assert got == {
        "expect_column_values_to_not_be_null": (10, 3, [{"n": 3, "tag": None},
                                                        {"n": 6, "tag": None},
                                                        {"n": 9, "tag": None}]),
        "expect_column_values_to_be_between": (10, 2, [{"n": 9}, {"n": 10}]),
    }
    con.close()


def test_outside_bind_validation_is_refused() -> None:
    """An unbound data source never validates against the empty placeholder database."""
    _context, source = gx_duckdb.context_source()
    with pytest.raises(RuntimeError, match="not bound to a DuckDB connection"):
        source.get_execution_engine()


def test_a_process_that_ran_checks_exits_quietly(tmp_path: Path) -> None:
    """duckdb-engine with GX loaded made nanobind print "leaked instance" warnings at every
    exit; the process that checks a table ends with nothing on stderr."""
    _warehouse(tmp_path / "w.duckdb")
    code = ("import duckdb; from journey_core.quality import gx_duckdb; "
            f"con = duckdb.connect({str(tmp_path / 'w.duckdb')!r}); "
            "_, source = gx_duckdb.context_source(); "
            "ctx = source.bind(con, 'main'); ctx.__enter__(); source.table('t'); "
            "ctx.__exit__(None, None, None)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "leaked" not in proc.stderr
