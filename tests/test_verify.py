"""A cashier types the code from a customer's M-Pesa SMS and PesaTab says in one sentence
whether the money is real: from the bar's own records first, else by asking M-Pesa (the
simulator, over real HTTP: Transaction Status, its result POSTed back asynchronously)."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, InitiatorRequest, InitiatorResult, Payment
from app.settings import initiator
from app.simulator import status as sim_status
from tests.conftest import login_as
from tests.test_c2b_simulator import pay_from_menu, settled

HX = {"HX-Request": "true"}


@pytest.fixture
def verifying(factory, bar, live, sim_state, runner):
    """A live PayBill bar with its C2B URLs registered and the simulator's initiator saved."""
    factory.live_credentials(bar)
    result = runner.invoke(args=["c2b", "register", "--bar", bar.slug])
    assert result.exit_code == 0, result.output
    save_initiator(bar, sim_state)
    return bar


def save_initiator(bar, sim_state, password: str = sim_status.SIM_INITIATOR_PASSWORD) -> None:
    pem = sim_status.certificate_pem(sim_state)
    initiator.save(bar, initiator.InitiatorInput(sim_status.SIM_INITIATOR, password, pem))


@pytest.fixture
def counter(app, cashier):
    return login_as(app, cashier)


def menu_payment(live, sim_state, account: str, amount: int) -> str:
    """A customer pays from the M-Pesa menu; the receipt the simulator issued."""
    assert pay_from_menu(live, account, amount) == "0"
    return sim_state.events("c2b_payment")[-1]["receipt"]


def ask(counter, code: str, **extra):
    return counter.post("/verify/", data={"code": code, **extra}, headers=HX)


def answered(counter, timeout: float = 10.0) -> str:
    """Poll the latest request's fragment, as the screen does, until it stops polling."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        request = db.session.scalars(
            select(InitiatorRequest).order_by(InitiatorRequest.id.desc())
        ).first()
        fragment = counter.get(f"/verify/{request.id}", headers=HX)
        assert fragment.status_code == 200
        text = fragment.get_data(as_text=True)
        if "hx-trigger" not in text:
            return text
        time.sleep(0.05)
    raise AssertionError("M-Pesa's answer never showed")


def sentence(html: str) -> str:
    found = re.search(r"<strong>(.*?)</strong>", html, re.S)
    assert found, html
    return " ".join(found[1].split()).replace("&#39;", "'")


def test_a_menu_payment_in_our_records_is_genuine_and_can_be_claimed(
    verifying, factory, counter, live, sim_state
):
    receipt = menu_payment(live, sim_state, "walk in", 300)
    settled(1)
    tab = factory.tab(verifying, "Table 4", lines=(("Tusker", 2, 250),))
    page = ask(counter, f" {receipt[:4].lower()} {receipt[4:]} ").get_data(as_text=True)
    assert re.fullmatch(
        r"Genuine: KES 300 from JANE at \d\d:\d\d, not yet claimed\.", sentence(page)
    )
    assert "hx-trigger" not in page  # our own records answer at once
    assert sim_state.events("status_query") == []  # M-Pesa was not asked
    payment = db.session.scalar(select(Payment).where(Payment.receipt == receipt))
    assert f'action="/tabs/{tab.id}/claim"' in page and f'value="{payment.id}"' in page
    counter.post(f"/tabs/{tab.id}/claim", data={"payment_id": payment.id})
    again = sentence(ask(counter, receipt).get_data(as_text=True))
    assert again.startswith("Genuine, but already claimed to Table 4 (KES 300 from JANE at ")
    assert again.endswith("). Do not take it again.")


def test_money_that_landed_on_a_tab_by_its_code_is_already_claimed(
    verifying, factory, counter, live, sim_state
):
    tab = factory.tab(verifying, "Table 2", lines=(("Nyama", 1, 800),))
    receipt = menu_payment(live, sim_state, f"TAB{tab.id}", 800)
    settled(1)
    said = sentence(ask(counter, receipt).get_data(as_text=True))
    assert said.startswith("Genuine, but already claimed to Table 2 (KES 800 from JANE at ")


def test_money_whose_notice_was_lost_is_confirmed_by_mpesa(verifying, counter, live, sim_state):
    sim_state.set_faults(callback_lost=True, callback_delay=0.5)  # to see "Asking M-Pesa…"
    receipt = menu_payment(live, sim_state, "walk in", 200)
    first = ask(counter, receipt).get_data(as_text=True)
    assert f"Asking M-Pesa about {receipt}…" in first and 'hx-trigger="every 2s' in first
    said = sentence(answered(counter))
    assert re.fullmatch(
        r"Genuine: KES 200 from JANE at \d\d:\d\d, paid to this bar\. PesaTab has not received "
        r"M-Pesa's notice of it yet, so it cannot be claimed to a tab here\.",
        said,
    )
    request = db.session.scalars(select(InitiatorRequest)).one()
    assert request.state == "answered" and request.subject == receipt
    assert request.parameters["ReceiptNo"] == receipt


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "QZZ9ZZZ9ZZ",
            "Not found: M-Pesa has no payment with the code QZZ9ZZZ9ZZ. Do not accept it.",
        ),
        (
            "SIM0THER01",
            "Paid to another business (MAMA MBOGA STORES), not to this bar. Do not accept it.",
        ),
    ],
)
def test_codes_that_are_not_this_bars_money_say_so(verifying, counter, sim_state, code, expected):
    sim_state.set_faults(callback_delay=0.5)  # the result comes after the page: it polls
    assert "Asking M-Pesa" in ask(counter, code).get_data(as_text=True)
    assert sentence(answered(counter)) == expected


def test_money_paid_to_the_simulators_other_shortcode_is_another_business(
    verifying, counter, live, sim_state
):
    import requests

    from app.simulator import SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET, TILL_NUMBER, TILL_STORE_NUMBER

    nobody = f"{live.url}/hooks/c2b/another-business/confirmation"  # not this bar's URL
    sim_state.register_c2b(TILL_STORE_NUMBER, nobody, nobody)
    base = f"{live.url}/_daraja"
    token = requests.get(
        f"{base}/oauth/v1/generate?grant_type=client_credentials",
        auth=(SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET), timeout=5,
    ).json()["access_token"]  # fmt: skip
    push = requests.post(
        f"{base}/mpesa/c2b/v1/simulate",
        json={"ShortCode": TILL_NUMBER, "CommandID": "CustomerBuyGoodsOnline", "Amount": 650,
              "Msisdn": "254708374149", "BillRefNumber": ""},
        headers={"Authorization": f"Bearer {token}"}, timeout=5,
    )  # fmt: skip
    assert push.status_code == 200, push.text
    receipt = sim_state.events("c2b_payment")[-1]["receipt"]
    ask(counter, receipt)
    assert sentence(answered(counter)).startswith("Paid to another business (OTHER SIM BUSINESS)")


def test_wrong_initiator_credentials_are_said_to_the_cashier_and_the_owner(
    app, verifying, counter, owner, sim_state
):
    save_initiator(verifying, sim_state, password="not-the-password-1")
    ask(counter, "QZZ9ZZZ9ZZ")
    page = answered(counter)
    assert sentence(page).startswith("M-Pesa refused PesaTab's initiator credentials")
    assert "Owner: check the initiator name and password on the M-Pesa page" in page
    settings = login_as(app, owner).get("/settings/mpesa/").get_data(as_text=True)
    assert 'id="initiator-refused"' in settings


def test_a_queue_timeout_says_mpesa_did_not_answer(verifying, counter, sim_state):
    sim_state.set_faults(status_queue_timeout=True)
    ask(counter, "QZZ9ZZZ9ZZ")
    said = sentence(answered(counter))
    assert said == (
        "M-Pesa did not answer in time. Do not accept the code yet: check it again in a minute."
    )
    record = db.session.scalars(select(InitiatorResult)).one()
    assert record.endpoint == "timeout" and record.disposition == "applied"


def test_without_initiator_credentials_our_records_still_answer(
    factory, bar, counter, live, sim_state, runner
):
    factory.live_credentials(bar)
    runner.invoke(args=["c2b", "register", "--bar", bar.slug])
    receipt = menu_payment(live, sim_state, "walk in", 300)
    settled(1)
    assert sentence(ask(counter, receipt).get_data(as_text=True)).startswith("Genuine: KES 300")
    unknown = sentence(ask(counter, "QZZ9ZZZ9ZZ").get_data(as_text=True))
    assert unknown.startswith("Not in PesaTab's records, and PesaTab cannot ask M-Pesa")
    assert sim_state.events("status_query") == []


def test_a_code_asked_again_soon_is_not_asked_of_mpesa_twice(verifying, counter, sim_state):
    ask(counter, "QZZ9ZZZ9ZZ")
    answered(counter)
    again = sentence(ask(counter, "qzz9 zzz9zz").get_data(as_text=True))
    assert again.startswith("Not found")
    assert len(sim_state.events("status_query")) == 1
    asked = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "verify.asked"))
    assert [e.details["receipt"] for e in asked] == ["QZZ9ZZZ9ZZ"]


@pytest.mark.parametrize("typed", ["", "QK12", "QK12ABC3XY9", "QK12-ABC3X", "<script>x</s>"])
def test_what_is_not_a_code_gets_a_sentence(verifying, counter, typed):
    response = ask(counter, typed)
    assert response.status_code == 422
    assert "An M-Pesa code is 10 letters and digits, like QK12ABC3XY." in response.get_data(
        as_text=True
    )
    assert db.session.scalars(select(InitiatorRequest)).all() == []


def test_a_browser_without_htmx_gets_the_whole_page(verifying, counter, sim_state):
    sim_state.set_faults(callback_delay=0.5)
    page = counter.post("/verify/", data={"code": "QZZ9ZZZ9ZZ"}).get_data(as_text=True)
    assert "<html" in page and "Asking M-Pesa about QZZ9ZZZ9ZZ…" in page


def test_mpesa_is_asked_a_limited_number_of_times_per_bar(app, verifying, counter):
    app.config["VERIFY_LIMIT_PER_BAR"] = "1 per minute"
    assert ask(counter, "QZZ9ZZZ9ZZ").status_code == 200
    refused = ask(counter, "QYY9YYY9YY")
    assert refused.status_code == 429
    assert "too many codes were asked of M-Pesa" in refused.get_data(as_text=True)
    assert ask(counter, "QZZ9ZZZ9ZZ").status_code == 200  # already asked: answered, not counted


def test_another_bars_request_is_a_404(app, verifying, counter, outsider):
    ask(counter, "QZZ9ZZZ9ZZ")
    request = db.session.scalars(select(InitiatorRequest)).one()
    assert login_as(app, outsider).get(f"/verify/{request.id}").status_code == 404
    assert counter.get(f"/verify/{request.id + 1}").status_code == 404


def test_the_tab_list_offers_the_form(verifying, counter):
    page = counter.get("/tabs/").get_data(as_text=True)
    assert "Verify an M-Pesa code" in page and 'hx-post="/verify/"' in page


def test_answers_are_counted_by_outcome(verifying, counter):
    from app.health.metrics import VERIFY_ANSWERS

    before = VERIFY_ANSWERS.labels("not_found")._value.get()
    ask(counter, "QZZ9ZZZ9ZZ")
    answered(counter)
    assert VERIFY_ANSWERS.labels("not_found")._value.get() == before + 1


def test_the_demo_bar_verifies_codes_against_the_built_in_simulator(app, runner, live, sim_state):
    from app.cli.bars import DEMO_CASHIER_EMAIL
    from app.models import User

    output = runner.invoke(args=["demo"]).output
    password = re.search(r"password \(both\): (\S+)", output)[1]
    assert runner.invoke(args=["demo"]).exit_code == 0  # again: nothing doubled
    cashier = db.session.scalar(select(User).where(User.email == DEMO_CASHIER_EMAIL))
    assert initiator.open_initiator(cashier.bar_id).name == sim_status.SIM_INITIATOR
    desk = login_as_password(app, cashier, password)
    ask(desk, "SIM0THER01")
    assert sentence(answered(desk)).startswith("Paid to another business (MAMA MBOGA STORES)")


def login_as_password(app, user, password):
    from tests.conftest import Client

    app.test_client_class = Client
    client = app.test_client()
    assert client.login(user, password).status_code == 302
    return client


def test_after_refused_credentials_are_fixed_the_code_is_asked_again(verifying, counter, sim_state):
    save_initiator(verifying, sim_state, password="not-the-password-1")
    ask(counter, "SIM0THER02")
    assert sentence(answered(counter)).startswith("M-Pesa refused PesaTab's initiator")
    save_initiator(verifying, sim_state)  # the owner types the right password
    ask(counter, "SIM0THER02")
    assert sentence(answered(counter)).startswith("Paid to another business (KARIBU WINES)")
    assert len(sim_state.events("status_query")) == 2
    assert initiator.initiator_for(verifying.id).refused_at is None
