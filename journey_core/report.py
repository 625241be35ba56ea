"""The journey map report: one self-contained HTML page a CX team reads in any browser, offline.

The page shows, for the whole population and for every segment of every segment dimension: the
stage funnel, the journey map grid (touchpoints × stages with volume, exits and survey scores), the
emotion curve (NPS, CSAT, CES by stage), weekly abandonment, the ranked pain points and the main
paths between stages and touchpoints (Sankey diagrams). Everything is read from the published
warehouse tables; stage names and order come from `funnel`. The data is embedded as JSON and drawn
by inline JavaScript as SVG: no library, no font, no request leaves the page.
"""

from __future__ import annotations

import html
import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from journey_core.warehouse import WAREHOUSE_FILE, connect

REPORT_FILE = "journey_map.html"
ALL = "all"
NO_STAGE = "(no stage)"
UNATTRIBUTED = "(unattributed)"

#: Tables the report reads; a warehouse without them was built by an older pipeline.
REQUIRED_TABLES = (
    "journeys", "events", "stage_transitions", "funnel", "funnel_by_segment",
    "touchpoint_kpis_by_segment", "abandonment_by_segment", "journey_segments", "survey_answers",
)


class ReportError(RuntimeError):
    """The warehouse cannot be reported on (missing file or tables)."""


@dataclass(frozen=True)
class ReportOptions:
    """What counts as a pain point, and how much the page shows.

    A touchpoint, entry point or week is a pain point when it has enough volume, is worse than its
    baseline by at least the minimum gap, and the gap is at least `min_z` standard errors (a
    one-sample z-score against the baseline proportion), so that small segments do not flag noise.
    """

    min_journeys: int = 30
    min_answers: int = 20
    min_attempts: int = 30
    min_z: float = 3.0
    min_rate_gap: float = 0.05
    min_ces_gap: float = 1.0
    max_pain_points: int = 25
    stage_links: int = 40
    touchpoint_links: int = 30
    #: Dimensions with one segment per account (or more segments than this) are no filter.
    exclude_dimensions: tuple[str, ...] = ("account",)
    max_segments_per_dimension: int = 30


def write_report(warehouse_dir: Path, out: Path | None = None,
                 options: ReportOptions | None = None) -> Path:
    """Write the warehouse's journey map to `out` (default `<warehouse_dir>/journey_map.html`)."""
    warehouse_dir = Path(warehouse_dir)
    out = Path(out) if out is not None else warehouse_dir / REPORT_FILE
    db = warehouse_dir / WAREHOUSE_FILE
    if not db.is_file():
        raise ReportError(f"{db}: no warehouse here; run `journeys run` first")
    con = connect(warehouse_dir, read_only=True)
    try:
        payload = build_payload(con, options or ReportOptions())
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(payload), encoding="utf-8")
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------------------------
# Reading the warehouse


def _plain(value: Any) -> Any:
    """A JSON-ready value: decimals become numbers, dates and times ISO strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rows(con: duckdb.DuckDBPyConnection, query: str,
          params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(query, list(params))
    names = [d[0] for d in cur.description]
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _check_tables(con: duckdb.DuckDBPyConnection) -> None:
    present = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    present |= {r[0] for r in con.execute("select view_name from duckdb_views()").fetchall()}
    missing = [t for t in REQUIRED_TABLES if t not in present]
    if missing:
        raise ReportError("the warehouse lacks " + ", ".join(missing)
                          + "; rebuild it with `journeys run`")


def _segment_filter(con: duckdb.DuckDBPyConnection,
                    options: ReportOptions) -> list[tuple[str, list[str]]]:
    """The filter's (dimension, segments) pairs: `all` first, then every usable dimension."""
    rows = con.execute(
        "select dimension, segment, count(*) as journeys from journey_segments "
        "group by dimension, segment order by dimension, journeys desc, segment").fetchall()
    by_dim: dict[str, list[str]] = defaultdict(list)
    for dimension, segment, _ in rows:
        by_dim[dimension].append(segment)
    dims = [(ALL, [ALL])]
    for dimension, segments in by_dim.items():
        if dimension in options.exclude_dimensions or dimension == ALL:
            continue
        if len(segments) > options.max_segments_per_dimension:
            continue
        dims.append((dimension, segments))
    return dims


# The population of every segment: journey ids tagged with (dimension, segment), `all` included.
# The dimension list is bound as a parameter, so only the filter's dimensions are computed.
_SEGMENTS_CTE = """
seg as (
    select journey_id, dimension, segment from journey_segments
    where list_contains($dims, dimension)
    union all
    select journey_id, 'all' as dimension, 'all' as segment from journeys
)
"""


def _grouped(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        key = (row.pop("dimension"), row.pop("segment"))
        out[key].append(row)
    return out


def build_payload(con: duckdb.DuckDBPyConnection, options: ReportOptions) -> dict[str, Any]:
    """Everything the page shows, per segment, as plain JSON-ready data."""
    _check_tables(con)
    dims = _segment_filter(con, options)
    dim_names = [d for d, _ in dims if d != ALL]
    p = {"dims": dim_names}

    def q(sql: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
        cur = con.execute(sql, p)
        names = [d[0] for d in cur.description]
        return _grouped({n: _plain(v) for n, v in zip(names, row, strict=True)}
                        for row in cur.fetchall())

    stages = _rows(con, "select stage, stage_rank from funnel order by stage_rank")
    conversion_rank = con.execute(
        "select min(stage_rank) from events where is_conversion").fetchall()[0][0]
    as_of = con.execute("select max(as_of) from funnel").fetchall()[0][0]
    rank_of = {s["stage"]: s["stage_rank"] for s in stages}

    funnels = q("""
        select dimension, segment, stage, stage_rank, reached, reached_next, step_conversion,
               dropped, open_at_stage, journeys
        from funnel_by_segment
        where dimension = 'all' or list_contains($dims, dimension)
        order by dimension, segment, stage_rank""")
    totals = q(f"""
        with {_SEGMENTS_CTE}
        select s.dimension, s.segment,
               count(*) as journeys,
               count(distinct j.person_id) as persons,
               count(case when j.converted then 1 end) as converted,
               count(case when j.status = 'open' then 1 end) as open,
               sum(j.event_count) as events,
               sum(cast(j.revenue as decimal(38, 6))) as revenue
        from journeys as j inner join seg as s on j.journey_id = s.journey_id
        group by s.dimension, s.segment""")
    answers = q(f"""
        with {_SEGMENTS_CTE}
        select s.dimension, s.segment, count(*) as answers
        from survey_answers as a inner join seg as s on a.journey_id = s.journey_id
        group by s.dimension, s.segment""")
    kpis = q("""
        select dimension, segment, touchpoint, channel, journeys, converted_journeys,
               conversion_rate, exits, exit_rate, abandoned_attempts,
               nps_responses, nps_promoters, nps_detractors, nps,
               csat_responses, csat_satisfied, csat, ces_responses, ces_sum, ces
        from touchpoint_kpis_by_segment
        where dimension = 'all' or list_contains($dims, dimension)
        order by dimension, segment, touchpoint""")
    # Grid cells: journeys with an event at (touchpoint, stage); exits are the closed, non-converted
    # journeys whose last event is there (journeys.exit_touchpoint gives the touchpoint).
    cells = q(f"""
        with {_SEGMENTS_CTE},
        cell_journeys as (
            select distinct journey_id, touchpoint, stage from events
        ),
        last_event as (
            -- the stage (null included) of each journey's last event
            select journey_id, stage from events
            qualify row_number() over (partition by journey_id order by event_index desc) = 1
        ),
        exits as (
            select j.journey_id, j.exit_touchpoint as touchpoint, l.stage
            from journeys as j inner join last_event as l on j.journey_id = l.journey_id
            where j.exit_touchpoint is not null
        ),
        volume as (
            select s.dimension, s.segment, c.touchpoint, c.stage, count(*) as journeys
            from cell_journeys as c inner join seg as s on c.journey_id = s.journey_id
            group by s.dimension, s.segment, c.touchpoint, c.stage
        ),
        exit_counts as (
            select s.dimension, s.segment, x.touchpoint, x.stage, count(*) as exits
            from exits as x inner join seg as s on x.journey_id = s.journey_id
            group by s.dimension, s.segment, x.touchpoint, x.stage
        )
        select v.dimension, v.segment, v.touchpoint, v.stage, v.journeys,
               coalesce(x.exits, 0) as exits
        from volume as v left join exit_counts as x
            on v.dimension = x.dimension and v.segment = x.segment
            and v.touchpoint = x.touchpoint and v.stage is not distinct from x.stage""")
    cell_scores = q(f"""
        with {_SEGMENTS_CTE}
        select s.dimension, s.segment, a.touchpoint, a.stage,
               count(a.nps_score) as nps_n,
               count(case when a.nps_score >= 9 then 1 end) as promoters,
               count(case when a.nps_score <= 6 then 1 end) as detractors,
               count(a.csat_score) as csat_n,
               count(case when a.csat_score >= 4 then 1 end) as satisfied,
               count(a.ces_score) as ces_n,
               coalesce(sum(a.ces_score), 0) as ces_sum
        from survey_answers as a inner join seg as s on a.journey_id = s.journey_id
        group by s.dimension, s.segment, a.touchpoint, a.stage""")
    entries = q(f"""
        with {_SEGMENTS_CTE}
        select s.dimension, s.segment, j.first_touchpoint as touchpoint,
               count(*) as journeys,
               count(case when j.converted then 1 end) as converted
        from journeys as j inner join seg as s on j.journey_id = s.journey_id
        group by s.dimension, s.segment, j.first_touchpoint""")
    weeks = q("""
        select dimension, segment, rule, week, attempts, completed, abandoned, pending,
               abandonment_rate
        from abandonment_by_segment
        where dimension = 'all' or list_contains($dims, dimension)
        order by dimension, segment, rule, week""")
    stage_links = q(f"""
        with {_SEGMENTS_CTE}
        select s.dimension, s.segment, t.from_stage, t.to_stage, count(*) as moves
        from stage_transitions as t inner join seg as s on t.journey_id = s.journey_id
        group by s.dimension, s.segment, t.from_stage, t.to_stage""")
    tp_links = q(f"""
        with {_SEGMENTS_CTE}
        select s.dimension, s.segment, t.from_touchpoint, t.from_stage, t.to_touchpoint,
               t.to_stage, count(*) as moves
        from stage_transitions as t inner join seg as s on t.journey_id = s.journey_id
        where t.from_stage is not null and t.is_forward
        group by s.dimension, s.segment, t.from_touchpoint, t.from_stage, t.to_touchpoint,
                 t.to_stage""")

    # A touchpoint's home stage (where most of its events are; ties: the earlier stage) orders
    # the grid rows and decides which entry points count as pre-conversion.
    home_rank: dict[str, int | None] = dict(con.execute("""
        with per_stage as (
            select touchpoint, stage_rank, count(*) as events from events
            group by touchpoint, stage_rank
        )
        select touchpoint, stage_rank from per_stage
        qualify row_number() over (
            partition by touchpoint order by events desc, stage_rank asc nulls last) = 1
        """).fetchall())

    all_key = (ALL, ALL)
    row_order = _grid_row_order(kpis.get(all_key, []), home_rank)
    segments: dict[str, dict[str, Any]] = {}
    for dimension, segment_names in dims:
        for segment in segment_names:
            key = (dimension, segment)
            seg_total = (totals.get(key) or [{}])[0]
            seg_total["answers"] = (answers.get(key) or [{"answers": 0}])[0]["answers"]
            funnel = funnels.get(key, [])
            emotion = _emotion(cell_scores.get(key, []), stages)
            abandonment = _abandonment(weeks.get(key, []), options.min_attempts)
            entry = entries.get(key, [])
            seg_kpis = kpis.get(key, [])
            data = {
                "totals": seg_total,
                "funnel": funnel,
                "grid": _grid(row_order, seg_kpis, cells.get(key, []),
                              cell_scores.get(key, []), entry),
                "emotion": emotion,
                "abandonment": abandonment,
                "pain_points": find_pain_points(
                    seg_kpis, entry, cell_scores.get(key, []), abandonment, home_rank,
                    conversion_rank, options),
                "stage_sankey": _stage_sankey(stage_links.get(key, []), funnel, options),
                "touchpoint_sankey": _touchpoint_sankey(tp_links.get(key, []), rank_of, options),
            }
            segments.setdefault(dimension, {})[segment] = data

    return {
        "meta": {
            "as_of": _plain(as_of),
            "as_of_label": _as_of_label(as_of),
            "stages": stages,
            "conversion_rank": conversion_rank,
            "no_stage": NO_STAGE,
            "dimensions": [{"name": d, "segments": s} for d, s in dims],
            "options": asdict(options),
        },
        "segments": segments,
    }


# --------------------------------------------------------------------------------------------
# Shaping the sections


def _as_of_label(as_of: datetime | None) -> str:
    return as_of.strftime("%Y-%m-%d %H:%M UTC") if as_of is not None else "(no data)"


def _nps(promoters: int, detractors: int, n: int) -> float | None:
    return 100.0 * (promoters - detractors) / n if n else None


def _scores(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """NPS, CSAT and CES (with their answer counts) over survey-answer count rows."""
    t = defaultdict(int)
    for r in rows:
        for k in ("nps_n", "promoters", "detractors", "csat_n", "satisfied", "ces_n", "ces_sum"):
            t[k] += r[k]
    return {
        "nps": _nps(t["promoters"], t["detractors"], t["nps_n"]), "nps_n": t["nps_n"],
        "csat": 100.0 * t["satisfied"] / t["csat_n"] if t["csat_n"] else None,
        "csat_n": t["csat_n"],
        "ces": t["ces_sum"] / t["ces_n"] if t["ces_n"] else None, "ces_n": t["ces_n"],
    }


def _emotion(score_rows: list[dict[str, Any]], stages: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores by stage of the rated touchpoint, in stage order; answers without a stage apart."""
    by_stage: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for r in score_rows:
        by_stage[r["stage"]].append(r)
    points = [{"stage": s["stage"], "stage_rank": s["stage_rank"], **_scores(by_stage[s["stage"]])}
              for s in stages]
    unstaged = [r for stage, rows in by_stage.items() if stage is None for r in rows]
    return {"points": points, "unstaged": _scores(unstaged)}


def _grid_row_order(all_kpis: list[dict[str, Any]], home_rank: dict[str, int | None]) -> list[str]:
    """Touchpoints by home stage (unstaged last), then by journeys, as in the whole population."""
    rows = [k for k in all_kpis if k["touchpoint"] != UNATTRIBUTED and k["journeys"]]
    rows.sort(key=lambda k: (home_rank.get(k["touchpoint"]) or 99, -k["journeys"], k["touchpoint"]))
    return [k["touchpoint"] for k in rows]


def _grid(row_order: list[str], kpis: list[dict[str, Any]], cells: list[dict[str, Any]],
          scores: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per touchpoint: its KPIs, its entry journeys and one cell per stage it occurs in."""
    kpi_of = {k["touchpoint"]: k for k in kpis}
    entry_of = {e["touchpoint"]: e for e in entries}
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
            cell.update(_scores(scores_of.get((touchpoint, stage), [])))
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


def _z_above(rate: float, base: float, n: int) -> float:
    """How many standard errors `rate` (over n) lies above the baseline proportion."""
    if n <= 0:
        return 0.0
    base = min(max(base, 0.5 / n), 1 - 0.5 / n)  # keep the error away from 0 for extreme baselines
    return (rate - base) / math.sqrt(base * (1 - base) / n)


def find_pain_points(kpis: list[dict[str, Any]], entries: list[dict[str, Any]],
                     scores: list[dict[str, Any]], abandonment: list[dict[str, Any]],
                     home_rank: dict[str, int | None], conversion_rank: int | None,
                     options: ReportOptions) -> list[dict[str, Any]]:
    """Pain points, worst first, each with its impact in journeys (or attempts) beyond baseline.

    - `exits`: a touchpoint whose exit rate is above the exit rate of all touchpoint visits;
      impact = exits beyond that rate.
    - `low_conversion_entry`: a pre-conversion entry point (a journey's first touchpoint) whose
      journeys convert less than journeys entering elsewhere; impact = conversions missing.
    - `poor_scores`: a touchpoint whose share of NPS detractors or of dissatisfied CSAT answers is
      above that of all other answers (or whose mean CES, effort, is `min_ces_gap` above); impact =
      the excess unhappy share times the journeys that touched it.
    - `abandonment_spike`: a week whose abandonment rate is above the rule's median weekly rate;
      impact = abandoned attempts beyond the median rate.
    """
    points: list[dict[str, Any]] = []
    rated = [k for k in kpis if k["touchpoint"] != UNATTRIBUTED and k["journeys"]]

    total_exits = sum(k["exits"] for k in rated)
    total_visits = sum(k["journeys"] for k in rated)
    if total_visits:
        base = total_exits / total_visits
        for k in rated:
            n, rate = k["journeys"], k["exit_rate"] or 0.0
            if (n >= options.min_journeys and rate - base >= options.min_rate_gap
                    and _z_above(rate, base, n) >= options.min_z):
                points.append({
                    "kind": "exits", "touchpoint": k["touchpoint"],
                    "impact": k["exits"] - n * base, "rate": rate, "baseline": base, "n": n,
                    "count": k["exits"]})

    pre = [e for e in entries
           if conversion_rank is None or (home_rank.get(e["touchpoint"]) or 0) < conversion_rank]
    all_j = sum(e["journeys"] for e in pre)
    all_c = sum(e["converted"] for e in pre)
    for e in pre:
        n, others_n = e["journeys"], all_j - e["journeys"]
        if n < options.min_journeys or others_n <= 0:
            continue
        rate, base = e["converted"] / n, (all_c - e["converted"]) / others_n
        # Conversion too low is "non-conversion too high": the same one-sided test.
        if (base - rate >= options.min_rate_gap
                and _z_above(1 - rate, 1 - base, n) >= options.min_z):
            points.append({
                "kind": "low_conversion_entry", "touchpoint": e["touchpoint"],
                "impact": n * base - e["converted"], "rate": rate, "baseline": base, "n": n,
                "count": e["converted"]})

    by_tp: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scores:
        by_tp[r["touchpoint"]].append(r)
    total = _scores(scores)
    journeys_of = {k["touchpoint"]: k["journeys"] for k in kpis}
    for touchpoint, rows in by_tp.items():
        if touchpoint == UNATTRIBUTED:
            continue
        mine = _scores(rows)
        det = sum(r["detractors"] for r in rows)
        dis = mine["csat_n"] - sum(r["satisfied"] for r in rows)
        all_det = sum(r["detractors"] for r in scores)
        all_dis = total["csat_n"] - sum(r["satisfied"] for r in scores)
        gaps: list[tuple[str, float]] = []
        if mine["nps_n"] >= options.min_answers and total["nps_n"] > mine["nps_n"]:
            share = det / mine["nps_n"]
            base = (all_det - det) / (total["nps_n"] - mine["nps_n"])
            if (share - base >= options.min_rate_gap
                    and _z_above(share, base, mine["nps_n"]) >= options.min_z):
                gaps.append(("nps", share - base))
        if mine["csat_n"] >= options.min_answers and total["csat_n"] > mine["csat_n"]:
            share = dis / mine["csat_n"]
            base = (all_dis - dis) / (total["csat_n"] - mine["csat_n"])
            if (share - base >= options.min_rate_gap
                    and _z_above(share, base, mine["csat_n"]) >= options.min_z):
                gaps.append(("csat", share - base))
        if mine["ces_n"] >= options.min_answers and total["ces_n"] > mine["ces_n"]:
            ces_sum = sum(r["ces_sum"] for r in rows)
            base = (sum(r["ces_sum"] for r in scores) - ces_sum) / (total["ces_n"] - mine["ces_n"])
            if mine["ces"] - base >= options.min_ces_gap:
                gaps.append(("ces", 0.0))
        if gaps:
            excess = max(g for _, g in gaps)
            points.append({
                "kind": "poor_scores", "touchpoint": touchpoint,
                "impact": excess * journeys_of.get(touchpoint, 0), "metrics": [m for m, _ in gaps],
                "nps": mine["nps"], "nps_n": mine["nps_n"], "csat": mine["csat"],
                "csat_n": mine["csat_n"], "ces": mine["ces"], "ces_n": mine["ces_n"],
                "baseline_nps": _nps(sum(r["promoters"] for r in scores)
                                     - sum(r["promoters"] for r in rows),
                                     all_det - det, total["nps_n"] - mine["nps_n"]),
                "n": mine["nps_n"]})

    for rule in abandonment:
        median = rule["median_rate"]
        if median is None:
            continue
        for w in rule["weeks"]:
            n = w["abandoned"] + w["completed"]
            rate = w["abandonment_rate"]
            if (rate is None or n < options.min_attempts or rate - median < options.min_rate_gap
                    or _z_above(rate, median, n) < options.min_z):
                continue
            points.append({
                "kind": "abandonment_spike", "rule": rule["rule"], "week": w["week"],
                "impact": w["abandoned"] - n * median, "rate": rate, "baseline": median, "n": n,
                "count": w["abandoned"]})

    points.sort(key=lambda p: (-p["impact"], p["kind"], p.get("touchpoint") or "",
                               p.get("rule") or "", p.get("week") or ""))
    for i, point in enumerate(points[:options.max_pain_points], start=1):
        point["rank"] = i
    return points[:options.max_pain_points]


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


# --------------------------------------------------------------------------------------------
# The page


def _asset(name: str) -> str:
    return (resources.files("journey_core") / "report_assets" / name).read_text(encoding="utf-8")


def render_html(payload: dict[str, Any]) -> str:
    """The page: the template with the inline CSS, JavaScript and the JSON payload."""
    # `</` would end the script element early; `<\/` means the same to JSON.parse.
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).replace("</", "<\\/")
    text = {"/*__CSS__*/": _asset("report.css"), "/*__JS__*/": _asset("report.js"),
            "__DATA__": data, "__AS_OF__": html.escape(payload["meta"]["as_of_label"])}
    # One pass over the template only: nothing inserted is scanned for markers again.
    pattern = re.compile("|".join(re.escape(marker) for marker in text))
    return pattern.sub(lambda m: text[m.group(0)], _asset("template.html"))
