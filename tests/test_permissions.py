"""Every route, every role: allowed or 403, checked on the server.

The table below must name every endpoint the app has (besides the public ones), so a new
route cannot slip in without a decision about who may use it. Operators (PesaTab's own people,
with no bar) are one more actor: denied every bar's route, and the only ones allowed /ops/.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.api import keys
from app.extensions import db
from app.models import MpesaCredential, Reversal, StatementImport, StatementLine, Tender, utcnow
from app.ops.operators import create_operator
from app.receipts import links as receipt_links
from tests.conftest import login_as
from tests.factories import Factory

ALL = {"owner", "manager", "cashier"}
MONEY = {"owner", "manager"}
OPERATOR = "operator"
ACTORS = sorted(ALL | {OPERATOR})
PUBLIC = {
    "static",
    "auth.login",
    "auth.signup",
    "auth.set_password",
    "auth.forgot_password",  # says the same whatever is typed; limited per address
    "dashboard.home",
    "hooks.stk_callback",  # Safaricom calls it; the unguessable token is the credential
    "hooks.c2b_confirmation",  # Safaricom again: the bar's URL secret is the credential
    "hooks.c2b_validation",
    # Results of initiator requests (Transaction Status): the request's URL secret is the key
    "hooks.initiator_result",
    "hooks.initiator_timeout",
    "hooks.c2b_pull_notice",  # Pull Transactions notices: the same URL secret; never money
    "health.healthz",
    "health.readyz",  # load balancer / orchestrator probes: no login
    # Prometheus: its own bearer token (METRICS_TOKEN); 404 in production without one
    "health.metrics",
    # A customer's receipt link: the random token is the credential; one tab's receipt, 404
    # for anything else, limited per address
    "receipts.public",
}

# endpoint, method, path (with {target} = a teammate's id), roles allowed
ROUTES = [
    ("dashboard.index", "GET", "/dashboard", ALL),
    ("auth.logout", "POST", "/logout", ALL | {OPERATOR}),
    ("staff.index", "GET", "/settings/staff/", {"owner", "manager"}),
    ("staff.add", "POST", "/settings/staff/", {"owner"}),
    ("staff.deactivate", "POST", "/settings/staff/{target}/deactivate", {"owner"}),
    ("staff.reactivate", "POST", "/settings/staff/{target}/reactivate", {"owner"}),
    ("staff.new_link", "POST", "/settings/staff/{target}/link", {"owner", "manager"}),
    ("settings.index", "GET", "/settings/mpesa/", {"owner"}),
    ("settings.save", "POST", "/settings/mpesa/", {"owner"}),
    ("settings.check", "POST", "/settings/mpesa/check", {"owner"}),
    ("settings.test_push", "POST", "/settings/mpesa/test-push", {"owner"}),
    ("settings.go_live", "POST", "/settings/mpesa/go-live", {"owner"}),
    ("settings.switch", "POST", "/settings/mpesa/switch/off", {"owner"}),
    ("settings.use_pending", "POST", "/settings/mpesa/{credential}/pending/2/use", {"owner"}),
    ("settings.register_c2b", "POST", "/settings/mpesa/c2b/register", {"owner", "manager"}),
    ("settings.c2b_validation_rule", "POST", "/settings/mpesa/c2b/validation", MONEY),
    ("settings.c2b_urls", "GET", "/settings/mpesa/c2b", {"owner", "manager"}),
    ("settings.register_pull", "POST", "/settings/mpesa/c2b/pull", {"owner", "manager"}),
    (
        "settings.discard_pending",
        "POST",
        "/settings/mpesa/{credential}/pending/2/discard",
        {"owner"},
    ),
    ("payments.status", "GET", "/payments/{payment}/status", ALL),
    ("payments.index", "GET", "/payments/", {"owner", "manager"}),
    ("payments.check", "POST", "/payments/{payment}/check", {"owner", "manager"}),
    ("reconciliation.index", "GET", "/reconciliation/", {"owner", "manager"}),
    ("reconciliation.export", "GET", "/reconciliation/export.csv", {"owner", "manager"}),
    (
        "reconciliation.checked",
        "POST",
        "/reconciliation/payment/{payment}/checked",
        {"owner", "manager"},
    ),
    ("statements.index", "GET", "/reconciliation/statements/", {"owner", "manager"}),
    ("statements.upload", "POST", "/reconciliation/statements/", {"owner"}),
    ("statements.detail", "GET", "/reconciliation/statements/{statement}", {"owner", "manager"}),
    (
        "statements.attach",
        "POST",
        "/reconciliation/statements/{statement}/lines/{line}/attach",
        {"owner", "manager"},
    ),
    (
        "statements.claim_receipt",
        "POST",
        "/reconciliation/statements/{statement}/lines/{line}/receipt",
        {"owner", "manager"},
    ),
    ("payments.export", "GET", "/payments/export.csv", {"owner", "manager"}),
    ("settings.api_keys", "GET", "/settings/api-keys/", {"owner"}),
    ("audit.index", "GET", "/settings/audit/", {"owner"}),
    ("settings.create_api_key", "POST", "/settings/api-keys/", {"owner"}),
    ("settings.revoke_api_key", "POST", "/settings/api-keys/{api_key}/revoke", {"owner"}),
    ("tabs.index", "GET", "/tabs/", ALL),
    ("tabs.open_tab", "POST", "/tabs/", ALL),
    ("tabs.detail", "GET", "/tabs/{tab}", ALL),
    ("tabs.add_line", "POST", "/tabs/{tab}/lines", ALL),
    ("tabs.pay", "POST", "/tabs/{tab}/pay", ALL),
    ("tabs.close", "POST", "/tabs/{tab}/close", ALL),
    ("tabs.void", "POST", "/tabs/{tab}/void", {"owner", "manager"}),
    # Cash and card, and correcting lines: everyone at the counter (the domain refuses a
    # cashier what needs a manager, with a sentence).
    ("tabs.add_tender", "POST", "/tabs/{tab}/tenders", ALL),
    ("tabs.remove_tender", "POST", "/tabs/{tab}/tenders/{tender}/remove", ALL),
    ("tabs.change_line", "POST", "/tabs/{tab}/lines/{tab_line}", ALL),
    ("tabs.incoming", "GET", "/tabs/incoming", ALL),
    ("tabs.claim", "POST", "/tabs/{tab}/claim", ALL),
    # Verifying a customer's M-Pesa code: everyone at the counter; the owner sets the initiator.
    ("verify.ask", "POST", "/verify/", ALL),
    ("verify.answer", "GET", "/verify/{initiator_request}", ALL),
    # The M-Pesa balance (Account Balance): the owner's, like the initiator credentials it uses.
    ("balance.ask", "POST", "/balance/", {"owner"}),
    ("balance.show", "GET", "/balance/{balance_request}", {"owner"}),
    # Giving a paid payment's money back: owners and managers (the payment here is not paid,
    # so the ask answers 422 with its sentence).
    ("reversals.show", "GET", "/reversals/payments/{payment}", MONEY),
    ("reversals.ask", "POST", "/reversals/payments/{payment}", MONEY),
    # Settling by hand one M-Pesa never answered (this one is still awaited: 409 with a sentence).
    ("reversals.settle", "POST", "/reversals/{reversal}/settle", MONEY),
    ("settings.save_initiator", "POST", "/settings/mpesa/initiator", {"owner"}),
    # Receipts: everyone at the counter prints, shares and revokes (the tab here still owes,
    # so the receipt answers 409 with its sentence); the owner sets the address and KRA PIN.
    ("receipts.show", "GET", "/tabs/{tab}/receipt", ALL),
    ("tabs.bill", "GET", "/tabs/{tab}/bill", ALL),
    ("tabs.bill_qr_card", "GET", "/tabs/{tab}/qr", ALL),
    ("receipts.create_link", "POST", "/tabs/{tab}/receipt/link", ALL),
    ("receipts.revoke_link", "POST", "/tabs/{tab}/receipt/link/{receipt_link}/revoke", ALL),
    ("receipts.settings", "GET", "/settings/receipts/", {"owner"}),
    ("reconciliation.shift_summary", "GET", "/reconciliation/shifts", ALL),
    ("dashboard.language", "POST", "/dashboard/language", ALL),
    ("ops.index", "GET", "/ops/", {OPERATOR}),
    ("ops.disable_pushes", "POST", "/ops/mpesa/disable", {OPERATOR}),
    ("ops.enable_pushes", "POST", "/ops/mpesa/enable", {OPERATOR}),
]
# Not a denial: an operator's dashboard is the page of every bar.
SENT_TO_OPS = {"dashboard.index"}


def _objects(factory, bar) -> dict[str, int]:
    """One of each object the paths name, in the actors' bar: {target}, {payment}, ..."""
    record = StatementImport(bar_id=bar.id, filename="statement.csv", sha256="0" * 64)
    db.session.add(record)
    db.session.flush()
    line = StatementLine(
        bar_id=bar.id,
        import_id=record.id,
        receipt="UKM4ABC13E",
        completion_time=utcnow(),
        paid_in_cents=30000,
        match_state="orphan",
    )
    db.session.add(line)
    tab = factory.tab(bar, lines=(("Tusker", 2, 250),))
    tender = Tender(bar_id=bar.id, tab_id=tab.id, kind="cash", amount=100)
    db.session.add(tender)
    db.session.commit()
    receipt_link, _token = receipt_links.issue(tab, None)
    factory.live_credentials(bar)
    credential = db.session.scalars(select(MpesaCredential)).one()
    return {
        "credential": credential.id,
        "tender": tender.id,
        "tab_line": tab.lines[0].id,
        "target": factory.user(bar, "cashier").id,
        "payment": factory.payment(bar).id,
        "tab": tab.id,
        "receipt_link": receipt_link.id,
        "initiator_request": _initiator_request(bar),
        "balance_request": _initiator_request(bar, "balance", "174379"),
        "api_key": keys.create_key(bar, "POS").api_key.id,
        "statement": record.id,
        "line": line.id,
        "reversal": _reversal(factory, bar),
    }


def _reversal(factory, bar) -> int:
    paid = factory.payment(bar, status="paid", receipt="UKM4REV001")
    reversal = Reversal(
        bar_id=bar.id, payment_id=paid.id, receipt=paid.receipt, amount=paid.amount, reason="test"
    )
    db.session.add(reversal)
    db.session.commit()
    return reversal.id


def _initiator_request(bar, kind: str = "status", subject: str = "QZZ9ZZZ9ZZ") -> int:
    from app.payments import initiator

    return initiator.start(bar.id, kind, subject, None).id


def test_the_table_covers_every_endpoint(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    covered = {endpoint for endpoint, *_ in ROUTES}
    # Daraja's stand-in (not ours), and the POS API, which signs in with API keys (test_api.py).
    other_auth = {e for e in endpoints if e.startswith(("daraja_sim.", "api."))}
    missing = endpoints - covered - PUBLIC - other_auth
    assert not missing, f"add these endpoints to ROUTES with the roles allowed: {sorted(missing)}"


def _actor(factory, bar, role):
    if role == OPERATOR:
        return create_operator("Nuru Operator", "nuru@ops.pesatab.example.com", Factory.PASSWORD)
    return factory.user(bar, role)


@pytest.mark.parametrize("role", ACTORS)
@pytest.mark.parametrize(
    ("endpoint", "method", "path", "allowed"), ROUTES, ids=[r[0] for r in ROUTES]
)
def test_each_role_is_allowed_or_denied(app, factory, bar, role, endpoint, method, path, allowed):
    actor = _actor(factory, bar, role)
    objects = _objects(factory, bar)
    client = login_as(app, actor)
    response = client.open(path.format(**objects), method=method)
    if role == OPERATOR and endpoint in SENT_TO_OPS:
        assert response.status_code == 302 and response.headers["Location"] == "/ops/"
    elif role in allowed:
        assert response.status_code not in (401, 403, 404)
        assert not response.headers.get("Location", "").startswith("/login?")
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("endpoint", "method", "path", "allowed"), ROUTES, ids=[r[0] for r in ROUTES]
)
def test_anonymous_visitors_are_sent_to_login(
    client, factory, bar, endpoint, method, path, allowed
):
    response = client.open(path.format(**_objects(factory, bar)), method=method)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
