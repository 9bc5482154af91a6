"""The CSV exports under the server `make run` uses: Werkzeug's threaded dev server, over HTTP.

`make run` serves with `flask run --no-reload --with-threads`. There the export's audit commit
expired the signed-in person, and the log filter then read that ORM object while the CSV
streamed: DetachedInstanceError, and the download never finished. These tests download the
exports over real HTTP from `werkzeug.serving.make_server(..., threaded=True)` on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading

import pytest
import requests
from flask import g
from flask_login import login_user
from werkzeug.serving import make_server

from app.api import keys
from app.extensions import db
from app.payments import csv_export, listing
from app.web import security

TIMEOUT = 10
log = logging.getLogger("app.test_export_live")


class Served:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture
def served(app):
    """The app on Werkzeug's threaded server with its own request handler (and so its access
    log line, written while the response streams), as `flask run --with-threads` serves it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="export-live-server",
        daemon=True,
    )
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def logs_at_info():
    """The request lines and the app's own logs are written (make run logs at info)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(level)


def sign_in(served, user, password) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{served.url}/login", timeout=TIMEOUT)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
    token = token or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', form.text)
    assert token, form.text
    answer = session.post(
        f"{served.url}/login",
        data={"email": user.email, "password": password, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 302, answer.text
    return session


def download(session: requests.Session, url: str) -> requests.Response:
    """The whole body, read to the end (a stream that breaks midway raises here)."""
    response = session.get(url, stream=True, timeout=TIMEOUT)
    response._content = b"".join(response.iter_content(chunk_size=None))
    return response


@pytest.fixture
def payments(factory, bar, outsider):
    tab = factory.tab(bar, "Table 7")
    ours = [
        factory.payment(bar, status="paid", amount=100 + n, receipt=f"RCP{n:07d}", tab=tab)
        for n in range(5)
    ]
    factory.payment(outsider.bar, status="paid", amount=999, receipt="OTHER00001")
    return ours


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_the_payments_csv_downloads_in_full_under_the_threaded_server(
    served, factory, bar, payments, role, monkeypatch, logs_at_info, caplog
):
    monkeypatch.setattr(csv_export, "EXPORT_BATCH_SIZE", 2)  # several batches, several commits
    person = factory.user(bar, role)
    session = sign_in(served, person, factory.PASSWORD)
    with caplog.at_level(logging.INFO):
        response = download(session, f"{served.url}/payments/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["id"]) for r in rows] == sorted((p.id for p in payments), reverse=True)
    assert {r["tab_label"] for r in rows} == {"Table 7"}
    assert "OTHER00001" not in response.text  # another bar's payment never leaks in
    assert not [r for r in caplog.records if r.exc_info or r.exc_text], caplog.text
    assert "DetachedInstanceError" not in caplog.text
    # The log lines of the export request still name the bar.
    exported = [r for r in caplog.records if "export.csv" in r.getMessage()]
    assert exported and {(r.bar_id, r.user_id) for r in exported} == {(bar.id, person.id)}, (
        caplog.text
    )


def test_the_owner_gets_full_phone_numbers_under_the_threaded_server(
    served, factory, bar, owner, payments
):
    session = sign_in(served, owner, factory.PASSWORD)
    response = download(session, f"{served.url}/payments/export.csv?phones=full")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(payments) and {r["phone"] for r in rows} == {"254708374149"}


def test_a_cashier_is_refused_the_payments_csv_under_the_threaded_server(
    served, factory, bar, cashier, payments
):
    session = sign_in(served, cashier, factory.PASSWORD)
    response = download(session, f"{served.url}/payments/export.csv")
    assert response.status_code == 403
    assert "RCP" not in response.text


# -- the mechanism, without a server -------------------------------------------------------------


def _signed_in_now(user):
    login_user(user)  # what POST /login does


def _from_the_session_cookie(user):
    g._login_user = security.load_user(f"{user.id}:{user.session_version}")  # what flask-login does


@pytest.mark.parametrize("sign_in_way", [_signed_in_now, _from_the_session_cookie])
def test_a_log_record_after_the_user_is_expired_and_detached_keeps_its_ids(
    app, owner, caplog, sign_in_way
):
    user_id, bar_id = owner.id, owner.bar_id
    with app.test_request_context("/payments/export.csv"):
        app.preprocess_request()
        sign_in_way(owner)
        db.session.commit()  # the audit commit: every loaded object expired
        db.session.remove()  # the request's session gone, as when a streamed response runs
        with caplog.at_level(logging.INFO):
            log.info("streaming")  # raised DetachedInstanceError from the log filter
    (record,) = [r for r in caplog.records if r.getMessage() == "streaming"]
    assert (record.bar_id, record.user_id) == (bar_id, user_id)
    assert record.request_id


def test_the_csv_chunks_read_the_bar_before_the_stream_starts(app, bar, payments):
    ids = sorted(p.id for p in payments)
    chunks = csv_export.csv_chunks(bar, listing.Filters(), full_phones=False)
    db.session.commit()
    db.session.remove()  # `bar` expired and detached, as it is once the response streams
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert sorted(int(r["id"]) for r in rows) == ids


def test_an_api_request_logs_its_bar_after_the_key_is_expired_and_detached(app, bar, caplog):
    secret, bar_id = keys.create_key(bar, "Till 1 POS").secret, bar.id
    headers = {"Authorization": f"Bearer {secret}"}
    with app.test_request_context("/api/v1/payments", headers=headers):
        app.preprocess_request()  # authenticates the key (and commits its time of use)
        db.session.remove()
        with caplog.at_level(logging.INFO):
            log.info("answering")  # read the key's bar through the removed session
    (record,) = [r for r in caplog.records if r.getMessage() == "answering"]
    assert (record.bar_id, record.user_id) == (bar_id, None)
