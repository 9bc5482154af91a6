"""What a tab owed when it closed (Tab.outstanding_at_close), and the reconciliation's tab breaks
that read it: the same breaks as counting every closed tab, from a handful of rows."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest

from app.extensions import db
from app.models import Payment, Tab, utcnow
from app.payments import states
from app.reconciliation import breaks
from app.tabs import actions as tab_domain

WHENEVER = (datetime(2000, 1, 1), datetime(2100, 1, 1))


def tab_with(factory, bar, *lines: tuple[str, int, int], label: str = "Table 4") -> Tab:
    tab = tab_domain.open_tab(bar, None, label)
    for description, quantity, price in lines:
        tab_domain.add_line(tab, None, description, quantity, price)
    return tab


def paid(factory, bar, tab, amount: int, **fields) -> Payment:
    return factory.payment(
        bar,
        status="paid",
        amount=amount,
        tab=tab,
        receipt=f"QK{secrets.token_hex(4).upper()}",
        result_code="0",
        **fields,
    )


def tab_breaks(bar) -> dict[int, int]:
    """Tab id -> KES outstanding, as the reconciliation page lists them."""
    found = breaks.open_breaks(bar, WHENEVER).items
    return {b.tab_id: b.amount for b in found if b.kind == "tab_outstanding"}


def test_a_settled_tab_records_that_it_owed_nothing(factory, bar):
    tab = tab_with(factory, bar, ("Tusker", 3, 300))
    paid(factory, bar, tab, 500)
    paid(factory, bar, tab, 400)  # paid in two parts
    tab_domain.close_tab(tab, None)
    db.session.expire_all()
    assert (tab.status, tab.outstanding_at_close) == ("settled", 0)
    assert tab_breaks(bar) == {}


def test_a_tab_cannot_be_settled_while_money_is_owed_or_on_its_way(factory, bar):
    tab = tab_with(factory, bar, ("Tusker", 3, 300))
    paid(factory, bar, tab, 500)
    with pytest.raises(tab_domain.TabError, match="KES 400 is still owed"):
        tab_domain.close_tab(tab, None)
    factory.payment(bar, status="sent", amount=400, tab=tab)
    with pytest.raises(tab_domain.TabError, match="still in progress"):
        tab_domain.close_tab(tab, None)
    db.session.expire_all()
    assert (tab.status, tab.outstanding_at_close) == ("open", None)


def test_a_void_tab_records_what_was_still_owed_after_part_payments(factory, bar):
    tab = tab_with(factory, bar, ("Tusker", 3, 300), ("Soda", 2, 50))
    paid(factory, bar, tab, 500)
    paid(factory, bar, tab, 150)
    factory.payment(bar, status="failed", amount=350, tab=tab)  # only paid money counts
    tab_domain.void_tab(tab, None, "walked out")
    db.session.expire_all()
    assert (tab.status, tab.outstanding_at_close) == ("void", 350)
    assert tab_breaks(bar) == {tab.id: 350}


def test_a_void_tab_with_a_payment_in_flight_records_the_most_it_can_owe(factory, bar):
    """The payment may still be paid after the tab is void: the break shows what is owed now."""
    tab = tab_with(factory, bar, ("Tusker", 3, 300))
    paid(factory, bar, tab, 200)
    waiting = factory.payment(bar, status="sent", amount=300, tab=tab)
    tab_domain.void_tab(tab, None, "walked out")
    db.session.expire_all()
    assert tab.outstanding_at_close == 700
    assert tab_breaks(bar) == {tab.id: 700}
    assert states.move(waiting, "paid", receipt="QKLATE0001", result_code="0")
    db.session.commit()
    assert tab_breaks(bar) == {tab.id: 400}
    assert tab.outstanding_at_close == 400 + 300  # what it owed at closing; the break is live


def test_a_payment_that_lands_after_closing_clears_the_break(factory, bar):
    tab = tab_with(factory, bar, ("Tusker", 2, 250))
    late = factory.payment(bar, status="failed", amount=500, tab=tab, result_code="1")
    tab_domain.void_tab(tab, None, "customer left")
    assert tab_breaks(bar) == {tab.id: 500}
    assert states.move(
        late, "paid", receipt="QKLATE0002", result_code="0"
    )  # money wins: a late success
    db.session.commit()
    assert tab_breaks(bar) == {}


def test_a_tab_cannot_be_asked_for_more_than_it_owes(factory, bar):
    """No push overpays a tab, so a tab voided after pushes records 0 or more."""
    tab = tab_with(factory, bar, ("Tusker", 2, 250))
    paid(factory, bar, tab, 300)
    for amount in (201, 500):
        with pytest.raises(tab_domain.TabError, match="Only KES 200 is left"):
            tab_domain.request_payment(tab, None, "254708374149", amount)
    paid(factory, bar, tab, 200)
    with pytest.raises(tab_domain.TabError, match="Nothing is owed"):
        tab_domain.request_payment(tab, None, "254708374149", 1)
    tab_domain.void_tab(tab, None, "mistake, opened twice")
    db.session.expire_all()
    assert tab.outstanding_at_close == 0 and tab_breaks(bar) == {}


def test_a_tab_paid_more_than_its_lines_records_a_negative_balance_and_is_no_break(factory, bar):
    """Money from the M-Pesa menu attached from a statement is not capped by the balance."""
    tab = tab_with(factory, bar, ("Tusker", 1, 250))
    factory.payment(bar, status="paid", amount=400, tab=tab, purpose="c2b", receipt="QKMENU0001")
    tab_domain.void_tab(tab, None, "paid twice by mistake")
    db.session.expire_all()
    assert tab.outstanding_at_close == -150 and tab_breaks(bar) == {}


def test_a_closed_tab_is_never_reopened_or_changed(factory, bar):
    tab = tab_with(factory, bar, ("Tusker", 1, 250))
    tab_domain.void_tab(tab, None, "walked out")
    for change in (
        lambda: tab_domain.add_line(tab, None, "Soda", 1, 50),
        lambda: tab_domain.request_payment(tab, None, "254708374149", 250),
        lambda: tab_domain.close_tab(tab, None),
        lambda: tab_domain.void_tab(tab, None, "again"),
    ):
        with pytest.raises(tab_domain.TabError, match="This tab is void"):
            change()
    db.session.expire_all()
    assert (tab.status, tab.outstanding_at_close) == ("void", 250)


def test_a_closed_tab_without_a_recorded_balance_is_counted_live(factory, bar):
    """Tabs closed by anything that did not record the balance (None) are still checked."""
    tab = factory.tab(bar, "Otieno", lines=(("Tusker", 3, 300),), status="void")
    assert tab.outstanding_at_close is None
    paid(factory, bar, tab, 100)
    assert tab_breaks(bar) == {tab.id: 800}


def test_tab_breaks_come_only_from_tabs_closed_owing(factory, bar, outsider):
    owing = tab_with(factory, bar, ("Tusker", 2, 250), label="Owing")
    tab_domain.void_tab(owing, None, "walked out")
    settled = tab_with(factory, bar, ("Soda", 1, 100), label="Settled")
    paid(factory, bar, settled, 100)
    tab_domain.close_tab(settled, None)
    tab_with(factory, bar, ("Soda", 1, 100), label="Still open")
    theirs = tab_with(factory, outsider.bar, ("Whisky", 1, 9000), label="Theirs")
    tab_domain.void_tab(theirs, None, "walked out")
    assert tab_breaks(bar) == {owing.id: 500}
    assert tab_breaks(outsider.bar) == {theirs.id: 9000}


def test_the_newest_closed_tabs_come_first_and_the_list_says_when_there_are_more(
    factory, bar, monkeypatch
):
    monkeypatch.setattr(breaks, "LIMIT", 2)
    now = utcnow()
    ids = []
    for n in range(4):
        tab = tab_with(factory, bar, ("Tusker", 1, 100 + n), label=f"Table {n}")
        tab_domain.void_tab(tab, None, "walked out")
        tab.closed_at = now - timedelta(hours=4 - n)
        ids.append(tab.id)
    db.session.commit()
    found, more = breaks._tab_breaks(bar)
    assert [b.tab_id for b in found] == [ids[3], ids[2]] and more
