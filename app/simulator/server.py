"""`LiveServer`: any WSGI app on 127.0.0.1, an ephemeral port, a background thread.

    with LiveServer(create_sim_app()) as server:
        requests.get(server.url + "/oauth/v1/generate", ...)

Shutting down joins the serving thread and closes the listening socket, so tests run clean
under `filterwarnings = error`.
"""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the one-line-per-request access log (errors still log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class LiveServer:
    """A threaded werkzeug server for tests, benchmarks and the demo's callback receivers."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", quiet: bool = True) -> None:
        self.app = app
        self.host = host
        self.quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the OS gave us (only while running)."""
        if self._server is None:
            raise RuntimeError("LiveServer is not running")
        return self._server.server_port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. `http://127.0.0.1:54321`."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> LiveServer:
        """Bind and serve in a background thread."""
        handler = _QuietHandler if self.quiet else None
        self._server = make_server(self.host, 0, self.app, threaded=True, request_handler=handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"live-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, join the thread, close the socket (safe to call twice)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            if thread is not None:
                thread.join()
            server.server_close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
