"""Step 3 of the M-Pesa page, ready for its partial (templates/settings/_go_live.html).

The page shows it, and a test push's final status fragment carries it out of band
(app/payments/live.py), so the Go live button, or for a live bar with new credentials waiting
the switch to them, appears the moment the test push is paid, without a reload. Everything the
partial shows is handed to it here; the template asks the database nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, MpesaCredential
from app.settings import onboarding, vault

# Where a bar is in onboarding (Bar.setup_state), as the page's "Status:" words it.
STATE_LABELS = {
    "no_credentials": N_("no credentials"),
    "credentials_saved": N_("credentials saved"),
    "verified": N_("verified"),
    vault.LIVE: N_("live"),
}


def state_label(state: str) -> str:
    label = STATE_LABELS.get(state)
    return _(label) if label else state.replace("_", " ")


@dataclass(frozen=True)
class Pending:
    """A live bar's new credentials, waiting: what they are (never a secret) and how far along."""

    credential_id: int
    revision: int
    environment: str
    kind: str
    shortcode: str
    till_number: str | None
    key_last4: str
    saved_at: datetime
    checked: bool
    paid_test_push: bool

    @property
    def ready(self) -> bool:
        return self.checked and self.paid_test_push


@dataclass(frozen=True)
class GoLive:
    live: bool
    verified: bool  # a paid test push proved the credentials in use
    active_key_last4: str
    pending: Pending | None


def section(bar: Bar, cred: MpesaCredential) -> GoLive:
    return GoLive(
        live=bar.setup_state == vault.LIVE,
        verified=cred.is_verified,
        active_key_last4=cred.consumer_key_last4,
        pending=pending_of(cred),
    )


def section_for(bar_id: int) -> GoLive | None:
    """The section for a bar by id (a test push's fragment knows its payment's bar id)."""
    bar = db.session.get(Bar, bar_id)
    cred = vault.credential_for(bar) if bar is not None else None
    return section(bar, cred) if cred is not None else None


def pending_of(cred: MpesaCredential) -> Pending | None:
    if not cred.has_pending:
        return None
    return Pending(
        credential_id=cred.id,
        revision=cred.pending_revision,
        environment=cred.pending_environment,
        kind=cred.pending_kind,
        shortcode=cred.pending_shortcode,
        till_number=cred.pending_till_number,
        key_last4=cred.pending_consumer_key_last4,
        saved_at=cred.pending_saved_at,
        checked=cred.pending_checked_at is not None,
        paid_test_push=onboarding.pending_proof(cred) is not None,
    )
