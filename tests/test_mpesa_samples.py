"""Every Daraja sample body in tests/fixtures/daraja is exercised by some test module."""

from __future__ import annotations

from pathlib import Path

from tests.samples import samples_dir

SAMPLE_OWNERS = {
    "c2b_confirmation.json": "test_mpesa_callback.py",
    "callback_cancelled.json": "test_mpesa_callback.py",
    "callback_insufficient.json": "test_mpesa_callback.py",
    "callback_paid.json": "test_mpesa_callback.py",
    "callback_paid_reordered_no_balance.json": "test_mpesa_callback.py",
    "callback_unreachable.json": "test_mpesa_callback.py",
    "gateway_fault_unknown_path.json": "test_mpesa_errors.py",
    "oauth_bad_grant.json": "test_mpesa_errors.py",
    "oauth_ok_number_expiry.json": "test_mpesa_tokens.py",
    "oauth_ok_string_expiry.json": "test_mpesa_tokens.py",
    "query_finished.json": "test_mpesa_client.py",
    "query_pending_4999.json": "test_mpesa_client.py",
    "query_pending_500.json": "test_mpesa_client.py",
    "query_unknown.json": "test_mpesa_client.py",
    "stk_push_accepted.json": "test_mpesa_client.py",
    "stk_push_error_invalid_amount.json": "test_mpesa_errors.py",
    "stk_push_error_invalid_token.json": "test_mpesa_errors.py",
    "stk_push_error_lock_subscriber.json": "test_mpesa_errors.py",
    "stk_push_error_spike_arrest.json": "test_mpesa_errors.py",
    "stk_push_error_wrong_credentials.json": "test_mpesa_errors.py",
    "stk_push_request_paybill.json": "test_mpesa_client.py",
    "stk_push_request_till.json": "test_mpesa_client.py",
}


def test_it_exercises_every_sample_body():
    """A new sample in tests/fixtures/daraja must be given a test (and an owner here)."""
    assert {path.name for path in samples_dir().glob("*.json")} == set(SAMPLE_OWNERS)
    here = Path(__file__).resolve()
    for name, owner in SAMPLE_OWNERS.items():
        uses = (here.parent / owner).read_text().count(f'"{name}"')
        assert uses > 0, f"{owner} does not use {name}"
