"""The journey map report in a real headless Chromium, on a warehouse built from data/sample.

The page must load offline with no console or page errors, draw every chart, show the
warehouse's numbers for the whole population and for a chosen segment, and make the sample's
planted stories (ground_truth.json "stories") visible.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journey_core.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CHARTS = ["funnel", "emotion", "abandonment", "stage-sankey", "touchpoint-sankey"]

# Without a browser the tests are skipped on a developer's machine, and fail on CI.
_MISSING = [what for what, there in ((str(CHROMIUM), CHROMIUM.exists()),
                                     ("playwright", find_spec("playwright") is not None))
            if not there]
if _MISSING and not os.environ.get("CI"):
    pytest.skip(f"{', '.join(_MISSING)} missing: apt-get install -y chromium; pip install "
                "playwright (CI fails instead)", allow_module_level=True)

pytestmark = pytest.mark.e2e


# ------------------------------------------------------------------------------------------------
# Fixtures: one warehouse, one report, one browser page per module.


@pytest.fixture(scope="module")
def warehouse(sample_warehouse: Path) -> Path:
    """The session's sample warehouse (built before any browser opens: Dagster's run and an open
    Playwright browser on the same thread do not mix)."""
    return sample_warehouse


@pytest.fixture(scope="module")
def report(warehouse: Path) -> Path:
    path = write_report(warehouse)
    assert path == warehouse / "journey_map.html"
    return path


@pytest.fixture(scope="module")
def stories(repo_root: Path) -> dict[str, str]:
    truth = json.loads((repo_root / "data" / "sample" / "ground_truth.json").read_text())
    return truth["stories"]


@pytest.fixture(scope="module")
def db(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(warehouse / "journeys.duckdb"), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    yield con
    con.close()


@pytest.fixture(scope="module")
def browser(report: Path) -> Iterator[Any]:
    # After the report: Playwright's sync API keeps an asyncio loop on this thread, and Dagster's
    # run (building the warehouse) cannot run its own loop while that one exists.
    if _MISSING:
        pytest.fail(f"{', '.join(_MISSING)} missing on CI: install Debian's chromium "
                    "(apt-get install -y chromium) and the dev dependencies", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A loaded report page with everything the browser said while loading it."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []


@pytest.fixture(scope="module")
def loaded(browser: Any, report: Path) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    seen = Page(page)
    page.on("console", lambda m: seen.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: seen.errors.append(str(e)))

    def only_the_file(route: Any) -> None:
        seen.requests.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_file)
    page.goto(report.as_uri())
    page.wait_for_selector('#report[data-rendered="true"]')
    yield seen
    page.close()


def rows(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> list:
    return con.execute(query, params or []).fetchall()


def attr_map(page: Any, selector: str, key: str, value: str) -> dict[str, str]:
    """{element[key]: element[value]} over the elements matching selector."""
    return page.eval_on_selector_all(
        selector, "(els, [k, v]) => Object.fromEntries(els.map(e => [e.dataset[k], e.dataset[v]]))",
        [key, value])


def select_segment(page: Any, dimension: str, segment: str) -> None:
    page.select_option("#dimension", dimension)
    page.select_option("#segment", segment)
    page.wait_for_selector(
        f'#report[data-rendered="true"][data-dimension="{dimension}"][data-segment="{segment}"]')


# ------------------------------------------------------------------------------------------------
# PNG: count the distinct colours of a screenshot (8-bit RGB/RGBA, not interlaced, as Chromium
# writes them) without an imaging library.


def png_colours(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    assert len(raw) == height * (stride + 1)
    prev, colours = bytearray(stride), set()
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 255
        elif kind == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(row[i:i + 3]) for i in range(0, stride, bpp))
        prev = row
    return width, height, len(colours)


# ------------------------------------------------------------------------------------------------
# The page


def test_page_loads_offline_without_errors(loaded: Page, report: Path) -> None:
    """The page loads from the file alone, with no console error and no page error."""
    assert loaded.errors == []
    assert [m for m in loaded.console if m[0] in ("error", "warning")] == []
    assert loaded.requests == [report.as_uri()]
    html = report.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html


def test_every_chart_draws_shapes(loaded: Page) -> None:
    """Every chart's SVG holds visible shapes; the grid has coloured cells."""
    page = loaded.page
    for chart in CHARTS:
        shapes = page.eval_on_selector_all(
            f"#{chart} svg rect, #{chart} svg path, #{chart} svg circle",
            "els => els.filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; })"
            ".length")
        assert shapes >= 5, chart
        box = page.locator(f"#{chart} svg").bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 200, chart
    assert page.locator("#journey-grid td.cell:not(.empty)").count() > 30
    assert page.locator("#pain-points li[data-kind]").count() >= 4


def test_screenshots_are_not_blank(loaded: Page, warehouse: Path) -> None:
    """A full-page screenshot is taken; the page and each chart have many distinct colours."""
    page = loaded.page
    shot = warehouse / "journey_map.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    width, height, colours = png_colours(page.screenshot())
    assert (width, height) == (1360, 900)
    assert colours > 500
    for chart in CHARTS:
        _, _, colours = png_colours(page.locator(f"#{chart}").screenshot())
        assert colours > 50, chart


# ------------------------------------------------------------------------------------------------
# The numbers


def test_totals_and_funnel_match_the_warehouse(loaded: Page, db) -> None:
    """Header totals and every funnel stage show the warehouse's numbers, in stage order."""
    page = loaded.page
    journeys, converted = rows(db, "select count(*), count(case when converted then 1 end) "
                                   "from journeys")[0]
    assert page.get_attribute("#total-journeys", "data-value") == str(journeys)
    assert page.get_attribute("#total-converted", "data-value") == str(converted)
    funnel = rows(db, "select stage, reached, step_conversion, dropped from funnel "
                      "order by stage_rank")
    shown = page.eval_on_selector_all(
        "#funnel g.funnel-stage",
        "els => els.map(e => [e.dataset.stage, e.dataset.reached, e.dataset.stepConversion,"
        " e.dataset.dropped])")
    assert [s for s, *_ in shown] == [s for s, *_ in funnel]
    for (stage, reached, step, dropped), (_, r, sc, d) in zip(funnel, shown, strict=True):
        assert r == str(reached), stage
        assert (sc is None) if step is None else float(sc) == pytest.approx(step), stage
        assert (d is None) if dropped is None else d == str(dropped), stage


def test_touchpoint_numbers_match_the_warehouse(loaded: Page, db, stories) -> None:
    """A touchpoint's row shows touchpoint_kpis; its cell's NPS is that of its survey answers."""
    page = loaded.page
    touchpoint = stories["poor_touchpoint"]
    nps, journeys, exits = rows(db, "select nps, journeys, exits from touchpoint_kpis "
                                    "where touchpoint = $1", [touchpoint])[0]
    row = page.locator(f'#journey-grid tr[data-touchpoint="{touchpoint}"]')
    assert float(row.get_attribute("data-nps")) == pytest.approx(nps)
    assert row.get_attribute("data-journeys") == str(journeys)
    assert row.get_attribute("data-exits") == str(exits)
    stage, cell_nps = rows(db, """
        select stage, 100.0 * (count(case when nps_score >= 9 then 1 end)
                               - count(case when nps_score <= 6 then 1 end)) / count(nps_score)
        from survey_answers where touchpoint = $1 and nps_score is not null
        group by stage order by count(*) desc limit 1""", [touchpoint])[0]
    cell = row.locator(f'td.cell[data-stage="{stage}"]')
    assert float(cell.get_attribute("data-nps")) == pytest.approx(cell_nps)
    assert row.locator("td.cell:not(.empty)").first.is_visible()
    # Every exit sits in the cell of its touchpoint and the stage of the journey's last event.
    rows_and_cells = page.eval_on_selector_all(
        "#journey-grid tbody tr",
        "trs => trs.map(tr => [tr.dataset.exits, [...tr.querySelectorAll('td.cell[data-exits]')]"
        ".reduce((sum, td) => sum + Number(td.dataset.exits), 0)])")
    assert all(int(exits) == in_cells for exits, in_cells in rows_and_cells)


def test_segment_filter_redraws_every_section(loaded: Page, db) -> None:
    """Choosing a segment shows funnel_by_segment and the segment's totals; 'all' restores."""
    page = loaded.page
    dimension, segment = rows(db, """
        select dimension, segment from funnel_by_segment
        where dimension not in ('all', 'account') and journeys < (select count(*) from journeys)
        order by journeys desc, dimension, segment limit 1""")[0]
    before = attr_map(page, "#funnel g.funnel-stage", "stage", "reached")
    select_segment(page, dimension, segment)
    try:
        expected = {stage: str(reached) for stage, reached in rows(db, """
            select stage, reached from funnel_by_segment where dimension = $1 and segment = $2""",
            [dimension, segment])}
        shown = attr_map(page, "#funnel g.funnel-stage", "stage", "reached")
        assert shown == expected
        assert shown != before
        journeys = rows(db, "select count(*) from journey_segments where dimension = $1 "
                            "and segment = $2", [dimension, segment])[0][0]
        assert page.get_attribute("#total-journeys", "data-value") == str(journeys)
        kpis = dict(rows(db, """select touchpoint, journeys from touchpoint_kpis_by_segment
            where dimension = $1 and segment = $2 and journeys > 0""", [dimension, segment]))
        grid = attr_map(page, "#journey-grid tbody tr", "touchpoint", "journeys")
        # Every touchpoint of the segment has its row; only (unattributed) answers have none.
        assert grid == {t: str(n) for t, n in kpis.items() if t != "(unattributed)"}
        assert loaded.errors == []
    finally:
        select_segment(page, "all", "all")
    assert attr_map(page, "#funnel g.funnel-stage", "stage", "reached") == before


# ------------------------------------------------------------------------------------------------
# The planted stories


def pain_points(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#pain-points li[data-kind]", "els => els.map(e => Object.assign({}, e.dataset))")


def test_poor_touchpoint_is_a_top_pain_point(loaded: Page, stories) -> None:
    """call_center/billing's scores put it among the five worst pain points."""
    top = pain_points(loaded.page)[:5]
    assert {"kind": "poor_scores", "touchpoint": stories["poor_touchpoint"]}.items() <= \
        next(p for p in top if p.get("touchpoint") == stories["poor_touchpoint"]
             and p["kind"] == "poor_scores").items()
    row = loaded.page.locator(f'#journey-grid tr[data-touchpoint="{stories["poor_touchpoint"]}"]')
    assert "poor_scores" in row.get_attribute("data-pain")


def test_checkout_problem_week_is_flagged(loaded: Page, stories) -> None:
    """The checkout abandonment spike week is a pain point and the only red checkout week."""
    week = stories["checkout_problem_week"]
    flagged = [p for p in pain_points(loaded.page)
               if p["kind"] == "abandonment_spike" and p["rule"] == "checkout"]
    assert [p["week"] for p in flagged] == [week]
    spikes = loaded.page.eval_on_selector_all(
        '#abandonment g.week[data-rule="checkout"][data-spike="true"]',
        "els => els.map(e => e.dataset.week)")
    assert spikes == [week]


def test_low_converting_campaign_is_flagged(loaded: Page, stories, db) -> None:
    """The campaign whose journeys rarely convert is flagged as a low-converting entry point."""
    campaign = stories["low_converting_campaign"]
    flagged = [p for p in pain_points(loaded.page)
               if p["kind"] == "low_conversion_entry" and p["touchpoint"] == campaign]
    assert len(flagged) == 1
    journeys, converted = rows(db, "select count(*), count(case when converted then 1 end) "
                                   "from journeys where first_touchpoint = $1", [campaign])[0]
    assert float(flagged[0]["rate"]) == pytest.approx(converted / journeys)
    assert int(flagged[0]["rank"]) <= 5
    row = loaded.page.locator(f'#journey-grid tr[data-touchpoint="{campaign}"]')
    assert row.get_attribute("data-entry-journeys") == str(journeys)
    assert "low_conversion_entry" in row.get_attribute("data-pain")
