"""End to end: `journeys run` on data/sample, checked against the generator's ground truth.

The ground truth is the generator's own account of what it planted (its plan), computed without
the pipeline's code; nothing here is copied from the pipeline's output.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from journey_core.contract.schema import PUBLISHED, TABLES
from pipelines.cli import main

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def truth(repo_root: Path) -> dict:
    return json.loads((repo_root / "data" / "sample" / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def warehouse(sample_warehouse: Path) -> Path:
    return sample_warehouse


@pytest.fixture
def con(warehouse: Path):
    con = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
    yield con
    con.close()


def one(con: duckdb.DuckDBPyConnection, query: str) -> object:
    return con.execute(query).fetchall()[0][0]


def test_reconciliation_per_file(con, truth) -> None:
    """Every file's records are loaded, rejected or duplicates, as planted, and add up."""
    ledger = {path: (read, loaded, rejected, dupes) for path, read, loaded, rejected, dupes in
              con.execute("select path, records_read, records_loaded, records_rejected, "
                          "records_duplicate from file_ledger").fetchall()}
    expected = {path: (f["read"], f["loaded"], f["rejected"], f["duplicates"])
                for path, f in truth["files"].items()}
    assert ledger == expected
    for read, loaded, rejected, dupes in ledger.values():
        assert read == loaded + rejected + dupes
    totals = truth["totals"]
    assert one(con, "select count(*) from events") == totals["loaded"]
    assert one(con, "select count(*) from rejected_events") == totals["rejected"]


def test_rejects_name_file_record_and_reason(con, truth, repo_root) -> None:
    """Each planted bad record is rejected with its file, record number and failure type, and
    kept verbatim: the raw record is the exact line of the file, except that email addresses and
    phone numbers are replaced by a salted-hash token."""
    got = sorted(con.execute("select file, record_number, reason from rejected_events")
                 .fetchall())
    assert got == sorted((r["file"], r["record"], r["reason"]) for r in truth["rejects"])
    for file, number, raw in con.execute(
            "select file, record_number, raw_record from rejected_events "
            "where file not like '%.parquet'").fetchall():
        lines = (repo_root / "data" / "sample" / file).read_text(encoding="utf-8").splitlines()
        # each token stands for one piece of personal data of the original line
        pieces = re.split(r"\[redacted sha256:[0-9a-f]{64}\]", raw)
        pattern = ".+?".join(re.escape(piece) for piece in pieces)
        assert "@" not in raw
        assert re.fullmatch(pattern, lines[number - 1]), (file, number, raw)


def test_identity(con, truth) -> None:
    """Persons as planted; the one shared device is the one conflict, kept with its first user."""
    assert one(con, "select count(distinct person_id) from events") == truth["persons"]
    assert one(con, "select count(*) from identity_conflicts") == len(truth["identity_conflicts"])
    conflicts = con.execute(
        "select identifier_type, identifier_value from identity_conflicts").fetchall()
    assert conflicts == [(c["identifier_type"], c["identifier_value"])
                         for c in truth["identity_conflicts"]]
    customers = one(con, "select count(distinct person_id) from events "
                         "where person_id not like 'anon-%'")
    assert customers == truth["customers"]


def test_sessions_and_journeys(con, truth) -> None:
    """Session and journey counts, open/closed status and conversions match the plan."""
    assert one(con, "select count(*) from sessions") == truth["sessions"]
    assert one(con, "select count(*) from journeys") == truth["journeys"]
    assert one(con, "select count(*) from journeys where status = 'open'") == truth[
        "journeys_open"]
    assert one(con, "select count(*) from journeys where status = 'closed'") == truth[
        "journeys_closed"]
    assert one(con, "select count(*) from journeys where converted") == truth[
        "journeys_converted"]
    as_of = one(con, "select max(as_of) from journeys")
    assert as_of == datetime.fromisoformat(truth["as_of"])


def test_funnel(con, truth) -> None:
    """reached and dropped per stage as planted; step conversion is reached(next)/reached."""
    rows = con.execute("select stage, reached, dropped, reached_next, step_conversion "
                       "from funnel order by stage_rank").fetchall()
    assert [r[0] for r in rows] == ["awareness", "consideration", "conversion", "retention",
                                    "advocacy"]
    for stage, reached, dropped, reached_next, step in rows:
        assert reached == truth["funnel"][stage]["reached"], stage
        assert dropped == truth["funnel"][stage]["dropped"], stage
        if reached_next is not None:
            assert step == pytest.approx(reached_next / reached)


def test_checkout_abandonment_by_week(con, truth) -> None:
    """Checkout attempts, completions and abandonments per ISO week as planted, including the
    planted problem week, which has by far the highest rate."""
    rows = con.execute(
        """
        select strftime(date_trunc('week', started_at), '%Y-%m-%d') as week,
               count(*), sum(is_completed), sum(is_abandoned), sum(is_pending)
        from abandonment where rule = 'checkout' group by week order by week
        """).fetchall()
    got = {w: {"attempts": a, "completed": c, "abandoned": x, "pending": p}
           for w, a, c, x, p in rows}
    assert got == truth["checkout_abandonment_by_week"]
    rates = {w: v["abandoned"] / (v["abandoned"] + v["completed"]) for w, v in got.items()}
    problem = truth["stories"]["checkout_problem_week"]
    assert rates[problem] == max(rates.values())
    assert rates[problem] > 1.5 * max(r for w, r in rates.items() if w != problem)


def test_survey_scores_per_touchpoint(con, truth) -> None:
    """NPS, CSAT and CES counts per rated touchpoint, named or attributed, as planted."""
    cols = ["nps_responses", "nps_promoters", "nps_detractors", "csat_responses",
            "csat_satisfied", "ces_responses", "ces_sum"]
    rows = con.execute(f"select touchpoint, {', '.join(cols)} from touchpoint_kpis "
                       "where nps_responses + csat_responses + ces_responses > 0").fetchall()
    got = {r[0]: dict(zip(cols, r[1:], strict=True)) for r in rows}
    expected = {tp: {c: v[c] for c in cols} for tp, v in truth["touchpoint_kpis"].items()}
    assert got == expected


def test_planted_stories_are_visible(con, truth) -> None:
    """The poor touchpoint has the worst NPS of any touchpoint with 20+ answers; journeys that
    start from the low-converting campaign convert far less than the rest."""
    poor = truth["stories"]["poor_touchpoint"]
    worst = one(con, "select touchpoint from touchpoint_kpis where nps_responses >= 20 "
                     "order by nps limit 1")
    assert worst == poor
    campaign = truth["stories"]["low_converting_campaign"]
    flash, others = con.execute(
        "select avg(case when first_touchpoint = ? then converted::int end), "
        "avg(case when first_touchpoint <> ? then converted::int end) from journeys",
        [campaign, campaign]).fetchall()[0]
    assert flash < 0.03 < 0.2 < others


def test_no_raw_email_or_phone_anywhere(con, warehouse, repo_root) -> None:
    """Raw emails and phone numbers from the sources never reach a table or a Parquet file."""
    sample = repo_root / "data" / "sample"
    text = "\n".join(p.read_text(encoding="utf-8") for p in sample.rglob("*")
                     if p.suffix in (".csv", ".ndjson"))
    email_pattern = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
    phone_pattern = re.compile(r"(?:\+|00)\d[\d \-]{5,}\d")
    emails = set(email_pattern.findall(text))
    phones = {row["phone"] for path in sample.glob("call_center/*.csv")
              for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
              if row.get("phone")}
    phones |= {m for path in sample.glob("chat/*.ndjson")
               for m in re.findall(r'"phone":\s*"([^"]+)"', path.read_text(encoding="utf-8"))}
    assert len(emails) > 100 and len(phones) > 50

    def leaks(values: list[str]) -> set[str]:
        # only a value with an "@" can hold an email, only one with "+" or "00" a phone number
        # as the patterns read them: the patterns look at those values only
        found = set(email_pattern.findall("\n".join(v for v in values if "@" in v)))
        found |= set(phone_pattern.findall("\n".join(v for v in values
                                                      if "+" in v or "00" in v)))
        return (found & emails) | (found & phones)

    def text_of(relation: str, columns: list[str]) -> list[str]:
        """Every value of the columns (the patterns match within one value)."""
        rows = duckdb.sql(f"select {', '.join(columns)} from {relation}").fetchall() \
            if relation.startswith("read_parquet") else \
            con.execute(f"select {', '.join(columns)} from {relation}").fetchall()
        return [v for row in rows for v in row if v is not None]

    for table in [*PUBLISHED, TABLES["ingested_events"]]:
        # an email or a phone number in the sources' form is text: only text columns can
        # hold one (a number or an instant never matches the patterns)
        columns = [f'"{c.name}"::varchar' for c in table.columns
                   if c.type in ("varchar", "json")]
        assert columns, table.name
        assert not leaks(text_of(f'"{table.name}"', columns)), table.name
        if table.published:
            assert not leaks(text_of(f"read_parquet('{warehouse}/parquet/{table.name}/"
                                     "**/*.parquet')", columns)), table.name


#: How each contract type must arrive in Arrow (and so in BI tools reading the Parquet files).
ARROW_TYPES = {
    "varchar": pa.string(), "json": pa.string(), "bigint": pa.int64(), "integer": pa.int32(),
    "smallint": pa.int16(), "double": pa.float64(), "boolean": pa.bool_(),
    "date": pa.date32(), "timestamptz": pa.timestamp("us", tz="UTC"),
}


def test_parquet_exports_read_with_pyarrow(con, warehouse) -> None:
    """Every published table is exported under its name with the contract's columns, stable
    Arrow types (timestamps in UTC) and the warehouse's row count, read with pyarrow's dataset
    API; large tables are Hive-partitioned by month."""
    for table in PUBLISHED:
        folder = warehouse / "parquet" / table.name
        dataset = ds.dataset(folder, format="parquet")
        assert dataset.schema.names == table.column_names, table.name
        for col in table.columns:
            assert dataset.schema.field(col.name).type == ARROW_TYPES[col.type], (
                table.name, col.name)
        assert dataset.count_rows() == one(con, f'select count(*) from "{table.name}"')
        if table.partition_by:
            months = {p.name for p in folder.iterdir()}
            expected = {f"{table.partition_by}={m}" for (m,) in con.execute(
                f'select distinct "{table.partition_by}" from "{table.name}"').fetchall()}
            assert months == expected, table.name
            hive = ds.dataset(folder, format="parquet", partitioning=ds.partitioning(
                pa.schema([(table.partition_by, pa.date32())]), flavor="hive"))
            assert hive.count_rows() == dataset.count_rows()
    first = ds.dataset(warehouse / "parquet" / "events", format="parquet").to_table(
        columns=["occurred_at"]).column("occurred_at")
    assert pc.min(first).as_py() == one(con, "select min(occurred_at) from events")


def test_parquet_exports_read_with_duckdb(con, warehouse) -> None:
    """DuckDB reads every export (Hive partitions detected) with the warehouse's types and rows."""
    for table in PUBLISHED:
        path = f"{warehouse}/parquet/{table.name}/**/*.parquet"
        exported = duckdb.sql(f"describe select * from read_parquet('{path}')").fetchall()
        stored = con.execute(f'describe "{table.name}"').fetchall()
        assert [(r[0], r[1]) for r in exported] == [(r[0], r[1]) for r in stored], table.name
        count = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
        assert count == one(con, f'select count(*) from "{table.name}"'), table.name


def test_published_tables_keep_their_contract(con) -> None:
    """Each published table has exactly the contract's columns in order, a unique key, and no
    null in a column the contract says is never null."""
    for table in PUBLISHED:
        cols = [r[0] for r in con.execute(f'describe "{table.name}"').fetchall()]
        assert cols == table.column_names, table.name
        key = ", ".join(f'"{c}"' for c in table.primary_key)
        dupes = one(con, f'select count(*) from (select {key} from "{table.name}" '
                         f'group by {key} having count(*) > 1)')
        assert dupes == 0, table.name
        for col in table.columns:
            if not col.nullable:
                nulls = one(con, f'select count(*) from "{table.name}" where "{col.name}" is null')
                assert nulls == 0, (table.name, col.name)


def test_rerun_loads_nothing_new_and_changes_nothing(warehouse, sample_config_path,
                                                    truth) -> None:
    """A second run skips every file (ledger) and publishes identical tables."""
    def snapshot() -> dict[str, list]:
        c = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
        try:
            return {t.name: sorted(map(str, c.execute(f'select * from "{t.name}"').fetchall()))
                    for t in PUBLISHED}
        finally:
            c.close()

    before = snapshot()
    assert main(["run", "--config", str(sample_config_path), "--warehouse", str(warehouse)]) == 0
    after = snapshot()
    assert before == after
    c = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
    assert c.execute("select count(*) from file_ledger").fetchall()[0][0] == len(truth["files"])
    c.close()


def test_segments_match_the_plan_and_reaggregate(con, truth) -> None:
    """B2B customers and accounts as planted; every dimension's segments add up to everyone in
    the funnel, touchpoint and abandonment breakdowns (BI tools can re-aggregate)."""
    b2b = one(con, "select count(distinct person_id) from journey_segments "
                   "where dimension = 'business' and segment = 'b2b'")
    assert b2b == truth["segments"]["b2b_customers"]
    assert one(con, "select count(distinct account_id) from account_journeys") == truth[
        "segments"]["b2b_accounts"]
    for table, keys, measure in (
            ("funnel_by_segment", "stage", "reached"),
            ("touchpoint_kpis_by_segment", "touchpoint", "journeys"),
            ("abandonment_by_segment", "rule, week", "abandoned")):
        mismatched = one(con, f"""
            with per_dimension as (
                select dimension, {keys}, sum({measure}) as total
                from {table} where dimension <> 'all' group by dimension, {keys}
            )
            select count(*) from per_dimension as d
            join {table} as a on a.dimension = 'all' and {' and '.join(
                f'a.{k.strip()} = d.{k.strip()}' for k in keys.split(','))}
            where d.total <> a.{measure}""")
        assert mismatched == 0, table
