"""Daraja's Reversal request body (no Flask, no database). The call itself is
`InitiatorCalls.reversal` (app/mpesa/initiator.py): the initiator transport all kinds share.

    POST /mpesa/reversal/v1/request
    {Initiator, SecurityCredential, CommandID: "TransactionReversal", TransactionID, Amount,
     ReceiverParty (the shortcode), RecieverIdentifierType (sic): "11", ResultURL,
     QueueTimeOutURL, Remarks, Occasion}

The result (at ResultURL) carries `DebitAccountBalance`, `Amount`, `TransCompletedTime`,
`OriginalTransactionID`, `Charge`, `CreditPartyPublicName` on success; a refusal (already
reversed, too old, business balance too low) carries only its code and words.
"""

from __future__ import annotations

from app.mpesa.credentials import Credentials
from app.mpesa.errors import InvalidRequest
from app.mpesa.stk import check_callback_url

REVERSAL_PATH = "/mpesa/reversal/v1/request"
RECEIPT_LENGTH = 10
# Daraja's own spelling of the field, and the identifier type it documents for the shortcode.
RECEIVER_TYPE_KEY = "RecieverIdentifierType"
RECEIVER_TYPE = "11"
MAX_AMOUNT = 250_000


def reversal_body(
    creds: Credentials,
    initiator_name: str,
    credential: str,
    *,
    transaction_id: str,
    amount: int,
    result_url: str,
    timeout_url: str,
    remarks: str,
    occasion: str = "",
) -> dict[str, str]:
    """The Reversal request for `amount` whole shillings of `transaction_id`. The money went
    to the bar's shortcode (a Till's money too: the store number receives it)."""
    code = (transaction_id or "").strip().upper()
    if len(code) != RECEIPT_LENGTH or not code.isalnum():
        raise InvalidRequest("An M-Pesa code is 10 letters and digits.", field="transaction_id")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
        raise InvalidRequest("A reversal is 1 to 250,000 whole shillings.", field="amount")
    return {
        "Initiator": initiator_name,
        "SecurityCredential": credential,
        "CommandID": "TransactionReversal",
        "TransactionID": code,
        "Amount": str(amount),
        "ReceiverParty": creds.shortcode,
        RECEIVER_TYPE_KEY: RECEIVER_TYPE,
        "ResultURL": check_callback_url(result_url, creds.environment),
        "QueueTimeOutURL": check_callback_url(timeout_url, creds.environment),
        "Remarks": _clean(remarks)[:100] or "Reversal",
        "Occasion": _clean(occasion)[:100],
    }


def _clean(text: str) -> str:
    """Remarks travel to M-Pesa: printable, one line."""
    return " ".join("".join(c for c in (text or "") if c.isprintable()).split())
