"""Liveness, readiness and metrics for operators' tooling: /healthz, /readyz, /metrics.

No login (probes and Prometheus carry none; /metrics has its own bearer token) and no rate
limits: a load balancer probing every few seconds must never be told 429.
"""
