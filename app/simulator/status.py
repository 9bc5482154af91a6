"""Daraja's Transaction Status (`POST /mpesa/transactionstatus/v1/query`), written from the
team's Daraja notes like the rest of the simulator.

The simulator plays Safaricom's certificate: it holds an RSA key pair and a self-signed
certificate (made once per state, or kept in `instance/` for `make run`, see `use_key_file`),
whose PEM a bar stores as "Safaricom's certificate"; the SecurityCredential must decrypt with
its private key to the initiator's password. The answer is synchronous acceptance, then the
Result POSTed to the ResultURL: the receipt's details for money the simulator took (a menu
payment or a paid STK push), ResultCode 2001 for wrong initiator credentials, R000001 for an
unknown receipt (Daraja's code for it is not documented: the shape is what matters), and a
POST to the QueueTimeOutURL instead when the `status_queue_timeout` fault is on. A few receipts
belong to another business (OTHER_BUSINESS), as would any paid to another simulated shortcode.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask import Blueprint, Response, request

from app.simulator import errors, ids, validation
from app.simulator.errors import json_response
from app.simulator.state import SimulatorState

# The simulator's initiator (simulator-only values, like its consumer key and secret).
SIM_INITIATOR = "PesaTabSimInitiator"
SIM_INITIATOR_PASSWORD = "SimInitiator#2026!"  # noqa: S105 -- opens only this simulator
KEY_FILENAME = "simulator_initiator_key.pem"
UNKNOWN_CODE, UNKNOWN_DESC = "R000001", "The transaction receipt number does not exist."
OTHER_BUSINESS = {  # receipt -> (amount, payer, business paid)
    "SIM0THER01": (800, "254708374149 - JOHN DOE", "600100 - MAMA MBOGA STORES"),
    "SIM0THER02": (1500, "254711000100 - AMINA W", "600200 - KARIBU WINES"),
}
PAYER = "JANE"
_ATTR = "_status_keys"
_FILE_ATTR = "_status_key_file"
_lock = threading.Lock()


@dataclass(frozen=True)
class KeyPair:
    private_key: rsa.RSAPrivateKey
    certificate_pem: str


def register(bp: Blueprint, state: SimulatorState, bind) -> None:
    bp.add_url_rule(
        "/mpesa/transactionstatus/v1/query",
        "transaction_status",
        bind(transaction_status, state),
        methods=["POST"],
    )


# The certificate ------------------------------------------------------------------------------


def keys_for(state: SimulatorState) -> KeyPair:
    """The state's key pair and certificate, made (or read from its key file) the first time
    they are asked for."""
    with _lock:
        found = getattr(state, _ATTR, None)
        if found is None:
            path = getattr(state, _FILE_ATTR, None)
            found = _pair(_load_or_create(path) if path else _new_key())
            setattr(state, _ATTR, found)
        return found


def certificate_pem(state: SimulatorState) -> str:
    """The PEM a bar stores as Safaricom's certificate to talk to this simulator."""
    return keys_for(state).certificate_pem


def use_key_file(state: SimulatorState, instance_dir: Path) -> None:
    """Keep the private key in `instance_dir` (mode 0600), so `flask demo` and the server (two
    processes, and every restart) hold the same one and the demo bar's certificate keeps
    working. Nothing is read or made until the key is first needed."""
    setattr(state, _FILE_ATTR, instance_dir / KEY_FILENAME)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _load_or_create(path: Path) -> rsa.RSAPrivateKey:
    """Written complete under a temporary name, then linked into place: two processes starting
    together read the same key."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = _new_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILENAME}.")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(tmp_name, path)
        finally:
            os.unlink(tmp_name)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def _pair(key: rsa.RSAPrivateKey) -> KeyPair:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PesaTab Daraja simulator")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)  # the same key gives the same certificate
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(max(now, datetime(2026, 1, 1, tzinfo=UTC)) + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def _password_of(state: SimulatorState, credential: str) -> str | None:
    try:
        encrypted = base64.b64decode(credential, validate=True)
        return keys_for(state).private_key.decrypt(encrypted, padding.PKCS1v15()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


# The request ----------------------------------------------------------------------------------


def transaction_status(state: SimulatorState) -> Response:
    """Validate like Daraja, accept, and send the Result (or the queue timeout) later."""
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    party = str(body.get("PartyA") or "").strip()
    number = _shortcode_of(state, party, str(body.get("IdentifierType") or ""))
    if number is None:
        raise errors.bad_request("PartyA")
    if body.get("CommandID") != "TransactionStatusQuery":
        raise errors.bad_request("CommandID")
    receipt = str(body.get("TransactionID") or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9]{10}", receipt):
        raise errors.bad_request("TransactionID")
    urls, ids_, valid = initiator_request(state, body)
    if state.faults.status_queue_timeout:
        url, result = urls["QueueTimeOutURL"], _timeout(ids_)
    else:
        url = urls["ResultURL"]
        result = _result(state, ids_, receipt.upper(), number, party, valid)
    state.add_event("status_query", receipt=receipt, shortcode=number, valid_initiator=valid)
    state.start_thread(lambda: post_result(state, url, result), "status-result")
    accepted = "Accept the service request successfully."
    return json_response({**ids_, "ResponseCode": "0", "ResponseDescription": accepted})


def initiator_request(state: SimulatorState, body: dict) -> tuple[dict, dict[str, str], bool]:
    """What every initiator API checks alike: the ResultURL and QueueTimeOutURL (400 when
    missing), the Initiator and SecurityCredential (400 when empty), the conversation ids of
    the answer, and whether the initiator is the simulator's with its password."""
    urls = {}
    for key in ("ResultURL", "QueueTimeOutURL"):
        url = body.get(key)
        if not isinstance(url, str) or not re.match(r"https?://\S+$", url):
            raise errors.bad_request(key)
        urls[key] = url
    for key in ("Initiator", "SecurityCredential"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise errors.bad_request(key)
    ids_ = {
        "OriginatorConversationID": ids.new_merchant_request_id(),
        "ConversationID": "AG_" + ids.eat_timestamp(state.clock()) + "_" + ids.new_receipt(),
    }
    valid = body["Initiator"] == SIM_INITIATOR and (
        _password_of(state, body["SecurityCredential"]) == SIM_INITIATOR_PASSWORD
    )
    return urls, ids_, valid


def _shortcode_of(state: SimulatorState, party: str, identifier: str) -> str | None:
    """A PayBill or store number asked as an organisation (4), or a till (2): the shortcode."""
    if identifier == "4" and state.shortcode(party) is not None:
        return party
    if identifier == "2":
        with state._lock:  # noqa: SLF001 -- the simulator's own state
            known = list(state._shortcodes.values())  # noqa: SLF001
        return next((s.number for s in known if party in s.tills), None)
    return None


# The result -----------------------------------------------------------------------------------


def envelope(ids_: dict, code: int | str, desc: str, params: list | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": desc,
        **ids_,
        "TransactionID": ids.new_receipt(),
    }
    if params is not None:
        result["ResultParameters"] = {"ResultParameter": params}
        result["ReferenceData"] = {"ReferenceItem": {"Key": "Occasion", "Value": ""}}
    return {"Result": result}


def _timeout(ids_: dict) -> dict[str, Any]:
    return envelope(ids_, 1, "The request timed out in the queue.", None)


def _result(state, ids_, receipt, number, party, valid) -> dict[str, Any]:
    if not valid:
        return envelope(ids_, 2001, "The initiator information is invalid.", None)
    found = _money(state, receipt)
    if found is None:
        return envelope(ids_, UNKNOWN_CODE, UNKNOWN_DESC, None)
    amount, payer, credit, when = found
    if credit.isdigit():  # a number the simulator took money for: this bar's, or another's
        ours = {number, party, *(state.shortcode(number).tills)}
        credit = f"{credit} - " + ("PESATAB SIM BAR" if credit in ours else "OTHER SIM BUSINESS")
    stamp = int(ids.eat_timestamp(when))
    params = [
        {"Key": "DebitPartyName", "Value": payer},
        {"Key": "CreditPartyName", "Value": credit},
        {"Key": "OriginatorConversationID", "Value": ids_["OriginatorConversationID"]},
        {"Key": "InitiatedTime", "Value": stamp},
        {"Key": "DebitAccountType", "Value": "MMF Account For Customer"},
        {"Key": "DebitPartyCharges", "Value": ""},
        {"Key": "TransactionReason", "Value": ""},
        {"Key": "ReasonType", "Value": "Pay Bill Online"},
        {"Key": "TransactionStatus", "Value": "Completed"},
        {"Key": "FinalisedTime", "Value": stamp},
        {"Key": "Amount", "Value": float(amount)},
        {"Key": "ConversationID", "Value": ids_["ConversationID"]},
        {"Key": "ReceiptNo", "Value": receipt},
    ]
    return envelope(ids_, 0, "The service request is processed successfully.", params)


def _money(state: SimulatorState, receipt: str) -> tuple[int, str, str, float] | None:
    """(amount, DebitPartyName, the number paid or "number - name", when) of money the
    simulator knows."""
    if receipt in OTHER_BUSINESS:
        amount, payer, business = OTHER_BUSINESS[receipt]
        return amount, payer, business, state.clock()
    for event in state.events("c2b_payment"):
        if event.get("receipt") == receipt:
            payer = f"{event.get('phone') or '254708374149'} - {PAYER}"
            return int(event["amount"]), payer, str(event["shortcode"]), float(event["at"])
    now = state.clock()
    for txn in state.transactions():
        if txn.receipt == receipt and txn.resolved(now) and txn.code_at(now) == 0:
            return txn.amount, f"{txn.phone} - {PAYER}", txn.party_b, txn.resolves_at
    return None


def post_result(
    state: SimulatorState, url: str, result: dict, event: str = "status_result"
) -> None:
    """POST an initiator API's Result (or queue timeout) to `url` after the callback delay, as
    every initiator API of the simulator does; recorded as `event`."""
    if state.stop_event.wait(state.faults.callback_delay):
        return
    try:
        answer = requests.post(url, data=json.dumps(result), timeout=state.faults.callback_timeout,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        state.add_event(event, url=url, status=answer.status_code)
    except requests.RequestException as err:
        state.add_event(event, url=url, error=type(err).__name__)
