"""Tabs and the cashier's push: the core loop, end to end against the simulator."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Payment, Tab
from tests.conftest import login_as

HX = {"HX-Request": "true"}
PAYS = "0708 374 149"


@pytest.fixture
def live_bar(factory, bar, live):
    factory.live_credentials(bar)
    return bar


@pytest.fixture
def counter(app, cashier):
    return login_as(app, cashier)


def open_tab_with(counter, label="Table 4", lines=(("Tusker", 2, 250),)) -> Tab:
    response = counter.post("/tabs/", data={"label": label})
    tab_id = int(response.headers["Location"].rsplit("/", 1)[1])
    for description, quantity, price in lines:
        counter.post(
            f"/tabs/{tab_id}/lines",
            data={"description": description, "quantity": quantity, "unit_price": price},
        )
    return db.session.get(Tab, tab_id)


def request_mpesa(counter, tab, phone=PAYS, amount=500, sim_state=None):
    before = len(sim_state.events("callback")) if sim_state else 0
    data = {"phone": phone, "amount": amount}
    response = counter.post(f"/tabs/{tab.id}/pay", data=data, headers=HX)
    if sim_state is not None and response.status_code == 200:
        assert sim_state.wait_for_callbacks(before + 1, timeout=10)
    db.session.expire_all()
    return response


def test_a_cashier_opens_a_tab_and_adds_lines(counter, cashier):
    tab = open_tab_with(counter, lines=(("Tusker", 2, "250"), ("", 1, "KES 1,000")))
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert "Tusker" in page and "Amount" in page
    assert f'id="tab-balance-{tab.id}">KES 1,500<' in page
    assert tab.opened_by_id == cashier.id


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("12.50", "Whole shillings only, like 1250."),
        ("abc", "Enter an amount in shillings, like 1250."),
        ("0", "The price is at least KES 1."),
    ],
)
def test_bad_prices_are_explained(counter, price, message):
    tab = open_tab_with(counter, lines=())
    response = counter.post(
        f"/tabs/{tab.id}/lines", data={"description": "x", "quantity": 1, "unit_price": price}
    )
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert tab.lines == []


def test_a_tab_needs_a_name(counter):
    response = counter.post("/tabs/", data={"label": "  "})
    assert response.status_code == 400 and "Give the tab a name" in response.get_data(as_text=True)


def test_the_tab_list_shows_open_tabs_first_with_balances_and_finds_by_name(counter, factory, bar):
    factory.tab(bar, "Closed earlier", status="settled")
    open_tab_with(counter, "Otieno", lines=(("Nyama choma", 1, 800),))
    html = counter.get("/tabs/").get_data(as_text=True)
    assert html.index("Otieno") < html.index("Closed earlier") and "KES 800" in html
    found = counter.get("/tabs/?q=otie", headers=HX).get_data(as_text=True)
    assert "Otieno" in found and "Closed earlier" not in found


@pytest.mark.parametrize(
    ("phone", "status", "sentence", "balance"),
    [
        ("0708374149", "paid", "Paid.", 0),
        ("0711000001", "failed", "The customer&#39;s M-Pesa balance is too low.", 500),
        ("0711001032", "cancelled", "The customer cancelled.", 500),
        (
            "0711001019",
            "expired",
            "The request expired; send it again.",
            500,
        ),  # 1037: test_unconfirmed.py
        ("0711002001", "failed", "Wrong PIN entered; send again.", 500),
        (
            "0711001001",
            "failed",
            "The customer has another M-Pesa prompt open; try again in a minute.",
            500,
        ),
        ("0711000017", "failed", "Wait two minutes, then send again.", 500),
    ],
    ids=["paid", "1", "1032", "1019", "2001", "1001", "17"],
)
def test_each_outcome_reaches_the_tab(
    counter, live_bar, sim_state, phone, status, sentence, balance
):
    tab = open_tab_with(counter)
    response = request_mpesa(counter, tab, phone=phone, sim_state=sim_state)
    assert response.status_code == 200
    payment = db.session.scalar(select(Payment))
    assert (payment.status, payment.amount, payment.tab_id, payment.purpose) == (
        status,
        500,
        tab.id,
        "tab",
    )
    fragment = counter.get(f"/payments/{payment.id}/status", headers=HX).get_data(as_text=True)
    assert sentence in fragment
    assert "hx-trigger" not in fragment.split("</div>")[0]  # final: the poll stops by itself
    assert f'id="tab-balance-{tab.id}">KES {balance:,}<' in fragment  # the balance swaps with it
    if status == "paid":
        assert payment.receipt and payment.receipt in fragment
    action = db.session.scalar(
        select(AuditEvent.action).where(AuditEvent.details["payment_id"].as_integer() == payment.id)
    )
    assert action == f"payment.{status}"


def test_an_in_flight_payment_polls_and_shows_the_wait(counter, live_bar, sim_state):
    sim_state.set_faults(callback_delay=30, decision_delay=30)
    tab = open_tab_with(counter)
    html = request_mpesa(counter, tab).get_data(as_text=True)
    payment = db.session.scalar(select(Payment))
    assert payment.status == "sent"
    assert (
        f'id="payment-{payment.id}"' in html
        and 'hx-trigger="every 2s, visibilitychange from:document"' in html
    )
    assert "Waiting for the customer" in html and "of 1:30" in html


def test_part_payments_split_a_tab_across_phones(counter, live_bar, sim_state):
    tab = open_tab_with(counter, lines=(("Round", 1, 1000),))
    request_mpesa(counter, tab, phone="0708374149", amount=400, sim_state=sim_state)
    request_mpesa(counter, tab, phone="0110123456", amount=600, sim_state=sim_state)
    payments = db.session.scalars(select(Payment).order_by(Payment.id)).all()
    assert [(p.amount, p.phone, p.status) for p in payments] == [
        (400, "254708374149", "paid"),
        (600, "254110123456", "paid"),
    ]
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert f'id="tab-balance-{tab.id}">KES 0<' in page
    counter.post(f"/tabs/{tab.id}/close")
    db.session.expire_all()
    assert db.session.get(Tab, tab.id).status == "settled"


def test_a_second_tap_shows_the_payment_in_flight_instead_of_prompting_again(
    counter, live_bar, sim_state
):
    sim_state.set_faults(callback_delay=30, decision_delay=30)
    tab = open_tab_with(counter)
    request_mpesa(counter, tab, amount=200)
    again = request_mpesa(counter, tab, amount=200).get_data(as_text=True)
    assert "This phone already has a request waiting; it was not sent again." in again
    pushes = [e for e in sim_state.events("request") if e["path"].endswith("processrequest")]
    assert len(pushes) == 1 and db.session.query(Payment).count() == 1


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "Enter an amount of at least KES 1."),
        ("501", "Only KES 500 is left to ask for."),
        ("10.5", "Whole shillings only"),
    ],
)
def test_the_amount_must_fit_the_balance(counter, live_bar, amount, message):
    tab = open_tab_with(counter)
    response = request_mpesa(counter, tab, amount=amount)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.scalar(select(Payment)) is None


def test_the_amount_defaults_to_the_balance(counter, live_bar):
    tab = open_tab_with(counter)
    assert re.search(
        r'name="amount"[^>]*value="500"', counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    )


def test_a_bad_phone_gets_the_catalogue_sentence(counter, live_bar):
    tab = open_tab_with(counter)
    response = request_mpesa(counter, tab, phone="020 2222222")
    assert response.status_code == 422 and "landline" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda bar: setattr(bar, "mpesa_enabled", False),
            "M-Pesa requests are switched off for this bar",
        ),
        (lambda bar: setattr(bar, "setup_state", "verified"), "This bar is not live on M-Pesa yet"),
    ],
)
def test_the_cashier_is_told_why_nothing_can_be_sent(counter, live_bar, setup, message):
    setup(live_bar)
    db.session.commit()
    tab = open_tab_with(counter)
    assert message in counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    response = request_mpesa(counter, tab, amount=100)
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(Payment)) is None


def test_subscriber_lock_asks_the_cashier_to_wait_a_minute(counter, live_bar, sim_state):
    sim_state.set_faults(lock_subscriber=True)
    tab = open_tab_with(counter)
    html = request_mpesa(counter, tab).get_data(as_text=True)
    assert "wait a minute and send again" in html
    assert db.session.scalar(select(Payment.status)) == "rejected"


def test_a_timed_out_push_is_never_sent_again(app, counter, live_bar, sim_state):
    app.config["DARAJA_READ_TIMEOUT"] = 1.0
    app.extensions.pop("pesatab_daraja_clients", None)
    sim_state.set_faults(push_delay=1.5, callback_lost=True)
    tab = open_tab_with(counter)
    html = request_mpesa(counter, tab).get_data(as_text=True)
    assert "PesaTab is checking" in html
    assert db.session.scalar(select(Payment.status)) == "unknown"

    def pushes():
        return [e for e in sim_state.events("request") if e["path"].endswith("processrequest")]

    # The slow push's answer lands in the simulator's record once its delay is over.
    deadline = time.monotonic() + 5
    while not pushes() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(pushes()) == 1


def test_pushes_are_rate_limited_per_cashier_with_a_clear_429(app, counter, live_bar, sim_state):
    app.config["PUSH_LIMIT_PER_USER"] = "2 per minute"
    tab = open_tab_with(counter, lines=(("Round", 1, 100),))
    for phone in ("0711001032", "0711001032"):
        request_mpesa(counter, tab, phone=phone, amount=10, sim_state=sim_state)
    response = request_mpesa(counter, tab, amount=10)
    assert response.status_code == 429
    assert "Too many M-Pesa requests in the last few minutes" in response.get_data(as_text=True)


def test_pushes_are_rate_limited_per_bar(app, live_bar, factory, sim_state):
    app.config["PUSH_LIMIT_PER_BAR"] = "2 per 5 minutes"
    counters = [login_as(app, factory.user(live_bar, "cashier")) for _ in range(3)]
    tab = open_tab_with(counters[0], lines=(("Round", 1, 100),))
    statuses = [
        request_mpesa(
            c, tab, phone="0711001032", amount=10, sim_state=sim_state if n < 2 else None
        ).status_code
        for n, c in enumerate(counters)
    ]
    assert statuses == [200, 200, 429]


def test_closing_needs_a_zero_balance(counter):
    tab = open_tab_with(counter)
    page = counter.post(f"/tabs/{tab.id}/close", follow_redirects=True).get_data(as_text=True)
    assert "KES 500 is still owed" in page
    assert db.session.get(Tab, tab.id).status == "open"


def test_a_manager_voids_a_tab_with_a_reason_and_payments_stay(
    app, counter, manager, live_bar, sim_state
):
    tab = open_tab_with(counter)
    request_mpesa(counter, tab, amount=100, sim_state=sim_state)
    boss = login_as(app, manager)
    assert boss.post(f"/tabs/{tab.id}/void", data={"reason": ""}).status_code == 400
    boss.post(f"/tabs/{tab.id}/void", data={"reason": "Customer left, owner will follow up"})
    db.session.expire_all()
    assert db.session.get(Tab, tab.id).status == "void"
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    assert "Customer left" in page and "Paid." in page
    assert (
        counter.post(
            f"/tabs/{tab.id}/lines", data={"quantity": 1, "unit_price": 5}, follow_redirects=True
        ).status_code
        == 200
    )
    assert len(db.session.get(Tab, tab.id).lines) == 1


def test_another_bars_tab_answers_404(app, counter, outsider, factory):
    tab = open_tab_with(counter)
    thief = login_as(app, outsider)
    for method, path in (
        ("GET", f"/tabs/{tab.id}"),
        ("POST", f"/tabs/{tab.id}/pay"),
        ("POST", f"/tabs/{tab.id}/lines"),
        ("POST", f"/tabs/{tab.id}/close"),
    ):
        assert thief.open(path, method=method).status_code == 404
    assert "Table 4" not in thief.get("/tabs/").get_data(as_text=True)


def test_mistyped_requests_do_not_count_against_the_push_limit(app, counter, live_bar, sim_state):
    app.config["PUSH_LIMIT_PER_USER"] = "2 per minute"
    tab = open_tab_with(counter, lines=(("Round", 1, 100),))
    for phone, amount in (("12345", 10), ("0808 374 149", 10), (PAYS, 0), (PAYS, 500)) * 2:
        assert request_mpesa(counter, tab, phone=phone, amount=amount).status_code == 422
    assert request_mpesa(counter, tab, amount=10, sim_state=sim_state).status_code == 200


def test_the_push_limit_is_said_on_the_pay_panel(app, counter, live_bar, sim_state):
    app.config["PUSH_LIMIT_PER_USER"] = "1 per minute"
    tab = open_tab_with(counter, lines=(("Round", 1, 100),))
    request_mpesa(counter, tab, amount=10, sim_state=sim_state)
    response = request_mpesa(counter, tab, phone="0711 000 000", amount=10)
    assert response.status_code == 429
    panel = response.get_data(as_text=True)
    assert '<div id="pay-panel"' in panel and "<html" not in panel  # the panel, not a page
    assert "Too many M-Pesa requests in the last few minutes" in panel
    assert 'value="0711 000 000"' in panel  # what the cashier typed is kept
