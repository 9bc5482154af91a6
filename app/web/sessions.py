"""Flask's signed-cookie sessions, with a cookie already verified not verified again.

A waiting screen polls every 2 s with the same session cookie (a 204 sets none), and Flask
checks its signature each time: a new serializer, a key derivation and an HMAC, then base64
and JSON, ~15% of a 204's CPU (issue 16). Here the serializer is built once per key set, and
a cookie whose signature passed is remembered, byte for byte, with what it held and when it
was signed. The same bytes under the same keys are then the same session: a cookie cannot
change without its signature changing with it. The age is checked on every use exactly as
itsdangerous checks it (older than the session lifetime, or signed in the future: signed
out), and a changed SECRET_KEY or fallback list is a different key set, so nothing verified
under the old keys is taken.

Only sessions holding plain values (text, numbers, booleans) are remembered: the session
object each request gets is a fresh dict, and a list inside it (a flashed message) would
otherwise be shared between requests.
"""

from __future__ import annotations

import threading
import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

REMEMBERED = 10_000  # cookies per process; past it the memory starts again (each ~300 bytes)
_PLAIN = (str, int, float, bool, type(None))


class CookieSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}
        self._verified: dict[tuple, tuple[dict, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(app: Flask) -> tuple:
        return (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = self._keys(app)
        try:
            return self._serializers[keys]
        except KeyError:
            serializer = super().get_signing_serializer(app)
            with self._lock:
                if len(self._serializers) > 16:  # keys changed that often: tests, not a server
                    self._serializers.clear()
                self._serializers[keys] = serializer
            return serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        remembered = (self._keys(app), value)
        known = self._verified.get(remembered)
        if known is not None:
            data, signed_at = known
            if 0 <= int(time.time()) - signed_at <= max_age:
                return self.session_class(data)
            self._verified.pop(remembered, None)
            return self.session_class()
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(type(v) in _PLAIN for v in data.values()):
            with self._lock:
                if len(self._verified) >= REMEMBERED:
                    self._verified.clear()
                self._verified[remembered] = (dict(data), int(signed.timestamp()))
        return self.session_class(data)
