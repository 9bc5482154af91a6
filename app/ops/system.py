"""Run-time switches operators flip for every bar at once."""

from __future__ import annotations

from flask import current_app

from app import audit
from app.enums import Role
from app.extensions import db
from app.models import SystemSetting

PUSHES_DISABLED = "mpesa_pushes_disabled"


def pushes_disabled() -> bool:
    """True when operators stopped all new pushes (environment or `flask mpesa disable-all`).
    Callbacks are still accepted and applied."""
    if current_app.config.get("MPESA_PUSHES_DISABLED"):
        return True
    setting = db.session.get(SystemSetting, PUSHES_DISABLED)
    return setting is not None and setting.value == "1"


def set_pushes_disabled(disabled: bool, *, by: str = Role.OPERATOR) -> None:
    setting = db.session.get(SystemSetting, PUSHES_DISABLED)
    if setting is None:
        setting = SystemSetting(key=PUSHES_DISABLED, value="0")
        db.session.add(setting)
    setting.value = "1" if disabled else "0"
    audit.record("mpesa.global_disabled" if disabled else "mpesa.global_enabled", by=by)
    db.session.commit()
