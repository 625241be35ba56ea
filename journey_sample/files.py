"""Rendering the sample plan as source export files, plus injected bad records (private).

Every planned event becomes one record of its source, in the source's own format and time
convention. Bad records and duplicates are extra records: they never replace a planned one.
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from journey_sample.plan import DEVICES, SECOND, Event, Plan, utc

BERLIN = ZoneInfo("Europe/Berlin")
SHOP_URL = "https://shop.example.com"
#: Source -> file format; sources in DAILY get one file per day, the others one per ISO week.
FORMATS = {"web": "ndjson", "app": "parquet", "email": "csv", "ads": "csv", "call_center": "csv",
           "store": "csv", "chat": "ndjson", "surveys": "csv", "reviews": "csv",
           "referrals": "ndjson"}
EXTENSIONS = {"ndjson": "ndjson", "parquet": "parquet", "csv": "csv"}
DAILY = ("web", "ads")
HEADERS = {
    "email": ["message_event_id", "timestamp", "email_address", "campaign", "event"],
    "ads": ["click_id", "clicked_at", "cookie_id", "campaign", "network", "cost_eur"],
    "call_center": ["call_id", "start_time", "crm_id", "phone", "account_id", "queue",
                    "wait_seconds", "handle_seconds", "outcome", "reason"],
    "store": ["receipt_no", "sold_at", "store", "loyalty_id", "amount_eur", "items"],
    "surveys": ["response_id", "submitted_at", "customer_id", "email", "nps", "csat", "ces",
                "touchpoint", "comment"],
    "reviews": ["review_id", "posted_at", "customer_id", "site", "rating", "title"],
}
APP_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("event_time", pa.timestamp("ms", tz="UTC")),
    ("customer_id", pa.string()), ("device_id", pa.string()), ("account_id", pa.string()),
    ("event_name", pa.string()), ("screen", pa.string()), ("amount", pa.float64()),
    ("os", pa.string()),
])
#: Web keys written only when they have a value.
WEB_OPTIONAL = ("user_id", "email", "revenue", "account_id", "role")
STORE_CODES = {"berlin_mitte": "BM", "hamburg_altona": "HA", "munich_center": "MC",
               "cologne_ehrenfeld": "CE", "frankfurt_zeil": "FZ"}

Row = dict[str, Any]


@dataclass(slots=True)
class Record:
    """One record of a file: a row, or a raw line that no reader can parse."""

    row: Row | str
    status: str = "loaded"  # loaded | rejected | duplicate
    reason: str | None = None


@dataclass
class SourceFile:
    path: str  # relative to the output folder, with /
    source: str
    records: list[Record]

    @property
    def format(self) -> str:
        return FORMATS[self.source]

    def first_record_number(self) -> int:
        """CSV records are numbered by file line (the header is line 1)."""
        return 2 if self.format == "csv" else 1


# --- time and identifier formats -----------------------------------------------------------------


def iso_ms_z(ms: int) -> str:
    return utc(ms).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % SECOND:03d}Z"


def iso_s_z(ms: int) -> str:
    return utc(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def naive_utc(ms: int) -> str:
    return utc(ms).strftime("%Y-%m-%d %H:%M:%S")


def berlin_dmy(ms: int) -> str:
    return utc(ms).astimezone(BERLIN).strftime("%d/%m/%Y %H:%M:%S")


def berlin_iso(ms: int) -> str:
    return utc(ms).astimezone(BERLIN).isoformat(timespec="seconds")


def call_phone(phone: str) -> str:
    """`+4915123456789` -> `+49 151 2345 6789`."""
    prefix, number = phone[3:6], phone[6:]
    return f"+49 {prefix} {number[:4]} {number[4:]}"


def chat_phone(phone: str) -> str:
    """`+4915123456789` -> `0049-151-23456789`."""
    return f"0049-{phone[3:6]}-{phone[6:]}"


def file_path(source: str, ms: int) -> str:
    """Daily files for web and ads, ISO-week files otherwise (store by its local date)."""
    moment = utc(ms).astimezone(BERLIN) if source == "store" else utc(ms)
    ext = EXTENSIONS[FORMATS[source]]
    if source in DAILY:
        return f"{source}/{source}_{moment.date().isoformat()}.{ext}"
    iso = moment.date().isocalendar()
    return f"{source}/{source}_{iso.year}-W{iso.week:02d}.{ext}"


class _Ids:
    """Source record ids: random (uuid, hex) or sequential, unique within the source."""

    def __init__(self, rng: random.Random, make: Callable[[random.Random, int], str]) -> None:
        self.rng, self.make, self.count, self.seen = rng, make, 0, set[str]()

    def next(self) -> str:
        self.count += 1
        value = self.make(self.rng, self.count)
        if value in self.seen:
            raise RuntimeError(f"sample id collision: {value}")
        self.seen.add(value)
        return value


def _uuid(rng: random.Random, _: int) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


ID_MAKERS: dict[str, Callable[[random.Random, int], str]] = {
    "web": lambda r, _n: f"{r.getrandbits(64):016x}",
    "app": _uuid,
    "email": lambda _r, n: f"EM{n:08d}",
    "ads": lambda r, _n: f"clk_{r.getrandbits(80):020x}",
    "call_center": lambda _r, n: f"CALL-{n:06d}",
    "store": lambda _r, n: f"R{n:07d}",
    "chat": lambda r, _n: f"chat_{r.getrandbits(48):012x}",
    "surveys": lambda r, _n: f"R_{r.getrandbits(60):015x}",
    "reviews": lambda _r, n: f"rev-{n:05d}",
    "referrals": lambda _r, n: f"ref-{n:05d}",
}


# --- rows ----------------------------------------------------------------------------------------


def _row(plan: Plan, e: Event, record_id: str) -> Row:
    """The source record of one planned event."""
    a = e.attrs
    if e.source == "web":
        device = plan.cookie_device[e.anonymous_id or ""]
        landing = a["page_type"] == "landing" and a["utm_campaign"]
        url = SHOP_URL + a["path"] + (f"?utm_campaign={a['utm_campaign']}" if landing else "")
        row = {"id": record_id, "ts": iso_ms_z(e.at), "cookie_id": e.anonymous_id,
               "user_id": e.customer_id, "email": e.email, "event": e.event_type,
               "page_type": a["page_type"], "revenue": a["revenue"], "device": device,
               "utm_campaign": a["utm_campaign"], "segment": a["segment"],
               "account_id": e.account_id, "role": a["role"],
               "context": {"user_agent": DEVICES[device], "page_url": url}}
        # like the analytics export, keys of absent values are left out (utm_campaign: null)
        return {k: v for k, v in row.items() if v is not None or k not in WEB_OPTIONAL}
    if e.source == "app":
        return {"event_id": record_id, "event_time": e.at, "customer_id": e.customer_id,
                "device_id": e.anonymous_id, "account_id": e.account_id,
                "event_name": e.event_type, "screen": a["screen"], "amount": a["amount"],
                "os": a["os"]}
    if e.source == "email":
        return {"message_event_id": record_id, "timestamp": str(e.at // SECOND),
                "email_address": e.email, "campaign": a["campaign"], "event": a["event"]}
    if e.source == "ads":
        return {"click_id": record_id, "clicked_at": naive_utc(e.at), "cookie_id": e.anonymous_id,
                "campaign": a["campaign"], "network": a["network"],
                "cost_eur": f"{a['cost_eur']:.2f}"}
    if e.source == "call_center":
        return {"call_id": record_id, "start_time": str(e.at), "crm_id": e.customer_id,
                "phone": call_phone(e.phone or ""), "account_id": e.account_id,
                "queue": a["queue"], "wait_seconds": a["wait_seconds"],
                "handle_seconds": a["handle_seconds"], "outcome": a["outcome"],
                "reason": a["reason"]}
    if e.source == "store":
        return {"receipt_no": f"{STORE_CODES[a['store']]}-{record_id}",
                "sold_at": berlin_dmy(e.at), "store": a["store"], "loyalty_id": e.customer_id,
                "amount_eur": f"{a['amount_eur']:.2f}", "items": a["items"]}
    if e.source == "chat":
        return {"chat_id": record_id, "started": berlin_iso(e.at),
                "phone": chat_phone(e.phone or ""), "topic": a["topic"],
                "messages": a["messages"]}
    if e.source == "surveys":
        return {"response_id": record_id, "submitted_at": iso_s_z(e.at),
                "customer_id": e.customer_id, "email": e.email, "nps": a["nps"],
                "csat": a["csat"], "ces": a["ces"], "touchpoint": a["touchpoint"],
                "comment": a["comment"]}
    if e.source == "reviews":
        return {"review_id": record_id, "posted_at": iso_s_z(e.at), "customer_id": e.customer_id,
                "site": a["site"], "rating": a["rating"], "title": a["title"]}
    if e.source == "referrals":
        return {"referral_id": record_id, "at": iso_s_z(e.at), "referrer_id": e.customer_id,
                "referred_email": a["referred_email"], "program": a["program"]}
    raise ValueError(f"unknown source {e.source!r}")


def render(plan: Plan, rng: random.Random) -> tuple[list[SourceFile], dict[str, _Ids]]:
    """Every planned event as a record of its source's file, ordered by time then id."""
    by_source: dict[str, list[tuple[int, int, int, Event]]] = {s: [] for s in FORMATS}
    for p in plan.persons:
        for n, e in enumerate(p.events()):
            by_source[e.source].append((e.at, p.index, n, e))
    files: dict[str, SourceFile] = {}
    ids: dict[str, _Ids] = {}
    for source in FORMATS:
        ids[source] = _Ids(rng, ID_MAKERS[source])
        for _, _, _, e in sorted(by_source[source], key=lambda t: t[:3]):
            path = file_path(source, e.at)
            target = files.setdefault(path, SourceFile(path, source, []))
            target.records.append(Record(_row(plan, e, ids[source].next())))
    return [files[k] for k in sorted(files)], ids


# --- bad records ---------------------------------------------------------------------------------


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def _json_line(row: Row) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def _truncated(row: Row) -> str:
    text = _json_line(row)
    return text[: len(text) * 3 // 5]


def _with(**changes: Any) -> Callable[[Row], Row]:
    return lambda row: {**row, **changes}


def _web_bot(row: Row) -> Row:
    kept = {k: v for k, v in row.items() if k not in WEB_OPTIONAL}
    return {**kept, "cookie_id": None, "event": "page_view", "page_type": "home",
            "context": {**row["context"], "page_url": SHOP_URL + "/"}}


def _web_revenue(value: str) -> Callable[[Row], Row]:
    return lambda row: {**row, "event": "purchase", "page_type": "checkout", "revenue": value}


def _csv_extra_field(source: str, extra: str) -> Callable[[Row], str]:
    return lambda row: _csv_line([*(row[k] for k in HEADERS[source]), extra])


def _csv_cut(source: str, keep: int) -> Callable[[Row], str]:
    return lambda row: _csv_line([row[k] for k in HEADERS[source]][:keep])


#: (source, reason, which base rows qualify, how the bad record is made from a copy of one).
BAD_RECORDS: list[tuple[str, str, Callable[[Row], bool] | None, Callable[[Row], Row | str]]] = [
    ("web", "malformed_record", None, _truncated),
    ("web", "malformed_record", None, _truncated),
    ("web", "bad_timestamp", None, lambda r: {**r, "ts": r["ts"][:8] + "31T25:61:00Z"}),
    ("web", "bad_timestamp", None, _with(ts="")),
    ("web", "missing_identifier", None, _web_bot),
    ("web", "missing_identifier", None, _web_bot),
    ("web", "bad_value", lambda r: "user_id" in r, _web_revenue("N/A")),
    ("web", "bad_value", lambda r: "user_id" in r, _web_revenue("59,90€")),
    ("app", "bad_timestamp", None, _with(event_time=None)),
    ("app", "missing_identifier", None, _with(customer_id=None, device_id=None)),
    ("email", "malformed_record", None, _csv_extra_field("email", "unsubscribe")),
    ("email", "bad_timestamp", None, _with(timestamp="")),
    ("email", "bad_timestamp", None, lambda r: {**r, "timestamp": r["timestamp"][:4] + "x"}),
    ("email", "missing_identifier", None, _with(email_address=None)),
    ("ads", "malformed_record", None, _csv_cut("ads", 4)),
    ("ads", "bad_timestamp", None,
     lambda r: {**r, "clicked_at": f"{r['clicked_at'][8:10]}.{r['clicked_at'][5:7]}."
                                   f"{r['clicked_at'][:4]} {r['clicked_at'][11:16]}"}),
    ("ads", "missing_identifier", None, _with(cookie_id=None)),
    ("call_center", "bad_timestamp", None, _with(start_time=None)),
    ("call_center", "malformed_record", None, _csv_extra_field("call_center", "vip")),
    ("call_center", "missing_identifier", None, _with(crm_id=None, phone=None)),
    ("store", "bad_value", None, _with(amount_eur="n/a")),
    ("store", "bad_timestamp", None,
     lambda r: {**r, "sold_at": f"{r['sold_at'][6:10]}-{r['sold_at'][3:5]}-"
                               f"{r['sold_at'][:2]} {r['sold_at'][11:]}"}),
    ("store", "missing_identifier", None, _with(loyalty_id=None)),
    ("chat", "malformed_record", None, _truncated),
    ("chat", "missing_identifier", None, _with(phone=None)),
    ("surveys", "out_of_range", lambda r: r["customer_id"] is not None, _with(nps=12)),
    ("surveys", "out_of_range", lambda r: r["customer_id"] is not None, _with(csat=0)),
    ("surveys", "out_of_range", lambda r: r["customer_id"] is not None, _with(ces=9)),
    ("surveys", "missing_identifier", None, _with(customer_id=None, email=None)),
    ("reviews", "bad_timestamp", None, _with(posted_at=None)),
    ("referrals", "malformed_record", None, _truncated),
]
ID_FIELDS = {"web": "id", "app": "event_id", "email": "message_event_id", "ads": "click_id",
             "call_center": "call_id", "store": "receipt_no", "chat": "chat_id",
             "surveys": "response_id", "reviews": "review_id", "referrals": "referral_id"}
WEB_DUPLICATES = 3  # web events re-exported in a later daily file
EMAIL_DUPLICATES = 2  # email event lines exported twice in the same file


def inject_bad_records(files: list[SourceFile], ids: dict[str, _Ids],
                       rng: random.Random) -> None:
    """Add bad records and duplicates at random places; each bad record copies a real record's
    identifiers and time (so it is never later than the last planned event) and has one flaw."""
    by_source: dict[str, list[SourceFile]] = {}
    for f in files:
        by_source.setdefault(f.source, []).append(f)
    def usable(r: Record, qualifies: Callable[[Row], bool] | None) -> bool:
        return (r.status == "loaded" and isinstance(r.row, dict)
                and (qualifies is None or qualifies(r.row)))

    for source, reason, qualifies, make in BAD_RECORDS:
        targets = [f for f in by_source.get(source, [])
                   if any(usable(r, qualifies) for r in f.records)]
        if not targets:  # a tiny sample may lack such records
            continue
        target = rng.choice(targets)
        base = rng.choice([r for r in target.records if usable(r, qualifies)]).row
        assert isinstance(base, dict)
        fresh = dict(base)
        new_id = ids[source].next()
        fresh[ID_FIELDS[source]] = (f"{STORE_CODES[fresh['store']]}-{new_id}"
                                    if source == "store" else new_id)
        target.records.insert(rng.randint(0, len(target.records)),
                              Record(make(fresh), "rejected", reason))
    web = by_source.get("web", [])
    for _ in range(WEB_DUPLICATES if len(web) > 1 else 0):
        i = rng.randrange(len(web) - 1)
        original = rng.choice([r for r in web[i].records if r.status == "loaded"])
        later = web[rng.randint(i + 1, min(len(web) - 1, i + 3))]
        later.records.insert(rng.randint(0, len(later.records)),
                             Record(original.row, "duplicate"))
    for _ in range(EMAIL_DUPLICATES if "email" in by_source else 0):
        f = rng.choice(by_source["email"])
        k = rng.choice([n for n, r in enumerate(f.records) if r.status == "loaded"])
        f.records.insert(rng.randint(k + 1, min(len(f.records), k + 40)),
                         Record(f.records[k].row, "duplicate"))


# --- writing -------------------------------------------------------------------------------------


def write_file(out_dir: Path, f: SourceFile) -> None:
    """Write one file byte-for-byte reproducibly (LF line ends, UTF-8, fixed key order)."""
    path = out_dir / f.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if f.format == "parquet":
        rows = [r.row for r in f.records]
        assert all(isinstance(r, dict) for r in rows)
        table = pa.Table.from_pylist(rows, schema=APP_SCHEMA)  # type: ignore[arg-type]
        pq.write_table(table, path, compression="zstd")
        return
    lines: list[str] = []
    if f.format == "csv":
        header = HEADERS[f.source]
        lines.append(_csv_line(list(header)))
        lines += [r.row if isinstance(r.row, str) else _csv_line([r.row[k] for k in header])
                  for r in f.records]
    else:
        lines += [r.row if isinstance(r.row, str) else _json_line(r.row) for r in f.records]
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")


def week_start(ms: int) -> str:
    """The ISO week (Monday, UTC) of an instant."""
    day = utc(ms).date()
    return (day - timedelta(days=day.weekday())).isoformat()
