"""Spark ingest's per-file mapping (what `mapInArrow` runs on the executors) in SQL gives the
rows the record-by-record rules give.

`journey_core.ingest.spark._map_in_sql` maps one file by the DuckDB loader's set-based
statements (`loader.stage_file`); `_map_records` by `parse_file`, the reference. Both are
called here directly, in this process, on the rule fixtures of the columnar tests and on the
sample's files: the rows (events, rejects, the file's counts) must be equal, except that the
set-based events carry no raw text, which `_raw_text` gives for the few a later file's
conflicting duplicate must quote; it must give what the record rules give."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journey_core.config import Config
from journey_core.ingest import spark
from journey_core.privacy.tombstones import Tombstones
from tests.unit.test_ingest_columnar import LOADED, ROWS, SALT, _table, sample_sources
from tests.unit.test_ingest_columnar import _config as parquet_config
from tests.unit.test_ingest_text_columnar import CSV_RECORDS, NDJSON_LINES, _csv, _ndjson
from tests.unit.test_ingest_text_columnar import _config as text_config


def _rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: (r["kind"], r["record_number"] or 0,
                                                    repr(r)))


def _mapped_both_ways(config: Config, *, per_source: int | None = None) -> tuple[int, int]:
    """Map every file of `config` (the first `per_source` of each source) both ways and
    compare; (files mapped in SQL, files)."""
    rules = {"salt": SALT, "loaded_at": LOADED, "max_future": config.max_future}
    in_sql = files = 0
    for source in config.sources:
        for index, path in enumerate(config.source_files(source)[:per_source]):
            data = path.read_bytes()
            task = spark._Task(spark.Listed(source, str(path), path, path.name, len(data), ""),
                               index, 2)
            reference = spark._map_records(task, data, tombstones=Tombstones(), **rules)
            files += 1
            mapped = spark._map_in_sql(task, data, **rules)
            if mapped is None:
                continue
            in_sql += 1
            events = [r["record_number"] for r in mapped.to_pylist() if r["kind"] == "event"]
            assert all(r["raw"] is None for r in mapped.to_pylist() if r["kind"] == "event")
            raws = dict(zip(*spark._raw_text(task, data, events, salt=SALT)
                            .select(["record_number", "raw"]).to_pydict().values(),
                            strict=True))
            assert set(raws) == set(events)
            filled = [dict(r, raw=raws[r["record_number"]]) if r["kind"] == "event" else r
                      for r in mapped.to_pylist()]
            got = _rows(pa.Table.from_pylist(filled, schema=spark._MAPPED))
            want = _rows(reference)
            assert len(got) == len(want), path
            for a, b in zip(got, want, strict=True):
                assert a == b, (path, {k: (a[k], b[k]) for k in a if a[k] != b[k]})
    return in_sql, files


def test_the_parquet_rules_map_in_sql_as_record_by_record(tmp_path):
    (tmp_path / "shop").mkdir()
    pq.write_table(_table(ROWS), tmp_path / "shop" / "a.parquet")
    pq.write_table(_table(ROWS, naive=True), tmp_path / "shop" / "b.parquet")
    assert _mapped_both_ways(parquet_config(tmp_path)) == (2, 2)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_the_text_rules_map_in_sql_as_record_by_record(tmp_path, fmt):
    (tmp_path / "shop").mkdir()
    data = _csv(CSV_RECORDS) if fmt == "csv" else _ndjson(NDJSON_LINES)
    (tmp_path / "shop" / f"a.{fmt}").write_bytes(data)
    assert _mapped_both_ways(text_config(tmp_path, fmt)) == (1, 1)


def test_a_csv_file_the_sql_cannot_read_goes_record_by_record(tmp_path):
    (tmp_path / "shop").mkdir()
    records = [*CSV_RECORDS, ("two stray quotes", '40,2026-08-30T12:00:00Z,c"4"0,,,,view,,,q,')]
    (tmp_path / "shop" / "a.csv").write_bytes(_csv(records))
    assert _mapped_both_ways(text_config(tmp_path, "csv")) == (0, 1)


def test_the_sample_files(tmp_path):
    """Two files of each of the sample's sources (the Spark run test ingests all of them)."""
    sources = sample_sources(tmp_path, ("parquet", "csv", "ndjson"))
    in_sql, files = _mapped_both_ways(sources, per_source=2)
    assert in_sql > files // 2  # the most of them in SQL
