"""Audit entries in words: a label per action and a line per detail an owner understands.

Details hold plain facts (field names, ids, amounts), never secrets. Keys we know are shown
in words; anything else is shown as JSON text (escaped by the template like any other text),
so a new kind of entry is visible before someone writes its label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import url_for

from app.enums import ROLE_LABELS, FlagReason, ReversalOutcome
from app.formats import kes
from app.i18n import N_, _

ACTIONS = {
    "bar.created": N_("Bar created"),
    "staff.added": N_("Person added"),
    "staff.link_issued": N_("Set-password link issued"),
    "staff.deactivated": N_("Person deactivated"),
    "staff.reactivated": N_("Person reactivated"),
    "user.password_set": N_("Password set"),
    "mpesa.credentials_saved": N_("M-Pesa credentials saved"),
    "mpesa.checked": N_("M-Pesa credentials checked"),
    "mpesa.test_push": N_("Test push sent"),
    "mpesa.verified": N_("M-Pesa set-up proved by a paid test push"),
    "mpesa.live": N_("M-Pesa went live"),
    "mpesa.switched_on": N_("M-Pesa requests switched on"),
    "mpesa.switched_off": N_("M-Pesa requests switched off"),
    "mpesa.global_disabled": N_("M-Pesa requests stopped for every bar (operator)"),
    "mpesa.global_enabled": N_("M-Pesa requests restarted for every bar (operator)"),
    "keys.rotated": N_("Stored credentials re-sealed under a new key"),
    "api_key.created": N_("API key created"),
    "api_key.revoked": N_("API key revoked"),
    "payments.exported": N_("Payments downloaded as CSV"),
    "payment.paid": N_("Payment received"),
    "payment.failed": N_("Payment failed"),
    "payment.cancelled": N_("Payment cancelled by the customer"),
    "payment.expired": N_("Payment prompt expired"),
    "payment.flagged": N_("Payment flagged for a person to check"),
    "tab.opened": N_("Tab opened"),
    "tab.settled": N_("Tab closed"),
    "tab.voided": N_("Tab voided"),
    "tab.cash": N_("Cash payment recorded"),
    "tab.card": N_("Card payment recorded"),
    "tab.cash_removed": N_("Cash payment taken back"),
    "tab.card_removed": N_("Card payment taken back"),
    "tab.line_changed": N_("Tab line corrected"),
    "tab.line_removed": N_("Tab line taken off"),
    "payment.claimed": N_("M-Pesa menu payment claimed to a tab"),
    "payment.moved": N_("M-Pesa menu payment moved to another tab"),
    "c2b.registered": N_("C2B URLs registered with Daraja"),
    "c2b.validation_rule": N_("C2B validation answer changed"),
    "c2b.already_registered": N_("Daraja said the C2B URLs were registered already"),
    "mpesa.initiator_saved": N_("Initiator credentials saved (verifying codes)"),
    "verify.asked": N_("M-Pesa asked whether a code is real"),
    "balance.asked": N_("M-Pesa asked for the balance of the short code"),
    "c2b.pull_registered": N_("Registered for Pull Transactions with Daraja"),
    "statement.imported": N_("M-Pesa statement imported"),
    "statement.line_attached": N_("Statement line attached to a tab"),
    "payment.receipt_from_statement": N_("Receipt taken from the M-Pesa statement"),
    "payment.flag_cleared": N_("Flagged payment marked as checked"),
    "tab.checked": N_("Tab with money outstanding marked as checked"),
    "callback.checked": N_("Kept callback marked as checked"),
    "c2b.checked": N_("Kept M-Pesa menu confirmation marked as checked"),
    "mpesa.credentials_switched": N_("New M-Pesa credentials put to use"),
    "mpesa.pending_discarded": N_("Unused new M-Pesa credentials discarded"),
    "bar.language": N_("The bar's language changed"),
    "summary.emailed": N_("Daily summary emailed to the owners"),
    "receipt.link_created": N_("Receipt link made for a customer"),
    "receipt.link_revoked": N_("Receipt link revoked"),
    "bar.receipt_details": N_("Receipt details changed (address, KRA PIN)"),
    "reversal.requested": N_("Reversal asked of M-Pesa (money back to the customer)"),
    "reversal.reversed": N_("Reversal done: M-Pesa gave the money back"),
    "reversal.refused": N_("Reversal refused by M-Pesa"),
    "reversal.no_answer": N_("Reversal without an answer from M-Pesa"),
    "reversal.given_back_by_hand": N_(
        "Reversal without an answer settled: the M-Pesa statement shows the money went back"
    ),
    "reversal.not_given_back": N_(
        "Reversal without an answer settled: M-Pesa did not give the money back"
    ),
    "reversal.late_answer": N_("M-Pesa answered a reversal settled by hand: nothing changed"),
    "tab.reopened": N_("Tab reopened: a reversal left money owing"),
}

CREDENTIAL_FIELDS = {
    "environment": N_("sandbox or production"),
    "kind": N_("PayBill or Till"),
    "shortcode": N_("short code"),
    "till_number": N_("till number"),
    "consumer_key": N_("consumer key"),
    "consumer_secret": N_("consumer secret"),
    "passkey": N_("passkey"),
    "initiator_name": N_("initiator name"),
    "initiator_password": N_("initiator password"),
    "certificate": N_("Safaricom's certificate"),
}

REASONS = {FlagReason.UNKNOWN_30M: N_("no answer from M-Pesa after 30 minutes")}
OUTCOMES = {
    ReversalOutcome.REVERSED: N_("reversed"),
    ReversalOutcome.ALREADY_REVERSED: N_("already reversed"),
    ReversalOutcome.TOO_OLD: N_("too old to reverse"),
    ReversalOutcome.LOW_BALANCE: N_("business balance too low"),
    ReversalOutcome.NOT_FOUND: N_("no such payment"),
    ReversalOutcome.BAD_CREDENTIALS: N_("wrong initiator name or password"),
    ReversalOutcome.REFUSED: N_("refused"),
    ReversalOutcome.NO_ANSWER: N_("no answer"),
}
SOURCES = {
    "callback": N_("M-Pesa's callback"),
    "query": N_("a status query"),
    "statement": N_("the statement"),
}


@dataclass(frozen=True)
class Detail:
    label: str
    text: str
    url: str | None = None


def action_label(action: str) -> str:
    """`mpesa.credentials_saved` -> `M-Pesa credentials saved`; unknown actions stay readable.
    In English: the page shows it through `_()`."""
    return ACTIONS.get(action) or action.replace(".", ": ").replace("_", " ").capitalize()


def describe(details: dict | None, names: dict[int, str]) -> list[Detail]:
    """A line per detail: known keys in words, the rest as JSON text. `names` maps the
    bar's people's ids to names (for `staff_id`). Labels are English (marked with N_, shown
    through `_()`); the words of a text are in the reader's language."""
    details = dict(details or {})
    lines = []
    for key, render in _RENDERERS.items():
        if key in details:
            line = render(details.pop(key), details, names)
            if line is not None:
                lines.append(line)
    if details:
        lines.append(Detail(N_("Other"), json.dumps(details, sort_keys=True, default=str)))
    return lines


def _fields(value, _details, _names) -> Detail:
    names = [_words(CREDENTIAL_FIELDS, str(f), str(f).replace("_", " ")) for f in value or ()]
    return Detail(N_("Fields"), ", ".join(names) or _("none"))


def _payment(value, _details, _names) -> Detail:
    if not isinstance(value, int):
        return Detail(N_("Payment"), str(value))
    return Detail(N_("Payment"), f"#{value}", url_for("payments.status", payment_id=value))


def _tab(value, _details, _names) -> Detail:
    if not isinstance(value, int):
        return Detail(N_("Tab"), str(value))
    return Detail(N_("Tab"), f"#{value}", url_for("tabs.detail", tab_id=value))


def _staff(value, _details, names) -> Detail:
    return Detail(
        N_("Person"), names.get(value, f"#{value}") if isinstance(value, int) else str(value)
    )


def _role_word(value) -> str:
    """A stored role ("cashier") in the reader's words; anything else as it is."""
    label = ROLE_LABELS.get(value) if isinstance(value, str) else None
    return _(label).lower() if label else str(value)


def _role(value, _details, _names) -> Detail:
    return Detail(N_("Role"), _role_word(value))


def _by(value, _details, _names) -> Detail:
    """Who did it when no person did: a role (an API key made by the operator), a mailed link,
    or an operator's email address."""
    return Detail(N_("By"), _("email") if value == "email" else _role_word(value))


def _api_key(value, details, _names) -> Detail:
    label, prefix = details.pop("label", None), details.pop("prefix", None)
    shown = " ".join(p for p in (label and f"“{label}”", prefix and f"({prefix}…)") if p)
    return Detail(N_("API key"), shown or f"#{value}")


def _amount(value, _details, _names) -> Detail:
    return Detail(N_("Amount"), kes(value) if isinstance(value, int) else str(value))


def _code(value, _details, _names) -> Detail:
    return Detail(N_("M-Pesa result code"), str(value))


def _source(value, _details, _names) -> Detail:
    return Detail(N_("Learned from"), _words(SOURCES, value, str(value)))


def _late(value, _details, _names) -> Detail | None:
    return Detail(N_("Late"), _("paid after it had been marked unpaid")) if value else None


def _ok(value, _details, _names) -> Detail:
    return Detail(N_("Result"), _("accepted") if value else _("refused"))


def _reason(value, _details, _names) -> Detail:
    return Detail(N_("Reason"), _words(REASONS, value, str(value)))


def _pending(value, _details, _names) -> Detail | None:
    """A live bar's new credentials wait beside the ones in use until a paid test push."""
    return Detail(N_("New credentials"), _("waiting beside the ones in use")) if value else None


def _partial(value, _details, _names) -> Detail | None:
    return Detail(N_("Part"), _("the part an overpaid tab was overpaid by")) if value else None


def _outcome(value, _details, _names) -> Detail:
    return Detail(N_("M-Pesa's answer"), _words(OUTCOMES, value, str(value)))


def _phones(value, _details, _names) -> Detail:
    return Detail(N_("Phone numbers"), _("in full") if value == "full" else _("masked"))


def _filters(value, _details, _names) -> Detail:
    if isinstance(value, dict):
        text = ", ".join(f"{k}: {v}" for k, v in sorted(value.items()) if v not in (None, ""))
        return Detail(N_("Filters"), text or _("none"))
    return Detail(N_("Filters"), str(value))


def _words(table: dict, key, default: str) -> str:
    """A known value in the reader's language; anything else as it was stored."""
    return _(table[key]) if isinstance(key, str) and key in table else default


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
    "pending": _pending,
    "revision": _plain(N_("Revision")),
    "filters": _filters,
    "receipt": _plain(N_("Receipt")),
    "import_id": _plain(N_("Statement import")),
    "lines": _plain(N_("Lines")),
    "new_lines": _plain(N_("New lines")),
    "receipts_adopted": _plain(N_("Receipts taken from the statement")),
    "line_id": _plain(N_("Statement line")),
    "slug": _plain(N_("Bar address")),
    "credentials": _plain(N_("Credentials re-sealed")),
    "key_id": _plain(N_("Key id")),
    "by": _by,
    "tab_line_id": _plain(N_("Line")),
    "tender_id": _plain(N_("Cash or card payment")),
    "line": _plain(N_("Line")),
    "before": _plain(N_("Before")),
    "after": _plain(N_("After")),
    "partial": _partial,
    "outcome": _outcome,
    "reversal": _plain(N_("Reversal")),
    "note": _plain(N_("Note")),
    "link_id": _plain(N_("Receipt link")),
    "days": _plain(N_("Days the link works")),
}
