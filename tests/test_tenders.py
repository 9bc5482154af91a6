"""Cash and card at the counter, and correcting a tab's lines: a mixed tab closes at KES 0,
every change names its person in the audit log, and money asked against a line locks it for
cashiers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Tab, TabLine, Tender
from tests.conftest import login_as
from tests.test_tabs import open_tab_with, request_mpesa


@pytest.fixture
def counter(app, cashier):
    return login_as(app, cashier)


def balance_of(client, tab) -> str:
    page = client.get(f"/tabs/{tab.id}").get_data(as_text=True)
    marker = f'id="tab-balance-{tab.id}">'
    return page.split(marker, 1)[1].split("<", 1)[0]


def actions(bar_id) -> list[tuple[str, int | None]]:
    rows = db.session.execute(
        select(AuditEvent.action, AuditEvent.user_id)
        .where(AuditEvent.bar_id == bar_id)
        .order_by(AuditEvent.id)
    )
    return [tuple(row) for row in rows]


def test_a_mixed_tab_mpesa_and_cash_closes_at_zero(factory, bar, live, sim_state, counter, cashier):
    factory.live_credentials(bar)
    tab = open_tab_with(counter, lines=(("Tusker", 4, 250),))  # KES 1,000
    assert request_mpesa(counter, tab, amount=600, sim_state=sim_state).status_code == 200
    response = counter.post(f"/tabs/{tab.id}/tenders", data={"kind": "cash", "amount": "400"})
    assert response.status_code == 302
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert "KES 400 in cash recorded." in page
    assert f'id="tab-tendered-{tab.id}">KES 400<' in page
    assert balance_of(counter, tab) == "KES 0"
    assert counter.post(f"/tabs/{tab.id}/close").status_code == 302
    db.session.expire_all()
    closed = db.session.get(Tab, tab.id)
    assert closed.status == "settled" and closed.outstanding_at_close == 0
    tender = db.session.scalars(select(Tender)).one()
    assert (tender.kind, tender.amount, tender.recorded_by_id) == ("cash", 400, cashier.id)
    assert ("tab.cash", cashier.id) in actions(bar.id)


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ({"kind": "cash", "amount": "0"}, "Enter an amount of at least KES 1."),
        ({"kind": "card", "amount": "900"}, "Only KES 500 is owed; give the rest back as change."),
        ({"kind": "cheque", "amount": "100"}, "Choose cash or card."),
        ({"kind": "cash", "amount": "abc"}, "KES"),
        ({"kind": "cash", "amount": "100", "note": "x" * 121}, "at most 120 characters"),
    ],
)
def test_a_tender_that_cannot_be_taken_says_why_and_writes_nothing(counter, bar, data, sentence):
    tab = open_tab_with(counter)  # KES 500
    response = counter.post(f"/tabs/{tab.id}/tenders", data=data)
    assert response.status_code == 422
    assert sentence in response.get_data(as_text=True)
    assert db.session.scalars(select(Tender)).all() == []


def test_card_counts_against_the_balance_and_whoever_recorded_it_can_take_it_back(
    app, factory, bar, counter, cashier
):
    tab = open_tab_with(counter)  # KES 500
    counter.post(f"/tabs/{tab.id}/tenders", data={"kind": "card", "amount": "200"})
    assert balance_of(counter, tab) == "KES 300"
    tender = db.session.scalars(select(Tender)).one()
    other = login_as(app, factory.user(bar, "cashier", name="Other Cashier"))
    refused = other.post(f"/tabs/{tab.id}/tenders/{tender.id}/remove", follow_redirects=True)
    assert "Only a manager, or whoever recorded it" in refused.get_data(as_text=True)
    assert balance_of(counter, tab) == "KES 300"
    counter.post(f"/tabs/{tab.id}/tenders/{tender.id}/remove")
    assert balance_of(counter, tab) == "KES 500"
    assert ("tab.card_removed", cashier.id) in actions(bar.id)


def test_another_bars_tender_and_line_answer_404(app, factory, bar, counter, outsider):
    tab = open_tab_with(counter)
    counter.post(f"/tabs/{tab.id}/tenders", data={"kind": "cash", "amount": "100"})
    tender = db.session.scalars(select(Tender)).one()
    line = db.session.scalars(select(TabLine)).one()
    stranger = login_as(app, outsider)
    assert stranger.post(f"/tabs/{tab.id}/tenders/{tender.id}/remove").status_code == 404
    assert stranger.post(f"/tabs/{tab.id}/lines/{line.id}", data={"remove": "1"}).status_code == 404
    assert (
        stranger.post(f"/tabs/{tab.id}/tenders", data={"kind": "cash", "amount": "1"}).status_code
        == 404
    )


def test_a_cashier_corrects_and_takes_off_a_line_audited(counter, bar, cashier):
    tab = open_tab_with(counter, lines=(("Tusker", 2, 250), ("Chips", 1, 300)))
    tusker, chips = db.session.scalars(select(TabLine).order_by(TabLine.id)).all()
    data = {"description": "Tusker Lite", "quantity": "3", "unit_price": "250"}
    counter.post(f"/tabs/{tab.id}/lines/{tusker.id}", data=data)
    assert balance_of(counter, tab) == "KES 1,050"
    counter.post(f"/tabs/{tab.id}/lines/{chips.id}", data={"remove": "1"})
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert balance_of(counter, tab) == "KES 750"
    assert "Tusker Lite" in page and "Chips" not in page.split("Items", 1)[1].split("</table>")[0]
    db.session.expire_all()
    assert db.session.get(TabLine, chips.id).removed_by_id == cashier.id  # kept for the record
    assert {("tab.line_changed", cashier.id), ("tab.line_removed", cashier.id)} <= set(
        actions(bar.id)
    )


def test_once_money_is_asked_only_a_manager_may_change_the_line(
    app, factory, bar, counter, manager
):
    tab = open_tab_with(counter, lines=(("Tusker", 4, 250),))  # KES 1,000
    line = db.session.scalars(select(TabLine)).one()
    counter.post(f"/tabs/{tab.id}/tenders", data={"kind": "cash", "amount": "300"})
    refused = counter.post(
        f"/tabs/{tab.id}/lines/{line.id}", data={"remove": "1"}, follow_redirects=True
    )
    assert "ask a manager to change it" in refused.get_data(as_text=True)
    assert balance_of(counter, tab) == "KES 700"
    boss = login_as(app, manager)
    # Not below what was already taken: KES 300 in cash.
    too_low = {"description": "Tusker", "quantity": "1", "unit_price": "250"}
    answer = boss.post(f"/tabs/{tab.id}/lines/{line.id}", data=too_low, follow_redirects=True)
    assert "KES 300 is already paid or being asked" in answer.get_data(as_text=True)
    fine = {"description": "Tusker", "quantity": "2", "unit_price": "250"}
    boss.post(f"/tabs/{tab.id}/lines/{line.id}", data=fine)
    assert balance_of(boss, tab) == "KES 200"


def test_line_form_errors_come_out_once(counter):
    tab = open_tab_with(counter, lines=())
    response = counter.post(
        f"/tabs/{tab.id}/lines", data={"description": "Tusker", "quantity": "0", "unit_price": "0"}
    )
    page = response.get_data(as_text=True)
    assert page.count("Quantity is 1 to 999.") == 1
    assert page.count("The price is at least KES 1.") == 1


def test_an_unreadable_price_is_one_error(counter):
    tab = open_tab_with(counter, lines=())
    data = {"description": "Tusker", "quantity": "1", "unit_price": "abc"}
    page = counter.post(f"/tabs/{tab.id}/lines", data=data).get_data(as_text=True)
    assert "Enter an amount in shillings, like 1250." in page
    assert "The price is at least KES 1." not in page


def test_tab_names_and_items_state_their_length_and_refuse_longer(counter):
    form = counter.get("/tabs/").get_data(as_text=True)
    assert 'maxlength="60"' in form and "Up to 60 characters" in form
    refused = counter.post("/tabs/", data={"label": "Table " + "x" * 60})
    assert refused.status_code == 400
    assert "A tab name is at most 60 characters." in refused.get_data(as_text=True)
    assert db.session.scalars(select(Tab)).all() == []
    tab = open_tab_with(counter, lines=())
    assert 'maxlength="80"' in counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    data = {"description": "x" * 81, "quantity": "1", "unit_price": "5"}
    page = counter.post(f"/tabs/{tab.id}/lines", data=data).get_data(as_text=True)
    assert "An item is at most 80 characters." in page
