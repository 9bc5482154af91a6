"""Owners' and managers' reconciliation: the day view, breaks, exports."""

from flask import Blueprint

bp = Blueprint("reconciliation", __name__, url_prefix="/reconciliation")

from app.reconciliation import routes  # noqa: E402, F401
