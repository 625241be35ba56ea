"""What the report counts as a pain point, and how much the page shows (`ReportOptions`)."""

from __future__ import annotations

from dataclasses import dataclass


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
