"""One bar's Daraja credentials, safe to log."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

ENVIRONMENTS = ("sandbox", "production")
KINDS = ("paybill", "till")
_SHORTCODE = re.compile(r"\d{5,7}")


@dataclass(frozen=True, repr=False)
class Credentials:
    """A Daraja app's keys plus the business it collects for.

    For a Till, `shortcode` is the head-office/store number (BusinessShortCode) and
    `till_number` is the till the money goes to (PartyB).
    """

    environment: Literal["sandbox", "production"]
    kind: Literal["paybill", "till"]
    shortcode: str
    consumer_key: str
    consumer_secret: str
    passkey: str
    till_number: str | None = None

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if not _SHORTCODE.fullmatch(self.shortcode or ""):
            raise ValueError("the business short code must be 5 to 7 digits")
        if self.kind == "till" and not _SHORTCODE.fullmatch(self.till_number or ""):
            raise ValueError("a Till needs its till number (5 to 7 digits)")

    @property
    def party_b(self) -> str:
        """Where the money goes: the paybill itself, or the till number."""
        return self.till_number if self.kind == "till" and self.till_number else self.shortcode

    @property
    def transaction_type(self) -> str:
        """Daraja's TransactionType for this kind of account."""
        return "CustomerBuyGoodsOnline" if self.kind == "till" else "CustomerPayBillOnline"

    @property
    def cache_key(self) -> str:
        """A stable key for caching this app's token; a hash, never the raw key or secret."""
        material = "\x00".join(
            ("pesatab-daraja-token", self.environment, self.consumer_key, self.consumer_secret)
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def __repr__(self) -> str:
        return (
            f"Credentials(environment={self.environment!r}, kind={self.kind!r}, "
            f"shortcode={self.shortcode!r}, till_number={self.till_number!r}, "
            "consumer_key='***', consumer_secret='***', passkey='***')"
        )

    __str__ = __repr__
