"""A reversal M-Pesa never answered (its queue timed out) held the payment forever: an owner or
manager settles it from the M-Pesa statement, once, with a note. Over real HTTP: the simulator
calls the QueueTimeOutURL, and a late Result is POSTed to the request's own URL."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from app.enums import ReversalOutcome, ReversalState
from app.extensions import db
from app.models import AuditEvent, InitiatorRequest, InitiatorResult, Payment, Reversal, Tab
from tests.conftest import login_as
from tests.test_kiswahili import english_left
from tests.test_reversals import (
    HX,
    answered,
    balance,
    error,
    paid_tab,
    reversal_requests,
    reverse,
    sentence,
)
from tests.test_verify import save_initiator

NOTE = "Seen on the statement at 21:40"


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


def unanswered(boss, counter, sim_state, *, close: bool = False) -> tuple[Tab, Payment, Reversal]:
    """A paid tab (closed, if asked) whose reversal M-Pesa never answered."""
    tab, payment = paid_tab(counter, sim_state)
    if close:
        assert counter.post(f"/tabs/{tab.id}/close").status_code in (200, 302, 303)
    sim_state.set_faults(reversal_answer="timeout")
    assert reverse(boss, payment).status_code == 200
    card = answered(boss, payment)
    assert "M-Pesa did not answer the reversal" in sentence(card)
    db.session.expire_all()
    reversal = db.session.scalar(select(Reversal).where(Reversal.payment_id == payment.id))
    assert reversal.state == ReversalState.NO_ANSWER
    return tab, payment, reversal


def settle(client, reversal, answer="given_back", note=NOTE):
    return client.post(
        f"/reversals/{reversal.id}/settle", data={"answer": answer, "note": note}, headers=HX
    )


def actions() -> list[str]:
    return db.session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("reversal.%") | (AuditEvent.action == "tab.reopened"))
        .order_by(AuditEvent.id)
    ).all()


def late_result(client, reversal, code=0) -> str:
    """M-Pesa's real Result, arriving after the queue timeout (and after the owner settled)."""
    request = db.session.get(InitiatorRequest, reversal.request_id)
    result = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": request.originator_conversation_id,
        "ConversationID": request.conversation_id,
        "TransactionID": "SIMLATE001",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "OriginalTransactionID", "Value": reversal.receipt},
                {"Key": "Amount", "Value": float(reversal.amount)},
            ]
        },
    }
    answer = client.post(
        f"/hooks/result/{request.url_secret}",
        data=json.dumps({"Result": result}),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    db.session.expire_all()
    return db.session.scalar(
        select(InitiatorResult.disposition)
        .where(InitiatorResult.request_id == request.id)
        .order_by(InitiatorResult.id.desc())
    )


def test_given_back_moves_the_balance_and_reopens_the_tab_once(reversing, boss, counter, sim_state):
    tab, payment, reversal = unanswered(boss, counter, sim_state, close=True)
    card = boss.get(f"/reversals/payments/{payment.id}", headers=HX).get_data(as_text=True)
    assert "M-Pesa gave it back (I see it on the statement)" in card
    assert "M-Pesa did not give it back" in card
    assert balance(counter, tab) == "KES 0"

    done = settle(boss, reversal)
    assert done.status_code == 200, done.get_data(as_text=True)
    said = sentence(done.get_data(as_text=True))
    assert said.startswith("The M-Pesa statement shows KES 500 went back to the customer")
    assert "its balance grew by KES 500" in said
    assert NOTE in done.get_data(as_text=True) and "I see it on the statement" not in said
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 500
    reopened = db.session.get(Tab, tab.id)
    assert reopened.status == "open" and reopened.closed_at is None
    assert balance(counter, tab) == "KES 500"
    settled = db.session.get(Reversal, reversal.id)
    assert settled.state == ReversalState.REVERSED and settled.settled_at is not None
    assert settled.outcome == ReversalOutcome.NO_ANSWER  # M-Pesa itself never said

    # A second click: 409 with a sentence, and nothing moves again.
    again = settle(boss, reversal, answer="not_given_back")
    assert again.status_code == 409
    assert "settled already" in error(again.get_data(as_text=True))
    assert "nothing changed" in error(again.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 500
    assert db.session.get(Reversal, reversal.id).state == ReversalState.REVERSED
    assert balance(counter, tab) == "KES 500"
    assert actions() == [
        "reversal.requested",
        "reversal.no_answer",
        "tab.reopened",
        "reversal.given_back_by_hand",
    ]
    entry = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "reversal.given_back_by_hand")
    )
    assert entry.details["note"] == NOTE and entry.user_id is not None
    log = boss.get("/settings/audit/").get_data(as_text=True)
    assert "the M-Pesa statement shows the money went back" in log and NOTE in log
    # Still held: a new reversal is refused, and nothing more is sent.
    assert reverse(boss, payment).status_code == 409
    assert reversal_requests(sim_state) == 1


def test_not_given_back_frees_the_payment_for_a_new_reversal(reversing, boss, counter, sim_state):
    tab, payment, reversal = unanswered(boss, counter, sim_state)
    done = settle(boss, reversal, answer="not_given_back", note="No reversal on the statement")
    assert done.status_code == 200, done.get_data(as_text=True)
    html = done.get_data(as_text=True)
    assert sentence(html).startswith("M-Pesa did not give back KES 500")
    assert "Ask again" in sentence(html) and "Reverse KES 500" in html
    assert "No reversal on the statement" in html
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 0
    assert balance(counter, tab) == "KES 0"
    assert actions()[-1] == "reversal.not_given_back"

    sim_state.set_faults(reversal_answer="accept")
    assert reverse(boss, payment, reason="Statement shows nothing").status_code == 200
    assert "went back" in sentence(answered(boss, payment))
    assert balance(counter, tab) == "KES 500"
    assert reversal_requests(sim_state) == 2
    states = db.session.scalars(select(Reversal.state).order_by(Reversal.id)).all()
    assert states == [ReversalState.REFUSED, ReversalState.REVERSED]


def test_a_late_result_after_settling_by_hand_is_kept_and_changes_nothing(
    reversing, boss, counter, sim_state, live
):
    tab, payment, reversal = unanswered(boss, counter, sim_state)
    assert settle(boss, reversal, answer="not_given_back").status_code == 200
    assert late_result(boss, reversal) == "applied"  # the request keeps M-Pesa's answer
    db.session.expire_all()
    kept = db.session.get(Reversal, reversal.id)
    assert kept.state == ReversalState.REFUSED and kept.reversal_receipt is None
    assert db.session.get(Payment, payment.id).reversed_amount == 0
    assert balance(counter, tab) == "KES 0"
    assert actions()[-2:] == ["reversal.not_given_back", "reversal.late_answer"]
    assert late_result(boss, reversal) == "duplicate"  # and a replay of it is only a duplicate
    assert actions()[-1] == "reversal.late_answer"


def test_a_late_result_racing_the_click_settles_it_once(reversing, boss, counter, sim_state):
    from app.reversals import manual

    tab, payment, reversal = unanswered(boss, counter, sim_state)
    stale = db.session.get(Reversal, reversal.id)
    assert late_result(boss, reversal) == "applied"  # M-Pesa's result wins the race
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 500
    # The click read "no answer" just before: only its conditional UPDATE can say no.
    set_committed_value(stale, "state", ReversalState.NO_ANSWER)
    try:
        manual.settle(stale, given_back=True, note=NOTE, user_id=None)
    except manual.SettleError as err:
        assert err.conflict and "settled already" in err.message
    else:
        raise AssertionError("settled twice")
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 500
    assert db.session.get(Reversal, reversal.id).outcome == ReversalOutcome.REVERSED
    assert balance(counter, tab) == "KES 500"
    assert "reversal.given_back_by_hand" not in actions()


def test_the_note_is_required(reversing, boss, counter, sim_state):
    tab, payment, reversal = unanswered(boss, counter, sim_state)
    for note in ("", " x "):
        response = settle(boss, reversal, note=note)
        assert response.status_code == 422
        assert "Write a short note of what the M-Pesa statement shows" in error(
            response.get_data(as_text=True)
        )
    neither = settle(boss, reversal, answer="maybe")
    assert neither.status_code == 422
    assert "Say what the M-Pesa statement shows" in error(neither.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Reversal, reversal.id).state == ReversalState.NO_ANSWER
    assert db.session.get(Payment, payment.id).reversed_amount == 0


def test_a_reversal_still_awaited_is_not_settled_by_hand(factory, bar, boss):
    payment = factory.payment(bar, status="paid", amount=300, receipt="SIM0WAIT01")
    reversal = Reversal(bar_id=bar.id, payment_id=payment.id, receipt=payment.receipt,
                        amount=300, reason="Paid twice", state=ReversalState.REQUESTED)  # fmt: skip
    db.session.add(reversal)
    db.session.commit()
    response = settle(boss, reversal)
    assert response.status_code == 409
    assert "Wait for its answer" in error(response.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Reversal, reversal.id).state == ReversalState.REQUESTED


def test_a_cashier_gets_403_and_another_bar_404(
    reversing, app, boss, counter, manager, outsider, sim_state
):
    tab, payment, reversal = unanswered(boss, counter, sim_state)
    assert settle(counter, reversal).status_code == 403
    assert settle(login_as(app, outsider), reversal).status_code == 404
    db.session.expire_all()
    assert db.session.get(Reversal, reversal.id).state == ReversalState.NO_ANSWER
    assert settle(login_as(app, manager), reversal).status_code == 200


def test_the_cli_settles_once(reversing, boss, counter, sim_state, runner, bar, outsider):
    tab, payment, reversal = unanswered(boss, counter, sim_state)
    args = ["reversals", "settle", str(reversal.id), "--bar", bar.slug, "--note", NOTE]
    assert runner.invoke(args=args).exit_code != 0  # say which: given back or not
    other = runner.invoke(args=[*args[:3], "--bar", outsider.bar.slug, "--not-given-back",
                                "--note", NOTE])  # fmt: skip
    assert other.exit_code != 0 and "has no reversal" in other.output
    first = runner.invoke(args=[*args, "--given-back"])
    assert first.exit_code == 0, first.output
    assert "The M-Pesa statement shows KES 500 went back" in first.output
    again = runner.invoke(args=[*args, "--not-given-back"])
    assert again.exit_code != 0 and "settled already" in again.output
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).reversed_amount == 500
    assert balance(counter, tab) == "KES 500"


def test_the_settle_card_is_in_kiswahili(reversing, app, owner, boss, counter, sim_state):
    tab, payment, reversal = unanswered(boss, counter, sim_state)
    pages = {}
    for locale in ("en", "sw"):
        owner.locale = locale
        db.session.commit()
        page = login_as(app, owner).get(f"/reversals/payments/{payment.id}")
        pages[locale] = page.get_data(as_text=True)
    assert "M-Pesa imezirudisha (ninaziona kwenye taarifa)" in pages["sw"]
    data = {payment.receipt, "Paid twice"}
    assert english_left(_card(pages["en"]), _card(pages["sw"]), data) == []
    # Settled both ways, the sentences too.
    owner.locale = "sw"
    db.session.commit()
    swahili = login_as(app, owner)
    short = settle(swahili, reversal, note="")
    assert short.status_code == 422 and "Andika maelezo mafupi" in short.get_data(as_text=True)
    done = settle(swahili, reversal, note=NOTE).get_data(as_text=True)
    assert "Taarifa ya M-Pesa inaonyesha KES 500 zimerudi kwa mteja" in done
    owner.locale = "en"
    db.session.commit()
    english = login_as(app, owner).get(f"/reversals/payments/{payment.id}")
    assert "The M-Pesa statement shows KES 500" in english.get_data(as_text=True)
    assert english_left(_card(english.get_data(as_text=True)), _card(done), data | {NOTE}) == []


def _card(html: str) -> str:
    found = re.search(r'<section class="card reversal".*?</section>', html, re.S)
    assert found, html
    return found[0]
