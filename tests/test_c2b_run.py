"""Issue 14's Done-when: 200 menu payments over real HTTP against the simulator (PayBill to open
tabs' codes, PayBill to accounts that are no tab, a till), 20% of confirmations sent twice and
10% lost (seeded): every payment lands exactly once (the lost ones through Pull), tab codes on
their tabs, the rest waiting to be claimed, and a second claim of the same money is refused."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.enums import Purpose
from app.extensions import db
from app.models import C2BConfirmation, Payment
from app.payments import c2b
from bench import c2b_run
from tests.test_export_live import TIMEOUT, sign_in


@pytest.fixture
def two_bars(factory):
    paybill = factory.bar("Kilele PayBill")
    till = factory.bar("Kilele Till")
    factory.live_credentials(paybill)
    factory.live_credentials(till, kind="till")
    tabs = [factory.tab(paybill, f"Table {n}") for n in range(1, 9)]
    closed = factory.tab(paybill, "Closed one", status="settled")
    return paybill, till, [t.id for t in tabs], closed.id


@pytest.fixture
def the_run(live, sim_state, two_bars):
    paybill, till, tab_ids, closed = two_bars
    result = c2b_run.run(live.url, sim_state, paybill, till, tab_ids, closed, payments=200)
    return result, paybill, till


def test_every_menu_payment_lands_exactly_once(the_run):
    result, paybill, till = the_run
    planned, figures = result.planned, result.figures
    lost = [p for p in planned if p.lost]
    assert 10 <= len(lost) <= 30 and 20 <= sum(p.copies == 2 for p in planned) <= 60
    money = db.session.scalars(select(Payment).where(Payment.purpose == Purpose.C2B)).all()
    by_receipt = Counter(p.receipt for p in money)
    assert sorted(by_receipt) == sorted(p.receipt for p in planned)
    assert set(by_receipt.values()) == {1}  # once each, whatever was repeated or lost
    assert figures["found_by_pull"] == len(lost)
    pulled = set(
        db.session.scalars(
            select(C2BConfirmation.trans_id).where(
                C2BConfirmation.source == "pull", C2BConfirmation.disposition == "applied"
            )
        )
    )
    assert pulled == {p.receipt for p in lost}
    assert figures["duplicates_dropped"] == sum(p.copies - 1 for p in planned if not p.lost)


def test_tab_codes_land_on_their_tabs_and_the_rest_wait_to_be_claimed(the_run):
    result, paybill, till = the_run
    payments = {p.receipt: p for p in db.session.scalars(select(Payment))}
    for planned in result.planned:
        landed = payments[planned.receipt]
        assert landed.tab_id == planned.tab_id, planned  # None: no tab's code
        assert landed.bar_id == (till.id if planned.kind == "till" else paybill.id)
        assert landed.amount == planned.amount
    waiting = {p.receipt for bar in (paybill, till) for p, _name in c2b.unclaimed(bar.id, 500)}
    assert waiting == {p.receipt for p in result.planned if p.tab_id is None}


def test_the_totals_in_kes_add_up(the_run):
    result, paybill, till = the_run
    planned, figures = result.planned, result.figures

    def kes(*where) -> int:
        return db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(*where))

    assert kes(Payment.bar_id == paybill.id) == sum(p.amount for p in planned if p.bar == "paybill")
    assert kes(Payment.bar_id == till.id) == sum(p.amount for p in planned if p.kind == "till")
    for tab_id in {p.tab_id for p in planned if p.tab_id}:
        want = sum(p.amount for p in planned if p.tab_id == tab_id)
        assert kes(Payment.tab_id == tab_id) == want
    assert figures["recorded_kes"] == figures["payments_kes"] == sum(p.amount for p in planned)
    assert figures["landed_on_tabs_kes"] + figures["unclaimed_kes"] == figures["payments_kes"]


def test_a_second_claim_of_the_same_money_is_refused_with_a_sentence(
    the_run, live, factory, two_bars
):
    """Over real HTTP too: a cashier signed in through the login form claims from the tab page."""
    result, paybill, _till = the_run
    cashier = factory.user(paybill, role="cashier")
    desk = sign_in(live, cashier, factory.PASSWORD)
    money = next(p for p in result.planned if p.kind == "unknown")
    payment = db.session.scalar(select(Payment).where(Payment.receipt == money.receipt))
    first, second = two_bars[2][:2]

    def claim(tab_id: int) -> str:
        page = desk.get(f"{live.url}/tabs/{tab_id}", timeout=TIMEOUT)
        assert page.status_code == 200
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        token = token or re.search(r'content="([^"]+)"[^>]*name="csrf-token"', page.text)
        assert token, "the tab page carries a CSRF token"
        answer = desk.post(
            f"{live.url}/tabs/{tab_id}/claim",
            data={"payment_id": payment.id, "csrf_token": token.group(1)},
            timeout=TIMEOUT,
        )
        assert answer.status_code in (200, 409), answer.status_code
        return answer.text

    assert f"KES {money.amount:,} from the M-Pesa menu is on" in claim(first)
    assert "This money is already on a tab; a manager can move it." in claim(second)
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).tab_id == first


def test_the_same_seed_gives_the_same_run():
    import random

    one = c2b_run.plan(random.Random(14), 200, [1, 2, 3], 9)
    two = c2b_run.plan(random.Random(14), 200, [1, 2, 3], 9)
    assert [(p.kind, p.amount, p.account) for p in one] == [
        (p.kind, p.amount, p.account) for p in two
    ]
    assert {p.kind for p in one} == {"tab", "unknown", "till"}
