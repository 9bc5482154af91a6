"""How a simulated customer answers the prompt: the phone-number table and Daraja's wording.

`outcome_for` is the single source of truth; `render_outcome_table` turns the same data into the
markdown table in this package's README (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.simulator.models import Shortcode

PAID = 0
SANDBOX_TEST_PHONE = "254708374149"
# 2547110CCCCC: "answer with result code CCCCC" (five digits, leading zeros dropped).
CODED_PREFIX = "2547110"
WRONG_TRANSACTION_TYPE = 2028
WRONG_PARTY_B = "SFC_IC0003"
# These resolve when the prompt times out (`prompt_lifetime`), not when the customer decides.
LATE_CODES = frozenset({1019, 1037})
_CALLBACK_PREFIX = "[STK_CB - ]"
# 1037 first, then the customer pays anyway and that success callback never arrives.
LATE_PAYER_PHONE = "254711201037"

# Daraja's ResultDesc wording, as callbacks carry it.
RESULT_DESCS: dict[int | str, str] = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2: "Declined due to limit rule: less than the minimum transaction amount.",
    3: "Declined due to limit rule: greater than the maximum transaction amount.",
    4: "Declined due to limit rule: would exceed daily transfer limit.",
    8: "Declined due to limit rule: would exceed the maximum balance.",
    17: "Rule limited.",
    26: "System busy. The service request is rejected.",
    1001: (
        "Unable to lock subscriber, a transaction is already in process for the current subscriber"
    ),
    1019: "Transaction has expired",
    1025: "An error occurred while sending a push request",
    1031: "Request cancelled by user",
    1032: "Request cancelled by user",
    1037: _CALLBACK_PREFIX + "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
    2028: "The request is not permitted according to product assignment",
    8006: "The security credential is locked",
    9999: "Error while sending push request",
    WRONG_PARTY_B: "The operator does not exist.",
}


@dataclass(frozen=True)
class NamedPhone:
    """A phone number with a fixed, documented outcome; `then`: what it turns into later."""

    code: int
    meaning: str
    then: int | None = None


NAMED_PHONES: dict[str, NamedPhone] = {
    SANDBOX_TEST_PHONE: NamedPhone(0, "public sandbox test number: pays"),
    "254711000001": NamedPhone(1, "insufficient balance"),
    "254711000017": NamedPhone(17, "same amount to the same customer within 2 minutes"),
    "254711001001": NamedPhone(1001, "another M-Pesa session is open on the phone"),
    "254711001019": NamedPhone(1019, "prompt expired (after `prompt_lifetime`)"),
    "254711001025": NamedPhone(1025, "prompt could not be delivered"),
    "254711001032": NamedPhone(1032, "cancelled by the customer"),
    "254711001037": NamedPhone(1037, "phone unreachable (after `prompt_lifetime`)"),
    "254711002001": NamedPhone(2001, "wrong PIN"),
    "254711008006": NamedPhone(8006, "PIN locked"),
    LATE_PAYER_PHONE: NamedPhone(
        1037,
        "phone unreachable, then the customer pays `late_payment_delay` s later anyway: "
        "that success callback is lost (queries say 0)",
        then=PAID,
    ),
}


def outcome_for(phone: str, default: int | str | None = None) -> int | str:
    """The result code a push to `phone` ends with; `default` (a setting) overrides the table."""
    if default is not None:
        return default
    if phone in NAMED_PHONES:
        return NAMED_PHONES[phone].code
    if phone.startswith(CODED_PREFIX) and len(phone) == 12:
        return int(phone[len(CODED_PREFIX) :])
    return PAID


def later_outcome_for(phone: str, default: int | str | None = None) -> int | None:
    """The result code a push to `phone` turns into after its first outcome, if any."""
    if default is not None or phone not in NAMED_PHONES:
        return None
    return NAMED_PHONES[phone].then


def setup_outcome(shortcode: Shortcode, transaction_type: str, party_b: str) -> int | str | None:
    """The failure Daraja reports for a Till/PayBill mix-up, or None when the set-up is right."""
    if transaction_type != shortcode.transaction_type:
        return WRONG_TRANSACTION_TYPE
    return None if shortcode.accepts_party_b(party_b) else WRONG_PARTY_B


def callback_desc(code: int | str) -> str:
    """ResultDesc as the callback words it."""
    return RESULT_DESCS.get(code, f"Transaction failed with result code {code}")


def query_desc(code: int | str) -> str:
    """ResultDesc as the STK query words it (no `[STK_CB - ]` prefix)."""
    return callback_desc(code).removeprefix(_CALLBACK_PREFIX)


def render_outcome_table() -> str:
    """The phone-number table as markdown, for the README."""
    lines = ["| phone (PhoneNumber) | ResultCode | ResultDesc | meaning |", "|---|---|---|---|"]
    for phone, named in NAMED_PHONES.items():
        code = f"{named.code}, then {named.then}" if named.then is not None else named.code
        lines.append(f"| `{phone}` | {code} | {callback_desc(named.code)} | {named.meaning} |")
    lines.append(
        f"| `{CODED_PREFIX}CCCCC` | CCCCC | as above, or a generic text | any code, e.g. "
        "`254711000026` → 26 |"
    )
    lines.append("| any other valid number | 0 | " + callback_desc(PAID) + " | pays |")
    return "\n".join(lines) + "\n"
