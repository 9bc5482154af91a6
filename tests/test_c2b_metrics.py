"""/metrics counts C2B confirmations by what became of them, and menu money claimed or moved."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from app.extensions import db
from app.models import Payment
from app.payments import c2b
from tests.test_c2b_confirmations import SAMPLE, confirm
from tests.test_metrics import scraped, snapshot

NAME = "pesatab_c2b_confirmations_total"


@pytest.fixture
def grown():
    """How much a sample has grown since the test started (the counters are process-wide)."""
    start = snapshot()

    def since(name: str, **labels) -> float:
        now = REGISTRY.get_sample_value(name, labels) or 0.0
        return now - start.get((name, frozenset(labels.items())), 0.0)

    return since


@pytest.fixture
def paybill(factory, bar):
    factory.live_credentials(bar)
    return c2b.registration_for(bar).url_secret


def test_each_disposition_is_counted_where_it_is_settled(app, client, factory, bar, paybill, grown):
    confirm(client, paybill, SAMPLE)
    confirm(client, paybill, SAMPLE)
    confirm(client, paybill, {**SAMPLE, "TransID": "UKM4ABC14E", "BusinessShortCode": "600000"})
    confirm(client, paybill, {**SAMPLE, "TransAmount": "-300.00"})
    confirm(client, "no-such-secret", SAMPLE)
    app.config["CALLBACK_MAX_BYTES"] = 100
    confirm(client, paybill, SAMPLE)
    app.config["CALLBACK_MAX_BYTES"] = 16384
    factory.payment(bar, status="paid", receipt="QKSTK00001", result_code="0")
    confirm(client, paybill, {**SAMPLE, "TransID": "QKSTK00001"})
    counted = {
        d: grown(NAME, disposition=d)
        for d in ("applied", "duplicate", "foreign_shortcode", "malformed", "unknown_url")
    }
    assert counted == {
        "applied": 1,
        "duplicate": 1,
        "foreign_shortcode": 1,
        "malformed": 1,
        "unknown_url": 1,
    }
    assert grown(NAME, disposition="too_large") == 1
    assert grown(NAME, disposition="linked") == 1
    assert grown(NAME, disposition="pending") == 0


def test_an_error_on_our_side_counts_pending_and_is_still_acknowledged(
    client, paybill, monkeypatch, grown
):
    def broken(*args):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(c2b, "open_tab_for", broken)
    record = confirm(client, paybill, SAMPLE)
    assert record.disposition == "pending"
    assert grown(NAME, disposition="pending") == 1
    assert grown(NAME, disposition="applied") == 0


def test_claims_and_moves_are_counted(client, factory, bar, paybill, cashier, grown):
    record = confirm(client, paybill, {**SAMPLE, "BillRefNumber": "walk in"})
    money = db.session.get(Payment, record.payment_id)
    first, second = factory.tab(bar, "Table 1"), factory.tab(bar, "Table 2")
    c2b.claim(money, first, cashier.id)
    c2b.claim(money, second, None, move=True)
    with pytest.raises(c2b.ClaimError):
        c2b.claim(money, second, None, move=True)  # refused: nothing counted
    assert grown("pesatab_c2b_claims_total", action="claimed") == 1
    assert grown("pesatab_c2b_claims_total", action="moved") == 1


def test_the_counts_are_served_at_metrics(client, paybill):
    confirm(client, paybill, {**SAMPLE, "TransID": "UKM4SCRAPE"})
    assert scraped(client, NAME, disposition="applied") >= 1
