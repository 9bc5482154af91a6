"""The simulator's records: apps, shortcodes, and the truth about each STK transaction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PAYBILL = "paybill"
TILL = "till"
PAYBILL_TYPE = "CustomerPayBillOnline"
TILL_TYPE = "CustomerBuyGoodsOnline"


@dataclass(frozen=True)
class App:
    """A Daraja app: its credentials and the API products enabled on it (e.g. `stk`)."""

    key: str
    secret: str
    products: frozenset[str]


@dataclass(frozen=True)
class Shortcode:
    """A business shortcode: a PayBill, or a Till store number with its till numbers."""

    number: str
    passkey: str
    kind: str = PAYBILL
    tills: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.kind not in (PAYBILL, TILL):
            raise ValueError(f"kind must be {PAYBILL!r} or {TILL!r}, not {self.kind!r}")

    @property
    def transaction_type(self) -> str:
        """The TransactionType this shortcode's pushes must use."""
        return TILL_TYPE if self.kind == TILL else PAYBILL_TYPE

    def accepts_party_b(self, party_b: str) -> bool:
        """PayBill: PartyB is the shortcode itself. Till: PartyB is one of its tills."""
        return party_b in self.tills if self.kind == TILL else party_b == self.number


@dataclass(frozen=True)
class PushRequest:
    """A validated STK push body."""

    shortcode: Shortcode
    transaction_type: str
    amount: int
    party_a: str
    party_b: str
    phone: str
    callback_url: str
    account_reference: str
    transaction_desc: str


@dataclass(frozen=True)
class Transaction:
    """What really happened to one STK push (the truth tests compare the app against)."""

    checkout_request_id: str
    merchant_request_id: str
    shortcode: str
    transaction_type: str
    party_a: str
    party_b: str
    phone: str
    amount: int
    account_reference: str
    transaction_desc: str
    callback_url: str
    result_code: int | str
    result_desc: str
    receipt: str | None
    created_at: float
    resolves_at: float
    transaction_date: int
    # What it turns into at `then_at` (a 1037 the customer pays after; its callback is lost).
    # `receipt` is then the receipt of that later payment.
    then_code: int | str | None = None
    then_at: float | None = None

    @property
    def paid(self) -> bool:
        """True when the first outcome, the one the callback reports, is paid (result code 0)."""
        return self.result_code == 0

    def code_at(self, now: float) -> int | str:
        """The result code a query finds at `now` (once resolved)."""
        if self.then_code is not None and self.then_at is not None and now >= self.then_at:
            return self.then_code
        return self.result_code

    def resolved(self, now: float) -> bool:
        """Has the prompt been answered (or timed out) by `now`?"""
        return now >= self.resolves_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, for the control API."""
        return dataclasses.asdict(self)
