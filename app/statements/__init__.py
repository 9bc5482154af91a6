"""Importing the M-Pesa business statement and matching it with payments."""

from flask import Blueprint

bp = Blueprint("statements", __name__, url_prefix="/reconciliation/statements")

from app.statements import routes  # noqa: E402, F401
