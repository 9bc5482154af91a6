"""Nothing secret in a log line: the patterns, the registry of known secret values, the filter.

The redaction filter sits on the root handlers (app/logging_setup.py puts it there), so
whatever reaches them — our code, werkzeug's request lines, a library's debug output, a
traceback — is scrubbed before it is written: values registered with `register_secret`
(credentials opened or saved in this process, the SECRET_KEY, the encryption keys as the key
ring spells them, access tokens), API keys, callback tokens in /hooks/stk/ paths,
Authorization headers, passwords and tokens in bodies, passwords in database URLs, and Kenyan
mobile numbers (2547****149, as `mask_phone` shows them).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.crypto import KeyRing

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter values would blank out ordinary words
MAX_SECRETS = 4096  # the oldest are forgotten first (the patterns still catch tokens)

# Fields every LogRecord has; anything else came in through `extra=` and is logged too.
STANDARD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "bar_id", "user_id", "_pesatab_scrubbed"}
)

# -- the patterns ---------------------------------------------------------------------------------

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
            r"(?P<field>(?<![A-Za-z0-9_])[\"']?(?i:"
            + _SENSITIVE_FIELDS
            + r")[\"']?\s*[:=]\s*[\"']?)"
            r"(?![\"'\s,}&]|\[redacted\])[^\"'\s,}&]+",
            # POS API keys: keep the prefix people see on the API keys page
            r"(?P<apikey>\bpt_(?:live|test)_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]+",
            # tokens in paths: Safaricom's callback URL, a new person's set-password link, a
            # customer's receipt link (/r/<token>)
            # and a bar's C2B / Pull URL secret (/hooks/c2b/<secret>/...)
            r"(?P<path>/(?:hooks/stk|hooks/c2b|set-password|r)/)[A-Za-z0-9_-]+",
            # a callback token on its own (40 hex digits, as push.new_callback_token makes them)
            r"(?P<hex>(?<![A-Za-z0-9_-]))[0-9a-f]{40}(?![A-Za-z0-9_-])",
            # user:password@ in database and redis URLs
            r"(?P<url>\b[a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+(?=@)",
            # Kenyan mobile numbers: 2547XXXXXXXX, +2541XXXXXXXX, 07XXXXXXXX, 0110 123 456
            r"(?<![0-9])(?P<phone>\+?254[17][0-9]{8}"
            r"|0[17][0-9]{2}[ -]?[0-9]{3}[ -]?[0-9]{3})(?![0-9])",
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
            ((char, child),) = child.items()
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


# -- the filter ------------------------------------------------------------------------------------


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
            if name not in STANDARD_FIELDS and isinstance(value, str):
                setattr(record, name, redact(value))
        record._pesatab_scrubbed = True
        return True


# -- the app's own secrets ----------------------------------------------------------------------

_SECRET_SETTING = re.compile(r"(?:SECRET|SECRET_KEY|PASSWORD|TOKEN)$")


def register_app_secrets(app: Flask, keyring: KeyRing) -> None:
    """SECRET_KEY, METRICS_TOKEN, SMTP_PASSWORD and the like, every encryption key in the
    forms the key ring knows it by, and the database password."""
    for name, value in app.config.items():
        if isinstance(value, str) and _SECRET_SETTING.search(name):
            register_secret(value)
    for text in keyring.secret_texts():
        register_secret(text)
    with contextlib.suppress(ArgumentError):
        register_secret(make_url(app.config.get("SQLALCHEMY_DATABASE_URI") or "").password)
