"""Payment pages and the live status fragment htmx polls."""

from flask import Blueprint

bp = Blueprint("payments", __name__, url_prefix="/payments")

from app.payments_ui import routes  # noqa: E402, F401
