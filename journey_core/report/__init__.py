"""The journey map report: one self-contained HTML page a CX team reads in any browser, offline.

The page shows, for the whole population and for every segment of every segment dimension: the
stage funnel, the journey map grid (touchpoints × stages with volume, exits and survey scores), the
emotion curve (NPS, CSAT, CES by stage), weekly abandonment, the ranked pain points and the main
paths between stages and touchpoints (Sankey diagrams). Everything is read from the published
warehouse tables by the report models (`sql/rpt_*.sql`).

The package owns reading the warehouse for the page and shaping it per segment (`payload`), the
pain point rules (`pain_points`, with the survey scores of `scores` and the thresholds of
`options`), and the page itself (`page`: the template, styles and script of `assets/`).

Layer 6: imports contract, config, warehouse and model.
"""

from journey_core.report.options import ReportOptions
from journey_core.report.page import render_html, write_report
from journey_core.report.pain_points import find_pain_points
from journey_core.report.payload import ReportError, build_payload

__all__ = ["ReportError", "ReportOptions", "build_payload", "find_pain_points", "render_html",
           "write_report"]
