"""The plan behind the sample data: persons, their journeys, visits and canonical events.

Used by `journey_sample.generate`. The plan is built so that the pipeline's semantics reproduce it
exactly (DESIGN.md): every planned visit is one session, every planned journey one journey, every
planned person one stitched person. The rules that make this true by construction:

- inside a visit consecutive events are 6 s to 25 min apart; visits of a person are more than
  40 minutes apart (session timeout: 30 minutes);
- inside a journey visits are less than 6 days apart; journeys of a person are more than 8 days
  apart (sample journey timeout: 7 days);
- a customer's first web visit on each cookie logs in (cookie + customer id + email on one event),
  so every cookie and email a customer uses is linked to the customer id; chats (phone only)
  happen only after the customer called (customer id + phone on one event);
- a prospect uses exactly one identifier (one cookie, or one email address);
- an abandoned checkout visit has no purchase and the person's next event is at least 3 hours
  later; a completed one has its purchase minutes after the checkout start, in the same visit.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

STAGES = ("awareness", "consideration", "conversion", "retention", "advocacy")
#: The generator's own copy of the sample config's stage rules (event_type -> stage).
STAGE_OF_EVENT_TYPE: dict[str, str | None] = {
    "ad_click": "awareness",
    "email_open": "awareness",
    "page_view": "awareness",
    "product_view": "consideration",
    "add_to_cart": "consideration",
    "checkout_start": "consideration",
    "email_click": "consideration",
    "chat": "consideration",
    "purchase": "conversion",
    "call": "retention",
    "complaint": "retention",
    "app_open": "retention",
    "review": "advocacy",
    "referral": "advocacy",
    "login": None,
    "survey_response": None,
}

SESSION_GAP = 40 * MINUTE  # least gap between visits (> 30 min session timeout)
AFTER_ABANDON_GAP = 3 * HOUR  # least gap after an abandoned checkout (> 1 h completion window)
JOURNEY_SILENCE_DAYS = 9  # next journey starts >= 9 calendar days later: > 8 days of silence
#: Visit start windows, minutes after midnight UTC (visits end before 22:00 UTC).
WINDOWS = {"web": (6 * 60, 18 * 60 + 30), "store": (7 * 60, 17 * 60 + 30),
           "call": (6 * 60 + 30, 17 * 60 + 30)}
#: Day offset of the next visit in a journey -> weight (0 = same day, later).
NEXT_DAYS = ((0, 25), (1, 30), (2, 18), (3, 12), (4, 9), (5, 6))
LATER_DAYS = ((1, 30), (2, 30), (3, 20), (4, 12), (5, 8))
CLICK = ((6, 150), (150, 600))  # gap between web/app clicks, seconds: mostly short, some long

STORES = ("berlin_mitte", "hamburg_altona", "munich_center", "cologne_ehrenfeld", "frankfurt_zeil")
#: Ads campaign -> (networks, cost per click range EUR).
AD_CAMPAIGNS: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "autumn_flash": (("social", "social", "display"), (0.12, 0.45)),
    "brand_search": (("search",), (0.30, 0.90)),
    "running_gear": (("search",), (0.50, 1.40)),
    "insta_lookbook": (("social",), (0.20, 0.60)),
    "retargeting": (("display",), (0.10, 0.40)),
}
PROSPECT_ADS = (("autumn_flash", 55), ("brand_search", 15), ("running_gear", 15),
                ("insta_lookbook", 15))
PRICES = (19.99, 24.95, 29.9, 39.99, 49.9, 59.95, 79.9, 89.99, 119.0, 149.9, 199.0)
CATEGORIES = ("running", "outdoor", "jackets", "shoes", "accessories", "kids")
DEVICES = {  # device -> user agent (shortened)
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/128.0",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6) Mobile Safari/604.1",
    "tablet": "Mozilla/5.0 (Linux; Android 14; SM-X710) Chrome/128.0",
}
FIRST_NAMES = ("anna", "ben", "clara", "david", "emma", "felix", "greta", "hannah", "jonas",
               "julia", "karl", "lea", "leon", "lina", "lukas", "marie", "max", "mia", "noah",
               "paul", "sophie", "tim", "lena", "finn", "ida", "jan", "nina", "ole", "rosa", "tom")
LAST_NAMES = ("schmidt", "mueller", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
              "schulz", "hoffmann", "koch", "richter", "klein", "wolf", "neumann", "schwarz",
              "braun", "zimmermann", "hartmann", "krueger", "lange", "werner", "krause", "lehmann")
MAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
COMPANY_PARTS = (("nord", "sued", "ost", "west", "alpen", "rhein", "elb", "spree", "main", "isar"),
                 ("tech", "bau", "logistik", "media", "sport", "haus"))
MOBILE_PREFIXES = ("151", "152", "157", "160", "162", "170", "171", "172", "176", "177", "179")
#: Survey answer weights by rated touchpoint: (nps 0..10, csat 1..5, ces 1..7).
_GOOD = ((1, 1, 1, 1, 1, 2, 3, 8, 15, 30, 37), (3, 4, 10, 38, 45), (35, 35, 15, 8, 4, 2, 1))
_MIXED = ((2, 2, 3, 4, 5, 8, 10, 16, 20, 16, 14), (8, 12, 25, 35, 20), (15, 25, 25, 15, 10, 6, 4))
_POOR = ((8, 8, 10, 12, 12, 12, 10, 8, 6, 3, 2), (35, 35, 18, 8, 4), (2, 3, 5, 10, 25, 30, 25))
SCORE_WEIGHTS = {"call_center/billing": _POOR, "call_center/returns": _MIXED,
                 "chat/returns": _MIXED}
COMMENTS = {
    "poor": ("Waited forever on the hotline", "Invoice still wrong after two calls",
             "Nobody could explain the charge, very frustrating", "Transferred three times",
             ""),
    "mixed": ("It worked in the end", "Okay, but slow", "Return label took a while", ""),
    "good": ("Quick and friendly", "Great service, thanks!", "Easy, fast delivery",
             "Helpful staff", "", ""),
}
REVIEW_TITLES = {1: ("Never again", "Billing chaos"), 2: ("Disappointing", "Slow support"),
                 3: ("Okay", "Average experience"), 4: ("Good shop", "Nice products"),
                 5: ("Excellent!", "Fast delivery, great quality", "Love it")}


@dataclass(slots=True)
class Event:
    """One planned canonical event and the raw attributes its source record carries."""

    at: int  # epoch milliseconds, UTC
    source: str
    event_type: str
    touchpoint: str
    customer_id: str | None = None
    anonymous_id: str | None = None
    email: str | None = None
    phone: str | None = None
    account_id: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str | None:
        return STAGE_OF_EVENT_TYPE[self.event_type]


@dataclass(slots=True)
class Visit:
    """A burst of activity of one person: becomes exactly one session."""

    events: list[Event]
    checkout: str | None = None  # "completed" | "abandoned" when the visit starts a checkout
    login_first: bool = False  # a web visit whose first event is a login
    links_identity: bool = False  # carries the first link of one of the person's identifiers

    @property
    def start(self) -> int:
        return self.events[0].at

    @property
    def end(self) -> int:
        return self.events[-1].at


@dataclass
class Person:
    """A customer (has a customer id) or a prospect (exactly one cookie or one email)."""

    index: int
    customer_id: str | None
    segment: str  # new | returning
    email: str | None = None
    phone: str | None = None  # canonical form: + and digits
    cookies: list[str] = field(default_factory=list)
    app_device: tuple[str, str] | None = None  # (device_id, os)
    account_id: str | None = None
    role: str | None = None
    home_store: str = STORES[0]
    store_shopper: bool = False
    journeys: list[list[Visit]] = field(default_factory=list)
    linked_cookies: list[str] = field(default_factory=list)
    email_linked: bool = False
    phone_linked: bool = False

    @property
    def is_customer(self) -> bool:
        return self.customer_id is not None

    def events(self) -> list[Event]:
        return [e for j in self.journeys for v in j for e in v.events]


@dataclass
class Plan:
    """Everything the files and the ground truth are rendered from."""

    start_ms: int
    days: int
    problem_week: date  # Monday of the checkout-problem week
    persons: list[Person]
    cookie_device: dict[str, str]
    conflict_cookie: str | None = None


def epoch_ms(day: date) -> int:
    return (datetime(day.year, day.month, day.day, tzinfo=UTC)
            - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def utc(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def weighted(rng: random.Random, pairs: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in pairs], [w for _, w in pairs])[0]


def _company(account: int) -> str:
    """A fictitious company name per account: nordtech, suedbau, ..., then numbered."""
    first, second = COMPANY_PARTS
    n = len(first) * len(second)
    name = first[account % len(first)] + second[account // len(first) % len(second)]
    return name if account < n else f"{name}{account // n + 1}"


def problem_week_of(start: date) -> date:
    """The checkout-problem week: the first ISO week starting at least 7 days after `start`."""
    first = start + timedelta(days=7)
    return first + timedelta(days=(7 - first.weekday()) % 7)


class _Journey:
    """Lays out a journey's visits one after another within the journey rules."""

    def __init__(self, planner: Planner, day: int) -> None:
        self.planner = planner
        self.day = day
        self.visits: list[Visit] = []
        self.closed = False

    def add(self, window: str, make: Callable[[int], Visit],
            days: Sequence[tuple[int, float]] = NEXT_DAYS) -> Visit | None:
        """Place the next visit (None once the period is over) and build it at its start."""
        if self.closed:
            return None
        if not self.visits:
            start: int | None = self.planner.start_on(self.day, window)
        else:
            prev = self.visits[-1]
            gap = AFTER_ABANDON_GAP if prev.checkout == "abandoned" else SESSION_GAP
            start = self.planner.next_start(prev.end, window, days, gap)
        if start is None:
            self.closed = True
            return None
        visit = make(start)
        self.visits.append(visit)
        return visit


class _Builder:
    """Appends a visit's events at increasing times."""

    def __init__(self, rng: random.Random, start: int) -> None:
        self.rng = rng
        self.start = start
        self.events: list[Event] = []

    def at(self, gap: Sequence[tuple[int, int]] | tuple[int, int], precise: bool) -> int:
        """The next event time: `gap` seconds after the previous event (ms for precise sources)."""
        if not self.events:
            t = self.start
        else:
            ranges = gap if isinstance(gap[0], tuple) else (gap,)
            lo, hi = ranges[0] if len(ranges) == 1 or self.rng.random() < 0.9 else ranges[1]
            t = self.events[-1].at + self.rng.randint(lo, hi) * SECOND
        t -= t % SECOND
        return t + self.rng.randrange(SECOND) if precise else t

    def add(self, event: Event) -> Event:
        self.events.append(event)
        return event


class _WebPages:
    """The web pages of one visit of one person on one cookie: after a login they carry the
    customer id, the account and the role."""

    def __init__(self, person: Person, builder: _Builder, visit: Visit, cookie: str,
                 utm: str | None) -> None:
        self.person, self.builder, self.visit = person, builder, visit
        self.cookie, self.utm = cookie, utm
        self.logged_in = False
        self.must_login = person.is_customer and (cookie not in person.linked_cookies
                                                  or not person.email_linked)

    def page(self, event_type: str, page_type: str, gap: Any = CLICK,
             revenue: float | None = None, path: str = "") -> Event:
        p, b = self.person, self.builder
        return b.add(Event(
            at=b.at(gap, precise=True), source="web", event_type=event_type,
            touchpoint=f"web/{page_type}", anonymous_id=self.cookie,
            customer_id=p.customer_id if self.logged_in else None,
            account_id=p.account_id if self.logged_in else None,
            email=p.email if event_type == "login" else None,
            attrs={"page_type": page_type, "revenue": revenue, "utm_campaign": self.utm,
                   "segment": p.segment, "role": p.role if self.logged_in else None,
                   "path": path}))

    def login(self, gap: Any = CLICK) -> None:
        """The login page; the first login of a cookie or of the email links the identity."""
        p = self.person
        self.logged_in = True
        if self.cookie not in p.linked_cookies or not p.email_linked:
            self.visit.links_identity = True
            if self.cookie not in p.linked_cookies:
                p.linked_cookies.append(self.cookie)
            p.email_linked = True
        self.page("login", "account", gap, path="/account/login")


class Planner:
    """Builds the plan: persons first, then each person's journeys in order."""

    def __init__(self, rng: random.Random, start: date, days: int) -> None:
        self.rng = rng
        self.start = start
        self.t0 = epoch_ms(start)
        self.days = days
        self.last_day = days - 1
        self.problem_week = problem_week_of(start)
        self.cookie_device: dict[str, str] = {}
        self.account_anchor: dict[str, int] = {}
        self._emails: set[str] = set()

    # --- time ----------------------------------------------------------------------------------

    def day_of(self, ms: int) -> int:
        return (ms - self.t0) // DAY

    def start_on(self, day: int, window: str) -> int | None:
        if day > self.last_day:
            return None
        lo, hi = WINDOWS[window]
        return self.t0 + day * DAY + self.rng.randrange(lo * MINUTE, hi * MINUTE, SECOND)

    def next_start(self, prev_end: int, window: str, days: Sequence[tuple[int, float]],
                   gap: int) -> int | None:
        """A start at least `gap` after `prev_end`, within `window`, at most 5 days later."""
        offset = weighted(self.rng, days)
        if offset == 0:
            start = prev_end + gap + self.rng.randrange(0, 4 * HOUR, SECOND)
            start -= start % SECOND
            lo, hi = WINDOWS[window]
            minute = (start - self.t0) % DAY // MINUTE
            if self.day_of(start) == self.day_of(prev_end) and lo <= minute < hi:
                return start
            offset = 1
        return self.start_on(self.day_of(prev_end) + offset, window)

    def in_problem_week(self, ms: int) -> bool:
        day = utc(ms).date()
        return self.problem_week <= day < self.problem_week + timedelta(days=7)

    # --- persons -------------------------------------------------------------------------------

    def make_persons(self, customers: int, prospects: int) -> list[Person]:
        """Customers (15% B2B in accounts of ~7.5 people) then prospects (half cookie-only)."""
        rng = self.rng
        n_b2b = round(customers * 0.15)
        n_accounts = round(n_b2b / 7.5) if n_b2b >= 4 else 0
        b2b = sorted(rng.sample(range(customers), n_b2b)) if n_accounts else []
        membership: dict[int, tuple[str, str, str]] = {}
        for k, index in enumerate(b2b):
            account = k % n_accounts
            role = "buyer" if k < n_accounts else weighted(
                rng, (("buyer", 1), ("user", 3), ("influencer", 2)))
            membership[index] = (f"ACC-{account + 1:04d}", _company(account), role)
        for account in range(n_accounts):
            self.account_anchor[f"ACC-{account + 1:04d}"] = rng.randint(0, self.last_day)
        persons = [self._customer(i, membership.get(i)) for i in range(customers)]
        persons += [self._prospect(customers + i) for i in range(prospects)]
        return persons

    def _unique_email(self, local: str, domain: str) -> str:
        email, n = f"{local}@{domain}", 1
        while email in self._emails:
            n += 1
            email = f"{local}{n}@{domain}"
        self._emails.add(email)
        return email

    def _cookie(self, device: str) -> str:
        cookie = f"GA1.1.{self.rng.randrange(10**9, 10**10)}.{self.rng.randrange(1693, 1756)}"
        cookie += f"{self.rng.randrange(10**6):06d}"
        if cookie in self.cookie_device:
            raise RuntimeError(f"cookie id collision: {cookie}")
        self.cookie_device[cookie] = device
        return cookie

    def _customer(self, index: int, b2b: tuple[str, str, str] | None) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        p = Person(index=index, customer_id=f"C{100001 + index}",
                   segment="new" if rng.random() < 0.35 else "returning")
        if b2b:
            p.account_id, company, p.role = b2b
            p.email = self._unique_email(f"{first}.{last}", f"{company}.example")
        else:
            p.email = self._unique_email(f"{first}.{last}{rng.randint(1, 99)}",
                                         rng.choice(MAIL_DOMAINS))
        p.phone = f"+49{rng.choice(MOBILE_PREFIXES)}{(index * 7919 + 10_000_019) % 10**8:08d}"
        first_device = "desktop" if rng.random() < 0.6 else "mobile"
        p.cookies = [self._cookie(first_device)]
        if rng.random() < 0.3:
            p.cookies.append(self._cookie("mobile" if first_device == "desktop" else "tablet"))
        if rng.random() < (0.5 if p.role == "user" else 0.35):
            os_name = "ios" if rng.random() < 0.45 else "android"
            device_id = (str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
                         if os_name == "ios" else f"{rng.getrandbits(64):016x}")
            p.app_device = (device_id, os_name)
        p.home_store = rng.choice(STORES)
        p.store_shopper = rng.random() < 0.3
        return p

    def _prospect(self, index: int) -> Person:
        rng = self.rng
        p = Person(index=index, customer_id=None, segment="new")
        if rng.random() < 0.5:
            p.cookies = [self._cookie(weighted(rng, (("desktop", 4), ("mobile", 5),
                                                     ("tablet", 1))))]
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            p.email = self._unique_email(f"{first}{last[:1]}{rng.randint(10, 9999)}",
                                         rng.choice(MAIL_DOMAINS))
        return p

    # --- journeys ------------------------------------------------------------------------------

    def plan_person(self, p: Person, *, last_day_anchor: bool = False) -> None:
        """1-3 journeys for customers, 1-2 for prospects, each > 8 days after the previous."""
        rng = self.rng
        if p.is_customer:
            n = weighted(rng, ((1, 70), (2, 25), (3, 5)))
        else:
            n = weighted(rng, ((1, 85), (2, 15)))
        day = rng.randint(0, max(0, self.last_day - (n - 1) * 12))
        if p.account_id:
            day = min(self.last_day, max(0, self.account_anchor[p.account_id]
                                          + rng.randint(-2, 4)))
        if last_day_anchor:  # someone is active on the last day, so as_of is the period end
            n, day = 1, self.last_day
        for _ in range(n):
            if day > self.last_day:
                break
            kind = self._journey_kind(p)
            visits = getattr(self, f"_journey_{kind}")(p, day)
            p.journeys.append(visits)
            day = self.day_of(visits[-1].end) + JOURNEY_SILENCE_DAYS + rng.randint(0, 4)

    def _journey_kind(self, p: Person) -> str:
        if not p.is_customer:
            return "prospect_web" if p.cookies else "prospect_email"
        weights = [("shop_web", 22), ("browse", 8), ("autumn_flash", 9), ("newsletter", 14),
                   ("support", 18 if p.role == "user" else 14),
                   ("shop_store", 14 if p.store_shopper else 3),
                   ("shop_app", 14 if p.app_device else 0)]
        return weighted(self.rng, weights)

    def _journey_shop_web(self, p: Person, day: int) -> list[Visit]:
        rng = self.rng
        j = _Journey(self, day)
        if rng.random() < (0.7 if p.segment == "new" else 0.4):  # returning ones often just buy
            entry, campaign = self._customer_entry(p)
            depth = "cart" if rng.random() < 0.3 else "browse"
            j.add("web", lambda s: self.web_visit(p, s, entry=entry, campaign=campaign,
                                                   depth=depth))
            if rng.random() < 0.3:
                j.add("web", lambda s: self.browse_visit(p, s))
        self._checkout(p, j, "web", retries=1)
        return j.visits

    def _journey_shop_app(self, p: Person, day: int) -> list[Visit]:
        j = _Journey(self, day)
        j.add("web", lambda s: self.app_visit(p, s, depth="browse"))
        if self.rng.random() < 0.4:
            j.add("web", lambda s: self.browse_visit(p, s))
        self._checkout(p, j, "app", retries=1)
        return j.visits

    def _journey_shop_store(self, p: Person, day: int) -> list[Visit]:
        rng = self.rng
        j = _Journey(self, day)
        if rng.random() < 0.5:
            j.add("web", lambda s: self.email_visit(p, s))
        else:
            j.add("web", lambda s: self.browse_visit(p, s))
        if j.add("store", lambda s: self.store_visit(p, s)):
            self._after_purchase(p, j)
        return j.visits

    def _journey_browse(self, p: Person, day: int) -> list[Visit]:
        rng = self.rng
        j = _Journey(self, day)
        for _ in range(weighted(rng, ((1, 70), (2, 25), (3, 5)))):
            j.add("web", lambda s: self.browse_visit(p, s))
        if rng.random() < 0.2:
            self._checkout(p, j, "web", retries=0)
        return j.visits

    def _journey_autumn_flash(self, p: Person, day: int) -> list[Visit]:
        """The low-converting campaign: quick bounces, rarely a purchase."""
        rng = self.rng
        j = _Journey(self, day)
        cookie = rng.choice(p.cookies)
        j.add("web", lambda s: self.web_visit(p, s, entry="ad", campaign="autumn_flash",
                                               depth="bounce", cookie=cookie))
        if rng.random() < 0.35:
            j.add("web", lambda s: self.web_visit(p, s, entry="direct", depth="browse"))
        if rng.random() < 0.03:
            self._checkout(p, j, "web", retries=0, outcome="completed")
        return j.visits

    def _journey_newsletter(self, p: Person, day: int) -> list[Visit]:
        j = _Journey(self, day)
        for _ in range(weighted(self.rng, ((1, 60), (2, 30), (3, 10)))):
            j.add("web", lambda s: self.email_visit(p, s))
        return j.visits

    def _journey_support(self, p: Person, day: int) -> list[Visit]:
        """A billing, delivery or returns call; follow-up calls, chats, app visits."""
        rng = self.rng
        j = _Journey(self, day)
        queue = weighted(rng, (("billing", 60 if p.account_id else 45), ("delivery", 25),
                               ("returns", 30)))
        self._call(p, j, queue, survey=0.45)
        if rng.random() < (0.45 if queue == "billing" else 0.2):
            self._call(p, j, queue, survey=0.35, days=LATER_DAYS[:4])
        if rng.random() < 0.3:
            topic = "returns" if queue == "returns" else "order_status"
            self._chat(p, j, topic)
        if p.app_device and rng.random() < 0.25:
            j.add("web", lambda s: self.app_visit(p, s, depth="browse"))
        if rng.random() < 0.15:
            j.add("web", lambda s: self.email_visit(p, s))
        return j.visits

    def _journey_prospect_web(self, p: Person, day: int) -> list[Visit]:
        rng = self.rng
        j = _Journey(self, day)
        for k in range(weighted(rng, ((1, 75), (2, 20), (3, 5)))):
            if rng.random() < (0.75 if k == 0 else 0.35):
                entry, campaign = "ad", weighted(rng, PROSPECT_ADS)
            else:
                entry, campaign = "direct", None
            depth = weighted(rng, (("bounce", 30 if campaign == "autumn_flash" else 10),
                                   ("browse", 60), ("cart", 8)))
            j.add("web", lambda s, e=entry, c=campaign, d=depth: self.web_visit(
                p, s, entry=e, campaign=c, depth=d))
        return j.visits

    def _journey_prospect_email(self, p: Person, day: int) -> list[Visit]:
        j = _Journey(self, day)
        for _ in range(weighted(self.rng, ((1, 60), (2, 30), (3, 10)))):
            j.add("web", lambda s: self.email_visit(p, s))
        return j.visits

    # --- journey steps -------------------------------------------------------------------------

    def _customer_entry(self, p: Person) -> tuple[str, str | None]:
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            campaigns = ["brand_search", "running_gear", "insta_lookbook"]
            if p.segment == "returning":
                campaigns.append("retargeting")
            return "ad", rng.choice(campaigns)
        if r < 0.55:
            return "email", None
        if p.segment == "returning" and rng.random() < 0.35:
            return "login", None
        return "direct", None

    def _checkout(self, p: Person, j: _Journey, channel: str, *, retries: int,
                  outcome: str | None = None) -> bool:
        """Checkout visits until one completes (then post-purchase visits) or retries run out."""
        rng = self.rng
        for attempt in range(retries + 1):
            if channel == "app":
                visit = j.add("web", lambda s: self.app_visit(
                    p, s, depth="checkout", outcome=outcome or self.checkout_outcome(s, "app")))
            else:
                entry = "email" if attempt else self._customer_entry(p)[0]
                campaign = "cart_reminder" if attempt else None
                if entry == "ad":
                    entry = "direct"
                visit = j.add("web", lambda s, e=entry, c=campaign: self.web_visit(
                    p, s, entry=e, campaign=c, depth="checkout",
                    outcome=outcome or self.checkout_outcome(s, "web")),
                    days=((0, 20), (1, 40), (2, 25), (3, 15)))
            if visit is None:
                return False
            if visit.checkout == "completed":
                self._after_purchase(p, j)
                return True
            if rng.random() < 0.45:
                return False
        return False

    def checkout_outcome(self, at: int, channel: str) -> str:
        """Web checkouts fail often in the problem week (65%), else 22%; app checkouts 12%."""
        rate = 0.12 if channel == "app" else 0.65 if self.in_problem_week(at) else 0.22
        return "abandoned" if self.rng.random() < rate else "completed"

    def _after_purchase(self, p: Person, j: _Journey) -> None:
        """Delivery/returns calls, chats, app use, reviews and referrals after a purchase."""
        rng = self.rng
        returning = p.segment == "returning"
        if rng.random() < 0.12:
            self._call(p, j, "delivery", survey=0.35, days=LATER_DAYS)
        if rng.random() < 0.07:
            self._call(p, j, "returns", survey=0.35, days=LATER_DAYS)
        if p.phone_linked and rng.random() < 0.25:
            self._chat(p, j, rng.choice(("order_status", "returns", "product_question")))
        if p.app_device and rng.random() < 0.25:
            j.add("web", lambda s: self.app_visit(p, s, depth="browse"), days=LATER_DAYS)
        if rng.random() < 0.06:
            rated = j.visits[-1].events[-1].touchpoint
            if rated != "survey/survey_response":
                j.add("web", lambda s: self.survey_visit(p, s, rated, named=True),
                      days=LATER_DAYS[:2])
        if rng.random() < (0.25 if returning else 0.12):
            j.add("web", lambda s: self.review_visit(p, s), days=LATER_DAYS)
        if rng.random() < (0.10 if returning else 0.04):
            j.add("web", lambda s: self.referral_visit(p, s), days=LATER_DAYS)

    def _call(self, p: Person, j: _Journey, queue: str, *, survey: float,
              days: Sequence[tuple[int, float]] = NEXT_DAYS) -> None:
        """A call; its survey comes in the same visit when the call was short, else later."""
        rng = self.rng
        reason = "complaint" if rng.random() < (0.55 if queue == "billing" else 0.3) else "inquiry"
        visit = j.add("call", lambda s: self.call_visit(p, s, queue, reason), days=days)
        if visit is None or rng.random() >= survey:
            return
        call = visit.events[0]
        took = call.attrs["wait_seconds"] + call.attrs["handle_seconds"] + rng.randint(60, 300)
        named = rng.random() < 0.5
        if took <= 25 * 60:
            b = _Builder(rng, visit.start)
            b.events = visit.events
            self._survey(p, b, visit, call.touchpoint, named=named, gap=(took, took))
        else:
            j.add("web", lambda s: self.survey_visit(p, s, call.touchpoint, named=named),
                  days=((0, 60), (1, 40)))

    def _chat(self, p: Person, j: _Journey, topic: str) -> None:
        visit = j.add("call", lambda s: self.chat_visit(p, s, topic))
        if visit is not None and self.rng.random() < 0.3:
            b = _Builder(self.rng, visit.start)
            b.events = visit.events
            chat = visit.events[0]
            took = chat.attrs["messages"] * 40
            self._survey(p, b, visit, chat.touchpoint, named=self.rng.random() < 0.5,
                         gap=(took + 60, took + 300))

    # --- visits --------------------------------------------------------------------------------

    def browse_visit(self, p: Person, start: int) -> Visit:
        """A customer's browsing visit: web (direct, login, email, retargeting) or app."""
        rng = self.rng
        r = rng.random()
        if p.app_device and r < 0.45:
            return self.app_visit(p, start, depth="browse")
        entry, campaign = self._customer_entry(p)
        return self.web_visit(p, start, entry=entry, campaign=campaign,
                              depth="cart" if rng.random() < 0.2 else "browse")

    def web_visit(self, p: Person, start: int, *, entry: str = "direct",
                  campaign: str | None = None, depth: str = "browse",
                  outcome: str | None = None, cookie: str | None = None) -> Visit:
        """Web pages after an ad click, an email click, a login or a direct entry.

        A customer logs in when the cookie has no login yet, the email has no link yet, or
        before putting something in the cart; from the login on, events carry the customer id.
        """
        rng = self.rng
        b = _Builder(rng, start)
        cookie = cookie or (p.cookies[0] if len(p.cookies) == 1 or rng.random() < 0.65
                            else p.cookies[1])
        if entry == "email" and campaign is None:
            campaign = self.email_campaign(p, start)
        web = _WebPages(p, b, Visit(b.events), cookie,
                        campaign if entry in ("ad", "email") else None)
        self._web_entry(web, entry, campaign)
        if web.must_login and not web.logged_in and (depth in ("bounce", "browse")
                                                     or rng.random() < 0.4):
            web.login()
        if depth == "bounce":
            for _ in range(rng.randint(0, 1)):
                web.page("page_view", "category", path=f"/c/{rng.choice(CATEGORIES)}")
            return web.visit
        sku = self._web_browse(web, depth)
        if depth in ("cart", "checkout"):
            if p.is_customer and not web.logged_in and (web.must_login or depth == "checkout"
                                                        or rng.random() < 0.5):
                web.login()
            web.page("add_to_cart", "product", path=f"/p/{sku}")
            if rng.random() < 0.3:
                web.page("page_view", "cart", path="/cart")
        if depth == "checkout":
            self._web_checkout(web, outcome, start)
        return web.visit

    def _web_entry(self, web: _WebPages, entry: str, campaign: str | None) -> None:
        """The first events of a web visit: ad click and landing page, email open and click
        and landing page, a login, or the home page."""
        p, b, rng = web.person, web.builder, self.rng
        if entry == "ad":
            assert campaign is not None
            networks, (lo, hi) = AD_CAMPAIGNS[campaign]
            b.add(Event(at=b.at(CLICK, precise=False), source="ads", event_type="ad_click",
                        touchpoint=f"ads/{campaign}", anonymous_id=web.cookie,
                        attrs={"campaign": campaign, "network": rng.choice(networks),
                               "cost_eur": round(rng.uniform(lo, hi), 2)}))
            web.page("page_view", "landing", (2, 15), path=f"/lp/{campaign}")
        elif entry == "email":
            assert campaign is not None
            if not p.is_customer:
                raise ValueError("prospects' email clicks never reach the web")
            self._email_event(p, b, "open", campaign)
            self._email_event(p, b, "click", campaign, gap=(10, 900))
            web.page("page_view", "landing", (2, 12), path=f"/lp/{campaign}")
        elif entry == "login":
            web.visit.login_first = True
            web.login()
        else:
            web.page("page_view", "home", path="/")

    def _web_browse(self, web: _WebPages, depth: str) -> str:
        """Category and product pages (few when the person comes back to buy); returns the
        last product's SKU."""
        rng = self.rng
        buying = depth == "checkout"  # comes back to buy: few pages before the cart
        if not buying and rng.random() < 0.4:
            web.page("page_view", "category", path=f"/c/{rng.choice(CATEGORIES)}")
        sku = ""
        for _ in range(weighted(rng, ((1, 85), (2, 15)) if buying else
                                ((1, 60), (2, 30), (3, 10)))):
            sku = f"SKU-{rng.randint(10000, 99999)}"
            web.page("product_view", "product", path=f"/p/{sku}")
        if depth == "browse" and rng.random() < 0.08:
            web.page("page_view", "help", path="/help/sizes")
        return sku

    def _web_checkout(self, web: _WebPages, outcome: str | None, start: int) -> None:
        """Checkout, then the purchase (sometimes a survey) or a help page on payment."""
        rng = self.rng
        assert outcome in ("completed", "abandoned")
        web.page("checkout_start", "checkout", path="/checkout")
        web.visit.checkout = outcome
        if outcome == "completed":
            web.page("purchase", "checkout", (40, 360), revenue=self._basket(web.person),
                     path="/checkout/confirmation")
            if rng.random() < 0.12:
                self._survey(web.person, web.builder, web.visit, "web/checkout",
                             named=rng.random() < 0.5)
        elif rng.random() < (0.5 if self.in_problem_week(start) else 0.15):
            web.page("page_view", "help", (20, 240), path="/help/payment")

    def _basket(self, p: Person) -> float:
        rng = self.rng
        total = sum(rng.choice(PRICES) for _ in range(rng.randint(1, 3)))
        if p.account_id:
            total *= rng.randint(4, 20)
        return round(total, 2)

    def app_visit(self, p: Person, start: int, *, depth: str,
                  outcome: str | None = None) -> Visit:
        """App open, product views, and for checkouts cart, checkout and (if completed) purchase."""
        rng = self.rng
        assert p.app_device is not None and p.customer_id is not None
        device_id, os_name = p.app_device
        b = _Builder(rng, start)
        visit = Visit(b.events)

        def screen(event_type: str, name: str, gap: Any = CLICK,
                   amount: float | None = None) -> None:
            b.add(Event(at=b.at(gap, precise=True), source="app", event_type=event_type,
                        touchpoint=f"app/{name}", customer_id=p.customer_id,
                        anonymous_id=device_id, account_id=p.account_id,
                        attrs={"screen": name, "amount": amount, "os": os_name}))

        screen("app_open", "home")
        for _ in range(rng.randint(1, 3)):
            screen("product_view", "product")
        if depth == "checkout":
            assert outcome in ("completed", "abandoned")
            screen("add_to_cart", "product")
            screen("checkout_start", "checkout")
            visit.checkout = outcome
            if outcome == "completed":
                screen("purchase", "checkout", (30, 300), amount=self._basket(p))
                if rng.random() < 0.1:
                    self._survey(p, b, visit, "app/checkout", named=rng.random() < 0.5)
        return visit

    def email_campaign(self, p: Person, at: int) -> str:
        rng = self.rng
        day = utc(at).date()
        options: list[tuple[str, float]] = [(f"newsletter_w{day.isocalendar().week:02d}", 50),
                                            ("back_in_stock", 8)]
        if day >= self.start + timedelta(days=20):
            options.append(("autumn_sale", 25))
        if p.segment == "new":
            options.append(("welcome_series", 15))
        elif p.is_customer:
            options.append(("loyalty_club", 15))
        return weighted(rng, options)

    def _email_event(self, p: Person, b: _Builder, raw: str, campaign: str,
                     gap: Any = CLICK) -> None:
        b.add(Event(at=b.at(gap, precise=False), source="email",
                    event_type=f"email_{raw}", touchpoint=f"email/{campaign}", email=p.email,
                    attrs={"campaign": campaign, "event": raw}))

    def email_visit(self, p: Person, start: int) -> Visit:
        """An email open; customers sometimes click through to the web (always, while their
        email has no link yet), prospects sometimes click without a tracked web visit."""
        rng = self.rng
        if p.is_customer and (not p.email_linked or rng.random() < 0.2):
            return self.web_visit(p, start, entry="email",
                                  depth="cart" if rng.random() < 0.15 else "browse")
        b = _Builder(rng, start)
        campaign = self.email_campaign(p, start)
        self._email_event(p, b, "open", campaign)
        if not p.is_customer and rng.random() < 0.3:
            self._email_event(p, b, "click", campaign, gap=(10, 900))
        return Visit(b.events)

    def call_visit(self, p: Person, start: int, queue: str, reason: str) -> Visit:
        """A call to the queue: billing waits are long and often escalate."""
        rng = self.rng
        billing = queue == "billing"
        visit = Visit([Event(
            at=start + rng.randrange(SECOND), source="call_center",
            event_type="complaint" if reason == "complaint" else "call",
            touchpoint=f"call_center/{queue}", customer_id=p.customer_id, phone=p.phone,
            account_id=p.account_id,
            attrs={"queue": queue, "reason": reason,
                   "wait_seconds": rng.randint(540, 2400) if billing else rng.randint(15, 300),
                   "handle_seconds": rng.randint(180, 1200) if billing else rng.randint(90, 600),
                   "outcome": weighted(rng, (("resolved", 35), ("escalated", 35),
                                             ("callback", 30)) if billing else
                                       (("resolved", 80), ("escalated", 8), ("callback", 12)))})])
        if not p.phone_linked:
            p.phone_linked = True
            visit.links_identity = True
        return visit

    def chat_visit(self, p: Person, start: int, topic: str) -> Visit:
        """A chat, identified by phone only; only after the customer called at least once."""
        if not p.phone_linked:
            raise RuntimeError("a chat before any call would leave the phone unlinked")
        return Visit([Event(at=start, source="chat", event_type="chat",
                            touchpoint=f"chat/{topic}", phone=p.phone,
                            attrs={"topic": topic, "messages": self.rng.randint(3, 18)})])

    def store_visit(self, p: Person, start: int) -> Visit:
        rng = self.rng
        store = p.home_store if rng.random() < 0.8 else rng.choice(STORES)
        items = rng.randint(1, 4)
        amount = round(sum(rng.choice(PRICES) for _ in range(items)), 2)
        b = _Builder(rng, start)
        visit = Visit(b.events)
        b.add(Event(at=start, source="store", event_type="purchase", touchpoint=f"store/{store}",
                    customer_id=p.customer_id,
                    attrs={"store": store, "amount_eur": amount, "items": items}))
        if rng.random() < 0.15:
            self._survey(p, b, visit, f"store/{store}", named=rng.random() < 0.5)
        return visit

    def review_visit(self, p: Person, start: int) -> Visit:
        rng = self.rng
        rating = weighted(rng, ((1, 4), (2, 5), (3, 10), (4, 35), (5, 46)))
        site = rng.choice(("trustpilot", "google"))
        return Visit([Event(at=start, source="reviews", event_type="review",
                            touchpoint=f"reviews/{site}", customer_id=p.customer_id,
                            attrs={"site": site, "rating": rating,
                                   "title": rng.choice(REVIEW_TITLES[rating])})])

    def referral_visit(self, p: Person, start: int) -> Visit:
        rng = self.rng
        friend = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}{rng.randint(100, 999)}"
        return Visit([Event(at=start, source="referrals", event_type="referral",
                            touchpoint="referrals/referral", customer_id=p.customer_id,
                            attrs={"referred_email": f"{friend}@{rng.choice(MAIL_DOMAINS)}",
                                   "program": "b2b_partner" if p.account_id else "friends_10"})])

    def survey_visit(self, p: Person, start: int, rated: str, *, named: bool) -> Visit:
        """A survey answered later, on its own (it rates the journey's previous touchpoint)."""
        b = _Builder(self.rng, start)
        visit = Visit(b.events)
        self._survey(p, b, visit, rated, named=named, gap=(0, 0))
        return visit

    def _survey(self, p: Person, b: _Builder, visit: Visit, rated: str, *, named: bool,
                gap: tuple[int, int] = (180, 1200)) -> None:
        """A survey answer about `rated`; names it in its touchpoint column when `named`."""
        rng = self.rng
        r = rng.random()
        ids = "customer_id" if r < 0.45 else "both" if r < 0.8 or not p.email_linked else "email"
        if ids == "both" and not p.email_linked:
            p.email_linked = True
            visit.links_identity = True
        nps_w, csat_w, ces_w = SCORE_WEIGHTS.get(rated, _GOOD)
        asked = [rng.random() < 0.75, rng.random() < 0.7, rng.random() < 0.55]
        if not any(asked):
            asked[0] = True
        nps = weighted(rng, list(zip(range(11), nps_w, strict=True))) if asked[0] else None
        csat = weighted(rng, list(zip(range(1, 6), csat_w, strict=True))) if asked[1] else None
        ces = weighted(rng, list(zip(range(1, 8), ces_w, strict=True))) if asked[2] else None
        mood = ("poor" if (nps is not None and nps <= 4) or (csat is not None and csat <= 2)
                else "good" if (nps or 0) >= 8 or (csat or 0) >= 4 else "mixed")
        b.add(Event(at=b.at(gap, precise=False), source="surveys", event_type="survey_response",
                    touchpoint="survey/survey_response",
                    customer_id=p.customer_id if ids != "email" else None,
                    email=p.email if ids != "customer_id" else None,
                    attrs={"nps": nps, "csat": csat, "ces": ces,
                           "touchpoint": rated if named else None,
                           "comment": rng.choice(COMMENTS[mood])}))

    # --- the shared device ---------------------------------------------------------------------

    def plant_conflict(self, persons: list[Person]) -> str | None:
        """Customer B logs in on customer A's cookie X after A did: one identity conflict.

        B's visit on X starts with the login (so every event of it carries B's customer id) and
        carries no email; B's own cookie and email are linked by earlier visits.
        """
        rng = self.rng
        customers = [p for p in persons if p.is_customer]
        first_login: dict[int, tuple[int, str]] = {}
        for p in customers:
            logins = [(e.at, e.anonymous_id) for e in p.events() if e.event_type == "login"]
            if logins:
                first_login[p.index] = min(logins)  # type: ignore[arg-type]
        candidates = [(p, v) for p in customers for j in p.journeys for v in j
                      if v.login_first and not v.links_identity
                      and self.day_of(v.start) >= self.days // 3]
        if not candidates:
            return None
        b_person, visit = rng.choice(candidates)
        owners = [p for p in customers if p.index != b_person.index and p.index in first_login
                  and first_login[p.index][0] < visit.start - DAY]
        same_account = [p for p in owners if p.account_id and p.account_id == b_person.account_id]
        if not owners:
            return None
        a_person = rng.choice(same_account or owners)
        shared = first_login[a_person.index][1]
        for event in visit.events:
            if event.source == "web":
                event.anonymous_id = shared
                event.email = None
        return shared
