"""The probe and scrape endpoints: thin views over app/health/checks.py and
app/health/metrics.py."""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Response, abort, current_app, jsonify, request

from app.extensions import limiter
from app.health import checks, metrics

bp = Blueprint("health", __name__)
limiter.exempt(bp)

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
def healthz():
    """The process answers. Touches nothing else (no database), so a database outage never
    gets healthy workers restarted."""
    return jsonify(status="ok", pid=os.getpid()), 200, NO_STORE


@bp.get("/readyz")
def readyz():
    """Ready to take traffic: 200, or 503 naming each failing part with a short reason."""
    timeout = current_app.config["READYZ_TIMEOUT_SECONDS"]
    results = checks.run_all(current_app._get_current_object(), timeout)
    failing = [name for name, result in results.items() if not result.ok]
    body = {
        "status": "not_ready" if failing else "ready",
        "failing": failing,
        "checks": {name: result.as_json() for name, result in results.items()},
    }
    return jsonify(body), 503 if failing else 200, NO_STORE


@bp.get("/metrics", endpoint="metrics")
def scrape():
    denied = _scrape_denied()
    if denied is not None:
        return denied
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers=NO_STORE)


def _scrape_denied() -> Response | None:
    """METRICS_TOKEN set: the bearer token is required. Unset: open in development and tests,
    hidden (404) in production, where counts of payments are nobody else's business."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        if current_app.config["PESATAB_ENV"] == "production":
            abort(404)
        return None
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return Response(
        "A bearer token is required.\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}
    )
