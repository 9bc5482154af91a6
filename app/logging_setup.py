"""Logging: one line per event (text or JSON), with the request id and the bar, and nothing secret.

`init_app(app)` configures the root logger once per process (calling it again, as every test's
`create_app` does, replaces the formatter and level instead of stacking handlers), gives every
request an id (a sane `X-Request-ID` from the caller, else a new one, echoed in the response),
and registers the app's own secrets.

The redaction filter (app/redaction.py) sits on the root handlers, so whatever reaches them is
scrubbed of secrets before it is written.

The context filter puts the request id, the bar id and the user id on every record. It reads
only plain values kept in `g` (`bind`, `bind_user`, called once when the request knows who it
is for), never an ORM object: a commit expires the signed-in person, a streamed response runs
after the request's session was removed, and reading either from a log filter would query, or
raise DetachedInstanceError in the middle of writing the response.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request
from flask_login import user_logged_in, user_logged_out

from app.redaction import STANDARD_FIELDS, RedactionFilter, register_app_secrets

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# -- filters and formatters ----------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Put `request_id`, `bar_id` and `user_id` on every record (None outside a request).

    Only plain values bound earlier are read (see `bind`): never an ORM object, never a query,
    so a record is filled in the same way however late in the response it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _bound("request_id")
        if not hasattr(record, "bar_id"):
            record.bar_id = _bound("log_bar_id")
        if not hasattr(record, "user_id"):
            record.user_id = _bound("log_user_id")
        return True


def _bound(name: str):
    if has_request_context():
        value = g.get(name)
        return value if isinstance(value, int | str) else None
    return None


def bind(*, bar_id: int | None, user_id: int | None = None) -> None:
    """Name the bar (and the person) for the rest of this request: the signed-in person once
    loaded, an API key's bar, a callback once its payment is known. Plain ids only.
    (Outside a request it does nothing: a job's app context outlives the bar it handled.)"""
    if has_request_context():
        g.log_bar_id = bar_id
        if user_id is not None:
            g.log_user_id = user_id


def bind_user(user) -> None:
    """Bind `user`'s id and bar id, read now while the object is fresh (call it where the
    request learns who is signed in; nothing reads the object again for the logs)."""
    bind(bar_id=user.bar_id, user_id=user.id)


def _bind_signed_in(_app, user, **_extra) -> None:
    bind_user(user)


def _unbind_signed_out(_app, **_extra) -> None:
    if has_request_context():
        g.pop("log_bar_id", None)
        g.pop("log_user_id", None)


def _one_line(text: str) -> str:
    # One line per event: a newline in a message or traceback cannot forge another line.
    return text.replace("\r", "\\r").replace("\n", "\\n")


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [req=… bar=…] message`, the traceback folded into the same line."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or "-"
        bar_id = getattr(record, "bar_id", None) or "-"
        line = (
            f"{self.formatTime(record)} {record.levelname} {record.name} "
            f"[req={request_id} bar={bar_id}] {record.getMessage()}"
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return _one_line(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, bar_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "bar_id": getattr(record, "bar_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        for name, value in vars(record).items():
            if name not in STANDARD_FIELDS and name not in entry:
                entry[name] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (test runners swap it), at its own threshold.

    The handler's level stays NOTSET so its filters see every record that reaches it, even
    one below the threshold: another handler after it may write that record."""

    def __init__(self) -> None:
        super().__init__()
        self.threshold = logging.INFO

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.threshold:
            super().emit(record)


_handler: _StderrHandler | None = None
_redaction = RedactionFilter()
_context = ContextFilter()


def configure(level: str = "INFO", fmt: str = "text") -> logging.Handler:
    """Set up the root logger. Safe to call again: the one handler is reconfigured, never
    duplicated, and kept first so every later handler sees records already scrubbed."""
    global _handler
    root = logging.getLogger()
    if _handler is None:
        _handler = _StderrHandler()
    if _handler in root.handlers:
        root.removeHandler(_handler)
    root.handlers.insert(0, _handler)
    _handler.threshold = logging.getLevelName(level.upper())
    _handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.setLevel(_handler.threshold)
    # APScheduler logs every tick of every job at INFO in every worker: keep its warnings only.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, _handler.threshold))
    for logger in (root, logging.getLogger("werkzeug")):
        for handler in logger.handlers:
            _add_filters(handler)
    return _handler


def _add_filters(handler: logging.Handler) -> None:
    if _context not in handler.filters:
        handler.addFilter(_context)
    if _redaction not in handler.filters:
        handler.addFilter(_redaction)


# -- the Flask side ------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Configure logging from LOG_LEVEL / LOG_FORMAT, register the app's secrets, and give
    every request an id."""
    configure(app.config.get("LOG_LEVEL", "INFO"), app.config.get("LOG_FORMAT", "text"))
    register_app_secrets(app, app.extensions["pesatab_keyring"])
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
    # A sign-in (login_user) names the person without the user loader: bind them then too.
    user_logged_in.connect(_bind_signed_in, app)
    user_logged_out.connect(_unbind_signed_out, app)


def _assign_request_id() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _echo_request_id(response):
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
