"""The point-of-sale API (/api/v1), end to end against the mounted simulator.

Every answer the tests get is checked against the OpenAPI document the app serves, so the
document and the behaviour cannot drift apart.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select

from app.api import keys
from app.extensions import db
from app.models import ApiKey, Bar, Payment, SystemSetting, utcnow
from app.mpesa.phone import TOO_SHORT
from app.ops.system import PUSHES_DISABLED
from app.settings import vault
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests.conftest import Client

PAYS, CANCELS = "0708374149", "0711001032"
BODY = {"phone": PAYS, "amount": 450, "reference": "INV2041", "description": "Table 4"}
DOC_URI = "urn:pesatab:openapi"


# Helpers --------------------------------------------------------------------------------------


def make_live(bar: Bar) -> None:
    """Give `bar` the simulator's credentials and put it live, as onboarding would."""
    vault.save(
        bar,
        vault.CredentialInput(
            environment="sandbox",
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=SIM_CONSUMER_SECRET,
            passkey=SANDBOX_PASSKEY,
        ),
    )
    bar.setup_state = "live"
    db.session.commit()


def pushes(sim_state) -> list[dict]:
    return [e["body"] for e in sim_state.events("request") if e["path"].endswith("processrequest")]


def fresh(model, object_id: int):
    db.session.expire_all()
    return db.session.get(model, object_id)


def payment_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Payment.id)))


class Api:
    """Calls /api/v1 with a bar's key; checks each answer against the served OpenAPI document."""

    def __init__(self, client: Client, doc: dict, secret: str | None):
        self.client, self.doc, self.secret = client, doc, secret

    def call(self, method: str, path: str, *, key: str | None = "default", headers=None, **kwargs):
        headers = dict(headers or {})
        key = self.secret if key == "default" else key
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        response = self.client.open(
            f"/api/v1{path}", method=method, headers=headers, csrf=False, **kwargs
        )
        check_against_openapi(self.doc, method, path, response.status_code, response.get_json())
        return response

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs):
        if body is not None:
            kwargs["json"] = body
        return self.call("POST", path, **kwargs)


def check_against_openapi(doc: dict, method: str, path: str, status: int, body) -> None:
    """The answer's status is documented for the operation and its body fits the schema."""
    template = re.sub(r"^/payments/\d+", "/payments/{payment_id}", path.split("?")[0])
    operation = doc["paths"][template][method.lower()]
    assert str(status) in operation["responses"], f"{method} {template}: {status} is not documented"
    # Point into the document so the schema's own $refs resolve against it.
    steps = [
        "paths",
        template,
        method.lower(),
        "responses",
        str(status),
        "content",
        "application/json",
        "schema",
    ]
    pointer = "/".join(step.replace("~", "~0").replace("/", "~1") for step in steps)
    registry = Registry().with_resource(
        DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    Draft202012Validator({"$ref": f"{DOC_URI}#/{pointer}"}, registry=registry).validate(body)


@pytest.fixture
def doc(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


@pytest.fixture
def secret(bar) -> str:
    return keys.create_key(bar, "Till 1 POS").secret


@pytest.fixture
def api(client, doc, secret) -> Api:
    return Api(client, doc, secret)


@pytest.fixture
def live_bar(bar, live):
    make_live(bar)
    return bar


# Keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "pt_live_x"]
)
def test_it_answers_401_without_a_bearer_key(api, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = api.get("/payments", key=None, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == {"code": "unauthorized", "message": keys.MISSING}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_it_answers_401_to_a_wrong_key(api, secret):
    for wrong in (secret[:-1], secret + "x", "pt_live_" + "A" * 43):
        response = api.post("/payments", BODY, key=wrong)
        assert response.status_code == 401
        assert response.get_json()["error"]["message"] == keys.WRONG
    assert payment_count() == 0


def test_it_answers_401_to_a_revoked_key(api, secret):
    key = db.session.scalar(select(ApiKey))
    keys.revoke_key(key)
    response = api.get("/payments")
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == keys.REVOKED


def test_using_a_key_notes_when_it_was_last_used(api):
    key = db.session.scalar(select(ApiKey))
    assert key.last_used_at is None
    assert api.get("/payments").status_code == 200
    used = fresh(ApiKey, key.id).last_used_at
    assert used is not None and utcnow() - used < timedelta(seconds=5)


def test_the_bearer_scheme_is_case_insensitive(api, secret):
    assert (
        api.get("/payments", key=None, headers={"Authorization": f"bearer {secret}"}).status_code
        == 200
    )


# Creating payments ----------------------------------------------------------------------------


def test_it_sends_a_push_and_the_callback_settles_it(api, live_bar, sim_state):
    response = api.post("/payments", BODY)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["status"] in ("sent", "paid")
    assert (created["amount"], created["phone"], created["reference"], created["description"]) == (
        450,
        "254708374149",
        "INV2041",
        "Table 4",
    )
    assert created["created_at"].endswith("Z") and created["tab_id"] is None
    sent = pushes(sim_state)
    assert len(sent) == 1
    assert (
        sent[0]["PhoneNumber"],
        sent[0]["Amount"],
        sent[0]["AccountReference"],
        sent[0]["TransactionDesc"],
    ) == ("254708374149", 450, "INV2041", "Table 4")
    assert sim_state.wait_for_callbacks(1, timeout=10)
    paid = api.get(f"/payments/{created['id']}").get_json()
    assert paid["status"] == "paid" and paid["result_code"] == "0"
    assert re.fullmatch(r"[A-Z0-9]{10}", paid["receipt"])
    assert paid["settled_at"].endswith("Z") and paid["flagged"] is False
    row = fresh(Payment, created["id"])
    assert (row.purpose, row.api_key_id, row.initiated_by_id) == (
        "api",
        db.session.scalar(select(ApiKey.id)),
        None,
    )


def test_a_cancelled_push_says_so(api, live_bar, sim_state):
    created = api.post("/payments", {**BODY, "phone": CANCELS}).get_json()
    assert sim_state.wait_for_callbacks(1, timeout=10)
    cancelled = api.get(f"/payments/{created['id']}").get_json()
    assert cancelled["status"] == "cancelled" and cancelled["receipt"] is None
    assert cancelled["result_code"] == "1032" and cancelled["message"] == "The customer cancelled."


def test_the_description_defaults(api, live_bar, sim_state):
    body = {k: v for k, v in BODY.items() if k != "description"}
    assert api.post("/payments", body).get_json()["description"] == "POS payment"
    assert pushes(sim_state)[0]["TransactionDesc"] == "POS payment"


def test_the_api_needs_no_csrf_token(app, client, doc, secret, live_bar):
    assert app.config.get("WTF_CSRF_ENABLED", True)
    response = Api(client, doc, secret).post("/payments", BODY)  # sent with csrf=False
    assert response.status_code == 201


# Idempotency ----------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_return_the_same_payment(api, live_bar, sim_state):
    headers = {"Idempotency-Key": "4f1c2a9e-pos-0001"}
    first = api.post("/payments", BODY, headers=headers)
    # The same request, normalised: another spelling of the phone is the same payment.
    again = api.post("/payments", {**BODY, "phone": "+254 708 374 149"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(pushes(sim_state)) == 1 and payment_count() == 1
    row = fresh(Payment, first.get_json()["id"])
    assert row.idempotency_key == "4f1c2a9e-pos-0001" and len(row.idempotency_fingerprint) == 64


def test_the_same_idempotency_key_with_another_body_is_a_conflict(api, live_bar, sim_state):
    headers = {"Idempotency-Key": "order-77"}
    first = api.post("/payments", BODY, headers=headers).get_json()
    response = api.post("/payments", {**BODY, "amount": 451}, headers=headers)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "idempotency_key_reused" and error["payment_id"] == first["id"]
    assert len(pushes(sim_state)) == 1 and payment_count() == 1


def test_an_idempotency_key_replays_even_after_the_payment_settled(api, live_bar, sim_state):
    headers = {"Idempotency-Key": "order-78"}
    first = api.post("/payments", BODY, headers=headers).get_json()
    assert sim_state.wait_for_callbacks(1, timeout=10)
    again = api.post("/payments", BODY, headers=headers)
    assert again.status_code == 200 and again.get_json()["status"] == "paid"
    assert again.get_json()["id"] == first["id"] and len(pushes(sim_state)) == 1


def test_two_concurrent_requests_with_one_key_make_one_payment_and_one_push(
    api, live_bar, live, secret, sim_state
):
    sim_state.set_faults(push_delay=0.2)  # Daraja is slow to answer: the race stays open longer
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "race-1"}
    start, answers = threading.Barrier(4), []

    def send():
        start.wait()
        answers.append(
            requests.post(f"{live.url}/api/v1/payments", json=BODY, headers=headers, timeout=20)
        )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for answer in answers:
        check_against_openapi(api.doc, "POST", "/payments", answer.status_code, answer.json())
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert payment_count() == 1 and len(pushes(sim_state)) == 1


def test_two_keys_of_one_bar_racing_with_one_idempotency_key_make_one_push(
    api, bar, live_bar, live, secret, sim_state
):
    # Keys are scoped to the bar, so the database's unique index settles who made it.
    other = keys.create_key(bar, "Till 2 POS").secret
    bodies = [(secret, BODY), (other, {**BODY, "phone": "0708374150"})]
    start, answers = threading.Barrier(2), []

    def send(key: str, body: dict):
        start.wait()
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "race-2"}
        answers.append(
            requests.post(f"{live.url}/api/v1/payments", json=body, headers=headers, timeout=20)
        )

    threads = [threading.Thread(target=send, args=pair) for pair in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for answer in answers:
        check_against_openapi(api.doc, "POST", "/payments", answer.status_code, answer.json())
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert payment_count() == 1 and len(pushes(sim_state)) == 1


def test_a_second_push_to_a_waiting_phone_is_refused_with_the_waiting_payment(
    api, live_bar, sim_state
):
    sim_state.set_faults(callback_lost=True)  # the first prompt stays unanswered
    first = api.post("/payments", BODY, headers={"Idempotency-Key": "a"}).get_json()
    for headers in ({"Idempotency-Key": "b"}, {}):
        response = api.post("/payments", {**BODY, "reference": "INV2042"}, headers=headers)
        assert response.status_code == 409
        error = response.get_json()["error"]
        assert (error["code"], error["payment_id"]) == ("push_in_flight", first["id"])
    assert len(pushes(sim_state)) == 1 and payment_count() == 1


def test_without_an_idempotency_key_each_request_is_a_new_payment(api, live_bar, sim_state):
    first = api.post("/payments", BODY)
    assert sim_state.wait_for_callbacks(1, timeout=10)
    second = api.post("/payments", BODY)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["id"] != second.get_json()["id"] and len(pushes(sim_state)) == 2


@pytest.mark.parametrize("value", ["has space", "x" * 101, "naïve", ""])
def test_a_malformed_idempotency_key_is_refused(api, live_bar, value):
    response = api.post("/payments", BODY, headers={"Idempotency-Key": value})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "Idempotency-Key"
    assert payment_count() == 0


# Validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "sentence"),
    [
        ({"phone": "07123"}, "phone", TOO_SHORT),
        ({"phone": "0712 abc 678"}, "phone", "A phone number has only digits"),
        ({"phone": "+44 7911 123456"}, "phone", "Only Kenyan mobile numbers"),
        ({"phone": 712345678}, "phone", "phone must be a string"),
        ({"phone": None}, "phone", "phone is required."),
        ({"amount": 0}, "amount", "amount must be from 1 to 250,000"),
        ({"amount": -5}, "amount", "amount must be from 1 to 250,000"),
        ({"amount": 250_001}, "amount", "amount must be from 1 to 250,000"),
        ({"amount": 10**30}, "amount", "amount must be from 1 to 250,000"),
        ({"amount": 1.5}, "amount", "amount must be a JSON integer"),
        ({"amount": 450.0}, "amount", "amount must be a JSON integer"),
        ({"amount": "100"}, "amount", "amount must be a JSON integer"),
        ({"amount": True}, "amount", "amount must be a JSON integer"),
        ({"amount": [450]}, "amount", "amount must be a JSON integer"),
        ({"reference": "INV204112345"}, "reference", None),  # 12 characters is fine
        (
            {"reference": "INV2041123456"},
            "reference",
            "reference must be 1 to 12 letters or digits",
        ),
        ({"reference": "INV-2041"}, "reference", "reference must be 1 to 12 letters or digits"),
        ({"reference": ""}, "reference", "reference must be 1 to 12 letters or digits"),
        ({"reference": 2041}, "reference", "reference must be 1 to 12 letters or digits"),
        (
            {"description": ""},
            "description",
            "description must be 1 to 13 characters of plain ASCII text.",
        ),
        (
            {"description": "Fourteen chars"},
            "description",
            "description must be 1 to 13 characters of plain ASCII text.",
        ),
        (
            {"description": "tab\x00"},
            "description",
            "description must be 1 to 13 characters of plain ASCII text.",
        ),
        (
            {"description": 7},
            "description",
            "description must be 1 to 13 characters of plain ASCII text.",
        ),
        (
            {"description": "Café"},
            "description",
            "description must be 1 to 13 characters of plain ASCII text.",
        ),
        ({"tab_id": "3"}, "tab_id", "tab_id must be the id of an open tab"),
        ({"tab_id": True}, "tab_id", "tab_id must be the id of an open tab"),
        ({"tab_id": 0}, "tab_id", "tab_id must be the id of an open tab"),
        ({"tab_id": 2**40}, "tab_id", "tab_id must be the id of an open tab"),
        ({"ammount": 450}, "ammount", "Unknown field “ammount”"),
    ],
)
def test_bad_fields_are_named_with_a_sentence(api, live_bar, sim_state, change, field, sentence):
    response = api.post("/payments", {**BODY, **change})
    if sentence is None:
        assert response.status_code == 201
        return
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", field)
    assert sentence in error["message"]
    assert payment_count() == 0 and pushes(sim_state) == []


@pytest.mark.parametrize("missing", ["phone", "amount", "reference"])
def test_missing_fields_are_named(api, missing):
    response = api.post("/payments", {k: v for k, v in BODY.items() if k != missing})
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "validation_error",
        "field": missing,
        "message": f"{missing} is required.",
    }


def test_the_largest_amount_follows_the_configuration(app, api, live_bar):
    app.config["MPESA_MAX_AMOUNT"] = 1000
    response = api.post("/payments", {**BODY, "amount": 1001})
    assert (
        response.status_code == 422 and "from 1 to 1,000" in response.get_json()["error"]["message"]
    )
    assert (
        api.doc["components"]["schemas"]["PaymentCreate"]["properties"]["amount"]["maximum"]
        == 250_000
    )
    served = api.client.get("/api/v1/openapi.json").get_json()
    assert (
        served["components"]["schemas"]["PaymentCreate"]["properties"]["amount"]["maximum"] == 1000
    )


@pytest.mark.parametrize("body", [[], "pay", 450, None, [BODY]])
def test_a_body_that_is_not_an_object_is_refused(api, body):
    response = api.post("/payments", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_body"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("phone=0708374149&amount=450&reference=INV1", "application/x-www-form-urlencoded"),
        (json.dumps(BODY), "text/plain"),
        (json.dumps(BODY), None),
    ],
)
def test_a_body_that_is_not_json_gets_415(api, data, content_type):
    response = api.post("/payments", data=data, content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "data",
    [
        b'{"phone": "0708374149", "amount": 450,',
        b"{'phone': '0708374149'}",
        b"",
        b"\xff\xfe\x00garbage",
        b"[" * 5000 + b"]" * 5000,
        b'{"amount": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_json_gets_400(api, data):
    response = api.post("/payments", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def test_a_body_over_16_kib_gets_413(api):
    body = {**BODY, "description": "x" * 20_000}
    response = api.post("/payments", body)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    "data",
    [
        b'{"phone": {"a": 1}, "amount": 1, "reference": "A"}',
        b'{"phone": "0708374149", "amount": NaN, "reference": "A"}',
        b'{"phone": "0708374149", "amount": 1e400, "reference": "A"}',
        b'{"phone": "\\ud800", "amount": 1, "reference": "A"}',
        b'{"phone": "' + b"7" * 300 + b'", "amount": 1, "reference": "A"}',
        (
            b'{"phone": "0708374149", "amount": 1, "reference": "A", '
            b'"description": "\xf0\x9f\x8d\xba\xf0\x9f\x8d\xba"}'
        ),
        b'{"phone": "0708374149", "amount": 1, "reference": "\\u0661\\u0662"}',
        b'{"phone": "0708374149", "amount": 1, "reference": "A", "tab_id": -1}',
    ],
)
def test_odd_input_is_refused_without_a_500(api, live_bar, sim_state, data):
    response = api.post("/payments", data=data, content_type="application/json")
    assert response.status_code == 422
    assert pushes(sim_state) == []


# Tabs -----------------------------------------------------------------------------------------


def test_a_push_for_a_tab_is_counted_on_it(api, factory, live_bar, sim_state):
    tab = factory.tab(live_bar, lines=(("Tusker", 2, 250),))
    response = api.post("/payments", {**BODY, "amount": 500, "tab_id": tab.id})
    assert response.status_code == 201 and response.get_json()["tab_id"] == tab.id
    assert sim_state.wait_for_callbacks(1, timeout=10)
    assert api.get(f"/payments/{response.get_json()['id']}").get_json()["status"] == "paid"
    again = api.post("/payments", {**BODY, "amount": 1, "tab_id": tab.id})
    assert (
        again.status_code == 422
        and again.get_json()["error"]["message"] == f"Nothing is owed on tab {tab.id}."
    )


def test_a_tab_amount_above_what_is_left_is_refused(api, factory, live_bar, sim_state):
    tab = factory.tab(live_bar, lines=(("Tusker", 2, 250),))
    response = api.post("/payments", {**BODY, "amount": 501, "tab_id": tab.id})
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "validation_error",
        "field": "amount",
        "message": f"Only KES 500 is left to ask for on tab {tab.id}.",
    }
    assert pushes(sim_state) == []


def test_another_bars_tab_or_a_missing_tab_is_404(api, factory, live_bar, outsider):
    theirs = factory.tab(db.session.get(Bar, outsider.bar_id), lines=(("Tusker", 2, 250),))
    for tab_id in (theirs.id, theirs.id + 1000):
        response = api.post("/payments", {**BODY, "amount": 100, "tab_id": tab_id})
        assert response.status_code == 404
        assert response.get_json()["error"]["field"] == "tab_id"
    assert payment_count() == 0


def test_a_closed_tab_is_refused(api, factory, live_bar):
    tab = factory.tab(live_bar, lines=(("Tusker", 2, 250),), status="settled")
    response = api.post("/payments", {**BODY, "amount": 100, "tab_id": tab.id})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "tab_id"


# Bars that cannot push ------------------------------------------------------------------------


def test_a_bar_not_yet_live_gets_409(api, bar, live):
    response = api.post("/payments", BODY)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "not_live"
    assert payment_count() == 0


def test_a_bar_with_mpesa_switched_off_gets_409(api, live_bar):
    live_bar.mpesa_enabled = False
    db.session.commit()
    response = api.post("/payments", BODY)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "bar_disabled"


def test_pushes_paused_by_operators_get_503(api, live_bar):
    db.session.add(SystemSetting(key=PUSHES_DISABLED, value="1"))
    db.session.commit()
    response = api.post("/payments", BODY)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "globally_disabled"
    assert payment_count() == 0


def test_a_push_daraja_refuses_is_created_as_rejected(api, live_bar, sim_state):
    sim_state.set_faults(spike_arrest_calls=10)
    response = api.post("/payments", BODY)
    assert response.status_code == 201
    payment = response.get_json()
    assert (payment["status"], payment["message"]) == (
        "rejected",
        "M-Pesa is busy; try again in a few seconds.",
    )
    assert payment["settled_at"] is not None


# Reading payments -----------------------------------------------------------------------------


def test_reading_one_payment(api, factory, bar):
    payment = factory.payment(
        bar,
        status="paid",
        receipt="SAB1C2D3E4",
        result_code="0",
        settled_at=datetime(2024, 5, 1, 15, 0, 7, 123456),
    )
    body = api.get(f"/payments/{payment.id}").get_json()
    assert body["settled_at"] == "2024-05-01T15:00:07Z"
    assert (body["status"], body["receipt"], body["message"]) == ("paid", "SAB1C2D3E4", "Paid.")


def test_another_bars_payment_is_404(api, factory, outsider):
    theirs = factory.payment(db.session.get(Bar, outsider.bar_id))
    response = api.get(f"/payments/{theirs.id}")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert api.get("/payments").get_json() == {"payments": []}


@pytest.mark.parametrize(
    "path", ["/payments/0", "/payments/99999", "/payments/99999999999999999999", "/payments/abc"]
)
def test_missing_payments_are_404_json(api, path):
    response = api.client.open(
        f"/api/v1{path}", headers={"Authorization": f"Bearer {api.secret}"}, csrf=False
    )
    assert response.status_code == 404
    assert set(response.get_json()["error"]) >= {"code", "message"}


def test_the_list_is_newest_first_and_filtered(api, factory, bar, outsider):
    now = utcnow()
    old = factory.payment(bar, status="paid", created_at=now - timedelta(hours=3))
    cancelled = factory.payment(bar, status="cancelled", created_at=now - timedelta(hours=1))
    waiting = factory.payment(bar, status="sent", created_at=now)
    factory.payment(db.session.get(Bar, outsider.bar_id), status="paid", created_at=now)

    def ids(query: str = "") -> list[int]:
        response = api.get(f"/payments{query}")
        assert response.status_code == 200
        return [p["id"] for p in response.get_json()["payments"]]

    assert ids() == [waiting.id, cancelled.id, old.id]
    assert ids("?status=paid") == [old.id]
    since = (now - timedelta(hours=2)).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    assert ids(f"?since={since}") == [waiting.id, cancelled.id]
    nairobi = (now - timedelta(hours=2) + timedelta(hours=3)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    ) + "%2B03:00"
    assert ids(f"?since={nairobi}") == [waiting.id, cancelled.id]
    assert ids("?limit=1") == [waiting.id]
    assert ids("?status=cancelled&since=" + since) == [cancelled.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=settled", "status"),
        ("?since=yesterday", "since"),
        ("?since=2024-05-01T18:00:00", "since"),  # no time zone: ambiguous
        ("?since=0001-01-01T00:00:00%2B01:00", "since"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=%C2%B2", "limit"),
        ("?limit=" + "9" * 5000, "limit"),
    ],
)
def test_bad_list_filters_are_named(api, query, field):
    response = api.get(f"/payments{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


# Rate limit -----------------------------------------------------------------------------------


def test_each_key_has_its_own_rate_limit(app, client, doc, bar, api):
    app.config["API_RATE_LIMIT"] = "2 per minute"
    assert [api.get("/payments").status_code for _ in range(3)] == [200, 200, 429]
    limited = api.get("/payments/1")
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    other = Api(client, doc, keys.create_key(bar, "Till 2 POS").secret)
    assert other.get("/payments").status_code == 200


# The OpenAPI document -------------------------------------------------------------------------


def test_the_document_is_openapi_3_1_and_covers_every_route(app, doc):
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<[^:>]+:(\w+)>", r"{\1}", rule.rule).removeprefix("/api/v1")
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, ops in doc["paths"].items():
        for operation in ops.values():
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name and p["in"] == "path" for p in operation["parameters"])
            for status, answer in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status) and answer["description"]


def test_the_document_needs_no_key(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json()["paths"]["/openapi.json"]["get"]["security"] == []
