"""The report's payload: the warehouse read through the report models, shaped per segment.

Every query is a report model, `sql/rpt_*.sql` (`journey_core.model.runner`), run on the
warehouse connection through the engine seam. The segment filter's model (`rpt_segment_sizes`)
runs first, because its dimensions are a parameter (`$dims`) of the others; then the temporary
tables (`-- materialized: temp`, the segment population `rpt_segment_journeys`), then every other
model. A model with `dimension` and `segment` columns gives rows per segment; the others describe
the whole warehouse. Stage names and order come from `funnel`. The rows are shaped here into
plain JSON-ready data: scores, medians, grid rows, Sankey links and pain points.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from journey_core.contract.vocabulary import (
    ALL_SEGMENT,
    UNATTRIBUTED_TOUCHPOINT,
    model_parameters,
)
from journey_core.model.engine import DuckDBEngine, Engine
from journey_core.model.runner import Model, load_models, query_model, run_model
from journey_core.report.options import ReportOptions
from journey_core.report.pain_points import find_pain_points
from journey_core.report.scores import survey_scores

NO_STAGE = "(no stage)"
#: The model listing the segments of every dimension: it decides the others' `$dims`.
SEGMENT_SIZES = "rpt_segment_sizes"
#: Columns that make a model's rows per segment.
_SEGMENT_KEY = ("dimension", "segment")


class ReportError(RuntimeError):
    """The warehouse cannot be reported on (missing file or tables)."""


# --------------------------------------------------------------------------------------------
# Reading the warehouse


def report_models(directory: Path | None = None) -> dict[str, Model]:
    """The report models (`sql/rpt_*.sql`) by name."""
    return {m.name: m for m in load_models(directory).values() if m.is_report}


def required_tables(models: dict[str, Model]) -> list[str]:
    """The warehouse tables the report reads: every table the report models reference, except
    the temporary tables they create themselves."""
    created = {m.table for m in models.values() if m.materialized == "temp"}
    return sorted(set().union(*(m.references for m in models.values())) - created)


def _check_tables(engine: Engine, models: dict[str, Model]) -> None:
    """A warehouse without a table the models read was built by an older pipeline."""
    missing = [t for t in required_tables(models) if not engine.exists("main", t)]
    if missing:
        raise ReportError("the warehouse lacks " + ", ".join(missing)
                          + "; rebuild it with `journeys run`")


def _plain(value: Any) -> Any:
    """A JSON-ready value: decimals become numbers, dates and times ISO strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """A model's rows as JSON-ready dicts, in the model's column order."""
    return [{n: _plain(v) for n, v in row.items()} for row in table.to_pylist()]


def _first(table: pa.Table) -> Any:
    """The first value of a one-value model (None without rows)."""
    return table.column(0)[0].as_py() if table.num_rows else None


def _grouped(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows by (dimension, segment), without those two columns."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        key = (row.pop("dimension"), row.pop("segment"))
        out[key].append(row)
    return out


def _segment_filter(engine: Engine, model: Model,
                    options: ReportOptions) -> list[tuple[str, list[str]]]:
    """The filter's (dimension, segments) pairs: `all` first, then every dimension that is not
    excluded and has at most `max_segments_per_dimension` segments (largest first)."""
    by_dim: dict[str, list[str]] = defaultdict(list)
    for row in query_model(engine, model, model_parameters()).to_pylist():
        by_dim[row["dimension"]].append(row["segment"])
    dims = [(ALL_SEGMENT, [ALL_SEGMENT])]
    for dimension, segments in by_dim.items():
        if dimension in options.exclude_dimensions or dimension == ALL_SEGMENT:
            continue
        if len(segments) > options.max_segments_per_dimension:
            continue
        dims.append((dimension, segments))
    return dims


def _run_order(models: Iterable[Model]) -> list[Model]:
    """Temporary tables first, each after the temporary tables it reads; then the queries."""
    models = sorted(models, key=lambda m: m.name)
    temps = {m.table: m for m in models if m.materialized == "temp"}
    reads = {t: m.references & temps.keys() for t, m in temps.items()}
    return ([temps[t] for t in TopologicalSorter(reads).static_order()]
            + [m for m in models if m.materialized != "temp"])


def _read_models(engine: Engine, models: Iterable[Model],
                 params: dict[str, Any]) -> dict[str, pa.Table]:
    """Create the temporary tables and read every query, in run order; results by name."""
    results = {}
    for model in _run_order(models):
        if model.materialized == "temp":
            run_model(engine, model, params)
        else:
            results[model.name] = query_model(engine, model, params)
    return results


@dataclass(frozen=True)
class WarehouseData:
    """What the report models read: whole-warehouse facts, and rows per segment by model."""

    stages: list[dict[str, Any]]
    conversion_rank: int | None
    as_of: datetime | None
    #: Each touchpoint's home stage rank (`rpt_home_stages`).
    home_rank: dict[str, int | None]
    by_segment: dict[str, dict[tuple[str, str], list[dict[str, Any]]]]

    @classmethod
    def from_results(cls, results: dict[str, pa.Table]) -> WarehouseData:
        home = results["rpt_home_stages"]
        return cls(
            stages=_rows(results["rpt_stages"]),
            conversion_rank=_first(results["rpt_conversion_rank"]),
            as_of=_first(results["rpt_as_of"]),
            home_rank=dict(zip(home.column("touchpoint").to_pylist(),
                               home.column("stage_rank").to_pylist(), strict=True)),
            by_segment={name: _grouped(_rows(table)) for name, table in results.items()
                        if set(_SEGMENT_KEY) <= set(table.column_names)})

    def rows(self, model: str, key: tuple[str, str]) -> list[dict[str, Any]]:
        """The segment's rows of a per-segment model (none when the segment has none)."""
        return self.by_segment[model].get(key, [])


def read_warehouse(con: duckdb.DuckDBPyConnection,
                   options: ReportOptions) -> tuple[list[tuple[str, list[str]]], WarehouseData]:
    """The segment filter and everything the report models read for its segments."""
    engine = DuckDBEngine(con)
    models = report_models()
    _check_tables(engine, models)
    dims = _segment_filter(engine, models[SEGMENT_SIZES], options)
    params = {**model_parameters(), "dims": [d for d, _ in dims if d != ALL_SEGMENT]}
    results = _read_models(engine, (m for n, m in models.items() if n != SEGMENT_SIZES), params)
    return dims, WarehouseData.from_results(results)


# --------------------------------------------------------------------------------------------
# Shaping the payload


def build_payload(con: duckdb.DuckDBPyConnection, options: ReportOptions) -> dict[str, Any]:
    """Everything the page shows, per segment, as plain JSON-ready data."""
    dims, data = read_warehouse(con, options)
    all_key = (ALL_SEGMENT, ALL_SEGMENT)
    row_order = _grid_row_order(data.rows("rpt_touchpoint_kpis", all_key), data.home_rank)
    segments: dict[str, dict[str, Any]] = {}
    for dimension, segment_names in dims:
        for segment in segment_names:
            segments.setdefault(dimension, {})[segment] = _segment_sections(
                data, (dimension, segment), row_order, options)
    return {
        "meta": {
            "as_of": _plain(data.as_of),
            "as_of_label": _as_of_label(data.as_of),
            "stages": data.stages,
            "conversion_rank": data.conversion_rank,
            "no_stage": NO_STAGE,
            "dimensions": [{"name": d, "segments": s} for d, s in dims],
            "options": asdict(options),
        },
        "segments": segments,
    }


def _segment_sections(data: WarehouseData, key: tuple[str, str], row_order: list[str],
                      options: ReportOptions) -> dict[str, Any]:
    """One segment's sections: totals, funnel, grid, emotion curve, abandonment, pain points and
    the two Sankey diagrams."""
    totals = (data.rows("rpt_segment_totals", key) or [{}])[0]
    totals["answers"] = (data.rows("rpt_segment_answers", key) or [{"answers": 0}])[0]["answers"]
    funnel = data.rows("rpt_segment_funnels", key)
    kpis = data.rows("rpt_touchpoint_kpis", key)
    scores = data.rows("rpt_cell_scores", key)
    entries = data.rows("rpt_entry_points", key)
    abandonment = _abandonment(data.rows("rpt_abandonment_weeks", key), options.min_attempts)
    rank_of = {s["stage"]: s["stage_rank"] for s in data.stages}
    return {
        "totals": totals,
        "funnel": funnel,
        "grid": _grid(row_order, kpis, data.rows("rpt_grid_cells", key), scores, entries),
        "emotion": _emotion(scores, data.stages),
        "abandonment": abandonment,
        "pain_points": find_pain_points(kpis, entries, scores, abandonment, data.home_rank,
                                        data.conversion_rank, options),
        "stage_sankey": _stage_sankey(data.rows("rpt_stage_links", key), funnel, options),
        "touchpoint_sankey": _touchpoint_sankey(data.rows("rpt_touchpoint_links", key), rank_of,
                                                options),
    }


def _as_of_label(as_of: datetime | None) -> str:
    return as_of.strftime("%Y-%m-%d %H:%M UTC") if as_of is not None else "(no data)"


def _emotion(score_rows: list[dict[str, Any]], stages: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores by stage of the rated touchpoint, in stage order; answers without a stage apart."""
    by_stage: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for r in score_rows:
        by_stage[r["stage"]].append(r)
    points = [{"stage": s["stage"], "stage_rank": s["stage_rank"],
               **survey_scores(by_stage[s["stage"]])} for s in stages]
    unstaged = [r for stage, rows in by_stage.items() if stage is None for r in rows]
    return {"points": points, "unstaged": survey_scores(unstaged)}


def _grid_row_order(all_kpis: list[dict[str, Any]], home_rank: dict[str, int | None]) -> list[str]:
    """Touchpoints by home stage (unstaged last), then by journeys, as in the whole population."""
    rows = [k for k in all_kpis if k["touchpoint"] != UNATTRIBUTED_TOUCHPOINT and k["journeys"]]
    rows.sort(key=lambda k: (home_rank.get(k["touchpoint"]) or 99, -k["journeys"], k["touchpoint"]))
    return [k["touchpoint"] for k in rows]


def _grid_cells(cells: list[dict[str, Any]],
                scores: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per touchpoint, one cell per stage it occurs in (`(no stage)` for none): journeys, exits,
    exit rate and the scores of the answers rating it there."""
    cells_of: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for c in cells:
        stage = c["stage"] or NO_STAGE
        cells_of[c["touchpoint"]][stage] = {
            "journeys": c["journeys"], "exits": c["exits"],
            "exit_rate": c["exits"] / c["journeys"] if c["journeys"] else None,
        }
    scores_of: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in scores:
        scores_of[(r["touchpoint"], r["stage"] or NO_STAGE)].append(r)
    for touchpoint, stage_map in cells_of.items():
        for stage, cell in stage_map.items():
            cell.update(survey_scores(scores_of.get((touchpoint, stage), [])))
    return cells_of


def _grid(row_order: list[str], kpis: list[dict[str, Any]], cells: list[dict[str, Any]],
          scores: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per touchpoint: its KPIs, its entry journeys and one cell per stage it occurs in."""
    kpi_of = {k["touchpoint"]: k for k in kpis}
    entry_of = {e["touchpoint"]: e for e in entries}
    cells_of = _grid_cells(cells, scores)
    rows = []
    for touchpoint in row_order:
        k = kpi_of.get(touchpoint)
        if k is None or not k["journeys"]:
            continue
        e = entry_of.get(touchpoint, {"journeys": 0, "converted": 0})
        rows.append({
            "touchpoint": touchpoint, "channel": k["channel"], "journeys": k["journeys"],
            "conversion_rate": k["conversion_rate"], "exits": k["exits"],
            "exit_rate": k["exit_rate"], "abandoned_attempts": k["abandoned_attempts"],
            "nps": k["nps"], "nps_n": k["nps_responses"], "csat": k["csat"],
            "csat_n": k["csat_responses"], "ces": k["ces"], "ces_n": k["ces_responses"],
            "entry_journeys": e["journeys"],
            "entry_conversion": e["converted"] / e["journeys"] if e["journeys"] else None,
            "cells": cells_of.get(touchpoint, {}),
        })
    return rows


def _abandonment(weeks: list[dict[str, Any]], min_attempts: int) -> list[dict[str, Any]]:
    """Weekly rates per rule, with the rule's median weekly rate.

    The median is over weeks with at least `min_attempts` decided (abandoned or completed)
    attempts, so that a partial first or last week does not move it; over all weeks with a rate
    when none has that many.
    """
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for w in weeks:
        by_rule[w.pop("rule")].append(w)
    out = []
    for rule, rows in sorted(by_rule.items()):
        rated = [w for w in rows if w["abandonment_rate"] is not None]
        full = [w for w in rated if w["abandoned"] + w["completed"] >= min_attempts] or rated
        rates = [w["abandonment_rate"] for w in full]
        out.append({"rule": rule, "weeks": rows,
                    "median_rate": statistics.median(rates) if rates else None})
    return out


def _stage_sankey(links: list[dict[str, Any]], funnel: list[dict[str, Any]],
                  options: ReportOptions) -> dict[str, Any]:
    """Stage → stage moves (entries from the journey start; drop-offs to `dropped`), top links."""
    out = [{"source": r["from_stage"], "target": r["to_stage"], "value": r["moves"]}
           for r in links]
    out += [{"source": f["stage"], "target": None, "value": f["dropped"]}
            for f in funnel if f["dropped"]]
    out.sort(key=lambda lk: (-lk["value"], lk["source"] or "", lk["target"] or ""))
    return {"links": out[:options.stage_links], "total_links": len(out)}


def _touchpoint_sankey(links: list[dict[str, Any]], rank_of: dict[str, int],
                       options: ReportOptions) -> dict[str, Any]:
    """Forward moves from the last touchpoint of a stage to the first of a later stage.

    The largest `touchpoint_links` links, plus the three largest between every pair of stages,
    so that the small later steps (after conversion) stay visible next to the busy early ones.
    """
    out = [{"source": r["from_touchpoint"], "source_stage": r["from_stage"],
            "target": r["to_touchpoint"], "target_stage": r["to_stage"], "value": r["moves"]}
           for r in links if rank_of.get(r["from_stage"], 0) < rank_of.get(r["to_stage"], 0)]
    out.sort(key=lambda lk: (-lk["value"], lk["source"], lk["target"], lk["source_stage"],
                             lk["target_stage"]))
    per_pair: dict[tuple[str, str], int] = defaultdict(int)
    shown = []
    for i, link in enumerate(out):
        pair = (link["source_stage"], link["target_stage"])
        per_pair[pair] += 1
        if i < options.touchpoint_links or per_pair[pair] <= 3:
            shown.append(link)
    return {"links": shown, "total_links": len(out),
            "total_moves": sum(lk["value"] for lk in out)}
