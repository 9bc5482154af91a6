"""What a Transaction Status result means for the bar that asked (pure: no database).

The result's parameters (daraja.md): `DebitPartyName` ("2547XXXXXXXX - JANE DOE"),
`CreditPartyName` ("174379 - KWA MAMA PUB": the business paid, its shortcode first),
`TransactionStatus` ("Completed"), `Amount`, `ReceiptNo`, `InitiatedTime`, `FinalisedTime`
(YYYYMMDDHHMMSS, Nairobi time). A non-zero ResultCode carries none of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.enums import VerifyOutcome
from app.health import metrics
from app.mpesa.initiator import InitiatorResult
from app.mpesa.timestamps import parse_daraja_timestamp

# The initiator name or password is wrong (2001), or the credential is locked (8006).
CREDENTIAL_CODES = frozenset({"2001", "8006"})
COMPLETED = "completed"
_LEADING_NUMBER = re.compile(r"\s*(\d{5,7})(?!\d)")
_WHOLE_KES = re.compile(r"\s*(\d{1,9})(?:\.\d{1,2})?\s*")


def outcome(result: InitiatorResult, ours: set[str], subject: str) -> str | None:
    """The VerifyOutcome the result stands for; None when it is not about `subject` (another
    receipt's answer must not settle this question)."""
    if result.result_code in CREDENTIAL_CODES:
        return VerifyOutcome.BAD_CREDENTIALS
    if result.result_code != "0":
        return VerifyOutcome.NOT_FOUND
    params = result.parameters
    receipt = str(params.get("ReceiptNo") or "").strip().upper()
    if receipt and receipt != subject:
        return None
    status = str(params.get("TransactionStatus") or "").strip().lower()
    if status != COMPLETED:
        return VerifyOutcome.NOT_COMPLETED
    paid_to = _LEADING_NUMBER.match(str(params.get("CreditPartyName") or ""))
    if paid_to is None or paid_to[1] not in ours:
        return VerifyOutcome.OTHER_BUSINESS
    return VerifyOutcome.GENUINE


def timed_out() -> str:
    return VerifyOutcome.NO_ANSWER


def refused(code: str | None) -> str:
    return VerifyOutcome.BAD_CREDENTIALS if code in CREDENTIAL_CODES else VerifyOutcome.REFUSED


def settled(request_id: int, outcome_: str) -> None:
    metrics.count_verify(outcome_)


@dataclass(frozen=True)
class Paid:
    """The money as the result describes it (any part may be missing)."""

    amount: int | None
    payer: str | None  # the name only: the phone in DebitPartyName is never shown
    paid_at: datetime | None  # naive UTC
    status: str | None
    paid_to: str | None


def paid(params: dict[str, Any]) -> Paid:
    amount = _WHOLE_KES.fullmatch(str(params.get("Amount") or ""))
    debit = str(params.get("DebitPartyName") or "")
    payer = debit.split(" - ", 1)[1].strip() if " - " in debit else None
    return Paid(
        amount=int(amount[1]) if amount else None,
        payer=payer[:80] or None if payer else None,
        paid_at=_time(params.get("FinalisedTime") or params.get("InitiatedTime")),
        status=str(params.get("TransactionStatus") or "").strip()[:40] or None,
        paid_to=_business_name(str(params.get("CreditPartyName") or "")),
    )


def _business_name(credit: str) -> str | None:
    name = credit.split(" - ", 1)[1] if " - " in credit else credit
    return name.strip()[:80] or None


def _time(value: Any) -> datetime | None:
    try:
        return parse_daraja_timestamp(str(value or "")).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None
