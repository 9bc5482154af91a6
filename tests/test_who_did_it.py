"""Who did it: the payments list and its CSV say who asked for each payment, and the cashier
who asked sees the full number they typed while their request is in flight (masked for
everyone else, and for them once it is final)."""

from __future__ import annotations

import csv
import io

from tests.conftest import login_as
from tests.test_reconciliation import text_of


def test_the_payments_list_and_csv_say_who_asked(app, factory, bar, owner, cashier):
    tab = factory.tab(bar, "Table 3")
    mine = factory.payment(bar, tab=tab, status="paid", initiated_by_id=cashier.id)
    till = factory.payment(bar, purpose="api")
    desk = login_as(app, owner)
    page = desk.get("/payments/").get_data(as_text=True)
    assert "Requested by" in page
    assert "Akinyi Cashier" in text_of(page, f"payment-row-{mine.id}")
    assert "Till system" in text_of(page, f"payment-row-{till.id}")
    rows = {
        r["id"]: r
        for r in csv.DictReader(
            io.StringIO(desk.get("/payments/export.csv").get_data(as_text=True))
        )
    }
    assert rows[str(mine.id)]["requested_by"] == "Akinyi Cashier"
    assert rows[str(till.id)]["requested_by"] == "Till system"


def test_the_asking_cashier_sees_the_full_number_while_in_flight(app, factory, bar, cashier):
    tab = factory.tab(bar, "Table 3", lines=(("Beer", 2, 250),))
    waiting = factory.payment(bar, tab=tab, phone="254708374149", initiated_by_id=cashier.id)
    theirs = factory.payment(
        bar,
        tab=tab,
        phone="254711000000",
        initiated_by_id=factory.user(bar, "cashier").id,
    )
    done = factory.payment(
        bar, tab=tab, phone="254722000000", status="failed", initiated_by_id=cashier.id
    )
    page = login_as(app, cashier).get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert "to 254708374149" in text_of(page, f"payment-{waiting.id}")
    assert "2547****000" in text_of(page, f"payment-{theirs.id}")
    assert "254711000000" not in page
    assert "254722000000" not in text_of(page, f"payment-{done.id}")
