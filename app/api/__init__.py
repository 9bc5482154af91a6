"""The JSON push API for point-of-sale systems: /api/v1/...

Signed in with a bar's API key (Bearer), not a session, so CSRF does not apply.
"""

from flask import Blueprint

from app.api.errors import init_blueprint
from app.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
init_blueprint(bp)

from app.api import routes  # noqa: E402, F401  (registers the views on bp)
