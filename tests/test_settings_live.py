"""A live bar changes its M-Pesa credentials without going off M-Pesa, a final test push brings
the go-live section with it, and a sandbox bar says so on every page.

Against the mounted simulator over real HTTP: the simulator knows the bar's current app and
PayBill, and a second app and PayBill the owner moves to (NEW), so every push shows which set
it was sent with (its BusinessShortCode, and a password only that PayBill's passkey makes).
"""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import event, select

from app.extensions import db
from app.models import AuditEvent, Bar, MpesaCredential, Payment
from app.settings import vault
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests.conftest import login_as

HX = {"HX-Request": "true"}
PAYS = "0708 374 149"
NEW_KEY = "NewConsumerKey0002PesaTabMoved"
NEW_SECRET = "NewConsumerSecret0002Moved"
NEW_SHORTCODE = "600100"
NEW_PASSKEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
NEW = {
    "environment": "sandbox",
    "kind": "paybill",
    "shortcode": NEW_SHORTCODE,
    "till_number": "",
    "consumer_key": NEW_KEY,
    "consumer_secret": NEW_SECRET,
    "passkey": NEW_PASSKEY,
}
OLD = {
    **NEW,
    "shortcode": SANDBOX_SHORTCODE,
    "consumer_key": SIM_CONSUMER_KEY,
    "consumer_secret": SIM_CONSUMER_SECRET,
    "passkey": SANDBOX_PASSKEY,
}
NEW_SECRETS = (NEW_KEY, NEW_SECRET, NEW_PASSKEY)
MARKER = "Sandbox: no real money"


@pytest.fixture
def simulator(sim_state):
    """The simulator also knows the app and PayBill the bar moves to."""
    sim_state.add_app(NEW_KEY, NEW_SECRET)
    sim_state.add_shortcode(NEW_SHORTCODE, NEW_PASSKEY)
    return sim_state


@pytest.fixture
def live_bar(factory, bar):
    factory.live_credentials(bar)
    return bar


@pytest.fixture
def boss(app, owner, live):
    return login_as(app, owner)


@pytest.fixture
def counter(app, cashier, live):
    return login_as(app, cashier)


def fresh_credential(bar) -> MpesaCredential:
    db.session.expire_all()
    return db.session.scalar(select(MpesaCredential).where(MpesaCredential.bar_id == bar.id))


def state_of(bar) -> str:
    db.session.expire_all()
    return db.session.get(Bar, bar.id).setup_state


def pushed_shortcodes(sim_state) -> list[str]:
    return [
        e["body"]["BusinessShortCode"]
        for e in sim_state.events("request")
        if e["path"].endswith("processrequest")
    ]


def cashier_push(factory, bar, counter, sim_state) -> Payment:
    """A cashier asks for a tab's balance; returns the payment once its callback is in."""
    tab = factory.tab(bar, lines=(("Tusker", 2, 250),))
    before = len(sim_state.events("callback"))
    response = counter.post(f"/tabs/{tab.id}/pay", data={"phone": PAYS, "amount": 500}, headers=HX)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert sim_state.wait_for_callbacks(before + 1, timeout=10)
    db.session.expire_all()
    return db.session.scalar(select(Payment).where(Payment.tab_id == tab.id))


def test_push(boss, sim_state) -> Payment:
    """The owner's KES 1 test push from the settings page, once its callback is in."""
    before = len(sim_state.events("callback"))
    response = boss.post("/settings/mpesa/test-push", data={"phone": PAYS, "amount": 1})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert sim_state.wait_for_callbacks(before + 1, timeout=10)
    db.session.expire_all()
    return db.session.scalar(select(Payment).order_by(Payment.id.desc()))


test_push.__test__ = False  # a helper, not a test


def use_url(cred: MpesaCredential, revision: int | None = None) -> str:
    return f"/settings/mpesa/{cred.id}/pending/{revision or cred.pending_revision}/use"


def discard_url(cred: MpesaCredential, revision: int | None = None) -> str:
    return f"/settings/mpesa/{cred.id}/pending/{revision or cred.pending_revision}/discard"


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# -- a live bar stays live ---------------------------------------------------------------------


def test_the_form_says_a_live_bar_stays_live_before_anything_is_saved(boss, live_bar):
    page = boss.get("/settings/mpesa/").get_data(as_text=True)
    notice = re.search(r'<p class="flash flash-info" id="stays-live">(.*?)</p>', page, re.S)
    assert notice, page
    words = " ".join(notice.group(1).split())
    assert "stays live on the current credentials until the new ones pass their check" in words
    assert "and a KES 1 test push" in words


def test_saving_new_credentials_keeps_a_live_bar_live_on_the_old_ones(
    boss, counter, factory, live_bar, simulator
):
    before = fresh_credential(live_bar)
    revision = before.revision
    response = boss.post("/settings/mpesa/", data=NEW, follow_redirects=True)
    assert "Saved as new credentials, waiting. The bar stays live" in response.get_data(
        as_text=True
    )
    assert state_of(live_bar) == "live"
    cred = fresh_credential(live_bar)
    assert (cred.shortcode, cred.environment, cred.revision) == (
        SANDBOX_SHORTCODE,
        "sandbox",
        revision,
    )
    assert cred.is_verified  # the set in use is still the proved one
    assert (cred.pending_shortcode, cred.pending_environment) == (NEW_SHORTCODE, "sandbox")
    assert cred.pending_revision > revision
    for column, plain in (
        ("pending_consumer_key_sealed", NEW_KEY),
        ("pending_consumer_secret_sealed", NEW_SECRET),
        ("pending_passkey_sealed", NEW_PASSKEY),
    ):
        sealed = getattr(cred, column)
        assert sealed.startswith("v1.ktest.") and plain not in sealed
    saved = db.session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == "mpesa.credentials_saved")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    assert saved.details == {
        "fields": sorted(["shortcode", "consumer_key", "consumer_secret", "passkey"]),
        "pending": True,
    }

    paid = cashier_push(factory, live_bar, counter, simulator)
    assert paid.status == "paid" and paid.credential_revision == revision
    assert pushed_shortcodes(simulator) == [SANDBOX_SHORTCODE]


def test_the_new_credentials_swap_in_only_after_their_check_and_a_paid_test_push(
    boss, counter, factory, live_bar, simulator
):
    boss.post("/settings/mpesa/", data=NEW)
    cred = fresh_credential(live_bar)
    pending = cred.pending_revision

    page = boss.post(use_url(cred), follow_redirects=True).get_data(as_text=True)
    assert "Check the new credentials with Safaricom first." in page
    assert fresh_credential(live_bar).shortcode == SANDBOX_SHORTCODE

    page = boss.post("/settings/mpesa/check", follow_redirects=True).get_data(as_text=True)
    assert "Safaricom accepted the new consumer key and secret." in page
    assert fresh_credential(live_bar).pending_checked_at is not None
    page = boss.post(use_url(cred), follow_redirects=True).get_data(as_text=True)
    assert "Send a test push with the new credentials and let it be paid first." in page

    proof = test_push(boss, simulator)
    assert (proof.status, proof.credential_revision) == ("paid", pending)
    assert pushed_shortcodes(simulator) == [NEW_SHORTCODE]  # the test push used the new set
    assert state_of(live_bar) == "live"
    assert fresh_credential(live_bar).shortcode == SANDBOX_SHORTCODE  # not swapped by itself

    # Until the owner switches, cashiers still push with the set in use.
    tab_payment = cashier_push(factory, live_bar, counter, simulator)
    assert tab_payment.status == "paid"
    assert pushed_shortcodes(simulator)[-1] == SANDBOX_SHORTCODE
    cashier_final = counter.get(f"/payments/{tab_payment.id}/status", headers=HX)
    assert 'id="go-live"' not in cashier_final.get_data(as_text=True)  # only a test push's

    # The test push's final fragment brings the switch button, out of band.
    fragment = boss.get(f"/payments/{proof.id}/status", headers=HX).get_data(as_text=True)
    section = re.search(
        r'<section class="card" id="go-live" hx-swap-oob="true">.*?</section>', fragment, re.S
    )
    assert section, fragment
    assert "Switch to the new credentials" in section.group(0)
    assert f'action="{use_url(cred, pending)}"' in section.group(0)

    page = boss.post(use_url(cred, pending), follow_redirects=True).get_data(as_text=True)
    assert "Switched: cashiers now send M-Pesa requests with the new credentials." in page
    cred = fresh_credential(live_bar)
    assert (cred.shortcode, cred.environment, cred.revision) == (
        NEW_SHORTCODE,
        "sandbox",
        pending,
    )
    assert cred.is_verified and cred.checked_revision == pending and not cred.has_pending
    assert cred.consumer_key_last4 == NEW_KEY[-4:]
    assert vault.open_credentials(cred).passkey == NEW_PASSKEY
    assert state_of(live_bar) == "live"
    switched = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "mpesa.credentials_switched")
    )
    assert switched.details["payment_id"] == proof.id and switched.details["revision"] == pending
    assert "passkey" in switched.details["fields"]

    paid = cashier_push(factory, live_bar, counter, simulator)
    assert paid.status == "paid" and paid.credential_revision == pending
    assert pushed_shortcodes(simulator)[-1] == NEW_SHORTCODE


def test_a_paid_test_push_proves_only_the_set_it_was_sent_with(boss, live_bar, simulator):
    boss.post("/settings/mpesa/", data=NEW)
    boss.post("/settings/mpesa/check")
    first = fresh_credential(live_bar).pending_revision
    proof = test_push(boss, simulator)
    assert proof.status == "paid"
    # The owner changes one more thing: the new set must prove itself again.
    boss.post("/settings/mpesa/", data={**NEW, "consumer_key": "", "consumer_secret": ""})
    assert fresh_credential(live_bar).pending_revision == first  # nothing new
    simulator.add_shortcode("600200", NEW_PASSKEY)
    boss.post("/settings/mpesa/", data={**NEW, "shortcode": "600200"})
    cred = fresh_credential(live_bar)
    assert cred.pending_revision > first and cred.pending_checked_at is None
    page = boss.post(use_url(cred, first), follow_redirects=True).get_data(as_text=True)
    assert "Those new credentials are no longer waiting" in page  # the page was out of date
    boss.post("/settings/mpesa/check")
    page = boss.post(use_url(cred), follow_redirects=True).get_data(as_text=True)
    assert "Send a test push with the new credentials and let it be paid first." in page
    assert fresh_credential(live_bar).shortcode == SANDBOX_SHORTCODE


def test_the_owner_can_discard_the_new_credentials(boss, counter, factory, live_bar, simulator):
    boss.post("/settings/mpesa/", data=NEW)
    cred = fresh_credential(live_bar)
    page = boss.post(discard_url(cred), follow_redirects=True).get_data(as_text=True)
    assert "Discarded the new credentials. Nothing changed for cashiers." in page
    cred = fresh_credential(live_bar)
    assert not cred.has_pending and cred.pending_passkey_sealed is None
    assert cred.shortcode == SANDBOX_SHORTCODE and cred.is_verified
    assert state_of(live_bar) == "live"
    assert "mpesa.pending_discarded" in actions()
    assert "Switch to the new credentials" not in page and "3. Go live" in page
    # The check and the test push are about the set in use again.
    boss.post("/settings/mpesa/check")
    assert fresh_credential(live_bar).checked_revision == cred.revision
    assert test_push(boss, simulator).credential_revision == cred.revision
    assert cashier_push(factory, live_bar, counter, simulator).status == "paid"
    assert set(pushed_shortcodes(simulator)) == {SANDBOX_SHORTCODE}


def test_typing_back_the_set_in_use_leaves_nothing_waiting(boss, live_bar, simulator):
    boss.post("/settings/mpesa/", data=NEW)
    page = boss.post("/settings/mpesa/", data=OLD, follow_redirects=True).get_data(as_text=True)
    assert "nothing is waiting any more" in page
    assert not fresh_credential(live_bar).has_pending


def test_new_secrets_never_reach_pages_logs_or_the_audit_log(boss, live_bar, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    pages = [boss.post("/settings/mpesa/", data=NEW, follow_redirects=True)]
    pages.append(boss.post("/settings/mpesa/check", follow_redirects=True))
    proof = test_push(boss, simulator)
    pages.append(boss.get("/settings/mpesa/"))
    pages.append(boss.get(f"/payments/{proof.id}/status", headers=HX))
    pages.append(boss.get(f"/payments/{proof.id}/status"))
    pages.append(boss.get("/settings/audit/"))
    cred = fresh_credential(live_bar)
    pages.append(boss.post(use_url(cred), follow_redirects=True))
    pages.append(boss.get("/settings/mpesa/"))
    texts = [p.get_data(as_text=True) for p in pages]
    assert "Switched" in texts[-2]
    texts += [caplog.text, *(repr(e.details) for e in db.session.scalars(select(AuditEvent)))]
    for text in texts:
        for secret in NEW_SECRETS:
            assert secret not in text
    assert f"<code>{NEW_KEY[-4:]}</code>" in texts[2]  # the last 4 of the key, as for the others


def test_a_bar_that_is_not_live_saves_new_credentials_as_before(app, owner, live, bar, simulator):
    boss = login_as(app, owner)
    boss.post("/settings/mpesa/", data=OLD)
    first = fresh_credential(bar).revision
    assert 'id="stays-live"' not in boss.get("/settings/mpesa/").get_data(as_text=True)
    response = boss.post("/settings/mpesa/", data=NEW, follow_redirects=True)
    assert "Saved. The credentials changed, so check them and send a test push again." in (
        response.get_data(as_text=True)
    )
    cred = fresh_credential(bar)
    assert not cred.has_pending and cred.pending_revision is None
    assert (cred.shortcode, cred.revision) == (NEW_SHORTCODE, first + 1)
    assert state_of(bar) == "credentials_saved"
    assert test_push(boss, simulator).status == "paid"
    assert pushed_shortcodes(simulator) == [NEW_SHORTCODE]
    assert state_of(bar) == "verified"


def test_another_bars_pending_credentials_answer_404(app, boss, live_bar, outsider, simulator):
    boss.post("/settings/mpesa/", data=NEW)
    cred = fresh_credential(live_bar)
    thief = login_as(app, outsider)
    assert thief.post(use_url(cred)).status_code == 404
    assert thief.post(discard_url(cred)).status_code == 404
    cred = fresh_credential(live_bar)
    assert cred.has_pending and cred.shortcode == SANDBOX_SHORTCODE


# -- the go-live section comes with the test push's final answer -------------------------------


def test_a_final_test_push_brings_the_go_live_button_out_of_band(app, owner, live, bar, sim_state):
    boss = login_as(app, owner)
    boss.post("/settings/mpesa/", data=OLD)
    page = boss.get("/settings/mpesa/").get_data(as_text=True)
    assert "Available after a paid test push with these credentials." in page
    assert page.count('id="go-live"') == 1 and "hx-swap-oob" not in page

    sim_state.set_faults(callback_lost=True)  # the owner paid; the callback never comes
    boss.post("/settings/mpesa/test-push", data={"phone": PAYS, "amount": 1})
    payment = db.session.scalar(select(Payment))
    waiting = boss.get(f"/payments/{payment.id}/status", headers=HX).get_data(as_text=True)
    assert "badge-sent" in waiting and 'id="go-live"' not in waiting

    # "Check now" asks M-Pesa, which says paid: its answer is the final fragment too.
    checked = boss.post(f"/payments/{payment.id}/check", headers=HX).get_data(as_text=True)
    assert "badge-paid" in checked and 'id="go-live" hx-swap-oob="true"' in checked
    final = boss.get(f"/payments/{payment.id}/status", headers=HX).get_data(as_text=True)
    assert "badge-paid" in final, final
    section = re.search(
        r'<section class="card" id="go-live" hx-swap-oob="true">.*?</section>', final, re.S
    )
    assert section, final
    assert 'action="/settings/mpesa/go-live"' in section.group(0)
    assert 'name="csrf_token"' in section.group(0)
    assert "Available after a paid test push" not in section.group(0)


# -- the sandbox marker ------------------------------------------------------------------------


def production_bar(factory, *, live: bool = False) -> tuple[Bar, object]:
    """A bar on production credentials (the simulator's own: only the environment differs)."""
    bar = factory.bar("Real Money Lounge")
    vault.save(
        bar,
        vault.CredentialInput(
            environment="production",
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=SIM_CONSUMER_SECRET,
            passkey=SANDBOX_PASSKEY,
        ),
    )
    if live:
        cred = vault.credential_for(bar)
        cred.verified_revision, bar.setup_state = cred.revision, "live"
        db.session.commit()
    return bar, factory.user(bar, "owner")


PAGES = ("/dashboard", "/tabs/", "/payments/", "/settings/mpesa/", "/settings/api-keys/")


def test_only_a_sandbox_bars_pages_say_no_real_money(
    app, factory, live_bar, owner, cashier, outsider
):
    boss = login_as(app, owner)
    for url in PAGES:
        response = boss.get(url)
        assert response.status_code == 200, url
        assert MARKER in response.get_data(as_text=True), url
    tab = factory.tab(live_bar)
    assert MARKER in login_as(app, cashier).get(f"/tabs/{tab.id}").get_data(as_text=True)

    _, real_owner = production_bar(factory)
    for person in (real_owner, outsider):  # `outsider`'s bar has no credentials yet
        client = login_as(app, person)
        for url in PAGES:
            response = client.get(url)
            assert response.status_code == 200, url
            assert MARKER not in response.get_data(as_text=True), url
    assert MARKER not in app.test_client().get("/login").get_data(as_text=True)


def test_the_marker_follows_the_credentials_in_use_not_the_pending_ones(
    app, factory, live, simulator
):
    bar, real_owner = production_bar(factory, live=True)
    boss = login_as(app, real_owner)
    assert MARKER not in boss.get("/dashboard").get_data(as_text=True)
    boss.post("/settings/mpesa/", data=NEW)  # moving to a sandbox set, say to try something
    assert MARKER not in boss.get("/dashboard").get_data(as_text=True)  # not in use yet
    boss.post("/settings/mpesa/check")
    assert test_push(boss, simulator).status == "paid"
    assert MARKER not in boss.get("/dashboard").get_data(as_text=True)
    boss.post(use_url(fresh_credential(bar)))
    assert fresh_credential(bar).environment == "sandbox"
    assert MARKER in boss.get("/dashboard").get_data(as_text=True)


def test_the_marker_is_on_pages_and_costs_a_status_poll_nothing(counter, factory, live_bar):
    tab = factory.tab(live_bar, lines=(("Tusker", 2, 250),))
    waiting = factory.payment(live_bar, tab=tab, amount=500)
    asked: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        asked.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
        on_page = len([q for q in asked if "mpesa_credential.environment" in q])
        asked.clear()
        fragment = counter.get(f"/payments/{waiting.id}/status", headers=HX)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert MARKER in page and on_page == 1  # once for the page, however often base.html asks
    assert fragment.status_code == 200 and MARKER not in fragment.get_data(as_text=True)
    assert not [q for q in asked if "mpesa_credential" in q]  # a fragment never asks
