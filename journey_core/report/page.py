"""The page: the payload embedded as JSON in one self-contained HTML file, drawn by its inline
JavaScript as SVG (`assets/`): no library, no font, no request leaves the page."""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from journey_core.report.options import ReportOptions
from journey_core.report.payload import ReportError, build_payload
from journey_core.warehouse import WAREHOUSE_FILE, connect

REPORT_FILE = "journey_map.html"


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


def _asset(name: str) -> str:
    """A file of the page's template, styles or script (`journey_core/report/assets/`)."""
    return (resources.files("journey_core.report") / "assets" / name).read_text(encoding="utf-8")


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
