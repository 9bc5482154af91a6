"""Over real HTTP against the simulator: a bar registers its C2B URLs, customers pay from the
menu (to a tab's code, to an unknown account, twice-delivered, lost), and every payment lands
once where it belongs."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import C2BConfirmation, Payment
from app.payments import c2b
from app.simulator import SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET


@pytest.fixture
def registered(factory, bar, live, sim_state, runner):
    factory.live_credentials(bar)
    result = runner.invoke(args=["c2b", "register", "--bar", bar.slug])
    assert result.exit_code == 0, result.output
    assert "/c2b/" not in result.output.split("go to", 1)[1].replace("/hooks/c2b/…", "")
    return bar


def pay_from_menu(live, account: str, amount: int) -> str:
    base = f"{live.url}/_daraja"
    token = requests.get(
        f"{base}/oauth/v1/generate?grant_type=client_credentials",
        auth=(SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET), timeout=5,
    ).json()["access_token"]  # fmt: skip
    answer = requests.post(
        f"{base}/mpesa/c2b/v1/simulate",
        json={"ShortCode": SANDBOX_SHORTCODE, "CommandID": "CustomerPayBillOnline",
              "Amount": amount, "Msisdn": "254708374149", "BillRefNumber": account},
        headers={"Authorization": f"Bearer {token}"}, timeout=5,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["ResponseCode"]


def settled(count: int, timeout: float = 10) -> list[C2BConfirmation]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        found = db.session.scalars(select(C2BConfirmation).order_by(C2BConfirmation.id)).all()
        if len(found) >= count and all(f.disposition != "pending" for f in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"{len(found)} confirmations, wanted {count}")


def test_register_then_menu_payments_land_once_where_they_belong(
    registered, factory, live, sim_state
):
    assert c2b.registration_for(registered).registered_at is not None
    tab = factory.tab(registered, "Table 2", lines=(("Nyama", 1, 800),))
    assert pay_from_menu(live, f"TAB{tab.id}", 800) == "0"
    sim_state.set_faults(callback_duplicates=2)
    pay_from_menu(live, "walk in", 300)
    sim_state.set_faults(callback_duplicates=1, callback_lost=True)
    pay_from_menu(live, "lost", 200)  # found later by Pull (not built yet); never by guessing
    found = settled(3)
    assert [f.disposition for f in found] == ["applied", "applied", "duplicate"]
    money = db.session.scalars(select(Payment).order_by(Payment.id)).all()
    assert [(p.amount, p.tab_id) for p in money] == [(800, tab.id), (300, None)]


def test_daraja_refuses_a_url_with_a_forbidden_word(factory, bar, live, runner, app):
    factory.live_credentials(bar)
    app.config["PUBLIC_BASE_URL"] = live.url + "/query-desk"  # "query": refused for C2B
    result = runner.invoke(args=["c2b", "register", "--bar", bar.slug])
    assert result.exit_code != 0 and "must not contain 'query'" in result.output
    assert c2b.registration_for(bar).registered_at is None


def test_the_owner_registers_from_the_mpesa_page_and_sees_the_state(
    app, factory, bar, owner, live, sim_state
):
    from tests.conftest import login_as

    factory.live_credentials(bar)
    desk = login_as(app, owner)
    assert "Not registered yet." in desk.get("/settings/mpesa/").get_data(as_text=True)
    page = desk.post("/settings/mpesa/c2b/register", follow_redirects=True).get_data(as_text=True)
    assert "Registered: money paid from the M-Pesa menu now reaches PesaTab." in page
    assert "No payment seen yet." in page and "Register again" in page
    secret = c2b.registration_for(bar).url_secret
    assert secret not in page  # the URL's secret is a credential: never shown back
    pay_from_menu(live, "walk in", 300)
    settled(1)
    assert "Last payment seen" in desk.get("/settings/mpesa/").get_data(as_text=True)


def test_a_refusal_is_said_on_the_page(app, factory, bar, owner, live):
    from tests.conftest import login_as

    factory.live_credentials(bar)
    app.config["PUBLIC_BASE_URL"] = live.url + "/query-desk"
    desk = login_as(app, owner)
    page = desk.post("/settings/mpesa/c2b/register", follow_redirects=True).get_data(as_text=True)
    assert "must not contain" in page and "Not registered yet." in page
