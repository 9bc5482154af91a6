"""The Daraja sample bodies in `tests/fixtures/daraja`, inside the repository.

Every test that reads a sample goes through here. The bodies are ours, written from the Daraja facts
(endpoints, JSON shapes, result codes) the team keeps as its reference; the suite never reads
anything outside the repository, so a clone passes on its own (CI runs one with nothing beside it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "daraja"


def samples_dir() -> Path:
    return FIXTURES


def raw(name: str) -> bytes:
    """A sample file's bytes, exactly as stored."""
    return (samples_dir() / name).read_bytes()


def sample(name: str) -> Any:
    """A JSON sample, parsed."""
    return json.loads(raw(name))


def assert_error(response, status: int, code: str, message: str) -> None:
    """A Daraja refusal body: exactly requestId, errorCode, errorMessage, with these values."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert list(body) == ["requestId", "errorCode", "errorMessage"]
    assert (body["errorCode"], body["errorMessage"]) == (code, message)
    assert isinstance(body["requestId"], str) and body["requestId"]


def invalid(field: str) -> tuple[int, str, str]:
    """Daraja's answer to a field it refuses: 400 400.002.02 'Bad Request - Invalid <Field>'."""
    return 400, "400.002.02", f"Bad Request - Invalid {field}"
