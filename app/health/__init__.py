"""Liveness, readiness and metrics for operators' tooling: /healthz, /readyz, /metrics.

No login (probes and Prometheus carry none; /metrics has its own bearer token) and no rate
limits: a load balancer probing every few seconds must never be told 429.
"""

from flask import Blueprint

from app.extensions import limiter

bp = Blueprint("health", __name__)
limiter.exempt(bp)

from app.health import routes  # noqa: E402, F401
