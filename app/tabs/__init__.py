from flask import Blueprint

bp = Blueprint("tabs", __name__, url_prefix="/tabs")

from app.tabs import routes  # noqa: E402, F401
