"""The simulator's Transaction Status on its own: Daraja's synchronous acceptance, its
validation, the result it POSTs (to a receiver playing PesaTab) and its certificate."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import padding

from app.mpesa.security import read_certificate, security_credential
from app.simulator import (
    INSTANT_TIMING,
    SANDBOX_SHORTCODE,
    TILL_NUMBER,
    SimulatorState,
    create_sim_app,
)
from app.simulator import status as sim_status
from app.simulator.testing import basic_auth

PATH = "/mpesa/transactionstatus/v1/query"


@pytest.fixture
def state():
    with SimulatorState(**INSTANT_TIMING) as state:
        yield state


@pytest.fixture
def sim(state):
    client = create_sim_app(state).test_client()
    token = client.get(
        "/oauth/v1/generate?grant_type=client_credentials",
        headers=basic_auth(),
    ).get_json()["access_token"]
    return client, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def receiver():
    from app.simulator.testing import CallbackReceiver

    with CallbackReceiver() as receiver:
        yield receiver


def received(receiver, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if receiver.calls():
            return json.loads(receiver.calls()[-1]["raw"])
        time.sleep(0.02)
    raise AssertionError("no result was POSTed")


def body(state, receiver, **changes):
    pem = sim_status.certificate_pem(state)
    return {
        "Initiator": sim_status.SIM_INITIATOR,
        "SecurityCredential": security_credential(sim_status.SIM_INITIATOR_PASSWORD, pem),
        "CommandID": "TransactionStatusQuery",
        "TransactionID": "SIM0THER01",
        "PartyA": SANDBOX_SHORTCODE,
        "IdentifierType": "4",
        "ResultURL": receiver.url("hooks/result/abc"),
        "QueueTimeOutURL": receiver.url("hooks/timeout/abc"),
        "Remarks": "Verify",
        "Occasion": "",
        **changes,
    }


def test_it_accepts_then_posts_the_result_with_dara_jas_shape(sim, state, receiver):
    client, auth = sim
    answer = client.post(PATH, json=body(state, receiver), headers=auth)
    assert answer.status_code == 200
    accepted = answer.get_json()
    assert accepted["ResponseCode"] == "0" and accepted["ConversationID"].startswith("AG_")
    result = received(receiver)["Result"]
    assert result["ResultCode"] == 0 and result["ConversationID"] == accepted["ConversationID"]
    params = {p["Key"]: p["Value"] for p in result["ResultParameters"]["ResultParameter"]}
    assert {"DebitPartyName", "CreditPartyName", "TransactionStatus", "Amount", "ReceiptNo",
            "InitiatedTime", "FinalisedTime"} <= set(params)  # fmt: skip
    assert params["ReceiptNo"] == "SIM0THER01" and params["TransactionStatus"] == "Completed"
    assert params["CreditPartyName"] == "600100 - MAMA MBOGA STORES"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"CommandID": "AccountBalance"}, "CommandID"),
        ({"PartyA": "999999"}, "PartyA"),
        ({"IdentifierType": "2"}, "PartyA"),
        ({"TransactionID": "short"}, "TransactionID"),
        ({"ResultURL": "not a url"}, "ResultURL"),
        ({"SecurityCredential": ""}, "SecurityCredential"),
    ],
)
def test_it_refuses_a_bad_request_like_daraja(sim, state, receiver, changes, field):
    client, auth = sim
    answer = client.post(PATH, json=body(state, receiver, **changes), headers=auth)
    assert answer.status_code == 400
    assert answer.get_json()["errorMessage"] == f"Bad Request - Invalid {field}"


def test_a_till_asks_as_its_till_number(sim, state, receiver):
    client, auth = sim
    changes = {"PartyA": TILL_NUMBER, "IdentifierType": "2"}
    assert client.post(PATH, json=body(state, receiver, **changes), headers=auth).status_code == 200


def test_a_wrong_password_is_2001_without_parameters(sim, state, receiver):
    client, auth = sim
    pem = sim_status.certificate_pem(state)
    wrong = security_credential("not-the-password", pem)
    client.post(PATH, json=body(state, receiver, SecurityCredential=wrong), headers=auth)
    result = received(receiver)["Result"]
    assert result["ResultCode"] == 2001 and "ResultParameters" not in result


def test_the_key_file_gives_every_process_the_same_certificate(tmp_path):
    first, second = SimulatorState(), SimulatorState()
    sim_status.use_key_file(first, tmp_path)
    sim_status.use_key_file(second, tmp_path)
    pem = sim_status.certificate_pem(first)
    assert (tmp_path / sim_status.KEY_FILENAME).stat().st_mode & 0o777 == 0o600
    assert read_certificate(pem).subject == "CN=PesaTab Daraja simulator"
    credential = base64.b64decode(security_credential("pw-12345678", pem))
    opened = sim_status.keys_for(second).private_key.decrypt(credential, padding.PKCS1v15())
    assert opened == b"pw-12345678"
