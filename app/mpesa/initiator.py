"""Daraja's initiator APIs (no Flask, no database): requests signed with a SecurityCredential
whose answer comes later, POSTed to a ResultURL (or a QueueTimeOutURL).

Transaction Status is here now; Reversal and Account Balance take the same path: a body
builder, `InitiatorCalls._initiator_call` (the client's one transport, with the initiator's
password and the SecurityCredential kept out of every error), and `read_result`, which reads
any kind's Result envelope:

    {"Result": {ResultType, ResultCode, ResultDesc, OriginatorConversationID, ConversationID,
     TransactionID, "ResultParameters": {"ResultParameter": [{"Key": ..., "Value": ...}]},
     "ReferenceData": {...}}}

A non-zero ResultCode (2001: wrong initiator credentials) carries no ResultParameters; one
parameter may arrive as an object instead of a list of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.mpesa.balance import BALANCE_PATH, balance_body
from app.mpesa.catalogue import normalize_code
from app.mpesa.classify import redact
from app.mpesa.credentials import Credentials
from app.mpesa.errors import DarajaError, DarajaOutcomeUnknown, InvalidRequest
from app.mpesa.reversal import REVERSAL_PATH, reversal_body
from app.mpesa.security import security_credential
from app.mpesa.stk import check_callback_url

STATUS_PATH = "/mpesa/transactionstatus/v1/query"
RECEIPT_LENGTH = 10
# A parameter's longest value kept: an Account Balance string lists every account, longer
# than one text field (the body itself is capped at CALLBACK_MAX_BYTES).
VALUE_MAX = 2000


@dataclass(frozen=True, repr=False)
class Initiator:
    """The bar's initiator: name, password (secret) and Safaricom's certificate (public)."""

    name: str
    password: str
    certificate_pem: str

    def __repr__(self) -> str:
        return f"Initiator(name={self.name!r}, password='***')"

    __str__ = __repr__


@dataclass(frozen=True)
class InitiatorAccepted:
    """Daraja took the request; the result will come to the ResultURL."""

    originator_conversation_id: str
    conversation_id: str
    description: str


@dataclass(frozen=True)
class InitiatorResult:
    """A Result envelope read: the code, M-Pesa's words, the ids, and {Key: Value}."""

    result_code: str
    result_desc: str
    originator_conversation_id: str | None
    conversation_id: str | None
    transaction_id: str | None
    parameters: dict[str, Any]


class MalformedResult(ValueError):
    """A body that is not a Result envelope."""


def status_body(
    creds: Credentials,
    initiator: Initiator,
    credential: str,
    *,
    transaction_id: str,
    result_url: str,
    timeout_url: str,
    remarks: str = "Verify a code",
    occasion: str = "",
) -> dict[str, str]:
    """The Transaction Status request. A Till asks as its till number (IdentifierType 2), a
    PayBill as the organisation shortcode (4)."""
    code = (transaction_id or "").strip().upper()
    if len(code) != RECEIPT_LENGTH or not code.isalnum():
        raise InvalidRequest("An M-Pesa code is 10 letters and digits.", field="transaction_id")
    till = creds.kind == "till" and creds.till_number
    return {
        "Initiator": initiator.name,
        "SecurityCredential": credential,
        "CommandID": "TransactionStatusQuery",
        "TransactionID": code,
        "PartyA": creds.till_number if till else creds.shortcode,
        "IdentifierType": "2" if till else "4",
        "ResultURL": check_callback_url(result_url, creds.environment),
        "QueueTimeOutURL": check_callback_url(timeout_url, creds.environment),
        "Remarks": remarks[:100] or "Verify",
        "Occasion": occasion[:100],
    }


def read_acceptance(payload: dict[str, Any]) -> InitiatorAccepted:
    """Daraja's synchronous answer: ResponseCode "0" and the two conversation ids."""
    code = normalize_code(payload.get("ResponseCode"))
    if code != "0":
        message = str(payload.get("ResponseDescription") or "Daraja did not accept the request")
        raise DarajaError(message, http_status=200, error_code=code or None)
    conversation = str(payload.get("ConversationID") or "").strip()
    originator = str(payload.get("OriginatorConversationID") or "").strip()
    if not conversation and not originator:
        raise DarajaOutcomeUnknown("Daraja's answer had no ConversationID", http_status=200)
    description = str(payload.get("ResponseDescription") or "")[:255]
    return InitiatorAccepted(originator[:64], conversation[:64], description)


def read_result(payload: Any) -> InitiatorResult:
    """Any initiator API's Result envelope; MalformedResult when it is not one."""
    result = payload.get("Result") if isinstance(payload, dict) else None
    if not isinstance(result, dict):
        raise MalformedResult("no Result object")
    raw = result.get("ResultCode")
    code = normalize_code(raw) if isinstance(raw, str | int | float) else ""
    if not code or len(code) > 16:
        raise MalformedResult("no ResultCode")
    return InitiatorResult(
        result_code=code,
        result_desc=_text(result.get("ResultDesc"), 255),
        originator_conversation_id=_text(result.get("OriginatorConversationID"), 64) or None,
        conversation_id=_text(result.get("ConversationID"), 64) or None,
        transaction_id=_text(result.get("TransactionID"), 20) or None,
        parameters=_parameters(result.get("ResultParameters")),
    )


def _parameters(block: Any) -> dict[str, Any]:
    items = block.get("ResultParameter") if isinstance(block, dict) else None
    if isinstance(items, dict):
        items = [items]
    found: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("Key"), str):
            value = item.get("Value")
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                found[item["Key"][:40]] = value if not isinstance(value, str) else value[:VALUE_MAX]
    return found


def _text(value: Any, limit: int) -> str:
    return str(value).strip()[:limit] if isinstance(value, str | int) else ""


class InitiatorCalls:
    """DarajaClient's initiator requests (mixed into it): `_request` is its one transport."""

    def transaction_status(
        self,
        creds: Credentials,
        initiator: Initiator,
        *,
        transaction_id: str,
        result_url: str,
        timeout_url: str,
        remarks: str = "Verify a code",
    ) -> InitiatorAccepted:
        """Ask whether `transaction_id` is real and whose money it is; the answer comes to
        `result_url` (or `timeout_url`). Raises InvalidRequest before sending a bad request,
        DarajaError when Daraja refuses, DarajaOutcomeUnknown when it may have taken it."""
        credential = security_credential(initiator.password, initiator.certificate_pem)
        body = status_body(
            creds,
            initiator,
            credential,
            transaction_id=transaction_id,
            result_url=result_url,
            timeout_url=timeout_url,
            remarks=remarks,
        )
        return self._initiator_call(STATUS_PATH, creds, body, initiator)

    def reversal(
        self,
        creds: Credentials,
        initiator: Initiator,
        *,
        transaction_id: str,
        amount: int,
        result_url: str,
        timeout_url: str,
        remarks: str,
    ) -> InitiatorAccepted:
        """Ask M-Pesa to give `amount` of `transaction_id` back to the payer; the answer comes
        to `result_url` (or `timeout_url`). Raises as `transaction_status` does."""
        credential = security_credential(initiator.password, initiator.certificate_pem)
        body = reversal_body(
            creds,
            initiator.name,
            credential,
            transaction_id=transaction_id,
            amount=amount,
            result_url=result_url,
            timeout_url=timeout_url,
            remarks=remarks,
        )
        return self._initiator_call(REVERSAL_PATH, creds, body, initiator)

    def account_balance(
        self, creds: Credentials, initiator: Initiator, *, result_url: str, timeout_url: str
    ) -> InitiatorAccepted:
        """Ask what the shortcode's accounts hold; the answer comes to `result_url` (or
        `timeout_url`). Raises as `transaction_status` does."""
        credential = security_credential(initiator.password, initiator.certificate_pem)
        body = balance_body(
            creds, initiator.name, credential, result_url=result_url, timeout_url=timeout_url
        )
        return self._initiator_call(BALANCE_PATH, creds, body, initiator)

    def _initiator_call(
        self, path: str, creds: Credentials, body: dict[str, str], initiator: Initiator
    ) -> InitiatorAccepted:
        secrets = [initiator.password, body["SecurityCredential"]]
        send = self._request  # type: ignore[attr-defined]  # DarajaClient's
        try:
            return read_acceptance(send("POST", path, creds, body))
        except DarajaError as err:
            raise redact(err, secrets) from None
