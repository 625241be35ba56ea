"""Survey scores over answer-count rows (`sql/rpt_cell_scores.sql`): NPS, CSAT and CES.

The models count the answers (promoters, detractors, satisfied, ...); the scores are computed
here, over whichever rows a section adds up: a grid cell, a stage, a touchpoint, a segment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

#: The answer counts `survey_scores` adds up.
_COUNTS = ("nps_n", "promoters", "detractors", "csat_n", "satisfied", "ces_n", "ces_sum")


def net_promoter_score(promoters: int, detractors: int, n: int) -> float | None:
    """NPS = 100 * (promoters - detractors) / answers; None without answers."""
    return 100.0 * (promoters - detractors) / n if n else None


def survey_scores(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """NPS, CSAT (100 * satisfied / answers) and CES (mean effort), with their answer counts."""
    t = defaultdict(int)
    for r in rows:
        for k in _COUNTS:
            t[k] += r[k]
    return {
        "nps": net_promoter_score(t["promoters"], t["detractors"], t["nps_n"]),
        "nps_n": t["nps_n"],
        "csat": 100.0 * t["satisfied"] / t["csat_n"] if t["csat_n"] else None,
        "csat_n": t["csat_n"],
        "ces": t["ces_sum"] / t["ces_n"] if t["ces_n"] else None, "ces_n": t["ces_n"],
    }
