"""The demo's visitors: simulated people browsing a small site, and the product events they make.

Pageviews follow the site's links (a journey per session) with a country, a device and a
referrer; a visitor reaching ``/signup`` or ``/checkout`` converts now and then. They are posted
with ``POST /api/events``, about ``demo_events_per_second`` per second. On a log with no events
in the 23 hours before this one, a day of past visits goes first (``POST /api/events/batch``
with past ``timestamp``s, at most ``BACKFILL_MAX_EVENTS``).
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import trio

from actors.clock import Clock, iso
from web.apps.demo.clients import Server
from web.apps.demo.marks import DEMO_CHAT_HOST, DEMO_PREFIX

log = logging.getLogger("switchboard.demo")

BACKFILL_BATCH = 500
BACKFILL_MAX_EVENTS = 3000

Weighted = list[tuple[str, int]]
PAGES: dict[str, Weighted] = {  # page -> next pages with weights ("" = leave)
    "/": [("/features", 4), ("/pricing", 4), ("/blog", 3), ("/docs", 2), ("", 2)],
    "/features": [("/pricing", 5), ("/docs", 3), ("/", 1), ("", 2)],
    "/pricing": [("/signup", 4), ("/checkout", 2), ("/features", 2), ("", 3)],
    "/blog": [("/blog/realtime-on-trio", 3), ("/", 2), ("/features", 2), ("", 3)],
    "/blog/realtime-on-trio": [("/features", 2), ("/docs", 2), ("", 4)],
    "/docs": [("/docs/quickstart", 4), ("/pricing", 2), ("", 2)],
    "/docs/quickstart": [("/signup", 3), ("/docs", 1), ("", 3)],
    "/signup": [("/checkout", 3), ("/docs/quickstart", 2), ("", 2)],
    "/checkout": [("/", 1), ("", 5)],
}
ENTRY_PAGES = [("/", 6), ("/blog/realtime-on-trio", 2), ("/pricing", 2), ("/docs", 1)]
COUNTRIES = [
    ("US", 30), ("DE", 12), ("IN", 12), ("GB", 9), ("BR", 8), ("FR", 7), ("JP", 6),
    ("EG", 5), ("CA", 5), ("NG", 3), ("AU", 3),
]  # fmt: skip
DEVICES = [("web", 5), ("mobile", 4), ("tablet", 1)]
REFERRERS = [
    ("google.com", 10), ("direct", 6), ("twitter.com", 3), ("news.ycombinator.com", 3),
    ("github.com", 3), ("reddit.com", 2), ("duckduckgo.com", 1),
]  # fmt: skip
PRODUCT_EVENTS = [
    ("login", 8), ("search", 6), ("add_to_cart", 4), ("logout", 3), ("share", 2),
    ("purchase", 1), ("signup", 1),
]  # fmt: skip
CONVERSION_PAGES = {"/signup": "signup", "/checkout": "purchase"}


def pick(rng: random.Random, weighted: Weighted) -> str:
    values, weights = zip(*weighted, strict=True)
    chosen: str = rng.choices(values, weights)[0]
    return chosen


# --- what the demo posts -------------------------------------------------------------------------
class PageviewMetadata(msgspec.Struct, omit_defaults=True):
    device: str
    demo: bool
    referrer: str | None = None  # absent for direct visits


class Pageview(msgspec.Struct, omit_defaults=True):
    type: str
    page: str
    session_id: str
    country: str
    metadata: PageviewMetadata
    timestamp: str | None = None  # past visits only


class ProductProperties(msgspec.Struct, omit_defaults=True):
    demo: bool
    page: str
    amount: int | None = None  # purchases only


class ProductEvent(msgspec.Struct, omit_defaults=True):
    event_name: str = msgspec.field(name="eventName")
    user_id: str = msgspec.field(name="userId")
    session_id: str
    country: str
    device: str
    properties: ProductProperties
    referrer: str | None = None  # absent for direct visits
    timestamp: str | None = None  # past visits only


DemoEvent = Pageview | ProductEvent


class EventBatch(msgspec.Struct):
    events: list[DemoEvent]


class _VolumePoint(msgspec.Struct):
    events: int


class _Dashboard(msgspec.Struct, rename="camel"):
    """What the backfill reads of ``GET /api/metrics/dashboard``."""

    event_volume_data: list[_VolumePoint]


# --- the simulated people ------------------------------------------------------------------------
@dataclass
class Visitor:
    session_id: str
    country: str
    device: str
    referrer: str
    page: str
    user_id: str | None = None
    pages_left: int = 6


def new_visitor(rng: random.Random, pages_left: int = 6) -> Visitor:
    return Visitor(
        session_id=DEMO_PREFIX + secrets.token_hex(6),
        country=pick(rng, COUNTRIES),
        device=pick(rng, DEVICES),
        referrer=pick(rng, REFERRERS),
        page=pick(rng, ENTRY_PAGES),
        pages_left=pages_left,
    )


class Visitors:
    """The visitors part of the demo: live traffic, and a day of history on a fresh log."""

    def __init__(
        self,
        server: Server,
        token: Callable[[str], str],
        clock: Clock,
        rng: random.Random,
        events_per_second: float,
    ) -> None:
        self.server = server
        self.token = token
        self.clock = clock
        self.rng = rng
        self.events_per_second = events_per_second
        self.visitors: list[Visitor] = []
        self.users = [f"demo-user-{i}" for i in range(1, 41)]
        self.backfilled = False
        self.sent = 0

    async def run(self) -> None:
        rate = self.events_per_second
        if rate <= 0:
            return
        if not self.backfilled:
            await self.backfill()
            self.backfilled = True
        while True:
            await trio.sleep(self.rng.expovariate(rate))
            await self.server.call("POST", "/api/events", object, self.next_event())
            self.sent += 1

    async def backfill(self) -> None:
        """On a log with no earlier hours, post a day of past demo visits (``timestamp`` in the
        past, through ``POST /api/events/batch``) so the 24 h chart has a shape from the start."""
        token = self.token(DEMO_CHAT_HOST)
        dashboard = await self.server.call("GET", "/api/metrics/dashboard", _Dashboard, None, token)
        if any(point.events for point in dashboard.event_volume_data[:-1]):
            return
        events = self.history(self.clock.now())
        for start in range(0, len(events), BACKFILL_BATCH):
            batch = events[start : start + BACKFILL_BATCH]
            await self.server.call("POST", "/api/events/batch", object, EventBatch(batch))
            self.sent += len(batch)
        log.info("demo: posted %d past demo events for the last 24 h", len(events))

    def history(self, now: float) -> list[DemoEvent]:
        """Simulated visits over the 23 clock hours before this one (busier in the afternoon
        UTC), each event with its past ``timestamp``; at most ``BACKFILL_MAX_EVENTS``."""
        rng = random.Random(int(now) // 3600)
        this_hour = now - now % 3600
        events: list[DemoEvent] = []
        for hours_ago in range(23, 0, -1):
            hour_start = this_hour - hours_ago * 3600
            hour_of_day = int(hour_start // 3600) % 24
            busy = 0.35 + 0.65 * math.exp(-(((hour_of_day - 16) / 5.0) ** 2))
            for _ in range(int(rng.uniform(10, 16) * busy)):  # visits this hour
                at = hour_start + rng.uniform(0, 3300)
                for event in self._visit(rng):
                    at += rng.uniform(5, 60)
                    event.timestamp = iso(min(at, now - 1))
                    events.append(event)
        return events[-BACKFILL_MAX_EVENTS:]

    def _visit(self, rng: random.Random) -> list[DemoEvent]:
        """One whole visit: pageviews along the site's links, a conversion now and then."""
        v = new_visitor(rng)
        out: list[DemoEvent] = [self._pageview(v)]
        for _ in range(rng.randint(1, 6)):
            following = pick(rng, PAGES.get(v.page, [("", 1)]))
            if not following:
                break
            v.page = following
            out.append(self._pageview(v))
            if following in CONVERSION_PAGES and rng.random() < 0.6:
                out.append(self._product_event(v, CONVERSION_PAGES[following]))
            elif rng.random() < 0.2:
                out.append(self._product_event(v, pick(rng, PRODUCT_EVENTS)))
        return out

    def next_event(self) -> DemoEvent:
        """The next thing a simulated person does: mostly pageviews, some product events."""
        rng = self.rng
        if rng.random() < 0.25 and self.visitors:
            visitor = rng.choice(self.visitors)
            return self._product_event(visitor, pick(rng, PRODUCT_EVENTS))
        if len(self.visitors) < 4 or (len(self.visitors) < 14 and rng.random() < 0.3):
            visitor = new_visitor(rng, pages_left=rng.randint(2, 7))
            self.visitors.append(visitor)
        else:
            visitor = rng.choice(self.visitors)
            following = pick(rng, PAGES.get(visitor.page, [("", 1)]))
            visitor.pages_left -= 1
            if not following or visitor.pages_left <= 0:
                self.visitors.remove(visitor)
                return self.next_event() if self.visitors else self._pageview(visitor)
            visitor.page = following
            if following in CONVERSION_PAGES:
                visitor.user_id = visitor.user_id or rng.choice(self.users)
                if rng.random() < 0.6:
                    return self._product_event(visitor, CONVERSION_PAGES[following])
        return self._pageview(visitor)

    def _pageview(self, v: Visitor) -> Pageview:
        referrer = None if v.referrer == "direct" else v.referrer
        return Pageview(
            type="pageview",
            page=v.page,
            session_id=v.session_id,
            country=v.country,
            metadata=PageviewMetadata(device=v.device, demo=True, referrer=referrer),
        )

    def _product_event(self, v: Visitor, name: str) -> ProductEvent:
        v.user_id = v.user_id or self.rng.choice(self.users)
        amount = self.rng.choice([9, 19, 49, 99, 199]) if name == "purchase" else None
        return ProductEvent(
            event_name=name,
            user_id=v.user_id,
            session_id=v.session_id,
            country=v.country,
            device=v.device,
            properties=ProductProperties(demo=True, page=v.page, amount=amount),
            referrer=None if v.referrer == "direct" else v.referrer,
        )
