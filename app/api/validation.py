"""Reading what a point-of-sale system sends: the JSON body, headers and query strings.

Everything is checked here, before anything touches a payment, and every refusal names the
field at fault. JSON types are strict: an amount is a JSON integer, never "450" or 450.0.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from flask import Request

from app.api.errors import ApiError, invalid
from app.models import Payment
from app.mpesa import InvalidPhone, normalize_phone
from app.payments.states import ALLOWED

MAX_BODY_BYTES = 16 * 1024
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL
DEFAULT_DESCRIPTION = "POS payment"
REFERENCE = re.compile(r"[A-Za-z0-9]{1,12}")
DESCRIPTION_MAX = 13  # Daraja's TransactionDesc
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,100}")  # printable ASCII, no spaces
FIELDS = ("phone", "amount", "reference", "description", "tab_id")
LIST_LIMIT = 100
STATUSES = tuple(ALLOWED)


@dataclass(frozen=True)
class PaymentInput:
    """A payment request after normalisation (the phone in Daraja's 2547… form)."""

    phone: str
    amount: int
    reference: str
    description: str
    tab_id: int | None

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the normalised fields: equal requests, equal prints."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @classmethod
    def of(cls, payment: Payment) -> PaymentInput:
        return cls(
            payment.phone,
            payment.amount,
            payment.account_reference,
            payment.description,
            payment.tab_id,
        )


def read_json(request: Request) -> object:
    """The parsed body: 415 unless it is JSON, 413 past MAX_BODY_BYTES, 400 if unreadable."""
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        )
    request.max_content_length = MAX_BODY_BYTES  # also bounds bodies sent without a length
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        message = (
            f"The body is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})."
        )
    except (ValueError, RecursionError):  # not UTF-8, a 5,000-digit number, nested too deep
        message = "The body could not be read as JSON; send UTF-8 JSON of ordinary size."
    raise ApiError(400, "invalid_json", message)


def parse_payment(body: object, max_amount: int) -> PaymentInput:
    """Check a payment request's body; raises a 422 ApiError naming the first bad field."""
    if not isinstance(body, dict):
        raise ApiError(
            422, "invalid_body", "The body must be a JSON object with phone, amount and reference."
        )
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise invalid(unknown[0], f"Unknown field “{unknown[0]}”. Fields: {', '.join(FIELDS)}.")
    for name in ("phone", "amount", "reference"):
        if body.get(name) is None:
            raise invalid(name, f"{name} is required.")
    return PaymentInput(
        phone=_phone(body["phone"]),
        amount=_amount(body["amount"], max_amount),
        reference=_reference(body["reference"]),
        description=_description(body.get("description")),
        tab_id=_tab_id(body.get("tab_id")),
    )


def _phone(value: object) -> str:
    if not isinstance(value, str):
        raise invalid("phone", 'phone must be a string, like "0712 345 678" or "254712345678".')
    try:
        return normalize_phone(value)
    except InvalidPhone as err:
        raise invalid("phone", str(err)) from None


def _amount(value: object, max_amount: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(
            "amount",
            'amount must be a JSON integer of whole shillings, like 450 (not "450" or 450.5).',
        )
    if not 1 <= value <= max_amount:
        raise invalid(
            "amount",
            f"amount must be from 1 to {max_amount:,} shillings (M-Pesa's limit for one payment).",
        )
    return value


def _reference(value: object) -> str:
    if not isinstance(value, str) or not REFERENCE.fullmatch(value):
        raise invalid(
            "reference",
            'reference must be 1 to 12 letters or digits, like "INV2041"; '
            "M-Pesa shows it to the customer as the account.",
        )
    return value


def _description(value: object) -> str:
    if value is None:
        return DEFAULT_DESCRIPTION
    text = " ".join(value.split()) if isinstance(value, str) else ""
    # Plain ASCII: it travels to Daraja and onto the customer's prompt.
    if not 1 <= len(text) <= DESCRIPTION_MAX or not (text.isascii() and text.isprintable()):
        raise invalid(
            "description",
            f"description must be 1 to {DESCRIPTION_MAX} characters of plain ASCII text.",
        )
    return text


def _tab_id(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise invalid("tab_id", "tab_id must be the id of an open tab (a positive JSON integer).")
    return value


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise invalid(
            "Idempotency-Key",
            "The Idempotency-Key header must be 1 to 100 printable "
            "ASCII characters without spaces, like a UUID.",
        )
    return value


@dataclass(frozen=True)
class ListFilters:
    status: str | None = None
    since: datetime | None = None  # naive UTC, as stored
    limit: int = LIST_LIMIT


def parse_list_filters(args) -> ListFilters:
    """`?status=paid&since=2024-05-01T18:00:00Z&limit=20`; raises a 422 ApiError."""
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise invalid("status", f"status must be one of: {', '.join(STATUSES)}.")
    return ListFilters(status, _since(args.get("since")), _limit(args.get("limit")))


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # not a date; a year-1 date that leaves the calendar in UTC
        pass
    raise invalid(
        "since",
        "since must be an ISO 8601 date and time with its time zone, like "
        "2024-05-01T18:00:00Z or 2024-05-01T21:00:00+03:00.",
    )


def _limit(value: str | None) -> int:
    if not value:
        return LIST_LIMIT
    if not (
        value.isascii() and value.isdecimal() and len(value) <= 3 and 1 <= int(value) <= LIST_LIMIT
    ):
        raise invalid("limit", f"limit must be a whole number from 1 to {LIST_LIMIT}.")
    return int(value)
