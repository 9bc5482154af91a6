"""Daraja's Account Balance (no Flask, no database): the request body, and the result's
`AccountBalance` string read into accounts. The call itself is `InitiatorCalls.account_balance`
(app/mpesa/initiator.py): the initiator transport every kind shares.

    POST /mpesa/accountbalance/v1/query
    {Initiator, SecurityCredential, CommandID: "AccountBalance", PartyA (the shortcode),
     IdentifierType: "4", Remarks, QueueTimeOutURL, ResultURL}

The result (at ResultURL) carries `AccountBalance` and `BOCompletedTime` (YYYYMMDDHHMMSS,
Nairobi time). `AccountBalance` is accounts joined by "&", each "|"-separated:

    Working Account|KES|700000.00|700000.00|0.00|0.00&Utility Account|KES|...

daraja.md gives only that example. Integrators read the fields as name | currency | current |
available | reserved | uncleared (a published sample, 346568.83 | 6186.83 | 340382.00, is
current = available + reserved), and so does this module; the order is not documented by
Safaricom, so nothing here depends on more than the name and the first two amounts, and a
missing or garbled field is None rather than an error. Amounts are read as Decimal (never a
float) and shown as whole shillings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from app.mpesa.credentials import Credentials
from app.mpesa.stk import check_callback_url

BALANCE_PATH = "/mpesa/accountbalance/v1/query"
ORGANISATION = "4"  # IdentifierType of an organisation shortcode (a Till's store number too)
MAX_ACCOUNTS = 20
NAME_MAX = 60
# Daraja writes "700000.00"; a sign, thousands separators and up to two decimals are tolerated.
_AMOUNT = re.compile(r"([+-]?)(\d{1,3}(?:,\d{3})+|\d{1,15})(?:\.(\d{1,2}))?")
_CURRENCY = re.compile(r"[A-Z]{3}")


def balance_body(
    creds: Credentials,
    initiator_name: str,
    credential: str,
    *,
    result_url: str,
    timeout_url: str,
    remarks: str = "Balance",
) -> dict[str, str]:
    """The Account Balance request for the bar's shortcode. A Till asks as its store (head
    office) number: that is where its money is kept, and it is an organisation (type 4)."""
    return {
        "Initiator": initiator_name,
        "SecurityCredential": credential,
        "CommandID": "AccountBalance",
        "PartyA": creds.shortcode,
        "IdentifierType": ORGANISATION,
        "Remarks": " ".join((remarks or "").split())[:100] or "Balance",
        "QueueTimeOutURL": check_callback_url(timeout_url, creds.environment),
        "ResultURL": check_callback_url(result_url, creds.environment),
    }


@dataclass(frozen=True)
class Account:
    """One account of the shortcode as M-Pesa names it ("Working Account", "Utility Account",
    ...). An amount M-Pesa did not send, or sent garbled, is None."""

    name: str
    currency: str | None
    current: Decimal | None
    available: Decimal | None
    reserved: Decimal | None = None
    uncleared: Decimal | None = None

    @property
    def shown(self) -> Decimal | None:
        """The figure to put first: what can be used now, else the account's total."""
        return self.available if self.available is not None else self.current


def read_accounts(text: Any) -> list[Account]:
    """The accounts in an `AccountBalance` string, in M-Pesa's order. Anything that is not an
    account (an empty piece, a piece with no name, or with no amount at all) is skipped, so a
    malformed string gives fewer accounts (or none), never an error."""
    if not isinstance(text, str):
        return []
    found = []
    for piece in text.split("&"):
        fields = [f.strip() for f in piece.split("|")]
        name = " ".join("".join(c if c.isprintable() else " " for c in fields[0]).split())
        name = name[:NAME_MAX]
        amounts = [read_amount(f) for f in fields[2:6]]
        amounts += [None] * (4 - len(amounts))
        if not name or all(a is None for a in amounts):
            continue
        currency = fields[1].upper() if len(fields) > 1 else ""
        found.append(Account(name, currency if _CURRENCY.fullmatch(currency) else None, *amounts))
        if len(found) == MAX_ACCOUNTS:
            break
    return found


def read_amount(text: Any) -> Decimal | None:
    """ "700000.00" as Decimal("700000.00"); None for what is not an amount (no exponents,
    no NaN or Infinity, which Decimal itself would take)."""
    if not isinstance(text, str):
        return None
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        return None
    sign, whole, cents = match.groups()
    return Decimal(f"{sign}{whole.replace(',', '')}.{(cents or '0').ljust(2, '0')}")


def whole_shillings(amount: Decimal) -> int:
    """The whole shillings of an amount, the cents dropped (never rounded up: a balance is not
    shown as more than it is)."""
    return int(amount.to_integral_value(rounding=ROUND_DOWN))
