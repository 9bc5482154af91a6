"""What an Account Balance result means (the BALANCE kind of app/payments/initiator.py; pure
apart from its metric).

The result's parameters (daraja.md): `AccountBalance` ("Working Account|KES|700000.00|...&
Utility Account|KES|...", read by app/mpesa/balance.py) and `BOCompletedTime`
(YYYYMMDDHHMMSS, Nairobi time). They stay in the request's `parameters` as M-Pesa sent them and
are read into accounts when shown: one copy of the truth, and a reader that learns a new field
reads every old answer too. A non-zero ResultCode (2001: wrong initiator credentials) carries
none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.enums import BalanceOutcome
from app.health import metrics
from app.mpesa.balance import Account, read_accounts
from app.mpesa.initiator import InitiatorResult
from app.mpesa.timestamps import parse_daraja_timestamp
from app.payments.transaction_status import CREDENTIAL_CODES

BALANCE_KEY = "AccountBalance"
COMPLETED_KEY = "BOCompletedTime"


def outcome(result: InitiatorResult, ours: set[str], subject: str) -> str:
    """The BalanceOutcome the result stands for. An answer names no shortcode to check against
    `subject`: the request's own URL secret and conversation ids already tie it to the
    question."""
    if result.result_code in CREDENTIAL_CODES:
        return BalanceOutcome.BAD_CREDENTIALS
    if result.result_code != "0":
        return BalanceOutcome.REFUSED
    return BalanceOutcome.SHOWN


def timed_out() -> str:
    return BalanceOutcome.NO_ANSWER


def refused(code: str | None) -> str:
    return BalanceOutcome.BAD_CREDENTIALS if code in CREDENTIAL_CODES else BalanceOutcome.REFUSED


def settled(request_id: int, outcome_: str) -> None:
    metrics.count_balance(outcome_)


@dataclass(frozen=True)
class Balance:
    """The accounts an answer holds, and when M-Pesa read them (naive UTC; None if not said)."""

    accounts: list[Account]
    completed_at: datetime | None


def balance(params: dict[str, Any]) -> Balance:
    return Balance(read_accounts(params.get(BALANCE_KEY)), _time(params.get(COMPLETED_KEY)))


def _time(value: Any) -> datetime | None:
    try:
        return parse_daraja_timestamp(str(value or "")).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None
