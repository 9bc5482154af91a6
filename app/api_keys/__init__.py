"""The owner's page for the point-of-sale API keys."""

from flask import Blueprint

bp = Blueprint("api_keys", __name__, url_prefix="/settings/api-keys")

from app.api_keys import routes  # noqa: E402, F401
