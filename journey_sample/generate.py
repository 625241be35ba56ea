"""Deterministic multichannel sample data and its ground truth.

`generate_sample` plans persons, journeys, visits and events first (`journey_sample.plan`),
renders the plan as the exports of ten source systems (`journey_sample.files`), adds bad records
and duplicates on top, and writes `ground_truth.json`: what the pipeline must find, computed
from the plan.

The same arguments always give byte-identical files: one seeded `random.Random`, no clock, every
collection ordered explicitly.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, NoReturn

from journey_sample.files import (
    EXTENSIONS,
    FORMATS,
    SourceFile,
    inject_bad_records,
    render,
    week_start,
    write_file,
)
from journey_sample.plan import (
    DAY,
    HOUR,
    MINUTE,
    STAGES,
    Event,
    Person,
    Plan,
    Planner,
    epoch_ms,
    utc,
)

__all__ = ["SOURCES", "generate_sample"]

#: Source names in the order the sample config lists them.
SOURCES = tuple(FORMATS)
JOURNEY_TIMEOUT = 7 * DAY  # the sample config's journey_timeout
POOR_TOUCHPOINT = "call_center/billing"
LOW_CONVERTING_CAMPAIGN = "ads/autumn_flash"


def generate_sample(out_dir: Path, *, customers: int = 3000, prospects: int = 1500,
                    start: date = date(2026, 9, 1), days: int = 35, seed: int = 7) -> dict:
    """Write every source file under out_dir and out_dir/ground_truth.json; return the ground
    truth dict.

    Files of earlier generations in the source folders (`<source>/<source>_*.<ext>`) are removed
    first, so the folder holds exactly one generation.
    """
    if customers < 20 or prospects < 0 or days < 21:
        raise ValueError("the sample needs customers >= 20, prospects >= 0 and days >= 21")
    rng = random.Random(seed)
    planner = Planner(rng, start, days)
    persons = planner.make_persons(customers, prospects)
    for p in persons:
        planner.plan_person(p, last_day_anchor=p.index == 0)
    conflict = planner.plant_conflict(persons)
    plan = Plan(start_ms=epoch_ms(start), days=days, problem_week=planner.problem_week,
                persons=persons, cookie_device=planner.cookie_device, conflict_cookie=conflict)
    check_plan(plan)
    files, ids = render(plan, rng)
    inject_bad_records(files, ids, rng)

    out_dir = Path(out_dir)
    for source in SOURCES:
        folder = out_dir / source
        if folder.is_dir():
            for old in sorted(folder.glob(f"{source}_*.{EXTENSIONS[FORMATS[source]]}")):
                old.unlink()
    for f in files:
        write_file(out_dir, f)
    truth = ground_truth(plan, files)
    (out_dir / "ground_truth.json").write_text(
        json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return truth


# --- checks of the plan --------------------------------------------------------------------------


def _fail(rule: str, person: Person) -> NoReturn:
    raise RuntimeError(f"sample plan breaks its own rule ({rule}) for person {person.index}")


def as_of_ms(plan: Plan) -> int:
    """The end (next midnight UTC) of the UTC day of the latest planned event."""
    latest = max(e.at for p in plan.persons for e in p.events())
    return latest - latest % DAY + DAY


def check_plan(plan: Plan) -> None:
    """Verify that sessions, journeys, checkouts and identities come out as planned."""
    as_of = as_of_ms(plan)
    for p in plan.persons:
        events = p.events()
        if not events:
            _fail("every person has events", p)
        if any(b.at <= a.at for a, b in pairwise(events)):
            _fail("events strictly increase in time", p)
        if events[0].at < plan.start_ms or events[-1].at >= plan.start_ms + plan.days * DAY:
            _fail("events fall in the period", p)
        visits = [v for j in p.journeys for v in j]
        for v in visits:
            gaps = [b.at - a.at for a, b in pairwise(v.events)]
            if any(g > 25 * MINUTE for g in gaps):
                _fail("events of a visit are at most 25 minutes apart", p)
        if any(b.start - a.end <= 35 * MINUTE for a, b in pairwise(visits)):
            _fail("visits are more than 35 minutes apart", p)
        for j in p.journeys:
            if any(b.start - a.end >= 6 * DAY for a, b in pairwise(j)):
                _fail("visits of a journey are less than 6 days apart", p)
            if all(e.stage is None for v in j for e in v.events):
                _fail("every journey has a staged event", p)
        for a, b in pairwise(p.journeys):
            if b[0].start - a[-1].end <= 8 * DAY:
                _fail("journeys are more than 8 days apart", p)
        _check_checkouts(p, events, as_of)
    _check_identities(plan)


def _check_checkouts(p: Person, events: list[Event], as_of: int) -> None:
    for v in (v for j in p.journeys for v in j):
        starts = [e.at for e in v.events if e.event_type == "checkout_start"]
        if not starts:
            continue
        last = max(starts)
        if last >= as_of - 2 * HOUR:
            _fail("no checkout in the last 2 hours before as_of", p)
        bought = [e for e in v.events if e.event_type == "purchase"]
        if v.checkout == "completed" and not any(e.at > last for e in bought):
            _fail("a completed checkout has its purchase in the visit", p)
        if v.checkout == "abandoned":
            later = [e.at for e in events if e.at > v.end]
            if bought or (later and later[0] - last <= 2 * HOUR):
                _fail("an abandoned checkout has nothing for 2 hours", p)


def _check_identities(plan: Plan) -> None:
    """Identifiers of one event are linked, first link wins, and no planned person splits or
    merges; the only refused link is the planted shared cookie."""
    parent: dict[str, str] = {}
    owner: dict[str, str | None] = {}

    def find(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    # links apply in time order; a person's events never share a time, so (at, person) is total
    tagged = sorted(((e.at, p.index, n), e) for p in plan.persons
                    for n, e in enumerate(p.events()))
    refused: set[str] = set()
    for _, e in tagged:
        nodes = [f"{kind}:{value}" for kind, value in (
            ("customer_id", e.customer_id), ("anonymous_id", e.anonymous_id),
            ("email", e.email), ("phone", e.phone)) if value]
        for node in nodes:
            if node not in parent:
                parent[node], owner[node] = node, (
                    e.customer_id if node.startswith("customer_id:") else None)
        anchor = find(nodes[0])
        for node in nodes[1:]:
            root = find(node)
            if root == anchor:
                continue
            if owner[anchor] and owner[root] and owner[anchor] != owner[root]:
                refused.add(node)
                continue
            parent[root] = anchor
            owner[anchor] = owner[anchor] or owner[root]
    expected = {f"anonymous_id:{plan.conflict_cookie}"} if plan.conflict_cookie else set()
    if refused != expected:
        raise RuntimeError(f"sample identity conflicts {sorted(refused)} != {sorted(expected)}")
    person_of_root: dict[str, int] = {}
    for p in plan.persons:
        for e in p.events():
            anchor = e.customer_id or e.anonymous_id or e.email or e.phone
            kind = ("customer_id" if e.customer_id else "anonymous_id" if e.anonymous_id
                    else "email" if e.email else "phone")
            root = find(f"{kind}:{anchor}")
            if person_of_root.setdefault(root, p.index) != p.index:
                _fail("one stitched person per planned person", p)
    if len(person_of_root) != len(plan.persons):
        raise RuntimeError("sample persons do not stitch one to one")


# --- ground truth --------------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return utc(ms).isoformat()


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def ground_truth(plan: Plan, files: list[SourceFile]) -> dict[str, Any]:
    """What the pipeline must report, from the plan and the written records."""
    as_of = as_of_ms(plan)
    journeys = [(p, j) for p in plan.persons for j in p.journeys]
    furthest: list[int | None] = []
    open_count = converted = 0
    for _, j in journeys:
        events = [e for v in j for e in v.events]
        ranks = [STAGES.index(e.stage) for e in events if e.stage is not None]
        furthest.append(max(ranks) if ranks else None)
        open_count += as_of - events[-1].at <= JOURNEY_TIMEOUT
        converted += any(e.stage == "conversion" for e in events)
    closed_flags = [as_of - j[-1].end > JOURNEY_TIMEOUT for _, j in journeys]
    funnel = {}
    for rank, stage in enumerate(STAGES):
        reached = sum(1 for f in furthest if f is not None and f >= rank)
        dropped = sum(1 for f, closed in zip(furthest, closed_flags, strict=True)
                      if closed and f == rank)
        funnel[stage] = {"reached": reached,
                         "dropped": dropped if rank < len(STAGES) - 1 else None}
    return {
        "as_of": _iso(as_of),
        **_file_truth(files),
        "persons": len(plan.persons),
        "customers": sum(p.is_customer for p in plan.persons),
        "prospects": sum(not p.is_customer for p in plan.persons),
        "identity_conflicts": ([{"identifier_type": "anonymous_id",
                                 "identifier_value": plan.conflict_cookie}]
                               if plan.conflict_cookie else []),
        "sessions": sum(len(j) for _, j in journeys),
        "journeys": len(journeys),
        "journeys_open": open_count,
        "journeys_closed": len(journeys) - open_count,
        "journeys_converted": converted,
        "funnel": funnel,
        "checkout_abandonment_by_week": _checkouts_by_week(plan, channel=None),
        "touchpoint_kpis": _touchpoint_kpis(plan),
        "segments": _segments(plan),
        "stories": {"checkout_problem_week": plan.problem_week.isoformat(),
                    "poor_touchpoint": POOR_TOUCHPOINT,
                    "low_converting_campaign": LOW_CONVERTING_CAMPAIGN},
        "story_evidence": _story_evidence(plan),
    }


def _file_truth(files: list[SourceFile]) -> dict[str, Any]:
    """Per file and in total: records read, loaded, rejected, duplicates; every reject."""
    per_file: dict[str, dict[str, int]] = {}
    rejects = []
    for f in files:
        counts = Counter(r.status for r in f.records)
        per_file[f.path] = {"read": len(f.records), "loaded": counts["loaded"],
                            "rejected": counts["rejected"], "duplicates": counts["duplicate"]}
        rejects += [{"file": f.path, "record": n, "reason": r.reason}
                    for n, r in enumerate(f.records, start=f.first_record_number())
                    if r.status == "rejected"]
    totals = {k: sum(c[k] for c in per_file.values())
              for k in ("read", "loaded", "rejected", "duplicates")}
    return {"files": per_file, "rejects": rejects, "totals": totals}


def _checkouts_by_week(plan: Plan, channel: str | None) -> dict[str, dict[str, int]]:
    """Checkout attempts (visits = sessions with a checkout_start) by ISO week of the first one."""
    weeks: dict[str, dict[str, int]] = {}
    for p in plan.persons:
        for v in (v for j in p.journeys for v in j if v.checkout):
            first = next(e for e in v.events if e.event_type == "checkout_start")
            if channel and first.source != channel:
                continue
            week = weeks.setdefault(week_start(first.at), {"attempts": 0, "completed": 0,
                                                           "abandoned": 0, "pending": 0})
            week["attempts"] += 1
            week[v.checkout] += 1
    return {k: weeks[k] for k in sorted(weeks)}


def _touchpoint_kpis(plan: Plan) -> dict[str, dict[str, Any]]:
    """Survey answers by rated touchpoint: the named one, else the person's most recent
    non-survey touchpoint in the same journey."""
    sums: dict[str, Counter[str]] = {}
    for p in plan.persons:
        for j in p.journeys:
            previous: str | None = None
            for e in (e for v in j for e in v.events):
                if e.event_type != "survey_response":
                    previous = e.touchpoint
                    continue
                rated = e.attrs["touchpoint"] or previous
                assert rated is not None
                c = sums.setdefault(rated, Counter())
                c["responses"] += 1
                nps, csat, ces = e.attrs["nps"], e.attrs["csat"], e.attrs["ces"]
                if nps is not None:
                    c["nps_responses"] += 1
                    c["nps_promoters"] += nps >= 9
                    c["nps_detractors"] += nps <= 6
                if csat is not None:
                    c["csat_responses"] += 1
                    c["csat_satisfied"] += csat >= 4
                if ces is not None:
                    c["ces_responses"] += 1
                    c["ces_sum"] += ces
    out = {}
    for tp in sorted(sums):
        c = sums[tp]
        keys = ("responses", "nps_responses", "nps_promoters", "nps_detractors",
                "csat_responses", "csat_satisfied", "ces_responses", "ces_sum")
        row: dict[str, Any] = {k: c[k] for k in keys}
        row["nps"] = (round(100 * (c["nps_promoters"] - c["nps_detractors"])
                            / c["nps_responses"], 4) if c["nps_responses"] else None)
        row["csat"] = (round(100 * c["csat_satisfied"] / c["csat_responses"], 4)
                       if c["csat_responses"] else None)
        row["ces"] = round(c["ces_sum"] / c["ces_responses"], 4) if c["ces_responses"] else None
        out[tp] = row
    return out


def _segments(plan: Plan) -> dict[str, int]:
    customers = [p for p in plan.persons if p.is_customer]
    return {
        "new": sum(p.segment == "new" for p in customers),
        "returning": sum(p.segment == "returning" for p in customers),
        "b2b_customers": sum(p.account_id is not None for p in customers),
        "b2b_accounts": len({p.account_id for p in customers if p.account_id}),
        "app_users": sum(p.app_device is not None for p in customers),
    }


def _story_evidence(plan: Plan) -> dict[str, Any]:
    """The numbers behind the three stories, for the report and for readers of the sample."""
    web_weeks = _checkouts_by_week(plan, channel="web")
    first_touch: dict[str, Counter[str]] = {}
    for p in plan.persons:
        for j in p.journeys:
            events = [e for v in j for e in v.events]
            key = events[0].touchpoint if events[0].source == "ads" else "(not an ad)"
            c = first_touch.setdefault(key, Counter())
            c["journeys"] += 1
            c["converted"] += any(e.stage == "conversion" for e in events)
    waits: dict[str, list[int]] = {}
    for p in plan.persons:
        for e in p.events():
            if e.source == "call_center":
                waits.setdefault(e.touchpoint, []).append(e.attrs["wait_seconds"])
    others = [c for k, c in first_touch.items() if k != LOW_CONVERTING_CAMPAIGN]
    return {
        "web_checkout_abandonment_by_week": {
            week: {**w, "rate": _rate(w["abandoned"], w["abandoned"] + w["completed"])}
            for week, w in web_weeks.items()},
        "journey_conversion_by_first_ad": {
            k: {"journeys": c["journeys"], "converted": c["converted"],
                "rate": _rate(c["converted"], c["journeys"])}
            for k, c in sorted(first_touch.items())},
        "journey_conversion_not_from_autumn_flash": _rate(
            sum(c["converted"] for c in others), sum(c["journeys"] for c in others)),
        "mean_wait_seconds_by_queue": {k: round(sum(v) / len(v), 1)
                                       for k, v in sorted(waits.items())},
    }

