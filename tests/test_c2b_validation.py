"""C2B validation: asked before the money moves (where Safaricom enabled it for the shortcode).
The bar accepts everything unless it chose to refuse a PayBill payment whose account is not an
open tab's code (C2B00012); a till payment is never refused; a decision that is late or fails
accepts; every question is stored with the answer given; nothing is ever a 5xx. Over real HTTP
against the simulator, a refused payment moves no money."""

from __future__ import annotations

import json
import time

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, C2BConfirmation, C2BValidation, Payment
from app.payments import c2b, c2b_validation
from app.simulator import SANDBOX_SHORTCODE, TILL_NUMBER, TILL_STORE_NUMBER
from tests.conftest import login_as
from tests.test_c2b_confirmations import SAMPLE
from tests.test_c2b_simulator import pay_from_menu, settled

ACCEPTED = {"ResultCode": "0", "ResultDesc": "Accepted"}
REFUSED = {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
SIM_SECRET = "test-simulator-control-secret-0123456789"  # tests/conftest.py's DARAJA_SIM_SECRET


@pytest.fixture
def paybill(factory, bar):
    factory.live_credentials(bar)
    return c2b.registration_for(bar).url_secret


@pytest.fixture
def strict(bar, paybill):
    """The bar refuses PayBill money for no open tab."""
    assert c2b_validation.set_rule(bar, c2b_validation.OPEN_TABS, None)
    return paybill


def ask(client, secret, body) -> dict:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    response = client.post(
        f"/hooks/c2b/{secret}/validation", data=data, content_type="application/json"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def questions() -> list[C2BValidation]:
    db.session.expire_all()
    return db.session.scalars(select(C2BValidation).order_by(C2BValidation.id)).all()


def answered(count: int, timeout: float = 5) -> list[C2BValidation]:
    """The stored questions once `count` of them have their answer recorded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = questions()
        if len(found) >= count and all(q.result_code for q in found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{len(questions())} questions answered, wanted {count}")


def test_it_accepts_every_payment_unless_the_bar_chose_otherwise(client, paybill):
    assert ask(client, paybill, {**SAMPLE, "BillRefNumber": "walk in"}) == ACCEPTED
    (question,) = questions()
    assert (question.result_code, question.reason, question.account) == (
        "0",
        "accept_all",
        "walk in",
    )
    assert json.loads(question.raw_body)["TransID"] == SAMPLE["TransID"]  # stored as it came
    assert question.answered_ms is not None and question.answered_ms < 2000


def test_it_refuses_a_paybill_payment_for_no_open_tab(client, factory, bar, strict):
    tab = factory.tab(bar, "Table 4", lines=(("Tusker", 2, 250),))
    closed = factory.tab(bar, "Gone", status="settled")
    assert ask(client, strict, {**SAMPLE, "BillRefNumber": "walk in"}) == REFUSED
    assert ask(client, strict, {**SAMPLE, "BillRefNumber": f"TAB{closed.id}"}) == REFUSED
    # As forgiving as the confirmation: any case, spaces, leading zeros.
    assert ask(client, strict, {**SAMPLE, "BillRefNumber": f" tab {tab.id:04d} "}) == ACCEPTED
    assert [(q.result_code, q.reason) for q in questions()] == [
        ("C2B00012", "no_tab"),
        ("C2B00012", "no_tab"),
        ("0", "tab"),
    ]


def test_another_bars_open_tab_does_not_count(client, factory, strict):
    other = factory.bar("Other Side Lounge")
    theirs = factory.tab(other, "Their table", lines=(("Soda", 1, 100),))
    assert ask(client, strict, {**SAMPLE, "BillRefNumber": f"TAB{theirs.id}"}) == REFUSED


def test_a_till_payment_is_never_refused_for_its_account(client, factory, bar, strict):
    # A PayBill bar's Buy Goods money (no account to check) is accepted ...
    assert ask(client, strict, {**SAMPLE, "TransactionType": "Buy Goods"}) == ACCEPTED
    # ... and so is everything paid to a till bar, whatever the account says.
    till_bar = factory.bar("Till Bar")
    factory.live_credentials(till_bar, kind="till")
    c2b_validation.set_rule(till_bar, c2b_validation.OPEN_TABS, None)
    secret = c2b.registration_for(till_bar).url_secret
    body = {**SAMPLE, "TransactionType": "Buy Goods", "BusinessShortCode": TILL_NUMBER}
    assert ask(client, secret, {**body, "BillRefNumber": "nothing"}) == ACCEPTED
    body = {**SAMPLE, "BusinessShortCode": TILL_STORE_NUMBER, "BillRefNumber": "x"}
    assert ask(client, secret, body) == ACCEPTED
    assert [q.reason for q in questions()] == ["till", "till", "till"]


def test_a_decision_past_the_deadline_accepts_in_time(app, client, strict, monkeypatch):
    def slow_lookup(record):
        time.sleep(1.5)  # a database that cannot answer in time
        return c2b_validation.Decision(c2b_validation.INVALID_ACCOUNT, "no_tab")

    monkeypatch.setattr(c2b_validation, "decide", slow_lookup)
    app.config["C2B_VALIDATION_DEADLINE_MS"] = 200
    started = time.monotonic()
    assert ask(client, strict, {**SAMPLE, "BillRefNumber": "walk in"}) == ACCEPTED
    assert time.monotonic() - started < 1.0
    (question,) = answered(1)  # the worker records what was answered, not its late refusal
    assert (question.result_code, question.reason) == ("0", "deadline")


def test_a_failing_lookup_accepts(client, strict, monkeypatch):
    def broken(record):
        raise RuntimeError("database went away")

    monkeypatch.setattr(c2b_validation, "decide", broken)
    assert ask(client, strict, {**SAMPLE, "BillRefNumber": "walk in"}) == ACCEPTED
    (question,) = questions()
    assert (question.result_code, question.reason) == ("0", "error")


def test_a_store_that_fails_still_answers_accepted(client, strict, monkeypatch):
    def no_database(*args):
        raise RuntimeError("database is down")

    monkeypatch.setattr(c2b_validation, "_store", no_database)
    assert ask(client, strict, {**SAMPLE, "BillRefNumber": "walk in"}) == ACCEPTED
    assert questions() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"\x00\xff{", "malformed"),
        (b"[" * 5000, "malformed"),
    ],
)
def test_a_malformed_question_is_kept_and_accepted(client, strict, body, reason):
    assert ask(client, strict, body) == ACCEPTED
    (question,) = questions()
    assert (question.result_code, question.reason) == ("0", reason)


def test_an_unknown_url_and_a_huge_body_are_kept_and_accepted(app, client, strict):
    assert ask(client, "no-such-secret", SAMPLE) == ACCEPTED
    huge = json.dumps({**SAMPLE, "BillRefNumber": "x" * (app.config["CALLBACK_MAX_BYTES"] + 10)})
    assert ask(client, strict, huge) == ACCEPTED
    unknown, big = questions()
    assert (unknown.bar_id, unknown.reason) == (None, "unknown_url")
    assert big.reason == "too_large" and big.body_size > app.config["CALLBACK_MAX_BYTES"]


def test_owners_and_managers_choose_the_answer_and_it_is_audited(
    app, factory, bar, paybill, owner, manager, cashier
):
    desk = login_as(app, owner)
    page = desk.get("/settings/mpesa/").get_data(as_text=True)
    assert "Now: every payment is accepted." in page
    response = desk.post("/settings/mpesa/c2b/validation", data={"rule": "open_tabs"})
    assert response.status_code == 302 and response.headers["Location"].endswith("#c2b-validation")
    page = desk.get("/settings/mpesa/").get_data(as_text=True)
    assert "is refused, and the customer keeps the money" in page
    assert c2b_validation.rule_of(bar.id) == "open_tabs"
    office = login_as(app, manager)
    page = office.post(
        "/settings/mpesa/c2b/validation", data={"rule": "accept_all"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Saved: the validation answer is changed." in page
    assert "Now: every payment is accepted." in page
    page = office.post(
        "/settings/mpesa/c2b/validation", data={"rule": "reject_all"}, follow_redirects=True
    ).get_data(as_text=True)
    assert (
        "Choose one of the two answers." in page and c2b_validation.rule_of(bar.id) == "accept_all"
    )
    counter = login_as(app, cashier)
    assert (
        counter.post("/settings/mpesa/c2b/validation", data={"rule": "open_tabs"}).status_code
        == 403
    )
    entries = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "c2b.validation_rule").order_by(AuditEvent.id)
    ).all()
    assert [(e.user_id, e.details["rule"]) for e in entries] == [
        (owner.id, "open_tabs"),
        (manager.id, "accept_all"),
    ]


# Over real HTTP: the simulator asks the validation URL before it moves the money. ------------


@pytest.fixture
def registered(factory, bar, live, runner):
    factory.live_credentials(bar)
    result = runner.invoke(args=["c2b", "register", "--bar", bar.slug])
    assert result.exit_code == 0, result.output
    return bar


def switch_validation_on(live, **settings) -> dict:
    answer = requests.post(
        f"{live.url}/_daraja/_control/c2b-validation",
        json={"shortcode": SANDBOX_SHORTCODE, "enabled": True, **settings},
        headers={"X-Simulator-Secret": SIM_SECRET},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_refused_payment_moves_no_money_and_an_accepted_one_lands(
    registered, factory, live, sim_state
):
    c2b_validation.set_rule(registered, c2b_validation.OPEN_TABS, None)
    assert switch_validation_on(live)["response_type"] == "Completed"  # as PesaTab registered
    tab = factory.tab(registered, "Table 2", lines=(("Nyama", 1, 800),))
    assert pay_from_menu(live, "walk in", 300) == "0"  # the request is taken; the money is not
    (refusal,) = sim_state.events("c2b_rejected")
    assert refusal["result_code"] == "C2B00012"
    assert sim_state.events("c2b_payment") == [] and sim_state.menu_payments() == []
    assert pay_from_menu(live, f"tab{tab.id}", 800) == "0"
    (confirmation,) = settled(1)
    assert confirmation.disposition == "applied"
    money = db.session.scalars(select(Payment)).all()
    assert [(p.amount, p.tab_id) for p in money] == [(800, tab.id)]
    assert [q.result_code for q in answered(2)] == ["C2B00012", "0"]


def test_a_silent_validation_url_is_decided_by_the_response_type(
    app, registered, live, sim_state, monkeypatch
):
    def too_slow(record):
        time.sleep(1.0)
        return c2b_validation.Decision(c2b_validation.ACCEPTED, "tab")

    monkeypatch.setattr(c2b_validation, "decide", too_slow)
    switch_validation_on(live, timeout=0.3)  # Daraja gives up before PesaTab answers
    sim_state.c2b_validation(SANDBOX_SHORTCODE)["response_type"] = "Cancelled"
    pay_from_menu(live, "walk in", 300)
    assert [e["paid"] for e in sim_state.events("c2b_validation")] == [False]
    assert sim_state.events("c2b_payment") == []
    sim_state.c2b_validation(SANDBOX_SHORTCODE)["response_type"] = "Completed"
    pay_from_menu(live, "walk in", 200)
    assert [e["paid"] for e in sim_state.events("c2b_validation")] == [False, True]
    (confirmation,) = settled(1)
    assert confirmation.amount == 200
    answered(2)  # both workers done before the tables are emptied
    assert db.session.scalar(select(C2BConfirmation.amount)) == 200


def test_validation_switched_off_in_the_simulator_never_asks(registered, live, sim_state):
    c2b_validation.set_rule(registered, c2b_validation.OPEN_TABS, None)
    pay_from_menu(live, "walk in", 300)
    settled(1)
    assert sim_state.events("c2b_validation") == [] and questions() == []
