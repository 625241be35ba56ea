"""The sample generator: deterministic, committed as generated, readable, and self-consistent."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml

from journey_sample import SOURCES, generate_sample

SMALL = {"customers": 60, "prospects": 30, "days": 35}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _generated(folder: Path) -> dict[str, bytes]:
    """The files a generation owns: every source file and the ground truth."""
    return {k: v for k, v in _tree(folder).items()
            if k == "ground_truth.json" or k.split("/")[0] in SOURCES}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate_sample(out, **SMALL)


@pytest.fixture(scope="module")
def committed(request: pytest.FixtureRequest) -> Path:
    return request.config.rootpath / "data" / "sample"


def _malformed(truth: dict) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for r in truth["rejects"]:
        if r["reason"] == "malformed_record":
            out.setdefault(r["file"], set()).add(r["record"])
    return out


def test_same_arguments_give_identical_files(small: tuple[Path, dict], tmp_path: Path) -> None:
    """Same arguments, same bytes: nothing depends on the clock, hashing or set order."""
    first, truth = small
    again = generate_sample(tmp_path, **SMALL)
    assert again == truth
    assert _tree(tmp_path) == _tree(first)


def test_another_seed_gives_other_data(small: tuple[Path, dict], tmp_path: Path) -> None:
    """The seed is the only source of randomness, and it is used."""
    generate_sample(tmp_path, **SMALL, seed=8)
    assert _tree(tmp_path) != _tree(small[0])


def test_regenerating_replaces_an_earlier_generation(tmp_path: Path) -> None:
    """Files of an earlier generation with other arguments do not survive a regeneration."""
    generate_sample(tmp_path, customers=40, prospects=10, days=28)
    generate_sample(tmp_path, customers=40, prospects=10, days=21)
    truth = json.loads((tmp_path / "ground_truth.json").read_text(encoding="utf-8"))
    on_disk = {k for k in _generated(tmp_path) if k != "ground_truth.json"}
    assert on_disk == set(truth["files"])


def test_committed_sample_equals_a_fresh_generation(committed: Path, tmp_path: Path) -> None:
    """data/sample is exactly what `generate_sample` writes with its defaults: never hand-edited.

    Parquet files are compared by content, so a pyarrow upgrade that changes file metadata does
    not fail this test; every other file byte for byte.
    """
    generate_sample(tmp_path)
    fresh, kept = _generated(tmp_path), _generated(committed)
    assert sorted(kept) == sorted(fresh)
    for name in sorted(fresh):
        if name.endswith(".parquet"):
            assert pq.read_table(committed / name).equals(pq.read_table(tmp_path / name)), name
        else:
            assert kept[name] == fresh[name], name


def test_every_file_parses_with_its_format_reader(small: tuple[Path, dict]) -> None:
    """Apart from the planted malformed records, CSV, NDJSON and Parquet files read cleanly."""
    out, truth = small
    malformed = _malformed(truth)
    for name, counts in truth["files"].items():
        path, bad = out / name, malformed.get(name, set())
        if name.endswith(".parquet"):
            assert pq.read_table(path).num_rows == counts["read"]
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if name.endswith(".csv"):
            assert len(lines) - 1 == counts["read"], name
            header = next(csv.reader([lines[0]]))
            good = [line for n, line in enumerate(lines[1:], start=2) if n not in bad]
            rows = list(csv.reader(good))
            assert all(len(r) == len(header) for r in rows), name
            for n in bad:
                assert len(next(csv.reader([lines[n - 1]]))) != len(header), (name, n)
            frame = pl.read_csv(io.StringIO("\n".join([lines[0], *good]) + "\n"),
                                infer_schema=False)
        else:
            assert len(lines) == counts["read"], name
            good = [line for n, line in enumerate(lines, start=1) if n not in bad]
            assert all(isinstance(json.loads(line), dict) for line in good), name
            for n in bad:
                with pytest.raises(json.JSONDecodeError):
                    json.loads(lines[n - 1])
            frame = pl.read_ndjson(io.StringIO("\n".join(good) + "\n"), infer_schema_length=None)
        assert frame.height == counts["read"] - len(bad), name


def test_ground_truth_counts_add_up(small: tuple[Path, dict]) -> None:
    """Per file and in total, read = loaded + rejected + duplicates; rejects are listed."""
    out, truth = small
    assert set(truth["files"]) == {k for k in _generated(out) if k != "ground_truth.json"}
    for name, c in truth["files"].items():
        assert c["read"] == c["loaded"] + c["rejected"] + c["duplicates"], name
        assert c["rejected"] == sum(r["file"] == name for r in truth["rejects"]), name
    for key, total in truth["totals"].items():
        assert total == sum(c[key] for c in truth["files"].values()), key
    assert truth["persons"] == truth["customers"] + truth["prospects"]
    assert truth["journeys"] == truth["journeys_open"] + truth["journeys_closed"]
    assert truth["persons"] <= truth["journeys"] <= truth["sessions"] <= truth["totals"]["loaded"]
    assert truth["funnel"]["awareness"]["reached"] == truth["journeys"]
    assert truth["funnel"]["conversion"]["reached"] >= truth["journeys_converted"]
    for week in truth["checkout_abandonment_by_week"].values():
        assert week["attempts"] == week["completed"] + week["abandoned"] + week["pending"]


def test_sample_config_maps_existing_columns(committed: Path) -> None:
    """Every source in data/sample/journeys.yaml finds files, and every field it maps exists."""
    config = yaml.safe_load((committed / "journeys.yaml").read_text(encoding="utf-8"))
    truth = json.loads((committed / "ground_truth.json").read_text(encoding="utf-8"))
    malformed = _malformed(truth)
    assert [s["name"] for s in config["sources"]] == list(SOURCES)
    for source in config["sources"]:
        files = sorted(committed.glob(source["path"]))
        assert files, source["name"]
        for path in files:
            name = path.relative_to(committed).as_posix()
            if source["format"] == "parquet":
                columns = set(pq.read_schema(path).names)
            elif source["format"] == "csv":
                columns = set(next(csv.reader(io.StringIO(path.read_text(encoding="utf-8")))))
            else:
                lines = path.read_text(encoding="utf-8").splitlines()
                columns = set().union(*(json.loads(line) for n, line in enumerate(lines, 1)
                                        if n not in malformed.get(name, set())))
            assert set(source["fields"].values()) <= columns, (name, source["fields"])


def test_committed_sample_tells_its_stories(committed: Path) -> None:
    """The checkout-problem week, the poor billing line and the campaign that does not convert
    are plain in the committed sample's ground truth."""
    truth = json.loads((committed / "ground_truth.json").read_text(encoding="utf-8"))
    stories, evidence = truth["stories"], truth["story_evidence"]
    assert truth["as_of"] == "2026-10-06T00:00:00+00:00"
    assert len(truth["identity_conflicts"]) == 1
    assert 30_000 <= truth["totals"]["loaded"] <= 60_000
    web = evidence["web_checkout_abandonment_by_week"]
    problem = stories["checkout_problem_week"]
    assert web[problem]["rate"] > 0.5
    assert all(w["rate"] < 0.35 for week, w in web.items() if week != problem)
    first_ad = evidence["journey_conversion_by_first_ad"]
    assert first_ad[stories["low_converting_campaign"]]["rate"] < 0.03
    assert evidence["journey_conversion_not_from_autumn_flash"] > 0.2
    kpis = truth["touchpoint_kpis"]
    billing = kpis[stories["poor_touchpoint"]]
    others = [k for tp, k in kpis.items() if tp != stories["poor_touchpoint"]]
    assert billing["nps"] < -30 and billing["csat"] < 30 and billing["ces"] > 4.5
    assert all(billing["nps"] < k["nps"] for k in others if k["nps"] is not None)
