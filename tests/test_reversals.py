"""Giving a paid payment's money back, over real HTTP: the owner asks on the payment's page,
PesaTab sends Daraja's Reversal to the simulator, and the simulator POSTs the result back to
the app's own /hooks/result/<secret>, which applies it once."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select

from app.enums import ReversalState
from app.extensions import db
from app.models import (
    AuditEvent,
    InitiatorRequest,
    InitiatorResult,
    Payment,
    Reversal,
    Tab,
    utcnow,
)
from app.simulator import status as sim_status
from tests.conftest import login_as
from tests.test_tabs import open_tab_with, request_mpesa
from tests.test_verify import save_initiator

HX = {"HX-Request": "true"}


@pytest.fixture
def reversing(factory, bar, live, sim_state):
    """A live bar with the simulator's initiator saved."""
    factory.live_credentials(bar)
    save_initiator(bar, sim_state)
    return bar


@pytest.fixture
def boss(app, owner):
    return login_as(app, owner)


@pytest.fixture
def counter(app, cashier):
    return login_as(app, cashier)


def paid_tab(counter, sim_state, lines=(("Tusker", 2, 250),), amount=500) -> tuple[Tab, Payment]:
    tab = open_tab_with(counter, lines=lines)
    assert request_mpesa(counter, tab, amount=amount, sim_state=sim_state).status_code == 200
    payment = wait_for(lambda: _paid(tab))
    return tab, payment


def overpaid_tab(counter, sim_state) -> tuple[Tab, Payment]:
    """KES 600 paid for Tusker and chips; the chips never came: paid KES 100 too much."""
    tab, payment = paid_tab(counter, sim_state, lines=(("Tusker", 2, 250), ("Chips", 1, 100)),
                            amount=600)  # fmt: skip
    chips = next(line for line in db.session.get(Tab, tab.id).lines if line.description == "Chips")
    chips.removed_at = utcnow()
    db.session.commit()
    return tab, payment


def _paid(tab: Tab) -> Payment | None:
    db.session.expire_all()
    return db.session.scalar(
        select(Payment).where(Payment.tab_id == tab.id, Payment.receipt.is_not(None))
    )


def wait_for(found, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("never happened")


def reverse(client, payment, reason="Paid twice", **extra):
    return client.post(
        f"/reversals/payments/{payment.id}", data={"reason": reason, **extra}, headers=HX
    )


def answered(client, payment, timeout: float = 10.0) -> str:
    """Poll the card as the page does until it stops polling."""

    def card():
        response = client.get(f"/reversals/payments/{payment.id}", headers=HX)
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        return text if "hx-trigger" not in text else None

    return wait_for(card, timeout)


def sentence(html: str) -> str:
    found = re.search(r"<strong>(.*?)</strong>", html, re.S)
    assert found, html
    return " ".join(found[1].split()).replace("&#39;", "'")


def error(html: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert found, html
    return " ".join(found[1].split()).replace("&#39;", "'")


def reversal_requests(sim_state) -> int:
    return len(sim_state.events("reversal_request"))


def balance(counter, tab) -> str:
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    found = re.search(rf'id="tab-balance-{tab.id}">([^<]*)<', page)
    assert found, page
    return found[1]


def test_a_paid_payment_is_reversed_once_and_the_tab_owes_it_again(
    reversing, boss, counter, sim_state
):
    tab, payment = paid_tab(counter, sim_state)
    assert balance(counter, tab) == "KES 0"
    page = boss.get(f"/payments/{payment.id}/status").get_data(as_text=True)
    assert "Give the money back" in page and "Reverse KES 500" in page

    first = reverse(boss, payment)
    assert first.status_code == 200, first.get_data(as_text=True)
    card = answered(boss, payment)
    assert sentence(card).startswith("KES 500 went back to the customer's M-Pesa")
    assert "its balance grew by KES 500" in sentence(card)
    assert balance(counter, tab) == "KES 500"

    # The second click is refused with a sentence, and nothing more is sent.
    second = reverse(boss, payment)
    assert second.status_code == 409
    assert "already reversed" in error(second.get_data(as_text=True))
    assert "never sent twice" in error(second.get_data(as_text=True))
    assert reversal_requests(sim_state) == 1

    # A replayed result changes nothing.
    request = db.session.scalar(select(InitiatorRequest).where(InitiatorRequest.kind == "reversal"))
    kept = db.session.scalar(
        select(InitiatorResult).where(InitiatorResult.request_id == request.id)
    )
    again = boss.post(
        f"/hooks/result/{request.url_secret}",
        data=kept.raw_body,
        headers={"Content-Type": "application/json"},
    )
    assert again.status_code == 200
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 500
    assert balance(counter, tab) == "KES 500"
    dispositions = db.session.scalars(
        select(InitiatorResult.disposition)
        .where(InitiatorResult.request_id == request.id)
        .order_by(InitiatorResult.id)
    ).all()
    assert dispositions == ["applied", "duplicate"]
    actions = db.session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("reversal.%"))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["reversal.requested", "reversal.reversed"]
    (reversal,) = db.session.scalars(select(Reversal)).all()
    assert reversal.state == ReversalState.REVERSED and reversal.reversal_receipt
    assert reversal.reason == "Paid twice" and not reversal.partial


def test_a_settled_tab_reopens_when_its_money_goes_back(reversing, boss, counter, sim_state):
    tab, payment = paid_tab(counter, sim_state)
    assert counter.post(f"/tabs/{tab.id}/close").status_code in (200, 302, 303)
    db.session.expire_all()
    assert db.session.get(Tab, tab.id).status == "settled"
    reverse(boss, payment)
    answered(boss, payment)
    db.session.expire_all()
    reopened = db.session.get(Tab, tab.id)
    assert reopened.status == "open" and reopened.closed_at is None
    assert balance(counter, tab) == "KES 500"


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("low_balance", "the bar's M-Pesa account holds less than KES 500. Top it up"),
        ("too_old", "the payment is too old to reverse"),
    ],
)
def test_a_refused_reversal_shows_its_sentence_and_may_be_asked_again(
    reversing, boss, counter, sim_state, answer, words
):
    tab, payment = paid_tab(counter, sim_state)
    sim_state.set_faults(reversal_answer=answer)
    reverse(boss, payment)
    card = answered(boss, payment)
    assert words in sentence(card) and "Reverse KES 500" in card
    assert balance(counter, tab) == "KES 0"
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 0

    sim_state.set_faults(reversal_answer="accept")
    reverse(boss, payment, reason="Topped up, try again")
    assert "went back" in sentence(answered(boss, payment))
    assert balance(counter, tab) == "KES 500"
    states = db.session.scalars(select(Reversal.state).order_by(Reversal.id)).all()
    assert states == [ReversalState.REFUSED, ReversalState.REVERSED]
    assert words in answered(boss, payment).replace("&#39;", "'")  # "Refused before" keeps it


def test_no_answer_holds_the_payment(reversing, boss, counter, sim_state):
    tab, payment = paid_tab(counter, sim_state)
    sim_state.set_faults(reversal_answer="timeout")
    reverse(boss, payment)
    card = answered(boss, payment)
    assert "M-Pesa did not answer the reversal" in sentence(card)
    assert "Check the M-Pesa statement" in sentence(card)
    again = reverse(boss, payment)
    assert again.status_code == 409 and "did not answer" in error(again.get_data(as_text=True))
    assert reversal_requests(sim_state) == 1
    assert balance(counter, tab) == "KES 0"


def test_a_receipt_mpesa_does_not_know_is_refused(reversing, boss, factory, bar):
    payment = factory.payment(bar, status="paid", amount=300, receipt="SIM0NOSUCH")
    reverse(boss, payment)
    assert "knows no such payment" in sentence(answered(boss, payment))


def test_a_wrong_initiator_password_is_the_owners_to_fix(
    factory, bar, live, sim_state, boss, counter
):
    factory.live_credentials(bar)
    save_initiator(bar, sim_state, password="NotThePassword1!")
    tab, payment = paid_tab(counter, sim_state)
    reverse(boss, payment)
    assert "initiator name or password" in sentence(answered(boss, payment))


def test_without_initiator_credentials_it_says_where_to_add_them(
    factory, bar, live, sim_state, boss, counter
):
    factory.live_credentials(bar)
    tab, payment = paid_tab(counter, sim_state)
    response = reverse(boss, payment)
    assert response.status_code == 422
    assert "initiator credentials on the M-Pesa settings page" in error(
        response.get_data(as_text=True)
    )
    assert db.session.scalar(select(func.count(Reversal.id))) == 0


def test_a_tab_overpaid_gives_back_the_part_it_was_overpaid_by(reversing, boss, counter, sim_state):
    tab, payment = overpaid_tab(counter, sim_state)
    assert balance(counter, tab) == "-KES 100"
    page = boss.get(f"/payments/{payment.id}/status").get_data(as_text=True)
    assert "overpaid by KES 100" in page

    too_much = reverse(boss, payment, amount="200")
    assert too_much.status_code == 422
    assert "this tab was overpaid by KES 100" in error(too_much.get_data(as_text=True))
    reverse(boss, payment, reason="Chips never came", amount="100")
    assert "KES 100 went back" in sentence(answered(boss, payment))
    assert balance(counter, tab) == "KES 0"
    (reversal,) = db.session.scalars(select(Reversal)).all()
    assert reversal.partial and reversal.amount == 100
    assert "part of the payment: the tab was overpaid" in answered(boss, payment)


def test_bad_input_is_explained(reversing, boss, counter, sim_state):
    tab, payment = paid_tab(counter, sim_state)
    short = reverse(boss, payment, reason=" x ")
    assert short.status_code == 422 and "Say why" in error(short.get_data(as_text=True))
    odd = reverse(boss, payment, amount="12.5")
    assert odd.status_code == 422 and "whole shillings" in error(odd.get_data(as_text=True))
    whole = reverse(boss, payment, amount="501")
    assert whole.status_code == 422
    assert reversal_requests(sim_state) == 0


def test_only_a_paid_payment_can_be_given_back(reversing, boss, factory, bar, sim_state):
    payment = factory.payment(bar, status="failed", amount=300)
    response = reverse(boss, payment)
    assert response.status_code == 422
    assert "Only a paid M-Pesa payment" in error(response.get_data(as_text=True))


def test_a_cashier_cannot_reverse_and_another_bar_gets_404(
    reversing, app, counter, manager, outsider, sim_state
):
    tab, payment = paid_tab(counter, sim_state)
    assert reverse(counter, payment).status_code == 403
    assert counter.get(f"/reversals/payments/{payment.id}").status_code == 403
    page = counter.get(f"/payments/{payment.id}/status").get_data(as_text=True)
    assert "Give the money back" not in page
    other = login_as(app, outsider)
    assert reverse(other, payment).status_code == 404
    assert other.get(f"/reversals/payments/{payment.id}").status_code == 404
    assert reversal_requests(sim_state) == 0
    assert reverse(login_as(app, manager), payment).status_code == 200


def test_two_rows_cannot_hold_one_payment(factory, bar):
    payment = factory.payment(bar, status="paid", amount=300, receipt="SIM0HOLD01")
    for _ in range(2):
        db.session.add(
            Reversal(
                bar_id=bar.id,
                payment_id=payment.id,
                receipt=payment.receipt,
                amount=300,
                reason="twice",
                state=ReversalState.REQUESTED,
            )  # fmt: skip
        )
        try:
            db.session.commit()
        except Exception as err:  # noqa: BLE001 -- the database's refusal, whichever driver
            db.session.rollback()
            assert "unique" in str(err).lower()
            break
    else:
        raise AssertionError("a second reversal held the payment")
    # A refused one does not hold it.
    db.session.add(
        Reversal(
            bar_id=bar.id,
            payment_id=payment.id,
            receipt=payment.receipt,
            amount=300,
            reason="refused",
            state=ReversalState.REFUSED,
        )  # fmt: skip
    )
    db.session.commit()


def test_two_clicks_racing_send_one_reversal(reversing, boss, counter, sim_state, monkeypatch):
    from app.reversals import service

    tab, payment = paid_tab(counter, sim_state)
    reverse(boss, payment)
    answered(boss, payment)
    # The second click's check ran before the first was committed: the index still says no.
    monkeypatch.setattr(service, "holder", lambda payment_id: None)
    late = reverse(boss, payment)
    assert late.status_code == 409  # a conflict with the reversal that holds it
    assert "at the same moment" in error(late.get_data(as_text=True))
    assert reversal_requests(sim_state) == 1
    assert db.session.scalar(select(func.count(Reversal.id))) == 1
    assert (
        db.session.scalar(
            select(func.count(InitiatorRequest.id)).where(InitiatorRequest.kind == "reversal")
        )
        == 1
    )


def test_the_cli_asks_once_and_is_safe_to_rerun(reversing, counter, sim_state, runner, bar):
    tab, payment = paid_tab(counter, sim_state)
    args = ["reversals", "ask", "--bar", bar.slug, "--receipt", payment.receipt,
            "--reason", "Wrong till"]  # fmt: skip
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    wait_for(lambda: db.session.scalar(select(Reversal.state)) == ReversalState.REVERSED
             or db.session.expire_all())  # fmt: skip
    again = runner.invoke(args=args)
    assert again.exit_code == 0 and "already asked, nothing sent" in again.output
    assert reversal_requests(sim_state) == 1
    shown = runner.invoke(
        args=["reversals", "show", "--bar", bar.slug, "--receipt", payment.receipt]
    )
    assert "reversed" in shown.output


def test_no_secret_reaches_the_page(reversing, boss, counter, sim_state):
    tab, payment = paid_tab(counter, sim_state)
    reverse(boss, payment)
    html = answered(boss, payment) + boss.get(f"/payments/{payment.id}/status").get_data(
        as_text=True
    )
    assert sim_status.SIM_INITIATOR_PASSWORD not in html
    body = db.session.scalar(select(InitiatorResult.raw_body))
    assert sim_status.SIM_INITIATOR_PASSWORD not in body


def test_the_payments_list_csv_receipt_and_reconciliation_show_the_money_out(
    reversing, boss, counter, sim_state
):
    import csv
    import io

    from tests.test_reconciliation import text_of

    tab, payment = overpaid_tab(counter, sim_state)
    reverse(boss, payment, reason="Chips never came", amount="100")
    answered(boss, payment)

    listing = boss.get("/payments/").get_data(as_text=True)
    assert "Reversed KES 100" in listing
    rows = list(csv.DictReader(io.StringIO(boss.get("/payments/export.csv").get_data(True))))
    assert [(r["receipt"], r["amount"], r["reversed_amount"]) for r in rows] == [
        (payment.receipt, "600", "100")
    ]
    receipt = counter.get(f"/tabs/{tab.id}/receipt").get_data(as_text=True)
    assert f"M-Pesa reversal of {payment.receipt}" in receipt and "-KES 100" in receipt
    day = boss.get("/reconciliation/").get_data(as_text=True)
    assert text_of(day, "money-given-back") == (
        "Given back by M-Pesa reversals (money out) 1 -KES 100"
    )
    assert text_of(day, "money-kept") == "Kept KES 500"
    log = boss.get("/settings/audit/").get_data(as_text=True)
    assert "Reversal done: M-Pesa gave the money back" in log
    assert "the part an overpaid tab was overpaid by" in log


def test_money_paid_to_the_wrong_till_from_the_menu_goes_back(
    factory, bar, live, sim_state, runner, boss
):
    """A C2B (M-Pesa menu) payment nobody claimed: the customer paid the wrong till."""
    from tests.test_c2b_simulator import pay_from_menu, settled

    factory.live_credentials(bar)
    assert runner.invoke(args=["c2b", "register", "--bar", bar.slug]).exit_code == 0
    save_initiator(bar, sim_state)
    assert pay_from_menu(live, "no such tab", 750) == "0"
    (confirmation,) = settled(1)
    payment = db.session.get(Payment, confirmation.payment_id)
    assert payment.tab_id is None and payment.amount == 750
    reverse(boss, payment, reason="Meant for the shop next door")
    said = sentence(answered(boss, payment))
    assert said.startswith("KES 750 went back to the customer's M-Pesa") and "tab" not in said
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 750
    assert "Reversed KES 750" in boss.get("/payments/").get_data(as_text=True)
