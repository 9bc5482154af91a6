"""Template filters (the pure formats of app/formats.py) and the enums, registered for Jinja."""

from __future__ import annotations

from flask import Flask

from app.enums import MONEY_ROLES, PaymentStatus, Purpose, Role
from app.formats import (
    duration,
    kes,
    local_time,
    payment_status_label,
    purpose_label,
    stored_sentence,
)


def init_app(app: Flask) -> None:
    from app.mpesa import mask_phone

    app.add_template_filter(kes, "kes")
    app.add_template_filter(local_time, "localtime")
    app.add_template_filter(payment_status_label, "payment_status_label")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(mask_phone, "mask_phone")
    app.add_template_filter(purpose_label, "purpose_label")
    app.add_template_filter(stored_sentence, "stored_sentence")
    # Templates compare with the same words the code does, never a quoted status or role.
    app.jinja_env.globals.update(
        PaymentStatus=PaymentStatus, Purpose=Purpose, Role=Role, MONEY_ROLES=MONEY_ROLES
    )
