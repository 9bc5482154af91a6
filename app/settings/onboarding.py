"""A bar proves its M-Pesa set-up: check credentials, a paid test push, then go live.

    no_credentials -> credentials_saved -> verified -> live
Any change to the credentials sends the bar back to credentials_saved (step 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from app import audit
from app.enums import Purpose
from app.extensions import db
from app.models import Bar, MpesaCredential, Payment, utcnow
from app.mpesa import DarajaAuthError, DarajaError, describe
from app.mpesa import errors as e
from app.ops import alerts
from app.payments.daraja import client_for
from app.payments.push import PushRequest, start_push
from app.settings import vault

TEST_REFERENCE = "PESATABTEST"
TEST_DESCRIPTION = "Test push"


class OnboardingError(Exception):
    """A step that cannot be taken now; the message says what to do first."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def _auth_message(err: DarajaAuthError, environment: str) -> str:
    if err.reason == e.PRODUCT_NOT_ENABLED:
        return (
            "Your Daraja app does not have M-Pesa Express (Lipa na M-Pesa Online) enabled. "
            "Add that product to the app on the Daraja portal, then check again."
        )
    if err.reason == e.BAD_CREDENTIALS and environment == "production":
        return (
            "Safaricom refused this consumer key and secret for production. Use the keys of "
            "your go-live (production) app: sandbox keys do not work on production."
        )
    if err.reason == e.BAD_CREDENTIALS:
        return (
            "Safaricom refused this consumer key and secret. Copy both again from your app "
            "on the Daraja portal (My Apps), without spaces, and check again."
        )
    return "M-Pesa refused PesaTab's sign-in request. Try again; if it persists, contact support."


def check_credentials(bar: Bar) -> CheckResult:
    """Step 1: fetch a token with the bar's keys and say exactly what failed."""
    cred = _credential(bar)
    creds = vault.open_credentials(cred)
    try:
        client_for(cred.environment).fetch_token(creds)
    except DarajaAuthError as err:
        result = CheckResult(False, _auth_message(err, cred.environment))
        alerts.note_token_failure(bar.id, err.reason)
    except DarajaError:
        result = CheckResult(False, "M-Pesa could not be reached just now. Try again in a minute.")
    else:
        cred.checked_revision, cred.checked_at = cred.revision, utcnow()
        alerts.note_token_ok(bar.id)
        result = CheckResult(
            True, "Safaricom accepted the consumer key and secret. Next: a test push."
        )
    audit.record("mpesa.checked", bar_id=bar.id, ok=result.ok)
    db.session.commit()
    return result


def send_test_push(bar: Bar, user_id: int, phone: str, amount: int) -> Payment:
    """Step 2: KES 1-10 to the owner's phone with the bar's current credentials."""
    _credential(bar)
    if not 1 <= amount <= 10:
        raise OnboardingError("A test push is between KES 1 and KES 10.")
    payment = start_push(
        bar,
        PushRequest(
            phone=phone,
            amount=amount,
            purpose=Purpose.TEST,
            account_reference=TEST_REFERENCE,
            description=TEST_DESCRIPTION,
            initiated_by_id=user_id,
        ),
    )
    audit.record("mpesa.test_push", bar_id=bar.id, payment_id=payment.id, amount=amount)
    db.session.commit()
    return payment


def setup_hint(payment: Payment, cred: MpesaCredential | None) -> str | None:
    """For a test push that failed on set-up, which field is likely wrong."""
    setup_code = payment.result_code and describe(payment.result_code).setup_error
    if (
        not (setup_code or payment.error_kind in (e.WRONG_CREDENTIALS, e.MERCHANT_MISSING))
        or cred is None
    ):
        return None
    if payment.error_kind == e.MERCHANT_MISSING:
        return (
            f"M-Pesa does not know short code {cred.shortcode} in {cred.environment}. Check "
            "the number, and that Sandbox/Production matches where the keys come from."
        )
    if cred.kind == "till":
        return (
            "For a Till, the business short code is the store (head office) number and the "
            "till number goes in its own field. Check both, and the passkey of that store."
        )
    if setup_code:
        return (
            "M-Pesa says this number is not a PayBill. If customers pay you with Buy Goods, "
            "choose Till and enter the store number and the till number."
        )
    return (
        "Check the passkey: it must be the Lipa na M-Pesa passkey of this short code "
        "(sandbox and production passkeys differ)."
    )


def go_live(bar: Bar) -> None:
    """Step 3: allowed only after a paid test push with exactly these credentials."""
    cred = _credential(bar)
    if not cred.is_verified:
        raise OnboardingError("Send a test push and let it be paid with these credentials first.")
    bar.setup_state = "live"
    audit.record("mpesa.live", bar_id=bar.id)
    db.session.commit()


def set_enabled(bar: Bar, enabled: bool) -> None:
    """The owner's switch: off stops new pushes at once; callbacks still count."""
    bar.mpesa_enabled = enabled
    audit.record("mpesa.switched_on" if enabled else "mpesa.switched_off", bar_id=bar.id)
    db.session.commit()


def _credential(bar: Bar) -> MpesaCredential:
    cred = vault.credential_for(bar)
    if cred is None:
        raise OnboardingError("Save the bar's M-Pesa credentials first.")
    return cred
