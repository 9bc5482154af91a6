"""Property tests over what may arrive at a bar's C2B confirmation URL.

Whatever is POSTed (a confirmation with keys missing, extra or of the wrong type, huge or
unicode strings, amounts as strings, floats or negatives, nested junk, bytes that are not JSON,
a wrong URL secret, another bar's shortcode), PesaTab answers Daraja's acknowledgement and never
a 5xx, stores one C2BConfirmation row per request, applies only a valid confirmation for that
bar's shortcode with a positive whole-shilling amount, and never makes a second Payment for one
TransID. The oracle below is written from Daraja's confirmation shape (daraja.md), not from
app/payments/c2b.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import C2BConfirmation, Payment
from app.payments import c2b
from app.simulator import SANDBOX_SHORTCODE, TILL_NUMBER, TILL_STORE_NUMBER

ACK = {"ResultCode": 0, "ResultDesc": "Success"}
RECEIPTS = ["UKM4ABC13E", "ukm4abc13e", "QK7PN3XY2Z", "SBC0000001"]  # two are one receipt
EAT = timedelta(hours=3)

# -- what may arrive ---------------------------------------------------------------------------

junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**45), max_value=10**45)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def mostly(valid, *others):
    """`valid` six times in seven, else one of `others`."""
    return st.integers(0, 6).flatmap(lambda n: st.one_of(*others) if n == 0 else valid)


amounts = mostly(
    st.integers(min_value=1, max_value=250_000).map(lambda n: f"{n}.00"),
    st.integers(min_value=-5, max_value=10**8).map(str),
    st.integers(min_value=-5, max_value=10**8),
    st.floats(min_value=-5, max_value=10**6, allow_nan=False),
    st.sampled_from(["300.0", " 45 ", "1e3", "300.50", "0.00", "-300.00", "٣٠٠", "3,000", ""]),
    junk,
)
trans_ids = mostly(st.sampled_from(RECEIPTS), st.text(max_size=14), junk)
recent = st.integers(min_value=0, max_value=400 * 24 * 3600).map(
    lambda s: (datetime.now(UTC) + EAT - timedelta(seconds=s)).strftime("%Y%m%d%H%M%S")
)
trans_times = mostly(
    recent,
    recent.map(int),
    st.sampled_from(["00010101000000", "20261399000000", "2026112215023", "99991231235959"]),
    junk,
)
shortcodes = mostly(
    st.just(SANDBOX_SHORTCODE),
    st.sampled_from([int(SANDBOX_SHORTCODE), TILL_STORE_NUMBER, TILL_NUMBER, "600000"]),
    st.sampled_from([f" {SANDBOX_SHORTCODE} ", f"{SANDBOX_SHORTCODE}\x00", "1743790"]),
    junk,
)
huge = st.integers(min_value=1, max_value=24_000).map(lambda n: "ü" * n)
names = mostly(st.text(max_size=30), junk)


@st.composite
def confirmation(draw) -> dict:
    """A v2 confirmation, each field kept, dropped or replaced, and extra keys maybe added."""
    fields = {
        "TransactionType": st.sampled_from(["Pay Bill", "Buy Goods", "CustomerPayBillOnline"]),
        "TransID": trans_ids,
        "TransTime": trans_times,
        "TransAmount": amounts,
        "BusinessShortCode": shortcodes,
        "BillRefNumber": names,
        "InvoiceNumber": st.just(""),
        "OrgAccountBalance": st.one_of(st.just("15300.00"), junk),
        "ThirdPartyTransID": st.just(""),
        "MSISDN": mostly(st.just("2547 ***** 149"), st.text(max_size=80), junk),
        "FirstName": names,
        "MiddleName": st.text(max_size=10),
        "LastName": mostly(st.text(max_size=10), huge),
    }
    body = {}
    for key, values in fields.items():
        if draw(st.integers(0, 19)):  # mostly present
            body[key] = draw(values)
    body.update(draw(st.dictionaries(st.text(max_size=10), junk, max_size=3)))
    return body


# One field of an otherwise valid confirmation made almost right.
TRICKY = {
    "TransAmount": ["٣٠٠", "３００", "300.50", "-300", "0", "00", "1e3", "3,000", "300.000", True,
                    300.0, -300, 10**8, " 300 ", "300\x00", "30\u00000"],
    "TransID": ["UKM4ABC13", "UKM4ABC13EX", "UKM4ABC1ı3", "ＵKM4ABC13E", "UKM4ABC13\x00", True,
                1234567890, " ukm4abc13e "],
    "TransTime": ["00010101000000", "20261131120000", "2026112215023", "202611221502333",
                  "２０２６１１２２１５０２３３", "2026112215\x000233", "99991231235959",
                  20261122150233],
    "BusinessShortCode": [f"{SANDBOX_SHORTCODE}\x00", f"0{SANDBOX_SHORTCODE}", TILL_NUMBER,
                          int(SANDBOX_SHORTCODE), f" {SANDBOX_SHORTCODE} ", [SANDBOX_SHORTCODE]],
}  # fmt: skip


@st.composite
def near_valid(draw) -> dict:
    body = {
        "TransactionType": "Pay Bill",
        "TransID": draw(st.sampled_from(RECEIPTS)),
        "TransTime": draw(recent),
        "TransAmount": f"{draw(st.integers(1, 250_000))}.00",
        "BusinessShortCode": SANDBOX_SHORTCODE,
        "BillRefNumber": draw(st.text(max_size=20)),
        "MSISDN": "2547 ***** 149",
    }
    key = draw(st.sampled_from(sorted(TRICKY)))
    body[key] = draw(st.sampled_from(TRICKY[key]))
    return body


def _deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([50, 1001, 5000, 8100]).map(lambda n: b"[" * n + b"]" * n),
    st.sampled_from([50, 1001, 2700]).map(_deep),  # under the size limit: parsed
    junk.map(lambda v: json.dumps(v).encode()),
)


@st.composite
def request(draw) -> tuple[str, bytes]:
    """(which URL secret, body bytes)."""
    secret = draw(st.sampled_from(["ours", "ours", "ours", "ours", "theirs", "wrong"]))
    shape = draw(st.integers(0, 7))
    if shape >= 2:
        body = draw(near_valid() if shape < 7 else confirmation())
        data = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    else:
        data = draw(raw_bodies)
    return secret, data


# -- the oracle --------------------------------------------------------------------------------


def _scalar(value) -> str | None:
    """A confirmation field as the text it carries; None for what is not text or a number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() if isinstance(value, str) or abs(value) < 10**20 else None


def whole_kes(value) -> int | None:
    text = _scalar(value)
    found = re.fullmatch(r"([0-9]{1,7})(\.0{1,2})?", text or "")
    return int(found[1]) if found and int(found[1]) >= 1 else None


def when(value) -> datetime | None:
    text = _scalar(value) or ""
    if not re.fullmatch(r"[0-9]{14}", text):
        return None
    try:
        local = datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    utc = local.replace(tzinfo=UTC) - EAT if local.year > 1 else None
    # M-Pesa began in March 2007; a day ahead allows for Safaricom's clock.
    latest = datetime.now(UTC) + timedelta(days=1)
    plausible = utc and datetime(2007, 3, 1, tzinfo=UTC) <= utc <= latest
    return utc if plausible else None


def expected(data: bytes, shortcodes_of_bar: set[str], limit: int) -> tuple[str, int] | None:
    """(receipt, KES) when `data` is a valid confirmation for the bar, else None."""
    if len(data) > limit:
        return None
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    receipt = _scalar(body.get("TransID")) or ""
    if not (receipt.isascii() and re.fullmatch(r"[A-Za-z0-9]{10}", receipt)):
        return None
    kes = whole_kes(body.get("TransAmount"))
    if kes is None or when(body.get("TransTime")) is None:
        return None
    if _scalar(body.get("BusinessShortCode")) not in shortcodes_of_bar:
        return None
    return receipt.upper(), kes


# -- the property ------------------------------------------------------------------------------


@pytest.fixture
def bars(factory):
    """Our PayBill bar and another bar (a Till), each with its confirmation URL secret."""
    ours, theirs = factory.bar("Kwa Mama Pub"), factory.bar("Across the Road")
    factory.live_credentials(ours)
    factory.live_credentials(theirs, kind="till")
    return {
        "ours": (ours.id, c2b.registration_for(ours).url_secret, {SANDBOX_SHORTCODE}),
        "theirs": (
            theirs.id,
            c2b.registration_for(theirs).url_secret,
            {TILL_STORE_NUMBER, TILL_NUMBER},
        ),
        "wrong": (None, "not-a-bars-secret-0123456789abcdef", set()),
    }


@settings(
    max_examples=150,
    database=None,  # no examples kept between runs: each run draws afresh, and writes nothing
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(request(), min_size=1, max_size=3))
def test_whatever_arrives_is_acknowledged_stored_and_applied_only_when_valid(
    app, client, bars, batch
):
    db.session.execute(delete(C2BConfirmation))
    db.session.execute(delete(Payment))
    db.session.commit()
    limit = app.config["CALLBACK_MAX_BYTES"]
    credited: dict[str, tuple[int, int]] = {}  # receipt -> (bar id, KES) of the first valid one
    for n, (which, data) in enumerate(batch, start=1):
        bar_id, secret, codes = bars[which]
        response = client.post(
            f"/hooks/c2b/{secret}/confirmation", data=data, content_type="application/json"
        )
        assert response.status_code == 200
        assert response.get_json() == ACK
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).select_from(C2BConfirmation)) == n
        record = db.session.scalars(select(C2BConfirmation).order_by(C2BConfirmation.id)).all()[-1]
        assert record.bar_id == bar_id and record.disposition != "pending"
        event(record.disposition)  # --hypothesis-show-statistics: what the examples reached
        valid = expected(data, codes, limit) if bar_id else None
        if valid is not None and valid[0] not in credited:
            credited[valid[0]] = (bar_id, valid[1])
            assert record.disposition == "applied"
            money = db.session.get(Payment, record.payment_id)
            assert (money.receipt, money.amount, money.bar_id) == (valid[0], valid[1], bar_id)
        elif valid is not None:
            assert record.disposition == "duplicate"
        else:
            assert record.disposition != "applied"
    paid = db.session.execute(select(Payment.receipt, Payment.bar_id, Payment.amount)).all()
    assert sorted((r, b, k) for r, b, k in paid) == sorted(
        (r, b, k) for r, (b, k) in credited.items()
    )
