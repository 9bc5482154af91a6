"""The counter screen's list of money paid from the M-Pesa menu: what it shows, its fingerprint,
and when its polling stops.

The list (templates/tabs/_incoming.html) polls every 5 s while the page is visible. Its poll
URL carries the fingerprint of what it shows (`v`) and when that last changed (`since`, the
server's clock in seconds); app.js adds how long ago the cashier last tapped or typed on the
page (`quiet`, seconds, counted by the screen so a wrong phone clock does not matter). A poll
whose list is unchanged is answered 204 from one small query and no template.

After IDLE_SECONDS with no new money and no tap, the answer is the list without its polling
trigger and with a "Check for new money" button (`polling` False): the button asks for the list
afresh, which polls again. Coming back to the page (visibilitychange) refreshes it once either
way: a stopped list that is still the same is answered 204 and stays stopped; new money brings
the list back live.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.models import Payment, Tab
from app.payments import c2b

# Ten minutes: in a rush menu money comes every few minutes and a cashier taps the screen all
# the time, so the list stays live; a phone left on the counter through a quiet spell stops
# after 120 polls instead of polling all night. Stopping costs the cashier one tap, and money
# paid to a tab's own code lands on that tab by itself, whatever this list does.
IDLE_SECONDS = 600
LIMIT = 20  # as many rows as the list shows (c2b.unclaimed's default)


def now() -> int:
    """The server's clock in whole seconds (tests set it)."""
    return int(time.time())


def fingerprint(payment_ids, tab: Tab | None) -> str:
    """What the list shows that can change while it polls: which money waits (a row never
    changes once listed) and, on a tab's page, the tab its Claim buttons name."""
    shown = repr((list(payment_ids), (tab.id, tab.status, tab.label) if tab else None))
    return hashlib.blake2s(shown.encode(), digest_size=8).hexdigest()


def _waiting_ids(bar_id: int) -> list[int]:
    """The ids `c2b.unclaimed` would list, from one narrow query."""
    return list(
        db.session.scalars(
            select(Payment.id)
            .where(*c2b.unclaimed_where(bar_id))
            .order_by(Payment.id.desc())
            .limit(LIMIT)
        )
    )


def context(bar_id: int, tab: Tab | None, *, since: int | None = None, polling: bool = True):
    """What _incoming.html shows: the waiting money, its fingerprint, since when it is
    unchanged, and whether it polls."""
    rows = c2b.unclaimed(bar_id, limit=LIMIT)
    return {
        "incoming": rows,
        "incoming_version": fingerprint((payment.id for payment, _name in rows), tab),
        "incoming_since": now() if since is None else since,
        "incoming_polling": polling,
        "incoming_idle_minutes": IDLE_SECONDS // 60,
    }


@dataclass(frozen=True)
class Answer:
    """A poll's answer: unchanged (the route says 204), or the list's context."""

    unchanged: bool
    context: dict | None = None


def _seconds(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdecimal() and len(raw) < 12 else None


def poll(bar_id: int, tab: Tab | None, args) -> Answer:
    """Answer the list's request. `args` are the poll URL's: `v`, `since`, `quiet` and `idle`
    (1 once the list has stopped). A request without `v` (the page's button) is a fresh list
    that polls again."""
    clock = now()
    since = _seconds(args.get("since"))
    since = clock if since is None else min(since, clock)
    quiet_for = clock - since
    quiet = _seconds(args.get("quiet"))
    if quiet is not None:
        quiet_for = min(quiet_for, quiet)
    shown = args.get("v")
    if shown and fingerprint(_waiting_ids(bar_id), tab) == shown:
        if quiet_for < IDLE_SECONDS or args.get("idle") == "1":
            return Answer(unchanged=True)
        stopped = context(bar_id, tab, since=since, polling=False)
        if stopped["incoming_version"] == shown:
            return Answer(unchanged=False, context=stopped)
    return Answer(unchanged=False, context=context(bar_id, tab))
