"""What arrives from Safaricom, as we keep it and read it: one rule for every store-first path
(STK callbacks, C2B confirmations and validations, initiator results)."""

from __future__ import annotations

import json


def as_stored(body: bytes) -> str:
    """The body as text a column can hold: undecodable bytes and NUL (which PostgreSQL text
    refuses) both kept visible as U+FFFD, so nothing that arrived is dropped silently."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def json_object(raw: str) -> dict | None:
    """The stored body as a JSON object, or None when it is not one (junk, a list, a number,
    or nesting thousands deep, which would otherwise raise RecursionError)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None
