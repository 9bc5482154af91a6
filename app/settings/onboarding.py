"""A bar proves its M-Pesa set-up: check credentials, a paid test push, then go live.

    no_credentials -> credentials_saved -> verified -> live
Before a bar is live, any change to the credentials sends it back to credentials_saved (step 1).
A live bar stays live: changed credentials wait as pending (app/settings/vault.py), steps 1 and 2
run with them, and once they passed their check and a test push with them was paid the owner
switches to them (`use_pending`); the owner may discard them instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app import audit
from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.i18n import _
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
        return _(
            "Your Daraja app does not have M-Pesa Express (Lipa na M-Pesa Online) enabled. "
            "Add that product to the app on the Daraja portal, then check again."
        )
    if err.reason == e.BAD_CREDENTIALS and environment == "production":
        return _(
            "Safaricom refused this consumer key and secret for production. Use the keys of "
            "your go-live (production) app: sandbox keys do not work on production."
        )
    if err.reason == e.BAD_CREDENTIALS:
        return _(
            "Safaricom refused this consumer key and secret. Copy both again from your app "
            "on the Daraja portal (My Apps), without spaces, and check again."
        )
    return _(
        "M-Pesa refused PesaTab's sign-in request. Try again; if it persists, contact support."
    )


def check_credentials(bar: Bar) -> CheckResult:
    """Step 1: fetch a token with the bar's keys (the pending ones, if any) and say exactly
    what failed. A pending set's check leaves the bar's token record (its alerts) alone: the
    keys in use are not the ones being tried."""
    cred = _credential(bar)
    pending = cred.has_pending
    creds = vault.open_pending(cred)[1] if pending else vault.open_credentials(cred)
    try:
        client_for(creds.environment).fetch_token(creds)
    except DarajaAuthError as err:
        result = CheckResult(False, _auth_message(err, creds.environment))
        if not pending:
            alerts.note_token_failure(bar.id, err.reason)
    except DarajaError:
        result = CheckResult(
            False, _("M-Pesa could not be reached just now. Try again in a minute.")
        )
    else:
        if pending:
            cred.pending_checked_at = utcnow()
        else:
            cred.checked_revision, cred.checked_at = cred.revision, utcnow()
            alerts.note_token_ok(bar.id)
        result = CheckResult(
            True,
            _("Safaricom accepted the new consumer key and secret. Next: a test push with them.")
            if pending
            else _("Safaricom accepted the consumer key and secret. Next: a test push."),
        )
    audit.record("mpesa.checked", bar_id=bar.id, ok=result.ok, **_pending_detail(cred))
    db.session.commit()
    return result


def send_test_push(bar: Bar, user_id: int, phone: str, amount: int) -> Payment:
    """Step 2: KES 1-10 to the owner's phone with the bar's current credentials, or with the
    pending ones while a set is pending (its payment then carries the pending revision)."""
    cred = _credential(bar)
    if not 1 <= amount <= 10:
        raise OnboardingError(_("A test push is between KES 1 and KES 10."))
    payment = start_push(
        bar,
        PushRequest(
            phone=phone,
            amount=amount,
            purpose=Purpose.TEST,
            account_reference=TEST_REFERENCE,
            description=TEST_DESCRIPTION,
            initiated_by_id=user_id,
            pending_credentials=cred.has_pending,
        ),
    )
    audit.record(
        "mpesa.test_push",
        bar_id=bar.id,
        payment_id=payment.id,
        amount=amount,
        **_pending_detail(cred),
    )
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
    # A test push of the pending set is about the pending set's fields.
    ours = cred.has_pending and payment.credential_revision == cred.pending_revision
    prefix = vault.PENDING if ours else ""
    shortcode, environment, kind = (
        getattr(cred, prefix + name) for name in ("shortcode", "environment", "kind")
    )
    if payment.error_kind == e.MERCHANT_MISSING:
        return _(
            "M-Pesa does not know short code %(shortcode)s in %(environment)s. Check "
            "the number, and that Sandbox/Production matches where the keys come from.",
            shortcode=shortcode,
            environment=environment,
        )
    if kind == "till":
        return _(
            "For a Till, the business short code is the store (head office) number and the "
            "till number goes in its own field. Check both, and the passkey of that store."
        )
    if setup_code:
        return _(
            "M-Pesa says this number is not a PayBill. If customers pay you with Buy Goods, "
            "choose Till and enter the store number and the till number."
        )
    return _(
        "Check the passkey: it must be the Lipa na M-Pesa passkey of this short code "
        "(sandbox and production passkeys differ)."
    )


def go_live(bar: Bar) -> None:
    """Step 3: allowed only after a paid test push with exactly these credentials."""
    cred = _credential(bar)
    if not cred.is_verified:
        raise OnboardingError(
            _("Send a test push and let it be paid with these credentials first.")
        )
    bar.setup_state = "live"
    audit.record("mpesa.live", bar_id=bar.id)
    db.session.commit()


def pending_proof(cred: MpesaCredential) -> Payment | None:
    """The paid test push that proved the pending set (it carries the set's revision)."""
    if not cred.has_pending:
        return None
    return db.session.scalar(
        select(Payment)
        .where(
            Payment.bar_id == cred.bar_id,
            Payment.purpose == Purpose.TEST,
            Payment.status == PaymentStatus.PAID,
            Payment.credential_revision == cred.pending_revision,
        )
        .order_by(Payment.id)
        .limit(1)
    )


def use_pending(bar: Bar, revision: int) -> None:
    """A live bar switches to its pending set: only the set the owner saw (`revision`), only
    once it passed its check and a test push with it was paid. Cashiers' next push uses it."""
    cred = _pending(bar, revision)
    if cred.pending_checked_at is None:
        raise OnboardingError(_("Check the new credentials with Safaricom first."))
    proof = pending_proof(cred)
    if proof is None:
        raise OnboardingError(
            _("Send a test push with the new credentials and let it be paid first.")
        )
    fields = vault.adopt_pending(cred)
    audit.record(
        "mpesa.credentials_switched",
        bar_id=bar.id,
        fields=sorted(fields),
        payment_id=proof.id,
        revision=cred.revision,
    )
    db.session.commit()


def discard_pending(bar: Bar, revision: int) -> None:
    """The owner drops the pending set; the bar goes on with the one in use."""
    vault.clear_pending(_pending(bar, revision), reason="discarded")
    db.session.commit()


def _pending(bar: Bar, revision: int) -> MpesaCredential:
    cred = _credential(bar)
    if cred.pending_revision != revision:
        raise OnboardingError(
            _(
                "Those new credentials are no longer waiting: they were switched to, discarded "
                "or saved again. The page now shows what is in use."
            )
        )
    return cred


def _pending_detail(cred: MpesaCredential) -> dict:
    return {"pending": True} if cred.has_pending else {}


def set_enabled(bar: Bar, enabled: bool) -> None:
    """The owner's switch: off stops new pushes at once; callbacks still count."""
    bar.mpesa_enabled = enabled
    audit.record("mpesa.switched_on" if enabled else "mpesa.switched_off", bar_id=bar.id)
    db.session.commit()


def _credential(bar: Bar) -> MpesaCredential:
    cred = vault.credential_for(bar)
    if cred is None:
        raise OnboardingError(_("Save the bar's M-Pesa credentials first."))
    return cred
