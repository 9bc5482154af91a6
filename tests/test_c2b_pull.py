"""Pull Transactions: the client's shapes, the job's window and paging (with `responses`), and
the whole path over real HTTP against the simulator: a lost confirmation is found once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from sqlalchemy import func, select

from app import jobs
from app.extensions import db
from app.models import C2BConfirmation, JobStatus, Payment, PullRegistration, utcnow
from app.mpesa import Credentials, DarajaClient, DarajaError
from app.mpesa.pull import PullTransaction, read_page
from app.payments import c2b, c2b_pull
from app.simulator import (
    SANDBOX_SHORTCODE,
    SIM_CONSUMER_KEY,
    SIM_CONSUMER_SECRET,
    TILL_NUMBER,
    TILL_STORE_NUMBER,
)
from tests.conftest import login_as

DARAJA = "https://daraja.test"
NOMINATED = "254722000111"
CREDS = Credentials(
    environment="sandbox", kind="paybill", shortcode="174379", consumer_key="k" * 20,
    consumer_secret="s" * 16, passkey="p" * 20,
)  # fmt: skip


def item(receipt: str, amount: str = "300.00", account: str = "walk in", **extra) -> dict:
    return {
        "transactionId": receipt, "trxDate": "2026-12-07T09:15:00+03:00",
        "msisdn": "2547 ***** 149", "sender": "", "transactiontype": "c2b-pay-bill-debit",
        "billreference": account, "amount": amount, "organizationname": "174379", **extra,
    }  # fmt: skip


def page(*items: dict, nested: bool = True) -> dict:
    return {
        "ResponseRefID": "ref-1", "ResponseCode": "1000", "ResponseMessage": "Success",
        "Response": [list(items)] if nested else list(items),
    }  # fmt: skip


# -- the shapes -------------------------------------------------------------------------------


def test_it_reads_a_nested_page_a_flat_page_and_an_empty_one():
    nested = read_page(page(item("SLK1AB2CD3"), item("SLK1AB2CD4")))
    flat = read_page(page(item("SLK1AB2CD3"), nested=False))
    assert [t.transaction_id for t in nested.transactions] == ["SLK1AB2CD3", "SLK1AB2CD4"]
    assert flat.transactions[0].paid_at == datetime(2026, 12, 7, 6, 15, tzinfo=UTC)
    assert flat.transactions[0].bill_reference == "walk in"
    assert read_page({"ResponseCode": "1000", "Response": [[]]}).records == 0


def test_an_unreadable_item_is_counted_so_the_offset_never_skips_one():
    found = read_page(page(item("SLK1AB2CD3"), {"transactionId": "X", "trxDate": "soon"}))
    assert (len(found.transactions), found.records, found.unreadable) == (1, 2, 1)


def test_a_refusal_raises_with_daraja_words():
    with pytest.raises(DarajaError) as err:
        read_page({"ResponseCode": "1001", "ResponseMessage": "ShortCode not registered"})
    assert err.value.message == "ShortCode not registered" and err.value.error_code == "1001"


@responses.activate
def test_the_client_sends_nairobi_dates_and_the_offset():
    responses.get(f"{DARAJA}/oauth/v1/generate", json={"access_token": "t", "expires_in": "3599"})
    query = responses.post(f"{DARAJA}/pulltransactions/v1/query", json=page())
    start = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    DarajaClient(DARAJA).pull_query(CREDS, start, start + timedelta(hours=2), offset=40)
    assert json.loads(query.calls[0].request.body) == {
        "ShortCode": "174379", "StartDate": "2026-12-07 08:00:00",
        "EndDate": "2026-12-07 10:00:00", "OffSetValue": "40",
    }  # fmt: skip


@responses.activate
def test_registering_needs_a_kenyan_nominated_number_and_sends_pull():
    responses.get(f"{DARAJA}/oauth/v1/generate", json={"access_token": "t", "expires_in": "3599"})
    registered = responses.post(
        f"{DARAJA}/pulltransactions/v1/register",
        json={"ResponseRefID": "r", "ResponseStatus": "1000", "ResponseDescription": "ok"},
    )
    client = DarajaClient(DARAJA)
    with pytest.raises(Exception, match="nominated number"):
        client.pull_register(CREDS, nominated_number="12", callback_url="https://x.test/hooks/p")
    client.pull_register(CREDS, nominated_number="0722 000 111", callback_url="https://x.test/p")
    sent = json.loads(registered.calls[0].request.body)
    assert sent == {
        "ShortCode": "174379", "RequestType": "Pull", "NominatedNumber": NOMINATED,
        "CallBackURL": "https://x.test/p",
    }  # fmt: skip


# -- the window and the paging ----------------------------------------------------------------


def test_the_window_starts_at_the_last_good_end_less_the_overlap_and_never_past_48_hours():
    now = datetime(2026, 12, 7, 12, 0)
    fresh = PullRegistration(bar_id=1, nominated_number=NOMINATED)
    assert c2b_pull.window(fresh, now) == (now - timedelta(hours=47, minutes=59), now)
    fresh.window_end = now - timedelta(minutes=10)
    assert c2b_pull.window(fresh, now)[0] == now - timedelta(minutes=25)
    fresh.window_end = now - timedelta(days=5)  # the job was down for days
    assert c2b_pull.window(fresh, now)[0] == now - timedelta(hours=47, minutes=59)
    assert c2b_pull.window(fresh, now, hours=3)[0] == now - timedelta(hours=3)
    assert c2b_pull.window(fresh, now, hours=100)[0] == now - timedelta(hours=47, minutes=59)


@pytest.fixture
def pulling(app, factory, bar):
    """A live PayBill bar registered for Pull, its Daraja played by `responses`."""
    factory.live_credentials(bar)
    app.config["DARAJA_BASE_URL"] = DARAJA
    db.session.add(
        PullRegistration(bar_id=bar.id, nominated_number=NOMINATED, registered_at=utcnow())
    )
    db.session.commit()
    with responses.RequestsMock() as daraja:  # an unmatched call fails the test
        daraja.get(f"{DARAJA}/oauth/v1/generate", json={"access_token": "t", "expires_in": "3599"})
        yield daraja


def offsets(mock) -> list[str]:
    return [
        json.loads(c.request.body)["OffSetValue"] for c in mock.calls if "query" in c.request.url
    ]


def test_it_pages_until_a_page_is_empty_and_applies_each_unknown_payment_once(
    pulling, bar, factory
):
    tab = factory.tab(bar, "Table 4", lines=(("Tusker", 2, 250),))
    url = f"{DARAJA}/pulltransactions/v1/query"
    pulling.post(url, json=page(item("SLK1AB2CD3", "500.00", f"tab{tab.id}"), item("SLK1AB2CD4")))
    pulling.post(url, json=page(item("SLK1AB2CD5", "1,200.00")))
    pulling.post(url, json=page())
    result = c2b_pull.pull_bar(bar)
    assert offsets(pulling) == ["0", "2", "3"]
    assert (result.pages, result.seen, result.found) == (3, 3, 3)
    money = db.session.scalars(select(Payment).order_by(Payment.id)).all()
    assert [(p.receipt, p.amount, p.tab_id) for p in money] == [
        ("SLK1AB2CD3", 500, tab.id), ("SLK1AB2CD4", 300, None), ("SLK1AB2CD5", 1200, None),
    ]  # fmt: skip
    sources = db.session.scalars(select(C2BConfirmation.source)).all()
    assert sources == ["pull", "pull", "pull"]
    assert c2b_pull.registration_of(bar).window_end is not None


def test_a_known_receipt_is_skipped_and_a_later_real_confirmation_is_a_duplicate(
    pulling, bar, live
):
    url = f"{DARAJA}/pulltransactions/v1/query"
    for _ in range(2):
        pulling.post(url, json=page(item("SLK1AB2CD3")))
        pulling.post(url, json=page())
    assert c2b_pull.pull_bar(bar).found == 1
    again = c2b_pull.pull_bar(bar)  # the same transaction read again: known, not stored again
    assert (again.found, again.known) == (0, 1)
    secret = c2b.registration_for(bar).url_secret
    confirmation = {
        "TransactionType": "Pay Bill", "TransID": "SLK1AB2CD3", "TransTime": "20261207091500",
        "TransAmount": "300.00", "BusinessShortCode": SANDBOX_SHORTCODE, "BillRefNumber": "x",
        "MSISDN": "2547 ***** 149", "FirstName": "JANE",
    }  # fmt: skip
    pulling.add_passthru(live.url)
    requests.post(f"{live.url}/hooks/c2b/{secret}/confirmation", json=confirmation, timeout=5)
    db.session.expire_all()
    late = db.session.scalars(select(C2BConfirmation).where(C2BConfirmation.source == "callback"))
    assert [r.disposition for r in late] == ["duplicate"]
    assert db.session.scalar(select(func.count(Payment.id))) == 1


def test_an_error_midway_keeps_what_was_applied_and_does_not_move_the_window(pulling, bar):
    url = f"{DARAJA}/pulltransactions/v1/query"
    pulling.post(url, json=page(item("SLK1AB2CD3")))
    pulling.post(url, json={"ResponseCode": "1001", "ResponseMessage": "Busy, try later"})
    with pytest.raises(c2b_pull.PullError, match="Busy, try later"):
        c2b_pull.pull_bar(bar)
    registration = c2b_pull.registration_of(bar)
    assert registration.window_end is None and registration.last_error == "Busy, try later"
    assert db.session.scalar(select(Payment.receipt)) == "SLK1AB2CD3"


def test_the_job_pulls_every_registered_bar_and_records_its_run(pulling, bar):
    url = f"{DARAJA}/pulltransactions/v1/query"
    pulling.post(url, json=page(item("SLK1AB2CD3")))
    pulling.post(url, json=page())
    result = jobs.run("pull")
    assert result.found == 1
    assert db.session.get(JobStatus, "pull").last_items == 1
    assert c2b_pull.registration_of(bar).last_found == 1


def test_a_stuck_offset_stops_instead_of_looping(pulling, bar):
    url = f"{DARAJA}/pulltransactions/v1/query"
    pulling.post(url, json=page(item("SLK1AB2CD3")))  # served for every offset
    result = c2b_pull.pull_bar(bar)
    assert (result.pages, result.found) == (2, 1)


def test_a_pulled_amount_with_cents_is_kept_as_malformed(pulling, bar):
    url = f"{DARAJA}/pulltransactions/v1/query"
    pulling.post(url, json=page(item("SLK1AB2CD3", amount="12.50")))
    pulling.post(url, json=page())
    result = c2b_pull.pull_bar(bar)
    assert (result.found, result.other) == (0, 1)  # cents are not whole KES: kept as malformed
    assert db.session.scalar(select(C2BConfirmation.disposition)) == "malformed"


def test_a_pulled_record_whose_shortcode_is_another_bars_never_lands(pulling, bar, factory):
    other = factory.bar("Across the Road")
    factory.live_credentials(other, kind="till")  # a real bar, with its own numbers
    tab = factory.tab(other, "Their table")
    url = f"{DARAJA}/pulltransactions/v1/query"
    pulling.post(url, json=page(item("SLK1AB2CD3")))
    pulling.post(url, json=page())
    assert c2b_pull.pull_bar(bar).found == 1
    # A Pull record names no shortcode: it is stored with the one the bar asked Daraja about...
    (ours,) = db.session.scalars(select(C2BConfirmation)).all()
    assert json.loads(ours.raw_body)["BusinessShortCode"] == SANDBOX_SHORTCODE
    # ...and applied as a confirmation is: one that names another bar's number is kept, no money.
    paid_at = datetime.now(UTC) - timedelta(hours=1)
    for n, shortcode in enumerate((TILL_STORE_NUMBER, TILL_NUMBER)):
        pulled = PullTransaction(
            f"SLK1FRGN0{n}", paid_at, "2547 ***** 149", "c2b-pay-bill-debit", f"TAB{tab.id}", "300"
        )
        record, result = c2b_pull._store(bar, shortcode, pulled), c2b_pull.PullResult()
        c2b_pull._apply(record, result)
        assert (result.found, result.other) == (0, 1)
        record = db.session.get(C2BConfirmation, record.id)
        assert (record.bar_id, record.disposition) == (bar.id, "foreign_shortcode")
        assert record.payment_id is None
    assert db.session.scalars(select(Payment.receipt)).all() == ["SLK1AB2CD3"]
    assert c2b.unclaimed(other.id) == [] and c2b.unclaimed(bar.id) == [
        (db.session.scalar(select(Payment)), None)
    ]


# -- over real HTTP against the simulator ------------------------------------------------------


def pay(live, account: str, amount: int, command: str = "CustomerPayBillOnline") -> None:
    base = f"{live.url}/_daraja"
    token = requests.get(
        f"{base}/oauth/v1/generate?grant_type=client_credentials",
        auth=(SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET), timeout=5,
    ).json()["access_token"]  # fmt: skip
    answer = requests.post(
        f"{base}/mpesa/c2b/v1/simulate",
        json={"ShortCode": SANDBOX_SHORTCODE, "CommandID": command, "Amount": amount,
              "Msisdn": "254708374149", "BillRefNumber": account},
        headers={"Authorization": f"Bearer {token}"}, timeout=5,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_a_lost_confirmation_is_found_by_flask_c2b_pull(factory, bar, live, sim_state, runner):
    factory.live_credentials(bar)
    assert runner.invoke(args=["c2b", "register", "--bar", bar.slug]).exit_code == 0
    result = runner.invoke(
        args=["c2b", "pull-register", "--bar", bar.slug, "--nominated", "0722000111"]
    )
    assert result.exit_code == 0, result.output
    sim_state.set_faults(callback_lost=True, c2b_msisdn="hashed")
    pay(live, "lost one", 450)
    time.sleep(0.2)
    assert db.session.scalar(select(func.count(Payment.id))) == 0
    result = runner.invoke(args=["c2b", "pull", "--bar", bar.slug, "--hours", "1"])
    assert result.exit_code == 0, result.output
    assert "1 found by pull" in result.output
    payment = db.session.scalar(select(Payment))
    assert (payment.amount, payment.tab_id, payment.phone) == (450, None, "")  # hashed: no phone
    assert [p.id for p, _name in c2b.unclaimed(bar.id)] == [payment.id]


def test_pull_refuses_a_bar_not_registered(factory, bar, runner):
    factory.live_credentials(bar)
    result = runner.invoke(args=["c2b", "pull", "--bar", bar.slug])
    assert result.exit_code != 0 and "Register the bar for Pull Transactions first" in result.output


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owner_and_manager_register_from_the_settings_page(app, factory, bar, live, role):
    factory.live_credentials(bar)
    person = factory.user(bar, role=role)
    desk = login_as(app, person)
    page_ = desk.post(
        "/settings/mpesa/c2b/pull", data={"nominated_number": "0722 000 111"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "PesaTab now asks M-Pesa for menu payments whose message was lost." in page_
    assert c2b_pull.registration_of(bar).nominated_number == NOMINATED
    assert 'id="c2b-pull-state"><strong>Registered' in page_


def test_a_wrong_nominated_number_is_said_in_a_sentence(app, factory, bar, owner, live):
    factory.live_credentials(bar)
    desk = login_as(app, owner)
    page_ = desk.post(
        "/settings/mpesa/c2b/pull", data={"nominated_number": "12"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "The nominated number must be a Safaricom number" in page_
    assert c2b_pull.registration_of(bar) is None


def test_a_pull_notice_is_kept_and_acknowledged_but_never_money(factory, bar, client):
    secret = c2b.registration_for(bar).url_secret
    answer = client.post(f"/hooks/c2b/{secret}/pull", json={"ResponseCode": "1000"}, csrf=False)
    assert answer.status_code == 200 and answer.get_json()["ResultCode"] == 0
    kept = db.session.scalar(select(C2BConfirmation))
    assert (kept.source, kept.disposition, kept.payment_id) == ("pull", "pull_notice", None)


def test_as_confirmation_keeps_a_till_payment_off_any_tab():
    till = PullTransaction(
        "SLK1AB2CD3", datetime(2026, 12, 7, 6, 15, tzinfo=UTC), "2547 ***** 149",
        "c2b-buy-goods-debit", "TAB4", "300.00",
    )  # fmt: skip
    body = c2b_pull.as_confirmation("174380", till)
    assert (body["TransactionType"], body["BillRefNumber"], body["TransTime"]) == (
        "Buy Goods", "", "20261207091500",
    )  # fmt: skip


def test_the_url_secret_never_shows_in_the_simulators_record_over_http(
    factory, bar, live, runner, test_config
):
    factory.live_credentials(bar)
    assert runner.invoke(args=["c2b", "register", "--bar", bar.slug]).exit_code == 0
    result = runner.invoke(
        args=["c2b", "pull-register", "--bar", bar.slug, "--nominated", NOMINATED]
    )
    assert result.exit_code == 0, result.output
    record = requests.get(
        f"{live.url}/_daraja/_control/record",
        headers={"X-Simulator-Secret": test_config["DARAJA_SIM_SECRET"]}, timeout=5,
    )  # fmt: skip
    assert record.status_code == 200 and "/pulltransactions/v1/register" in record.text
    assert c2b.registration_for(bar).url_secret not in record.text


def test_a_short_manual_pull_after_a_gap_does_not_make_the_job_skip_the_gap(pulling, bar):
    url = f"{DARAJA}/pulltransactions/v1/query"
    pulling.post(url, json=page())
    registration = c2b_pull.registration_of(bar)
    registration.window_end = gap_start = utcnow() - timedelta(hours=5)
    db.session.commit()
    c2b_pull.pull_bar(bar, hours=1)
    assert c2b_pull.registration_of(bar).window_end == gap_start
    c2b_pull.pull_bar(bar)  # the job's own window starts before the gap: now it moves
    assert c2b_pull.registration_of(bar).window_end > gap_start


def test_an_error_applying_keeps_the_record_and_the_next_run_applies_it(pulling, bar, monkeypatch):
    url = f"{DARAJA}/pulltransactions/v1/query"
    for _ in range(2):
        pulling.post(url, json=page(item("SLK1AB2CD3")))
        pulling.post(url, json=page())
    real_apply = c2b.apply

    def broken(record):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(c2b, "apply", broken)
    first = c2b_pull.pull_bar(bar)
    assert (first.found, first.kept_pending) == (0, 1)
    assert c2b_pull.registration_of(bar).window_end is None
    monkeypatch.setattr(c2b, "apply", real_apply)
    second = c2b_pull.pull_bar(bar)
    assert (second.found, second.kept_pending) == (1, 0)
    assert db.session.scalar(select(func.count(C2BConfirmation.id))) == 1  # the same record
    assert db.session.scalar(select(Payment.receipt)) == "SLK1AB2CD3"


def test_the_url_secret_is_masked_in_log_lines_and_the_access_log(monkeypatch, tmp_path):
    import importlib.util
    from pathlib import Path

    from app.redaction import redact

    secret = "Zx9" * 11
    assert secret not in redact(f'"POST /hooks/c2b/{secret}/pull HTTP/1.1" 200')
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # else the conf makes one
    path = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf_for_test", path)
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert conf.mask_path(f"/hooks/c2b/{secret}/pull") == "/hooks/c2b/***/pull"
