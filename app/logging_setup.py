"""Logging: one line per event (text or JSON), with the request id and the bar, and nothing secret.

`init_app(app)` configures the root logger once per process (calling it again, as every test's
`create_app` does, replaces the formatter and level instead of stacking handlers), gives every
request an id (a sane `X-Request-ID` from the caller, else a new one, echoed in the response),
and registers the app's own secrets.

The redaction filter sits on the root handlers, so whatever reaches them — our code, werkzeug's
request lines, a library's debug output, a traceback — is scrubbed before it is written:
values registered with `register_secret` (credentials opened or saved in this process, the
SECRET_KEY, the encryption keys, access tokens), API keys, callback tokens in /hooks/stk/ paths,
Authorization headers, passwords and tokens in bodies, passwords in database URLs, and Kenyan
mobile numbers (2547****149, as `mask_phone` shows them).

The context filter puts the request id, the bar id and the user id on every record. It reads
only plain values kept in `g` (`bind`, `bind_user`, called once when the request knows who it
is for), never an ORM object: a commit expires the signed-in person, a streamed response runs
after the request's session was removed, and reading either from a log filter would query, or
raise DetachedInstanceError in the middle of writing the response.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, g, has_request_context, request
from flask_login import user_logged_in, user_logged_out
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.crypto import LOCAL_KEYS_FILENAME

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter values would blank out ordinary words
MAX_SECRETS = 4096  # the oldest are forgotten first (the patterns still catch tokens)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Fields every LogRecord has; anything else came in through `extra=` and is logged too.
_STANDARD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "bar_id", "user_id", "_pesatab_scrubbed"}
)

# -- the patterns --------------------------------------------------------------------------------

_SENSITIVE_FIELDS = (  # whose values are scrubbed
    r"password|passwd|passkey|consumer_?key|consumer_?secret|client_?secret|secret_?key|"
    r"access_?token|refresh_?token|callback_?token|csrf_?token|api_?key|token|secret|"
    r"SecurityCredential|PGPASSWORD"
)
_PATTERNS = re.compile(
    "|".join(
        (
            # Authorization: Basic …, Bearer … (headers, dict reprs, curl lines)
            r"(?P<auth>\b(?:Basic|Bearer)\s+)[A-Za-z0-9._~+/=-]{6,}",
            # "Password": "…", 'passkey': '…', access_token=…, consumer_secret: …
            r"(?P<field>(?<![A-Za-z0-9_])[\"']?(?i:" + _SENSITIVE_FIELDS + r")[\"']?\s*[:=]\s*[\"']?)"
            r"(?![\"'\s,}&]|\[redacted\])[^\"'\s,}&]+",
            # POS API keys: keep the prefix people see on the API keys page
            r"(?P<apikey>\bpt_live_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]+",
            # tokens in paths: Safaricom's callback URL, a new person's set-password link
            r"(?P<path>/(?:hooks/stk|set-password)/)[A-Za-z0-9_-]+",
            # a callback token on its own (40 hex digits, as push.new_callback_token makes them)
            r"(?P<hex>(?<![A-Za-z0-9_-]))[0-9a-f]{40}(?![A-Za-z0-9_-])",
            # user:password@ in database and redis URLs
            r"(?P<url>\b[a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+(?=@)",
            # Kenyan mobile numbers: 2547XXXXXXXX, +2541XXXXXXXX, 07XXXXXXXX, 0110 123 456
            r"(?<![0-9])(?P<phone>\+?254[17][0-9]{8}|0[17][0-9]{2}[ -]?[0-9]{3}[ -]?[0-9]{3})(?![0-9])",
        )
    )
)


def _mask_phone(text: str) -> str:
    """Like app.mpesa.mask_phone, for a number as it was written (spaces and + kept out)."""
    sign = "+" if text.startswith("+") else ""
    digits = re.sub(r"[^0-9]", "", text)
    return f"{sign}{digits[:4]}****{digits[-3:]}"


def _replace(match: re.Match) -> str:
    kind = match.lastgroup
    if kind == "phone":
        return _mask_phone(match.group("phone"))
    return match.group(kind) + REDACTED


# -- the registry of known secret values ---------------------------------------------------------

_secrets: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first
_secrets_lock = threading.Lock()
_secrets_pattern: re.Pattern | None = None
_secrets_dirty = False


def register_secret(value: str | bytes | None) -> None:
    """Never log `value`: from now on it is replaced by [redacted] wherever it appears.

    Call it with every credential opened or saved, every access token fetched. Values shorter
    than MIN_SECRET_LENGTH are ignored (they would blank out ordinary words; they are also
    too short to be real credentials).
    """
    global _secrets_dirty
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    value = (value or "").strip()
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets[value] = None
        while len(_secrets) > MAX_SECRETS:
            del _secrets[next(iter(_secrets))]
        _secrets_dirty = True


def forget_secrets() -> None:
    """Drop every registered value (for tests)."""
    global _secrets_pattern, _secrets_dirty
    with _secrets_lock:
        _secrets.clear()
        _secrets_pattern, _secrets_dirty = None, False


def _known_secrets() -> re.Pattern | None:
    """One compiled pattern for every registered value, rebuilt only after a change."""
    global _secrets_pattern, _secrets_dirty
    if _secrets_dirty:
        with _secrets_lock:
            if _secrets_dirty:
                _secrets_pattern = re.compile(_trie(list(_secrets))) if _secrets else None
                _secrets_dirty = False
    return _secrets_pattern


def _trie(words: list[str]) -> str:
    """A regex matching any of `words`, shaped as a trie: values sharing a first character
    share a branch, so a line is scanned once however many secrets there are."""
    root: dict = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node(root)


def _trie_node(node: dict) -> str:
    ends = "" in node
    branches = []
    for char, child in node.items():
        if char == "":
            continue
        # Follow a chain of single children as one literal: keeps the pattern (and the
        # recursion) short for long random values.
        literal = [char]
        while len(child) == 1 and "" not in child:
            (char, child), = child.items()
            literal.append(char)
        branches.append(re.escape("".join(literal)) + _trie_node(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if ends else body


def redact(text: str) -> str:
    """`text` with every known secret, credential-shaped value and phone number masked."""
    if not text:
        return text
    known = _known_secrets()
    if known is not None:
        text = known.sub(REDACTED, text)
    return _PATTERNS.sub(_replace, text)


# -- filters and formatters ----------------------------------------------------------------------


class RedactionFilter(logging.Filter):
    """Scrub a record in place (message, arguments, traceback, extras) before any handler
    writes it. Mutating the record means handlers after ours (pytest's caplog, a second
    stream) get the scrubbed text too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_pesatab_scrubbed", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can read
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(str(message)), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # nothing may format the raw exception again
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_FIELDS and isinstance(value, str):
                setattr(record, name, redact(value))
        record._pesatab_scrubbed = True
        return True


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
        line = (f"{self.formatTime(record)} {record.levelname} {record.name} "
                f"[req={request_id} bar={bar_id}] {record.getMessage()}")
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
            if name not in _STANDARD_FIELDS and name not in entry:
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
    _register_app_secrets(app)
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
    # A sign-in (login_user) names the person without the user loader: bind them then too.
    user_logged_in.connect(_bind_signed_in, app)
    user_logged_out.connect(_unbind_signed_out, app)


_SECRET_SETTING = re.compile(r"(?:SECRET|SECRET_KEY|PASSWORD|TOKEN)$")


def _register_app_secrets(app: Flask) -> None:
    """SECRET_KEY, METRICS_TOKEN, SMTP_PASSWORD and the like, the encryption keys, and the
    database password."""
    for name, value in app.config.items():
        if isinstance(value, str) and _SECRET_SETTING.search(name):
            register_secret(value)
    keys = app.config.get("PESATAB_ENCRYPTION_KEYS") or _local_keys(app)
    for entry in (keys or "").split(","):
        register_secret(entry.partition(":")[2].strip().rstrip("="))
    with contextlib.suppress(ArgumentError):
        register_secret(make_url(app.config.get("SQLALCHEMY_DATABASE_URI") or "").password)


def _local_keys(app: Flask) -> str | None:
    path = Path(app.instance_path) / LOCAL_KEYS_FILENAME
    return path.read_text(encoding="ascii") if path.exists() else None


def _assign_request_id() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _echo_request_id(response):
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
