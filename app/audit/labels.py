"""Audit entries in words: a label per action and a line per detail an owner understands.

Details hold plain facts (field names, ids, amounts), never secrets. Keys we know are shown
in words; anything else is shown as JSON text (escaped by the template like any other text),
so a new kind of entry is visible before someone writes its label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import url_for

from app.enums import FlagReason
from app.formats import kes

ACTIONS = {
    "bar.created": "Bar created",
    "staff.added": "Person added",
    "staff.link_issued": "Set-password link issued",
    "staff.deactivated": "Person deactivated",
    "staff.reactivated": "Person reactivated",
    "user.password_set": "Password set",
    "mpesa.credentials_saved": "M-Pesa credentials saved",
    "mpesa.checked": "M-Pesa credentials checked",
    "mpesa.test_push": "Test push sent",
    "mpesa.verified": "M-Pesa set-up proved by a paid test push",
    "mpesa.live": "M-Pesa went live",
    "mpesa.switched_on": "M-Pesa requests switched on",
    "mpesa.switched_off": "M-Pesa requests switched off",
    "mpesa.global_disabled": "M-Pesa requests stopped for every bar (operator)",
    "mpesa.global_enabled": "M-Pesa requests restarted for every bar (operator)",
    "keys.rotated": "Stored credentials re-sealed under a new key",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "payments.exported": "Payments downloaded as CSV",
    "payment.paid": "Payment received",
    "payment.failed": "Payment failed",
    "payment.cancelled": "Payment cancelled by the customer",
    "payment.expired": "Payment prompt expired",
    "payment.flagged": "Payment flagged for a person to check",
    "tab.opened": "Tab opened",
    "tab.settled": "Tab closed",
    "tab.voided": "Tab voided",
    "tab.cash": "Cash payment recorded",
    "tab.card": "Card payment recorded",
    "tab.cash_removed": "Cash payment taken back",
    "tab.card_removed": "Card payment taken back",
    "tab.line_changed": "Tab line corrected",
    "tab.line_removed": "Tab line taken off",
    "statement.imported": "M-Pesa statement imported",
    "statement.line_attached": "Statement line attached to a tab",
}

CREDENTIAL_FIELDS = {
    "environment": "sandbox or production",
    "kind": "PayBill or Till",
    "shortcode": "short code",
    "till_number": "till number",
    "consumer_key": "consumer key",
    "consumer_secret": "consumer secret",
    "passkey": "passkey",
}

REASONS = {FlagReason.UNKNOWN_30M: "no answer from M-Pesa after 30 minutes"}
SOURCES = {"callback": "M-Pesa's callback", "query": "a status query", "statement": "the statement"}


@dataclass(frozen=True)
class Detail:
    label: str
    text: str
    url: str | None = None


def action_label(action: str) -> str:
    """`mpesa.credentials_saved` -> `M-Pesa credentials saved`; unknown actions stay readable."""
    return ACTIONS.get(action) or action.replace(".", ": ").replace("_", " ").capitalize()


def describe(details: dict | None, names: dict[int, str]) -> list[Detail]:
    """A line per detail: known keys in words, the rest as JSON text. `names` maps the
    bar's people's ids to names (for `staff_id`)."""
    details = dict(details or {})
    lines = []
    for key, render in _RENDERERS.items():
        if key in details:
            line = render(details.pop(key), details, names)
            if line is not None:
                lines.append(line)
    if details:
        lines.append(Detail("Other", json.dumps(details, sort_keys=True, default=str)))
    return lines


def _fields(value, _details, _names) -> Detail:
    names = [CREDENTIAL_FIELDS.get(str(f), str(f).replace("_", " ")) for f in value or ()]
    return Detail("Fields", ", ".join(names) or "none")


def _payment(value, _details, _names) -> Detail:
    if not isinstance(value, int):
        return Detail("Payment", str(value))
    return Detail("Payment", f"#{value}", url_for("payments.status", payment_id=value))


def _tab(value, _details, _names) -> Detail:
    if not isinstance(value, int):
        return Detail("Tab", str(value))
    return Detail("Tab", f"#{value}", url_for("tabs.detail", tab_id=value))


def _staff(value, _details, names) -> Detail:
    return Detail("Person", names.get(value, f"#{value}") if isinstance(value, int) else str(value))


def _role(value, _details, _names) -> Detail:
    return Detail("Role", str(value))


def _api_key(value, details, _names) -> Detail:
    label, prefix = details.pop("label", None), details.pop("prefix", None)
    shown = " ".join(p for p in (label and f"“{label}”", prefix and f"({prefix}…)") if p)
    return Detail("API key", shown or f"#{value}")


def _amount(value, _details, _names) -> Detail:
    return Detail("Amount", kes(value) if isinstance(value, int) else str(value))


def _code(value, _details, _names) -> Detail:
    return Detail("M-Pesa result code", str(value))


def _source(value, _details, _names) -> Detail:
    return Detail("Learned from", SOURCES.get(value, str(value)))


def _late(value, _details, _names) -> Detail | None:
    return Detail("Late", "paid after it had been marked unpaid") if value else None


def _ok(value, _details, _names) -> Detail:
    return Detail("Result", "accepted" if value else "refused")


def _reason(value, _details, _names) -> Detail:
    return Detail("Reason", REASONS.get(value, str(value)))


def _phones(value, _details, _names) -> Detail:
    return Detail("Phone numbers", "in full" if value == "full" else "masked")


def _filters(value, _details, _names) -> Detail:
    if isinstance(value, dict):
        text = ", ".join(f"{k}: {v}" for k, v in sorted(value.items()) if v not in (None, ""))
        return Detail("Filters", text or "none")
    return Detail("Filters", str(value))


def _plain(label: str):
    def render(value, _details, _names) -> Detail:
        return Detail(label, str(value))

    return render


_RENDERERS = {
    "fields": _fields,
    "staff_id": _staff,
    "role": _role,
    "api_key_id": _api_key,
    "payment_id": _payment,
    "tab_id": _tab,
    "amount": _amount,
    "code": _code,
    "source": _source,
    "late": _late,
    "ok": _ok,
    "reason": _reason,
    "phones": _phones,
    "filters": _filters,
    "receipt": _plain("Receipt"),
    "import_id": _plain("Statement import"),
    "lines": _plain("Lines"),
    "new_lines": _plain("New lines"),
    "line_id": _plain("Statement line"),
    "slug": _plain("Bar address"),
    "credentials": _plain("Credentials re-sealed"),
    "key_id": _plain("Key id"),
    "by": _plain("By"),
    "tab_line_id": _plain("Line"),
    "tender_id": _plain("Cash or card payment"),
    "line": _plain("Line"),
    "before": _plain("Before"),
    "after": _plain("After"),
}
