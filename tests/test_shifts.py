"""Who did it: the shift summary per cashier (pushes, paid, failed, cash, card, tabs closed,
open tabs) for a chosen period, and tonight's figures on the dashboard."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Tender, utcnow
from tests.conftest import login_as
from tests.test_reconciliation import text_of


@pytest.fixture
def night(factory, bar, cashier, manager):
    """Akinyi's shift: a tab paid part by M-Pesa, part in cash, closed; a failed push; a card
    payment on a tab still open (KES 900 less 200 card, less 100 cash that Otieno took)."""
    now = utcnow() - timedelta(minutes=30)
    closed = factory.tab(bar, "Table 1", lines=(("Dinner", 1, 1000),))
    closed.status, closed.closed_at, closed.closed_by_id = "settled", now, cashier.id
    closed.opened_by_id = cashier.id
    open_tab = factory.tab(bar, "Table 2", lines=(("Beer", 3, 300),))
    open_tab.opened_by_id = cashier.id
    factory.payment(
        bar, status="paid", amount=600, tab=closed, initiated_by_id=cashier.id, created_at=now
    )
    factory.payment(
        bar, status="failed", amount=400, tab=closed, initiated_by_id=cashier.id, created_at=now
    )
    for tab, kind, amount, who in (
        (closed, "cash", 400, cashier),
        (open_tab, "card", 200, cashier),
        (open_tab, "cash", 100, manager),
    ):
        db.session.add(
            Tender(
                bar_id=bar.id,
                tab_id=tab.id,
                kind=kind,
                amount=amount,
                recorded_by_id=who.id,
                created_at=now,
            )
        )
    db.session.commit()
    return closed, open_tab


def test_the_shift_summary_shows_mpesa_and_cash_for_that_cashier(app, night, cashier, owner):
    page = login_as(app, owner).get(f"/reconciliation/shifts?person={cashier.id}")
    assert page.status_code == 200
    row = text_of(page.get_data(as_text=True), f"shift-{cashier.id}")
    assert row == (
        "Akinyi Cashier 2 1 · KES 600 1 · KES 400 0 · KES 0 1 · KES 400 1 · KES 200 1 1 · KES 600"
    )


def test_everyone_adds_up_and_a_cashier_sees_only_their_own(app, night, cashier, manager, owner):
    page = login_as(app, owner).get("/reconciliation/shifts").get_data(as_text=True)
    assert text_of(page, f"shift-{manager.id}").startswith("Otieno Manager 0")
    assert "2 · KES 500" in text_of(page, "shift-total")  # cash: 400 + 100
    own = login_as(app, cashier).get("/reconciliation/shifts?person=" + str(manager.id))
    text = own.get_data(as_text=True)
    assert f'id="shift-{cashier.id}"' in text and f'id="shift-{manager.id}"' not in text
    assert 'name="person"' not in text


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        ({"from": "yesterday"}, "Enter the time as a date and time"),
        ({"from": "2026-12-05T22:00", "to": "2026-12-05T18:00"}, "The end comes before the start"),
        ({"from": "2026-11-01T18:00", "to": "2026-12-05T18:00"}, "at most 7 days"),
    ],
)
def test_a_bad_period_says_why(app, owner, args, sentence):
    page = login_as(app, owner).get("/reconciliation/shifts", query_string=args)
    assert page.status_code == 400 and sentence in page.get_data(as_text=True)


def test_the_shift_is_printable(app, owner):
    page = login_as(app, owner).get("/reconciliation/shifts").get_data(as_text=True)
    assert 'class="card no-print"' in page
    with app.test_client().get("/static/app.css") as css:
        assert "@media print" in css.get_data(as_text=True)


def test_tonight_on_the_dashboard_per_cashier(app, night, cashier, owner):
    page = login_as(app, owner).get("/dashboard").get_data(as_text=True)
    assert text_of(page, "tonight-paid") == "KES 600"
    assert text_of(page, "tonight-tendered") == "KES 700"
    assert text_of(page, "tonight-open") == "1"
    assert text_of(page, f"tonight-{cashier.id}").startswith("Akinyi Cashier KES 600")
    assert "Background checks" not in page
