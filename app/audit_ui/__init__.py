"""The owner's audit log: every audited action, who, when, from where. Read-only."""

from flask import Blueprint

bp = Blueprint("audit_log", __name__, url_prefix="/settings/audit")

from app.audit_ui import routes  # noqa: E402,F401  (registers the views on bp)
