"""The bar's details printed on its receipts: the address and the KRA PIN (both optional)."""

from __future__ import annotations

import re

from app import audit
from app.extensions import db
from app.i18n import N_
from app.models import Bar

ADDRESS_MAX = 200
# Kenya Revenue Authority PIN: a letter, nine digits, a letter (P051234567Q).
KRA_PIN = re.compile(r"[A-Z]\d{9}[A-Z]")
KRA_PIN_PROBLEM = N_(
    "A KRA PIN is a letter, 9 digits and a letter, like P051234567Q. Check it on the KRA "
    "certificate."
)


def clean_pin(text: str | None) -> str:
    """As people type it ('p051 234 567q') to how KRA writes it ('P051234567Q')."""
    return re.sub(r"[\s-]", "", text or "").upper()


def pin_is_valid(pin: str) -> bool:
    return bool(KRA_PIN.fullmatch(pin))


def clean_address(text: str | None) -> str:
    """One line per line typed, blank lines and runs of spaces dropped."""
    lines = (" ".join(line.split()) for line in (text or "").splitlines())
    return "\n".join(line for line in lines if line)


def save(bar: Bar, address: str, kra_pin: str) -> None:
    """Keep the receipt details (already checked by the form), audited with what changed."""
    changed = [
        name
        for name, old, new in (
            ("address", bar.address, address or None),
            ("kra_pin", bar.kra_pin, kra_pin or None),
        )
        if old != new
    ]
    bar.address, bar.kra_pin = address or None, kra_pin or None
    if changed:
        audit.record("bar.receipt_details", bar_id=bar.id, fields=changed)
    db.session.commit()
