"""The operators' pages: every bar's state, alerts and the global M-Pesa switch."""

from flask import Blueprint

bp = Blueprint("ops", __name__, url_prefix="/ops")

from app.ops import routes  # noqa: E402, F401  (registers the views on bp)
