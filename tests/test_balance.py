"""The owner's M-Pesa balance, over real HTTP against the mounted simulator: "Check balance"
asks Account Balance with the bar's initiator credentials, the Result is POSTed back to the
request's own URL and applied once, and the card shows each account in KES. At most one ask
per bar in BALANCE_LIMIT_PER_BAR; refusals in one sentence; owner only."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.formats import kes
from app.models import AuditEvent, InitiatorRequest, InitiatorResult
from app.mpesa.balance import whole_shillings
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_SECRET
from app.simulator import balance as sim_balance
from app.simulator import status as sim_status
from tests.conftest import login_as
from tests.test_logging import assert_clean
from tests.test_verify import save_initiator

HX = {"HX-Request": "true"}


@pytest.fixture
def balanced(factory, bar, live, sim_state):
    """A live PayBill bar with the simulator's initiator saved."""
    factory.live_credentials(bar)
    save_initiator(bar, sim_state)
    return bar


@pytest.fixture
def boss(app, owner):
    return login_as(app, owner)


def ask(boss, **headers):
    return boss.post("/balance/", headers={**HX, **headers})


def latest() -> InitiatorRequest:
    db.session.expire_all()
    return db.session.scalars(select(InitiatorRequest).order_by(InitiatorRequest.id.desc())).first()


def answered(boss, timeout: float = 10.0) -> str:
    """Poll the latest request's card, as the dashboard does, until it stops polling."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        card = boss.get(f"/balance/{latest().id}", headers=HX)
        assert card.status_code == 200
        text = card.get_data(as_text=True)
        if "hx-trigger" not in text:
            return text
        time.sleep(0.05)
    raise AssertionError("M-Pesa's answer never showed")


def older(**by) -> None:
    """Every request made `by` (timedelta arguments) earlier: time passing, without a clock."""
    for request in db.session.scalars(select(InitiatorRequest)):
        request.created_at -= timedelta(**by)
    db.session.commit()


def sentence(html: str) -> str:
    found = re.search(r'id="balance-sentence"[^>]*><strong>(.*?)</strong>', html, re.S)
    assert found, html
    return " ".join(found[1].split()).replace("&#39;", "'")


def rows(html: str) -> dict[str, tuple[str, str]]:
    """{account: (available, total)} as the card shows them."""
    found = re.findall(
        r'<tr><td class="wrap">(.*?)</td><td class="num">(.*?)</td><td class="num">(.*?)</td>', html
    )
    return {name: (available, total) for name, available, total in found}


def figures(sim_state, shortcode: str = SANDBOX_SHORTCODE) -> dict[str, str]:
    return {n: kes(whole_shillings(v)) for n, v in sim_balance.accounts(sim_state, shortcode)}


def test_the_owner_asks_and_sees_the_working_and_utility_accounts(balanced, boss, sim_state):
    dashboard = boss.get("/dashboard").get_data(as_text=True)
    assert "M-Pesa balance" in dashboard and 'hx-post="/balance/"' in dashboard
    assert "M-Pesa is asked at most once every 5 minutes." in dashboard
    first = ask(boss)
    assert first.status_code == 200
    card = answered(boss)
    shown, expected = rows(card), figures(sim_state)
    assert shown["Working Account"] == (expected["Working Account"],) * 2
    assert shown["Utility Account"] == (expected["Utility Account"],) * 2
    assert shown["Charges Paid Account"][0].startswith("-KES ")
    assert re.fullmatch(r"KES \d{1,3}(,\d{3})+", shown["Working Account"][0])  # separators
    assert re.search(r'id="balance-as-at">As at \d\d \w{3} \d{4}, \d\d:\d\d EAT<', card)
    request = latest()
    assert (request.kind, request.state, request.outcome) == ("balance", "answered", "shown")
    assert request.subject == SANDBOX_SHORTCODE and "AccountBalance" in request.parameters
    (event,) = sim_state.events("balance_query")
    assert event["shortcode"] == SANDBOX_SHORTCODE and event["valid_initiator"] is True
    (audited,) = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "balance.asked"))
    assert audited.details == {"request_id": request.id, "shortcode": SANDBOX_SHORTCODE}
    again = boss.get("/dashboard").get_data(as_text=True)  # the dashboard shows it too
    assert rows(again)["Utility Account"] == shown["Utility Account"]


def test_money_the_simulator_took_is_in_the_working_account(
    balanced, boss, live, sim_state, runner
):
    from tests.test_c2b_simulator import pay_from_menu, settled

    assert runner.invoke(args=["c2b", "register", "--bar", balanced.slug]).exit_code == 0
    before = sim_balance.accounts(sim_state, SANDBOX_SHORTCODE)[0][1]
    assert pay_from_menu(live, "walk in", 2500) == "0"
    settled(1)
    ask(boss)
    working = rows(answered(boss))["Working Account"][0]
    assert working == kes(whole_shillings(before) + 2500)


def test_while_mpesa_is_asked_the_card_polls_and_keeps_the_button_off(balanced, boss, sim_state):
    sim_state.set_faults(callback_delay=0.5)
    first = ask(boss).get_data(as_text=True)
    assert "Asking M-Pesa for the balance…" in first
    assert 'hx-trigger="every 2s' in first and "data-poll" in first
    assert re.search(r"<button type=\"submit\" disabled>Check balance</button>", first)
    assert "Working Account" in answered(boss)


def test_a_second_ask_within_five_minutes_is_refused_and_not_sent(balanced, boss, sim_state):
    ask(boss)
    first = answered(boss)
    refused = ask(boss)
    assert refused.status_code == 429
    text = refused.get_data(as_text=True)
    notice = re.search(r'id="balance-notice">(.*?)</p>', text, re.S)[1]
    asked_at, again_at = re.fullmatch(
        r"M-Pesa was asked for the balance at (\d\d:\d\d) EAT\. It can be asked again at "
        r"(\d\d:\d\d) EAT; until then the last figures stay shown\.",
        " ".join(notice.split()),
    ).groups()
    gap = (int(again_at[:2]) * 60 + int(again_at[3:])) - (
        int(asked_at[:2]) * 60 + int(asked_at[3:])
    )
    assert gap % (24 * 60) in (5, 6)  # five minutes on, said as the next whole minute
    assert rows(text) == rows(first)  # the last figures stay shown
    assert len(sim_state.events("balance_query")) == 1  # nothing more was sent to Daraja
    assert len(db.session.scalars(select(InitiatorRequest)).all()) == 1
    # Five minutes later it may be asked again.
    older(minutes=5)
    assert ask(boss).status_code == 200
    answered(boss)
    assert len(sim_state.events("balance_query")) == 2


def test_the_interval_is_a_setting(app, balanced, boss, sim_state):
    app.config["BALANCE_LIMIT_PER_BAR"] = "2 per 10 minutes"
    assert "M-Pesa is asked at most 2 times every 10 minutes." in boss.get("/dashboard").get_data(
        as_text=True
    )
    assert ask(boss).status_code == 200
    answered(boss)
    assert ask(boss).status_code == 200
    answered(boss)
    assert ask(boss).status_code == 429
    assert len(sim_state.events("balance_query")) == 2


def test_a_replayed_result_is_applied_once(balanced, boss, live, sim_state):
    from app.health.metrics import BALANCE_ANSWERS

    before_count = BALANCE_ANSWERS.labels("shown")._value.get()
    ask(boss)
    shown = rows(answered(boss))
    request = latest()
    (record,) = db.session.scalars(select(InitiatorResult))
    url = f"{live.url}/hooks/result/{request.url_secret}"
    replay = requests.post(url, data=record.raw_body, timeout=5,
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert replay.status_code == 200
    forged = record.raw_body.replace("Working Account|KES|", "Working Account|KES|9")
    assert forged != record.raw_body
    requests.post(url, data=forged, timeout=5, headers={"Content-Type": "application/json"})
    db.session.expire_all()
    dispositions = [
        r.disposition
        for r in db.session.scalars(select(InitiatorResult).order_by(InitiatorResult.id))
    ]
    assert dispositions == ["applied", "duplicate", "duplicate"]
    assert rows(answered(boss)) == shown
    assert latest().parameters == request.parameters
    assert BALANCE_ANSWERS.labels("shown")._value.get() == before_count + 1


def test_a_wrong_initiator_password_is_said_and_fixing_it_allows_asking_at_once(
    app, balanced, boss, sim_state
):
    save_initiator(balanced, sim_state, password="not-the-password-1")
    ask(boss)
    card = answered(boss)
    assert sentence(card) == (
        "M-Pesa refused the initiator credentials (the initiator name or password is wrong, or "
        "the credential is locked), so it did not give the balance. Check them on the M-Pesa page."
    )
    assert 'href="/settings/mpesa/#initiator"' in card
    assert latest().result_code == "2001" and latest().outcome == "bad_credentials"
    assert 'id="initiator-refused"' in boss.get("/settings/mpesa/").get_data(as_text=True)
    save_initiator(balanced, sim_state)  # the owner types the right password
    assert ask(boss).status_code == 200  # changed credentials: not held to the five minutes
    assert "Working Account" in answered(boss)
    assert len(sim_state.events("balance_query")) == 2


def test_a_queue_timeout_says_mpesa_did_not_answer(balanced, boss, sim_state):
    sim_state.set_faults(balance_queue_timeout=True)
    ask(boss)
    assert sentence(answered(boss)) == "M-Pesa did not answer; try again in a few minutes."
    (record,) = db.session.scalars(select(InitiatorResult))
    assert record.endpoint == "timeout" and record.disposition == "applied"
    assert latest().outcome == "no_answer"


def test_no_answer_in_time_says_the_same(balanced, boss, sim_state):
    sim_state.set_faults(callback_lost=True, callback_delay=60)
    ask(boss)
    older(seconds=91)
    assert sentence(answered(boss)) == "M-Pesa did not answer; try again in a few minutes."


def test_a_refusal_by_daraja_is_said_in_its_words(balanced, boss, sim_state):
    sim_state.set_faults(spike_arrest_calls=10)
    response = ask(boss)
    assert response.status_code == 200
    said = sentence(response.get_data(as_text=True))
    assert said == "M-Pesa refused to give the balance: Error Occurred: Spike Arrest Violation"
    assert latest().state == "refused" and latest().outcome == "refused"
    assert sim_state.events("balance_query") == []


def test_the_last_figures_stay_under_a_later_failure(balanced, boss, sim_state):
    ask(boss)
    shown = rows(answered(boss))
    older(minutes=5)
    sim_state.set_faults(balance_queue_timeout=True)
    ask(boss)
    card = answered(boss)
    assert sentence(card) == "M-Pesa did not answer; try again in a few minutes."
    assert rows(card) == shown


def test_without_initiator_credentials_the_card_says_what_to_do(
    factory, bar, boss, live, sim_state
):
    factory.live_credentials(bar)
    dashboard = boss.get("/dashboard").get_data(as_text=True)
    assert sentence(dashboard) == (
        "To see the balance, add the initiator credentials on the M-Pesa page (Verifying M-Pesa "
        "codes): M-Pesa gives the balance only to the bar's initiator."
    )
    assert 'href="/settings/mpesa/#initiator"' in dashboard
    assert 'hx-post="/balance/"' not in dashboard
    assert ask(boss).status_code == 200
    assert sim_state.events("balance_query") == []
    assert db.session.scalars(select(InitiatorRequest)).all() == []


def test_without_mpesa_credentials_the_card_says_connect_first(boss, live, sim_state):
    said = sentence(boss.get("/dashboard").get_data(as_text=True))
    assert said.startswith("Connect the bar's M-Pesa on the M-Pesa page first")
    ask(boss)
    assert sim_state.events("balance_query") == []


def test_only_the_owner_sees_and_asks(app, balanced, boss, manager, cashier):
    ask(boss)
    answered(boss)
    request_id = latest().id
    for person in (manager, cashier):
        other = login_as(app, person)
        assert "M-Pesa balance" not in other.get("/dashboard").get_data(as_text=True)
        assert other.post("/balance/", headers=HX).status_code == 403
        assert other.get(f"/balance/{request_id}", headers=HX).status_code == 403


def test_another_bars_request_and_another_kind_answer_404(app, balanced, boss, outsider):
    from app.payments import initiator

    ask(boss)
    answered(boss)
    request_id = latest().id
    assert login_as(app, outsider).get(f"/balance/{request_id}").status_code == 404
    status = initiator.start(balanced.id, "status", "QZZ9ZZZ9ZZ", None)
    assert boss.get(f"/balance/{status.id}").status_code == 404
    assert boss.get(f"/balance/{status.id + 1}").status_code == 404


def test_a_browser_without_htmx_gets_the_whole_page(balanced, boss, sim_state):
    page = boss.post("/balance/").get_data(as_text=True)
    assert "<html" in page and "M-Pesa balance" in page and "Back to the dashboard" in page


def test_a_post_without_the_csrf_token_is_refused(balanced, boss, sim_state):
    assert boss.post("/balance/", headers=HX, csrf=False).status_code == 400
    assert sim_state.events("balance_query") == []


def test_the_card_speaks_kiswahili(balanced, owner, boss, sim_state):
    owner.locale = "sw"
    db.session.commit()
    ask(boss)
    card = answered(boss)
    assert "Salio la M-Pesa" in card and "Angalia salio" in card
    assert re.search(r'id="balance-as-at">Kufikia \d\d \w{3} \d{4}, \d\d:\d\d EAT<', card)
    refused = ask(boss).get_data(as_text=True)
    assert "M-Pesa iliulizwa salio saa" in refused


def test_a_till_asks_for_its_store_numbers_balance(factory, bar, boss, live, sim_state):
    from app.simulator import TILL_STORE_NUMBER

    factory.live_credentials(bar, kind="till")
    save_initiator(bar, sim_state)
    ask(boss)
    shown = rows(answered(boss))
    assert shown["Working Account"][0] == figures(sim_state, TILL_STORE_NUMBER)["Working Account"]
    assert sim_state.events("balance_query")[0]["shortcode"] == TILL_STORE_NUMBER


def test_no_secret_reaches_a_page_or_the_log(app, balanced, boss, sim_state, caplog):
    caplog.set_level(logging.DEBUG)
    pages = [boss.get("/dashboard").get_data(as_text=True), ask(boss).get_data(as_text=True)]
    pages.append(answered(boss))
    pages.append(ask(boss).get_data(as_text=True))  # refused: too soon
    pages.append(boss.get("/settings/mpesa/").get_data(as_text=True))
    save_initiator(balanced, sim_state, password="another-wrong-password-9")
    pages.append(ask(boss).get_data(as_text=True))
    pages.append(answered(boss))
    secrets = [
        sim_status.SIM_INITIATOR_PASSWORD,
        "another-wrong-password-9",
        SIM_CONSUMER_SECRET,
        SANDBOX_PASSKEY,
    ]
    for page in pages:
        for secret in secrets:
            assert secret not in page
    assert_clean(caplog.text, secrets)
    stored = " ".join(
        str((r.parameters, r.result_desc)) for r in db.session.scalars(select(InitiatorRequest))
    )
    stored += " ".join(r.raw_body for r in db.session.scalars(select(InitiatorResult)))
    stored += " ".join(str(e.details) for e in db.session.scalars(select(AuditEvent)))
    assert_clean(stored, secrets)


def test_two_asks_at_once_send_one_request(app, balanced, owner, sim_state):
    """Two tabs (or two workers) clicking together: the bar's row is locked while one decides,
    so the other counts it and is refused."""
    import threading

    clients = [login_as(app, owner), login_as(app, owner)]
    start, answers = threading.Barrier(2), []

    def click(client):
        start.wait()
        answers.append(client.post("/balance/", headers=HX).status_code)

    threads = [threading.Thread(target=click, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(answers) == [200, 429]
    assert len(sim_state.events("balance_query")) == 1
    assert len(db.session.scalars(select(InitiatorRequest)).all()) == 1
