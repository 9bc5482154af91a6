"""Two phones asked for the same tab at the same instant: the tab's balance is asked once.

The friendly check in `tabs.request_payment` reads the totals without a lock, so two cashiers
(or a cashier and the POS API) can both see the whole balance as "left to ask for". The push
locks the tab's row and asks again in the transaction that inserts the payment.
"""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Bar, Payment, Tab
from app.payments.push import PushRefused, PushRequest, send_push
from app.tabs.totals import totals

ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.fixture
def tab(factory, bar, live, sim_state):
    factory.live_credentials(bar)
    sim_state.set_faults(callback_lost=True)  # the first payment stays in flight
    return factory.tab(bar, lines=(("Tusker", 4, 250),))


def ask(bar: Bar, tab: Tab, phone: str, amount: int = 1000):
    return send_push(
        bar,
        PushRequest(
            phone=phone,
            amount=amount,
            purpose="tab",
            account_reference=f"TAB{tab.id}",
            description="Bar tab",
            tab=tab,
        ),
    )


def test_a_second_phone_cannot_be_asked_for_what_the_first_is_being_asked(bar, tab):
    first = ask(bar, tab, "254708374149")

    with pytest.raises(PushRefused, match="Only KES 0 is left to ask for") as refused:
        ask(bar, tab, "254708374150")

    assert refused.value.code == "over_asked"
    assert first.created and first.payment.status == "sent"
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
    assert ask(bar, tab, "254708374149").created is False  # the same phone: the payment in flight


def test_a_part_is_still_allowed(bar, tab):
    ask(bar, tab, "254708374149", amount=600)
    assert ask(bar, tab, "254708374150", amount=400).created
    with pytest.raises(PushRefused, match="Only KES 0"):
        ask(bar, tab, "254708374151", amount=1)
    assert totals(tab).in_flight == 1000


@pytest.mark.skipif(
    not ON_POSTGRES, reason="SQLite serialises writers; the row lock is PostgreSQL's"
)
def test_two_phones_at_the_same_instant_are_asked_for_the_balance_once(app, bar, tab):
    barrier, outcomes = threading.Barrier(2), []
    # Read here: touching the test's own (expired) objects from the threads would refresh them
    # through this thread's session, from two threads at once.
    bar_id, tab_id = bar.id, tab.id

    def cashier(phone: str) -> None:
        with app.app_context():
            here, there = db.session.get(Bar, bar_id), db.session.get(Tab, tab_id)
            barrier.wait(timeout=10)
            try:
                outcomes.append(ask(here, there, phone).created)
            except PushRefused as err:
                outcomes.append(err.code)
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=cashier, args=(p,)) for p in ("254708374149", "254708374150")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)

    assert sorted(map(str, outcomes)) == ["True", "over_asked"]
    assert totals(tab).in_flight == 1000
