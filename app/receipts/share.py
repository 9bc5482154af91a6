"""Passing a receipt link on: a QR code to print beside it, and WhatsApp's share address."""

from __future__ import annotations

from urllib.parse import quote

import segno

from app.enums import PaymentStatus
from app.i18n import _
from app.models import Payment
from app.mpesa import InvalidPhone, normalize_phone


def qr_data_uri(url: str) -> str:
    """A PNG of `url`'s QR code as a data: URI (the CSP allows data: images, no inline script)."""
    return segno.make(url, error="m").png_data_uri(scale=4, border=2)


def message(bar_name: str, url: str) -> str:
    return _("Your receipt from %(bar)s: %(url)s", bar=bar_name, url=url)


def whatsapp_url(text: str, phone: str | None = None) -> str:
    """wa.me with the sentence filled in: to anyone the sender picks, or to one number
    (2547XXXXXXXX, as normalize_phone writes it: WhatsApp wants it without the +)."""
    return f"https://wa.me/{phone or ''}?text={quote(text, safe='')}"


def customer_phone(payments: list[Payment]) -> str | None:
    """The number that paid the tab by M-Pesa (the latest), when PesaTab holds it whole: a
    number from the M-Pesa menu arrives masked and is no use for sending."""
    for payment in sorted(payments, key=lambda p: p.id, reverse=True):
        if payment.status != PaymentStatus.PAID:
            continue
        for candidate in (payment.paid_phone, payment.phone):
            try:
                return normalize_phone(candidate or "")
            except InvalidPhone:
                continue
    return None
