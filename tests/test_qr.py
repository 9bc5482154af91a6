"""The bill's pay-by-scan QR (Daraja Dynamic QR): the client sends Daraja's body and reads a
real PNG back; the simulator makes one with segno that says what to pay; the bill and the tab
page show it for the balance (asked once per balance), say a sentence when Daraja fails, show
none at KES 0 or before go-live; and a scan pays the tab by itself through the confirmation."""

from __future__ import annotations

import base64
import json
import struct
import time

import pytest
import requests
import responses
from sqlalchemy import select

from app.extensions import db
from app.models import Payment, TabLine
from app.mpesa import DarajaClient, DarajaError, InvalidRequest
from app.mpesa.qr import PNG_SIGNATURE
from app.simulator import SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET, TILL_NUMBER
from app.simulator import qr as sim_qr
from tests.conftest import login_as
from tests.test_c2b_simulator import settled
from tests.test_mpesa_client import BASE, PAYBILL, TILL, add_token, calls_to, sent_json

GENERATE = f"{BASE}/mpesa/qrcode/v1/generate"
SIM_SECRET = "test-simulator-control-secret-0123456789"  # tests/conftest.py's DARAJA_SIM_SECRET
TINY_PNG = (
    PNG_SIGNATURE + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 1, 1) + b"\x08\x02\x00\x00\x00"
)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


# -- the client ----------------------------------------------------------------------------------


@pytest.fixture
def daraja():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_the_client_sends_daraja_s_body_and_reads_the_png(daraja):
    add_token(daraja)
    daraja.post(GENERATE, json={
        "ResponseCode": "AG_20191219_000043fdf61864fe9ff5", "RequestID": "16738-27456357-1",
        "ResponseDescription": "QR Code Successfully Generated.",
        "QRCode": base64.b64encode(TINY_PNG).decode(),
    })  # fmt: skip
    made = DarajaClient(BASE).qr_generate(
        PAYBILL, merchant_name="  Kwa  Mama Pub ", ref_no="TAB 42", amount=800, trx_code="PB",
        cpi="174379",
    )  # fmt: skip
    assert made.png == TINY_PNG and made.request_id == "16738-27456357-1"
    assert made.data_uri.startswith("data:image/png;base64,iVBORw0KGgo")
    (call,) = calls_to(daraja, GENERATE)
    assert sent_json(call) == {
        "MerchantName": "Kwa Mama Pub", "RefNo": "TAB42", "Amount": 800, "TrxCode": "PB",
        "CPI": "174379", "Size": "300",
    }  # fmt: skip
    assert call.request.headers["Authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"trx_code": "XX"}, "trx_code"), ({"amount": 0}, "amount"), ({"amount": 1.5}, "amount"),
     ({"cpi": "12ab"}, "cpi"), ({"ref_no": "  --  "}, "ref_no")],
)  # fmt: skip
def test_the_client_refuses_bad_input_before_calling(daraja, changes, field):
    fields = {"merchant_name": "Bar", "ref_no": "TAB1", "amount": 100, "trx_code": "BG",
              "cpi": "5123456"}  # fmt: skip
    with pytest.raises(InvalidRequest) as refused:
        DarajaClient(BASE).qr_generate(TILL, **(fields | changes))
    assert refused.value.field == field and len(daraja.calls) == 0


@pytest.mark.parametrize(
    "answer",
    [{"ResponseCode": "1", "ResponseDescription": "Invalid CPI"}, {"QRCode": "not base64!"},
     {"QRCode": base64.b64encode(b"GIF89a").decode()}],
)  # fmt: skip
def test_an_answer_without_a_png_is_an_error(daraja, answer):
    add_token(daraja)
    daraja.post(GENERATE, json=answer)
    with pytest.raises(DarajaError):
        DarajaClient(BASE).qr_generate(
            PAYBILL, merchant_name="Bar", ref_no="TAB1", amount=5, trx_code="PB", cpi="174379"
        )


# -- the simulator -------------------------------------------------------------------------------


def sim_token(live) -> str:
    return requests.get(
        f"{live.url}/_daraja/oauth/v1/generate?grant_type=client_credentials",
        auth=(SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET), timeout=5,
    ).json()["access_token"]  # fmt: skip


def sim_generate(live, **changes):
    body = {"MerchantName": "Kwa Mama", "RefNo": "TAB7", "Amount": 800, "TrxCode": "PB",
            "CPI": SANDBOX_SHORTCODE, "Size": "300", **changes}  # fmt: skip
    return requests.post(
        f"{live.url}/_daraja/mpesa/qrcode/v1/generate", json=body,
        headers={"Authorization": f"Bearer {sim_token(live)}"}, timeout=5,
    )  # fmt: skip


def test_the_simulator_makes_a_real_png_of_what_to_pay(live, sim_state):
    answer = sim_generate(live)
    assert answer.status_code == 200, answer.text
    png = base64.b64decode(answer.json()["QRCode"])
    width, height = png_size(png)
    assert width == height and 200 <= width <= 300
    (made,) = sim_state.events("qr_generated")
    assert made["payload"] == (
        "PESATAB-SIM-QR;TrxCode=PB;CPI=174379;Amount=800;RefNo=TAB7;MerchantName=Kwa Mama"
    )
    assert png == sim_qr.png_for(made["payload"], 300)  # segno's image of exactly that payload
    assert answer.json()["RequestID"] == made["request_id"]


@pytest.mark.parametrize(
    "changes",
    [{"TrxCode": "WA"}, {"CPI": "999999"}, {"TrxCode": "BG", "CPI": SANDBOX_SHORTCODE},
     {"Amount": 0}, {"RefNo": ""}],
)  # fmt: skip
def test_the_simulator_refuses_a_qr_it_cannot_pay(live, sim_state, changes):
    answer = sim_generate(live, **changes)
    assert answer.status_code == 400 and answer.json()["errorCode"] == "400.002.02"


# -- the bill and the tab page -------------------------------------------------------------------


@pytest.fixture
def ready(factory, bar, live):
    factory.live_credentials(bar)
    return factory.tab(bar, "Table 7", lines=(("Nyama choma", 1, 800),))


def test_the_bill_shows_the_qr_for_the_balance_and_asks_daraja_once(app, ready, cashier, sim_state):
    counter = login_as(app, cashier)
    page = counter.get(f"/tabs/{ready.id}/bill").get_data(as_text=True)
    assert 'src="data:image/png;base64,iVBORw0KGgo' in page
    assert f"Scan with the M-Pesa app to pay KES 800. Account: TAB{ready.id}." in page
    (made,) = sim_state.events("qr_generated")
    assert f"TrxCode=PB;CPI=174379;Amount=800;RefNo=TAB{ready.id};" in made["payload"]
    counter.get(f"/tabs/{ready.id}/bill")
    fragment = counter.get(f"/tabs/{ready.id}/qr").get_data(as_text=True)
    assert 'id="bill-qr-image"' in fragment
    assert len(sim_state.events("qr_generated")) == 1  # the reloads came from the cache
    db.session.add(TabLine(tab_id=ready.id, description="Soda", quantity=1, unit_price=100))
    db.session.commit()
    counter.get(f"/tabs/{ready.id}/bill")
    assert "Amount=900;" in sim_state.events("qr_generated")[-1]["payload"]  # a new balance


def test_a_till_bar_gets_a_buy_goods_qr_to_its_till(app, factory, bar, live, cashier, sim_state):
    factory.live_credentials(bar, kind="till")
    tab = factory.tab(bar, "Table 1", lines=(("Tusker", 2, 250),))
    login_as(app, cashier).get(f"/tabs/{tab.id}/bill")
    (made,) = sim_state.events("qr_generated")
    assert f"TrxCode=BG;CPI={TILL_NUMBER};Amount=500;RefNo=TAB{tab.id};" in made["payload"]


def test_the_tab_page_fetches_the_qr_after_the_page(app, ready, cashier, sim_state):
    page = login_as(app, cashier).get(f"/tabs/{ready.id}").get_data(as_text=True)
    assert f'hx-get="/tabs/{ready.id}/qr"' in page and f'href="/tabs/{ready.id}/bill"' in page
    assert sim_state.events("qr_generated") == []  # the page itself never waits for Daraja


def test_when_daraja_fails_the_bill_still_works_and_says_so(app, ready, cashier, monkeypatch):
    def refused(self, creds, **fields):
        raise DarajaError("Spike arrest violation", http_status=500, transient=True)

    monkeypatch.setattr(DarajaClient, "qr_generate", refused)
    counter = login_as(app, cashier)
    response = counter.get(f"/tabs/{ready.id}/bill")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "KES 800" in page
    assert "QR not available right now" in page and "data:image/png" not in page
    assert "QR not available right now" in counter.get(f"/tabs/{ready.id}/qr").get_data(
        as_text=True
    )


def test_no_qr_at_kes_0_or_before_go_live(app, factory, bar, ready, cashier, sim_state):
    counter = login_as(app, cashier)
    empty = factory.tab(bar, "Nothing yet")
    assert 'id="bill-qr-none"' in counter.get(f"/tabs/{empty.id}/bill").get_data(as_text=True)
    bar.setup_state = "verified"
    db.session.commit()
    assert 'id="bill-qr-none"' in counter.get(f"/tabs/{ready.id}/bill").get_data(as_text=True)
    assert sim_state.events("qr_generated") == []


def test_another_bars_tab_answers_404(app, ready, outsider):
    stranger = login_as(app, outsider)
    assert stranger.get(f"/tabs/{ready.id}/bill").status_code == 404
    assert stranger.get(f"/tabs/{ready.id}/qr").status_code == 404


# -- scan and pay --------------------------------------------------------------------------------


def scan(live, payload: str, **extra) -> requests.Response:
    return requests.post(
        f"{live.url}/_daraja/_control/qr-scan", json={"payload": payload, **extra},
        headers={"X-Simulator-Secret": SIM_SECRET}, timeout=10,
    )  # fmt: skip


def test_scanning_the_bill_pays_the_tab_by_itself(
    app, bar, ready, cashier, live, runner, sim_state
):
    result = runner.invoke(args=["c2b", "register", "--bar", bar.slug])
    assert result.exit_code == 0, result.output
    counter = login_as(app, cashier)
    counter.get(f"/tabs/{ready.id}/bill")
    (made,) = sim_state.events("qr_generated")
    answer = scan(live, made["payload"])
    assert answer.status_code == 200 and answer.json()["money_moved"] is True
    (confirmation,) = settled(1)
    assert confirmation.disposition == "applied" and confirmation.account == f"TAB{ready.id}"
    (money,) = db.session.scalars(select(Payment)).all()
    assert (money.amount, money.tab_id, money.receipt) == (800, ready.id, answer.json()["receipt"])
    deadline = time.monotonic() + 5
    page = ""
    while "KES 0" not in page and time.monotonic() < deadline:
        page = counter.get(f"/tabs/{ready.id}/bill").get_data(as_text=True)
    assert 'id="bill-qr-none"' in page  # paid: nothing left to scan


def test_the_scan_control_refuses_what_it_cannot_pay(live, sim_state):
    assert scan(live, "hello").status_code == 400
    payload = sim_qr.payload_text(
        {
            "TrxCode": "PB",
            "CPI": SANDBOX_SHORTCODE,
            "Amount": "5",
            "RefNo": "T",
            "MerchantName": "x",
        }
    )
    refused = scan(live, payload)  # no C2B URLs registered for the shortcode yet
    assert refused.status_code == 400 and "ConfirmationURL" in refused.text
    no_secret = requests.post(f"{live.url}/_daraja/_control/qr-scan", json={}, timeout=5)
    assert no_secret.status_code == 404
    assert json.loads(no_secret.text)  # the gateway's unknown-path answer, as elsewhere
