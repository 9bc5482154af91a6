"""Results of initiator requests at /hooks/result/<secret> and /hooks/timeout/<secret>, over
real HTTP: stored first, applied exactly once, an unknown secret stored and ignored, and never a
5xx whatever arrives."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import InitiatorRequest, InitiatorResult
from tests.test_verify import answered, ask, counter, save_initiator, verifying  # noqa: F401

ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}


def post(live, path: str, body: str | bytes) -> requests.Response:
    return requests.post(
        f"{live.url}{path}", data=body, headers={"Content-Type": "application/json"}, timeout=5
    )


def result_body(request: InitiatorRequest, code=0, params=None, **ids) -> str:
    result = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": "forged or replayed",
        "OriginatorConversationID": ids.get("originator", request.originator_conversation_id),
        "ConversationID": ids.get("conversation", request.conversation_id),
        "TransactionID": "SIMRESULT1",
    }
    if params is not None:
        items = [{"Key": k, "Value": v} for k, v in params.items()]
        result["ResultParameters"] = {"ResultParameter": items}
    return json.dumps({"Result": result})


@pytest.fixture
def genuine(verifying, counter, live, sim_state):  # noqa: F811
    """A code M-Pesa confirmed as this bar's money (its menu notice was lost)."""
    from tests.test_verify import menu_payment

    sim_state.set_faults(callback_lost=True)
    menu_payment(live, sim_state, "walk in", 200)
    ask(counter, sim_state.events("c2b_payment")[-1]["receipt"])
    answered(counter)
    return db.session.scalars(select(InitiatorRequest)).one()


@pytest.fixture
def waiting(verifying, counter, sim_state):  # noqa: F811
    """A request Daraja accepted whose result has not come (the simulator never sends it)."""
    sim_state.set_faults(callback_delay=60)
    ask(counter, "QZZ9ZZZ9ZZ")
    request = db.session.scalars(select(InitiatorRequest)).one()
    assert request.state == "waiting" and request.conversation_id
    return request


def dispositions() -> list[str]:
    db.session.expire_all()
    return [r.disposition for r in db.session.scalars(select(InitiatorResult).order_by("id"))]


def test_a_replayed_result_changes_nothing(genuine, live):
    before = (genuine.outcome, genuine.answered_at, dict(genuine.parameters))
    again = post(live, f"/hooks/result/{genuine.url_secret}", result_body(genuine, 0, before[2]))
    assert again.status_code == 200 and again.json() == ACK
    forged = post(live, f"/hooks/result/{genuine.url_secret}", result_body(genuine, "R000001"))
    assert forged.status_code == 200
    assert dispositions() == ["applied", "duplicate", "duplicate"]
    db.session.expire_all()
    request = db.session.get(InitiatorRequest, genuine.id)
    assert (request.outcome, request.answered_at, request.parameters) == before
    assert request.outcome == "genuine"


def test_a_timeout_after_the_answer_changes_nothing(genuine, live):
    post(live, f"/hooks/timeout/{genuine.url_secret}", "{}")
    assert dispositions() == ["applied", "duplicate"]
    db.session.expire_all()
    assert db.session.get(InitiatorRequest, genuine.id).state == "answered"


def test_an_unknown_secret_is_stored_and_ignored(waiting, live):
    for path in ("/hooks/result/0123456789abcdef", "/hooks/timeout/nobody"):
        answer = post(live, path, result_body(waiting, "R000001"))
        assert answer.status_code == 200 and answer.json() == ACK
    records = db.session.scalars(select(InitiatorResult)).all()
    assert [(r.request_id, r.disposition) for r in records] == [(None, "unknown_url")] * 2
    assert "R000001" in records[0].raw_body  # kept as it arrived
    db.session.expire_all()
    assert db.session.get(InitiatorRequest, waiting.id).state == "waiting"


def test_another_conversations_result_or_another_receipts_is_not_applied(waiting, live):
    path = f"/hooks/result/{waiting.url_secret}"
    post(live, path, result_body(waiting, "R000001", conversation="AG_SOMEONE_ELSE"))
    params = {"ReceiptNo": "QAA1AAA1AA", "TransactionStatus": "Completed", "Amount": 10}
    post(live, path, result_body(waiting, 0, params))
    assert dispositions() == ["mismatch", "mismatch"]
    db.session.expire_all()
    assert db.session.get(InitiatorRequest, waiting.id).state == "waiting"
    post(live, path, result_body(waiting, "R000001"))  # the real answer still applies
    db.session.expire_all()
    assert db.session.get(InitiatorRequest, waiting.id).outcome == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"Result": 1}',
        b'{"Result": {"ResultCode": null}}',
        b'{"Result": {"ResultCode": 0, "ResultParameters": {"ResultParameter": 7}}}',
        b'{"Result": {"ResultCode": 0, "ResultParameters": {"ResultParameter": [1, {"Key": 2}]}}}',
        b'{"Result": {"ResultCode": {"x": 1}}}',
        pytest.param(b'{"Result": ' + b"[" * 3000 + b"]" * 3000 + b"}", id="nested-too-deep"),
    ],
)
def test_malformed_bodies_are_kept_and_acknowledged_never_a_5xx(waiting, live, body):
    answer = post(live, f"/hooks/result/{waiting.url_secret}", body)
    assert answer.status_code == 200 and answer.json() == ACK
    [record] = db.session.scalars(select(InitiatorResult)).all()
    assert record.request_id == waiting.id
    assert record.disposition in ("malformed", "applied", "mismatch")
    db.session.expire_all()
    request = db.session.get(InitiatorRequest, waiting.id)
    if record.disposition == "applied":  # a completed answer with no parameters: not ours
        assert request.outcome in ("not_completed", "other_business")
    else:
        assert request.state == "waiting"


def test_an_oversized_result_is_kept_truncated_and_not_applied(app, waiting, live):
    limit = app.config["CALLBACK_MAX_BYTES"]
    answer = post(live, f"/hooks/result/{waiting.url_secret}", b"{" + b" " * (limit + 10))
    assert answer.status_code == 200
    [record] = db.session.scalars(select(InitiatorResult)).all()
    assert record.disposition == "too_large" and len(record.raw_body) == limit
    db.session.expire_all()
    assert db.session.get(InitiatorRequest, waiting.id).state == "waiting"


def test_a_request_unanswered_too_long_stops_polling(app, waiting, counter):  # noqa: F811
    from datetime import timedelta

    waiting.created_at -= timedelta(minutes=5)
    db.session.commit()
    page = counter.get(f"/verify/{waiting.id}", headers={"HX-Request": "true"})
    text = page.get_data(as_text=True)
    assert "M-Pesa did not answer in time." in text and "hx-trigger" not in text
