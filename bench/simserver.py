"""The Daraja simulator for benchmarks, counting OAuth token requests per consumer key.

`python -m bench.simserver --port N --apps 10` serves it on 127.0.0.1 in its own process (a
gunicorn app with several workers needs one Daraja all of them share, which the simulator
mounted inside each worker would not be). `OAuthCounter` wraps any simulator WSGI app, in
this process or that one; `GET /_bench/oauth` answers what it counted.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
from collections.abc import Callable

from werkzeug.serving import make_server

from app.simulator import SimulatorState, create_sim_app
from app.simulator.control import new_secret
from app.simulator.server import _QuietHandler

OAUTH_PATH = "/oauth/v1/generate"


def app_credentials(n: int) -> list[tuple[str, str]]:
    """`n` Daraja apps (consumer key, secret), one per bar: each bar has its own token."""
    return [(f"BenchConsumerKey{i:04d}PesaTab", f"BenchConsumerSecret{i:04d}") for i in range(n)]


class OAuthCounter:
    """WSGI middleware: every OAuth request, by consumer key, with the simulator's clock."""

    def __init__(self, app: Callable, clock: Callable[[], float]):
        self.app, self.clock = app, clock
        self.fetches: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_bench/oauth":
            with self._lock:
                body = json.dumps(self.fetches).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        if path.endswith(OAUTH_PATH):
            with self._lock:
                self.fetches.append(
                    {"key": _basic_key(environ.get("HTTP_AUTHORIZATION", "")), "at": self.clock()}
                )
        return self.app(environ, start_response)


def _basic_key(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded).decode().partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return None


def build(state: SimulatorState, apps: int, control_secret: str | None = None) -> OAuthCounter:
    for key, secret in app_credentials(apps):
        state.add_app(key, secret)
    return OAuthCounter(create_sim_app(state, control_secret=control_secret), state.clock)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--apps", type=int, default=10)
    args = parser.parse_args()
    state = SimulatorState()
    # The control API's secret comes from the parent (DARAJA_SIMULATOR_SECRET), never argv.
    counter = build(state, args.apps, new_secret())
    server = make_server(
        "127.0.0.1", args.port, counter, threaded=True, request_handler=_QuietHandler
    )
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        state.close()


if __name__ == "__main__":
    main()
