"""The Daraja sample bodies in `shared/daraja`, beside the repository (or $PESATAB_SHARED_DIR).

Every test that reads a sample goes through here. A missing folder fails the test, never skips it:
CI clones the repository with shared/ beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest


def samples_dir() -> Path:
    shared = os.environ.get("PESATAB_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parent.parent.parent / "shared"
    folder = root / "daraja"
    if not folder.is_dir():
        pytest.fail(f"Daraja samples not found at {folder}; set PESATAB_SHARED_DIR", pytrace=False)
    return folder


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
