"""Every knob of the simulator in one frozen dataclass: timing, faults and behaviour settings.

A `SimulatorState` holds one `Faults` value and swaps it atomically (`set_faults`), so a request
or a callback thread always sees one consistent set. Counters (`*_calls`) go down by one each time
the fault is used, and the fault stops when they reach zero.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PENDING_FORMS = ("4999", "500")
MSISDN_FORMS = ("masked", "hashed")
C2B_PRODUCTS = ("both", "v1", "v2", "none")
REVERSAL_ANSWERS = ("accept", "too_old", "low_balance", "timeout")
COUNTERS = ("query_pending_calls", "query_unknown_calls", "spike_arrest_calls")
_NON_NEGATIVE = (
    "callback_delay",
    "decision_delay",
    "prompt_lifetime",
    "late_payment_delay",
    "push_delay",
    "callback_timeout",
    "timestamp_tolerance",
    *COUNTERS,
)

# What the README's faults table says about each field.
FAULT_HELP = {
    "callback_delay": "seconds between the customer's decision and the callback POST",
    "decision_delay": (
        "seconds after the push before the customer decides (query answers pending until then)"
    ),
    "prompt_lifetime": "seconds before 1019/1037 outcomes resolve (the prompt times out)",
    "late_payment_delay": (
        "seconds after its 1037 before `254711201037` pays anyway (queries say 0 from then)"
    ),
    "push_delay": "seconds to sleep before answering a push (the push still reaches the customer)",
    "token_ttl": (
        "real lifetime of newly issued tokens in seconds (None: 3600); `expires_in` still says 3599"
    ),
    "callback_lost": "never send the callback",
    "callback_duplicates": "send each callback N times",
    "callback_before_response": "resolve at once and POST the callback before answering the push",
    "callback_amount_float": "send Amount as 450.0 instead of 450",
    "amount_in_callback": "forge this Amount in success callbacks (the truth keeps the real one)",
    "callback_timeout": "requests timeout for callback POSTs",
    "query_pending_form": (
        "how a pending query answers: '4999' (200, 2026 sandbox) or '500' (older)"
    ),
    "query_pending_calls": "the next N queries answer pending even when resolved",
    "query_unknown_calls": "the next N queries answer 'The transaction does not Exist'",
    "spike_arrest_calls": "the next N push/query calls answer 500.003.02 Spike Arrest Violation",
    "lock_subscriber": "pushes answer 500.001.1001 'Unable to lock subscriber...'",
    "expires_in_number": 'answer `expires_in` as the number 3599 instead of the string "3599"',
    "default_outcome": "result code for every push, overriding the phone-number table",
    "max_amount": "largest Amount accepted per push",
    "timestamp_tolerance": "how far (seconds) a push's Timestamp may be from now in EAT",
    "status_queue_timeout": "Transaction Status answers at the QueueTimeOutURL, not the ResultURL",
    "balance_queue_timeout": "Account Balance answers at the QueueTimeOutURL, not the ResultURL",
    "c2b_lost_rate": "share (0-1) of menu payments whose confirmation is never sent",
    "c2b_duplicate_rate": "share (0-1) of menu payments confirmed twice (lost + twice: at most 1)",
    "c2b_seed": "seed for those draws (None: random); the same seed, the same fates",
    "c2b_msisdn": "MSISDN in confirmations and Pull: 'masked' (2547 ***** 149) or 'hashed'",
    "pull_page_size": "transactions per Pull Transactions query page",
    "reversal_answer": (
        "how M-Pesa answers a reversal of money it knows: 'accept', 'too_old', 'low_balance' "
        "(refusals) or 'timeout' (the QueueTimeOutURL is called instead)"
    ),
    "c2b_product": (
        "C2B versions the app has: 'both', 'v1', 'v2' or 'none'; another version's registerurl "
        "answers 401.003.01 'no apiproduct match found'"
    ),
    "c2b_register_once": (
        "production's rule: a shortcode with URLs registered answers 'Urls are already "
        "registered' to another registerurl"
    ),
}


@dataclass(frozen=True)
class Faults:
    """Timing, faults and settings; the defaults suit the demo (`make run`)."""

    callback_delay: float = 2.0
    decision_delay: float = 1.0
    prompt_lifetime: float = 5.0
    late_payment_delay: float = 10.0
    push_delay: float = 0.0
    token_ttl: float | None = None
    callback_lost: bool = False
    callback_duplicates: int = 1
    callback_before_response: bool = False
    callback_amount_float: bool = False
    amount_in_callback: float | None = None
    callback_timeout: float = 5.0
    query_pending_form: str = "4999"
    query_pending_calls: int = 0
    query_unknown_calls: int = 0
    spike_arrest_calls: int = 0
    lock_subscriber: bool = False
    expires_in_number: bool = False
    default_outcome: int | str | None = None
    max_amount: int = 250_000
    timestamp_tolerance: float = 300.0
    status_queue_timeout: bool = False
    balance_queue_timeout: bool = False
    c2b_lost_rate: float = 0.0
    c2b_duplicate_rate: float = 0.0
    c2b_seed: int | None = None
    c2b_msisdn: str = "masked"
    pull_page_size: int = 100
    c2b_product: str = "both"
    reversal_answer: str = "accept"
    c2b_register_once: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "query_pending_form", str(self.query_pending_form))
        if self.query_pending_form not in PENDING_FORMS:
            raise ValueError(f"query_pending_form must be one of {PENDING_FORMS}")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.callback_duplicates < 1:
            raise ValueError("callback_duplicates must be at least 1 (use callback_lost)")
        if self.token_ttl is not None and self.token_ttl < 0:
            raise ValueError("token_ttl must be None or not negative")
        if self.max_amount < 1:
            raise ValueError("max_amount must be at least 1")
        for name in ("c2b_lost_rate", "c2b_duplicate_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.c2b_lost_rate + self.c2b_duplicate_rate > 1:
            raise ValueError("c2b_lost_rate + c2b_duplicate_rate must not pass 1")
        if self.c2b_msisdn not in MSISDN_FORMS:
            raise ValueError(f"c2b_msisdn must be one of {MSISDN_FORMS}")
        if self.pull_page_size < 1:
            raise ValueError("pull_page_size must be at least 1")
        if self.c2b_product not in C2B_PRODUCTS:
            raise ValueError(f"c2b_product must be one of {C2B_PRODUCTS}")
        if self.reversal_answer not in REVERSAL_ANSWERS:
            raise ValueError(f"reversal_answer must be one of {REVERSAL_ANSWERS}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, for the control API."""
        return dataclasses.asdict(self)


# Zero delays: what tests and benchmarks want (`SimulatorState(**INSTANT_TIMING)`).
INSTANT_TIMING: dict[str, float] = {
    "callback_delay": 0.0,
    "decision_delay": 0.0,
    "prompt_lifetime": 0.0,
    "late_payment_delay": 0.0,
}


def render_faults_table() -> str:
    """The faults and settings as a markdown table, for the README."""
    lines = ["| name | default | effect |", "|---|---|---|"]
    for field in dataclasses.fields(Faults):
        lines.append(f"| `{field.name}` | `{field.default!r}` | {FAULT_HELP[field.name]} |")
    return "\n".join(lines) + "\n"
