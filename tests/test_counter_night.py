"""One tab on a busy night, followed end to end through the real routes: the cashier adds its
lines, asks KES 600 of it over M-Pesa (paid, as the simulator calls back), takes the rest in
cash and closes it at KES 0; the owner then sees that cashier's M-Pesa and cash for it in the
shift summary, and the day's reconciliation keeps the cash apart from what M-Pesa paid."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Payment, Tab, Tender
from tests.conftest import login_as
from tests.test_reconciliation import text_of
from tests.test_tabs import open_tab_with, request_mpesa


def test_one_mixed_tab_from_the_counter_to_the_cash_up(
    app, factory, bar, live, sim_state, cashier, owner
):
    factory.live_credentials(bar)
    counter = login_as(app, cashier)

    # The cashier's tab: KES 1,000 of lines, KES 600 of it paid over M-Pesa.
    tab = open_tab_with(counter, "Meza 12", lines=(("Tusker", 2, 250), ("Nyama choma", 1, 500)))
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert text_of(page, f"tab-balance-{tab.id}") == "KES 1,000"
    assert request_mpesa(counter, tab, amount=600, sim_state=sim_state).status_code == 200
    paid = db.session.scalars(select(Payment).where(Payment.tab_id == tab.id)).one()
    assert (paid.status, paid.amount, paid.initiated_by_id) == ("paid", 600, cashier.id)
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert text_of(page, f"tab-balance-{tab.id}") == "KES 400"

    # The rest in cash, and the tab closes at KES 0.
    cash = counter.post(f"/tabs/{tab.id}/tenders", data={"kind": "cash", "amount": "400"})
    assert cash.status_code == 302
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert text_of(page, f"tab-balance-{tab.id}") == "KES 0"
    assert counter.post(f"/tabs/{tab.id}/close").status_code == 302
    db.session.expire_all()
    closed = db.session.get(Tab, tab.id)
    assert (closed.status, closed.outstanding_at_close, closed.closed_by_id) == (
        "settled", 0, cashier.id,
    )  # fmt: skip
    tender = db.session.scalars(select(Tender).where(Tender.tab_id == tab.id)).one()
    assert (tender.kind, tender.amount, tender.recorded_by_id) == ("cash", 400, cashier.id)

    # The owner's cash-up: that cashier's shift holds this tab's M-Pesa and cash...
    desk = login_as(app, owner)
    shifts = desk.get(f"/reconciliation/shifts?person={cashier.id}")
    assert shifts.status_code == 200
    row = text_of(shifts.get_data(as_text=True), f"shift-{cashier.id}")
    # name | requests | paid | not paid | waiting | cash | card | tabs closed | open tabs
    assert row == (
        f"{cashier.name} 1 1 · KES 600 0 · KES 0 0 · KES 0 1 · KES 400 0 · KES 0 1 0 · KES 0"
    )

    # ...and the day's reconciliation keeps the cash apart from what M-Pesa paid.
    day = desk.get("/reconciliation/")
    assert day.status_code == 200
    html = day.get_data(as_text=True)
    assert text_of(html, "money-mpesa") == "Paid by M-Pesa 1 KES 600"
    assert text_of(html, "money-cash") == "Cash 1 KES 400"
    assert text_of(html, "money-card") == "Card 0 KES 0"
    assert text_of(html, "money-taken") == "Taken KES 1,000"
