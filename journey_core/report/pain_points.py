"""Pain points: what stands out as worse than its baseline in a segment, ranked by impact.

Four kinds, each against its own baseline, each needing enough volume and a gap that is both at
least the minimum gap and at least `min_z` standard errors (`ReportOptions`):

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

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from journey_core.contract.vocabulary import UNATTRIBUTED_TOUCHPOINT
from journey_core.report.options import ReportOptions
from journey_core.report.scores import net_promoter_score, survey_scores


def find_pain_points(kpis: list[dict[str, Any]], entries: list[dict[str, Any]],
                     scores: list[dict[str, Any]], abandonment: list[dict[str, Any]],
                     home_rank: dict[str, int | None], conversion_rank: int | None,
                     options: ReportOptions) -> list[dict[str, Any]]:
    """Pain points of every kind, worst first, each with its impact in journeys (or attempts)
    beyond baseline; at most `max_pain_points`, ranked from 1."""
    points = [
        *exit_points(kpis, options),
        *low_conversion_entries(entries, home_rank, conversion_rank, options),
        *poor_scores(kpis, scores, options),
        *abandonment_spikes(abandonment, options),
    ]
    points.sort(key=lambda p: (-p["impact"], p["kind"], p.get("touchpoint") or "",
                               p.get("rule") or "", p.get("week") or ""))
    for i, point in enumerate(points[:options.max_pain_points], start=1):
        point["rank"] = i
    return points[:options.max_pain_points]


def _z_above(rate: float, base: float, n: int) -> float:
    """How many standard errors `rate` (over n) lies above the baseline proportion."""
    if n <= 0:
        return 0.0
    base = min(max(base, 0.5 / n), 1 - 0.5 / n)  # keep the error away from 0 for extreme baselines
    return (rate - base) / math.sqrt(base * (1 - base) / n)


def _stands_out(rate: float, base: float, n: int, options: ReportOptions) -> bool:
    """`rate` (over n) is at least `min_rate_gap` and `min_z` standard errors above `base`."""
    return rate - base >= options.min_rate_gap and _z_above(rate, base, n) >= options.min_z


def exit_points(kpis: list[dict[str, Any]], options: ReportOptions) -> list[dict[str, Any]]:
    """`exits`: touchpoints (with `min_journeys`) whose exit rate stands out above exits /
    visits over all touchpoints; impact = exits beyond that rate."""
    rated = [k for k in kpis if k["touchpoint"] != UNATTRIBUTED_TOUCHPOINT and k["journeys"]]
    total_visits = sum(k["journeys"] for k in rated)
    if not total_visits:
        return []
    base = sum(k["exits"] for k in rated) / total_visits
    points = []
    for k in rated:
        n, rate = k["journeys"], k["exit_rate"] or 0.0
        if n >= options.min_journeys and _stands_out(rate, base, n, options):
            points.append({
                "kind": "exits", "touchpoint": k["touchpoint"],
                "impact": k["exits"] - n * base, "rate": rate, "baseline": base, "n": n,
                "count": k["exits"]})
    return points


def low_conversion_entries(entries: list[dict[str, Any]], home_rank: dict[str, int | None],
                           conversion_rank: int | None,
                           options: ReportOptions) -> list[dict[str, Any]]:
    """`low_conversion_entry`: entry points whose home stage is before the conversion stage
    (all of them without one) and whose journeys (at least `min_journeys`) convert less than
    those entering at the other such entry points; impact = conversions missing."""
    pre = [e for e in entries
           if conversion_rank is None or (home_rank.get(e["touchpoint"]) or 0) < conversion_rank]
    all_j = sum(e["journeys"] for e in pre)
    all_c = sum(e["converted"] for e in pre)
    points = []
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
    return points


def _unhappy_share_gap(bad: int, n: int, all_bad: int, all_n: int,
                       options: ReportOptions) -> float | None:
    """How far the unhappy share of a touchpoint's answers (bad of n, at least `min_answers`)
    lies above that of all other answers, when it stands out; None otherwise."""
    if n < options.min_answers or all_n <= n:
        return None
    share = bad / n
    base = (all_bad - bad) / (all_n - n)
    return share - base if _stands_out(share, base, n, options) else None


def _score_gaps(rows: list[dict[str, Any]], scores: list[dict[str, Any]],
                options: ReportOptions) -> list[tuple[str, float]]:
    """The metrics in which a touchpoint's answers (`rows`, part of `scores`) are worse than all
    other answers, with the excess unhappy share: detractors (`nps`), dissatisfied answers
    (`csat`), and a mean effort `min_ces_gap` above the others' (`ces`, no share: 0)."""
    mine, total = survey_scores(rows), survey_scores(scores)
    gaps: list[tuple[str, float]] = []
    nps_gap = _unhappy_share_gap(
        sum(r["detractors"] for r in rows), mine["nps_n"],
        sum(r["detractors"] for r in scores), total["nps_n"], options)
    if nps_gap is not None:
        gaps.append(("nps", nps_gap))
    csat_gap = _unhappy_share_gap(
        mine["csat_n"] - sum(r["satisfied"] for r in rows), mine["csat_n"],
        total["csat_n"] - sum(r["satisfied"] for r in scores), total["csat_n"], options)
    if csat_gap is not None:
        gaps.append(("csat", csat_gap))
    if mine["ces_n"] >= options.min_answers and total["ces_n"] > mine["ces_n"]:
        ces_sum = sum(r["ces_sum"] for r in rows)
        base = (sum(r["ces_sum"] for r in scores) - ces_sum) / (total["ces_n"] - mine["ces_n"])
        if mine["ces"] - base >= options.min_ces_gap:
            gaps.append(("ces", 0.0))
    return gaps


def poor_scores(kpis: list[dict[str, Any]], scores: list[dict[str, Any]],
                options: ReportOptions) -> list[dict[str, Any]]:
    """`poor_scores`: attributed touchpoints with a score gap (`_score_gaps`); impact = the
    largest excess unhappy share times the journeys that touched the touchpoint."""
    by_tp: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scores:
        by_tp[r["touchpoint"]].append(r)
    journeys_of = {k["touchpoint"]: k["journeys"] for k in kpis}
    total = survey_scores(scores)
    points = []
    for touchpoint, rows in by_tp.items():
        if touchpoint == UNATTRIBUTED_TOUCHPOINT:
            continue
        gaps = _score_gaps(rows, scores, options)
        if not gaps:
            continue
        mine = survey_scores(rows)
        others_detractors = (sum(r["detractors"] for r in scores)
                             - sum(r["detractors"] for r in rows))
        others_promoters = (sum(r["promoters"] for r in scores)
                            - sum(r["promoters"] for r in rows))
        points.append({
            "kind": "poor_scores", "touchpoint": touchpoint,
            "impact": max(g for _, g in gaps) * journeys_of.get(touchpoint, 0),
            "metrics": [m for m, _ in gaps],
            "nps": mine["nps"], "nps_n": mine["nps_n"], "csat": mine["csat"],
            "csat_n": mine["csat_n"], "ces": mine["ces"], "ces_n": mine["ces_n"],
            "baseline_nps": net_promoter_score(others_promoters, others_detractors,
                                               total["nps_n"] - mine["nps_n"]),
            "n": mine["nps_n"]})
    return points


def abandonment_spikes(abandonment: list[dict[str, Any]],
                       options: ReportOptions) -> list[dict[str, Any]]:
    """`abandonment_spike`: weeks (with `min_attempts` decided attempts) whose abandonment rate
    stands out above the rule's median weekly rate; impact = abandoned attempts beyond it."""
    points = []
    for rule in abandonment:
        median = rule["median_rate"]
        if median is None:
            continue
        for w in rule["weeks"]:
            n = w["abandoned"] + w["completed"]
            rate = w["abandonment_rate"]
            if (rate is None or n < options.min_attempts
                    or not _stands_out(rate, median, n, options)):
                continue
            points.append({
                "kind": "abandonment_spike", "rule": rule["rule"], "week": w["week"],
                "impact": w["abandoned"] - n * median, "rate": rate, "baseline": median, "n": n,
                "count": w["abandoned"]})
    return points
