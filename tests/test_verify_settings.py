"""The owner sets the initiator credentials on the M-Pesa page: the certificate must parse, the
password is sealed and never shown back, changes are audited by field name; and the client's
Transaction Status request has Daraja's shape and keeps the secrets out of its errors."""

from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, InitiatorCredential
from app.mpesa import Credentials, DarajaClient, DarajaError
from app.mpesa.initiator import Initiator
from app.settings import initiator
from app.simulator import status as sim_status
from tests.conftest import login_as
from tests.test_security_credential import self_signed

PASSWORD = "Initiator-Pass-0042!"


@pytest.fixture
def desk(app, factory, bar, owner):
    factory.live_credentials(bar)
    return login_as(app, owner)


@pytest.fixture
def pem(sim_state) -> str:
    return sim_status.certificate_pem(sim_state)


def save(desk, **fields):
    data = {"initiator_name": "apiop", "initiator_password": PASSWORD, "certificate": "", **fields}
    return desk.post("/settings/mpesa/initiator", data=data, follow_redirects=True)


def test_the_owner_saves_them_and_the_password_is_never_shown(desk, bar, pem):
    page = save(desk, certificate=pem).get_data(as_text=True)
    assert "Saved: cashiers can now ask M-Pesa whether a code is real." in page
    assert "Initiator: apiop" in page and "Initiator password: set" in page
    assert "CN=PesaTab Daraja simulator" in page
    assert PASSWORD not in page and PASSWORD not in desk.get("/settings/mpesa/").get_data(
        as_text=True
    )
    stored = db.session.scalars(select(InitiatorCredential)).one()
    assert PASSWORD not in stored.password_sealed and stored.bar_id == bar.id
    assert initiator.open_initiator(bar.id).password == PASSWORD
    [entry] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "mpesa.initiator_saved")
    ).all()
    assert entry.details["fields"] == ["certificate", "initiator_name", "initiator_password"]
    assert PASSWORD not in json.dumps(entry.details)


def test_a_blank_password_and_certificate_keep_the_saved_ones(desk, bar, pem):
    save(desk, certificate=pem)
    page = save(desk, initiator_name="apiop2", initiator_password="").get_data(as_text=True)
    assert "Saved" in page
    opened = initiator.open_initiator(bar.id)
    assert (opened.name, opened.password, opened.certificate_pem) == (
        "apiop2",
        PASSWORD,
        pem.strip(),
    )
    assert "Nothing changed." in save(
        desk, initiator_name="apiop2", initiator_password=""
    ).get_data(as_text=True)


@pytest.mark.parametrize(
    ("certificate", "sentence"),
    [
        ("just some text", "This is not a certificate: paste the whole PEM text"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----",
            "The certificate text is damaged or incomplete",
        ),
    ],
)
def test_a_certificate_that_does_not_parse_is_said_in_a_sentence(desk, certificate, sentence):
    response = save(desk, certificate=certificate)
    assert response.status_code == 200 and sentence in response.get_data(as_text=True)
    assert db.session.scalars(select(InitiatorCredential)).all() == []


def test_the_first_time_needs_the_password_and_the_certificate(desk, pem):
    page = save(desk, initiator_password="", certificate=pem).get_data(as_text=True)
    assert "The password and the certificate are both needed the first time." in page
    page = save(desk, initiator_name="bad name!", certificate=pem).get_data(as_text=True)
    assert "The initiator name is the M-Pesa portal user" in page
    assert db.session.scalars(select(InitiatorCredential)).all() == []


def test_the_page_says_when_they_are_missing(desk):
    assert 'id="initiator-missing"' in desk.get("/settings/mpesa/").get_data(as_text=True)


# The client ---------------------------------------------------------------------------------

CREDS = Credentials("sandbox", "paybill", "174379", "k" * 20, "s" * 12, "p" * 40)
URL = "https://sandbox.safaricom.co.ke"


@pytest.fixture
def who():
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, Initiator("apiop", PASSWORD, self_signed(key))


def _token():
    responses.get(
        f"{URL}/oauth/v1/generate", json={"access_token": "tok" * 8, "expires_in": "3599"}
    )


@responses.activate
def test_transaction_status_sends_dara_jas_body(who):
    import base64

    from cryptography.hazmat.primitives.asymmetric import padding

    key, person = who
    _token()
    responses.post(
        f"{URL}/mpesa/transactionstatus/v1/query",
        json={"OriginatorConversationID": "o-1", "ConversationID": "AG_1", "ResponseCode": "0",
              "ResponseDescription": "Accept the service request successfully."},
    )  # fmt: skip
    accepted = DarajaClient(URL).transaction_status(
        CREDS, person, transaction_id="qk12abc3xy",
        result_url="https://pay.example.co.ke/hooks/result/abc",
        timeout_url="https://pay.example.co.ke/hooks/timeout/abc",
    )  # fmt: skip
    assert (accepted.originator_conversation_id, accepted.conversation_id) == ("o-1", "AG_1")
    body = json.loads(responses.calls[-1].request.body)
    credential = body.pop("SecurityCredential")
    opened = key.decrypt(base64.b64decode(credential), padding.PKCS1v15()).decode()
    assert opened == PASSWORD
    assert body == {
        "Initiator": "apiop",
        "CommandID": "TransactionStatusQuery",
        "TransactionID": "QK12ABC3XY",
        "PartyA": "174379",
        "IdentifierType": "4",
        "ResultURL": "https://pay.example.co.ke/hooks/result/abc",
        "QueueTimeOutURL": "https://pay.example.co.ke/hooks/timeout/abc",
        "Remarks": "Verify a code",
        "Occasion": "",
    }


@responses.activate
def test_an_error_echoing_the_secrets_never_carries_them(who):
    _key, person = who

    def echo(request):
        body = json.loads(request.body)
        text = f"Bad Request - Invalid SecurityCredential {body['SecurityCredential']} {PASSWORD}"
        return 400, {}, json.dumps({"requestId": "1", "errorCode": "400.002.02",
                                    "errorMessage": text})  # fmt: skip

    _token()
    responses.add_callback(responses.POST, f"{URL}/mpesa/transactionstatus/v1/query", echo)
    with pytest.raises(DarajaError) as caught:
        DarajaClient(URL).transaction_status(
            CREDS, person, transaction_id="QK12ABC3XY",
            result_url="https://x.example/hooks/result/a", timeout_url="https://x.example/t/a",
        )  # fmt: skip
    sent = json.loads(responses.calls[-1].request.body)["SecurityCredential"]
    for text in (str(caught.value), repr(caught.value), caught.value.message):
        assert PASSWORD not in text and sent not in text
