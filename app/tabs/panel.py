"""What a tab payment's status fragment refreshes out of band: the tab's totals always, and once
the payment is final, the pay panel and the close section too. In-flight polls (every 2 s from
every open screen) build no forms and ask no more questions than the totals need."""

from __future__ import annotations

from app.enums import Purpose
from app.extensions import db
from app.models import Bar, Tab
from app.payments import push
from app.tabs.forms import ActionForm, PayForm
from app.tabs.totals import Totals


def push_blocker(bar: Bar) -> str | None:
    """Why this bar cannot send a tab's push right now, in the cashier's words (None: it can)."""
    try:
        push.check_allowed(bar, Purpose.TAB)
    except push.PushRefused as err:
        return err.message
    return None


def panel(tab: Tab, totals: Totals, *, final: bool) -> dict:
    shown = {"tab": tab, "totals": totals}
    if final:
        shown.update(
            action=ActionForm(),
            pay_form=PayForm(formdata=None, data={"amount": totals.requestable or None}),
            push_blocker=push_blocker(db.session.get(Bar, tab.bar_id)),
        )
    return shown
