"""Security headers and error pages that reveal nothing internal."""

from __future__ import annotations

import pytest

from tests.conftest import login_as


def test_pages_carry_the_security_headers(client):
    headers = client.get("/login").headers
    csp = headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp
        and "frame-ancestors 'none'" in csp
    )
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/login", "/healthz", "/no-such-page", "/api/v1/openapi.json"])
def test_hsts_is_sent_in_production_only(app, client, path):
    app.config["PESATAB_ENV"] = "production"
    headers = client.get(path).headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # Local runs are plain http: a browser would remember the header and refuse 127.0.0.1.
    for environment in ("development", "test"):
        app.config["PESATAB_ENV"] = environment
        assert "Strict-Transport-Security" not in client.get(path).headers


def test_pages_have_no_inline_script(client, owner):
    c = client
    c.login(owner)
    for path in ("/login", "/dashboard", "/settings/staff/"):
        html = c.get(path).get_data(as_text=True)
        assert "<script>" not in html and "onclick=" not in html
        assert '<script src="/static/vendor/htmx.min.js"' in html or path == "/login"


def test_htmx_is_served_from_our_own_static_files(client):
    with client.get("/static/vendor/htmx.min.js") as response:
        assert response.status_code == 200 and b"htmx" in response.data[:200]


def test_pages_send_the_csrf_token_to_htmx_in_a_header(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


@pytest.fixture
def exploding_app(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("database password is hunter2 at /srv/app/secret.py")

    return app


@pytest.mark.fresh_app  # adds a route
def test_an_unexpected_error_shows_a_plain_500_page(exploding_app, client, caplog):
    response = client.get("/boom")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong on our side" in body
    assert "hunter2" not in body and "Traceback" not in body and "secret.py" not in body


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/no-such-page", 404, "Page not found"),
        ("/logout", 405, "That action is not allowed here"),
    ],
)
def test_error_pages_say_what_happened(client, path, status, text):
    response = client.get(path)
    assert response.status_code == status
    assert text in response.get_data(as_text=True)


def test_an_oversized_upload_answers_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/login", data={"email": "a@example.com", "password": "x" * 4096})
    assert response.status_code == 413
    assert "That upload is too large" in response.get_data(as_text=True)


def test_api_paths_get_json_errors(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "404"


def test_a_cashier_sees_a_clear_403(app, cashier):
    response = login_as(app, cashier).get("/settings/staff/")
    assert response.status_code == 403
    assert "Your role does not allow it" in response.get_data(as_text=True)


def test_behind_a_trusted_proxy_the_real_client_address_is_seen(test_config, sim_state):
    from flask import request

    from app import create_app

    app = create_app({**test_config, "TRUSTED_PROXIES": 1, "DARAJA_SIM_STATE": sim_state})

    @app.get("/_whoami")
    def whoami():
        return f"{request.remote_addr} {request.scheme}"

    headers = {"X-Forwarded-For": "196.201.214.200", "X-Forwarded-Proto": "https"}
    assert (
        app.test_client().get("/_whoami", headers=headers).get_data(as_text=True)
        == "196.201.214.200 https"
    )


@pytest.mark.fresh_app  # adds a route
def test_without_trusted_proxies_forwarded_headers_are_ignored(app, client):
    from flask import request

    @app.get("/_whoami")
    def whoami():
        return request.remote_addr

    assert (
        client.get("/_whoami", headers={"X-Forwarded-For": "196.201.214.200"}).get_data(
            as_text=True
        )
        == "127.0.0.1"
    )


def test_no_initiator_secret_reaches_logs_pages_or_the_database(
    app, factory, bar, owner, cashier, live, sim_state, caplog, monkeypatch
):
    """The initiator's password and every SecurityCredential made from it: never in a log
    line, a page, an audit entry, or any row in clear."""
    import logging

    from sqlalchemy import inspect, select, text

    from app.extensions import db
    from app.mpesa import initiator as initiator_api
    from app.simulator import status as sim_status
    from tests.conftest import login_as
    from tests.test_verify import HX, answered

    made: list[str] = []
    real = initiator_api.security_credential

    def recording(password, pem):
        made.append(real(password, pem))
        return made[-1]

    monkeypatch.setattr(initiator_api, "security_credential", recording)
    caplog.set_level(logging.DEBUG)
    factory.live_credentials(bar)
    desk, counter = login_as(app, owner), login_as(app, cashier)
    pages = [
        desk.post(
            "/settings/mpesa/initiator",
            data={"initiator_name": sim_status.SIM_INITIATOR,
                  "initiator_password": sim_status.SIM_INITIATOR_PASSWORD,
                  "certificate": sim_status.certificate_pem(sim_state)},
            follow_redirects=True,
        )
    ]  # fmt: skip
    pages.append(counter.post("/verify/", data={"code": "QZZ9ZZZ9ZZ"}, headers=HX))
    pages.append(desk.get("/settings/mpesa/"))
    pages.append(desk.get("/settings/audit/"))
    result = answered(counter)
    assert "Not found: M-Pesa has no payment" in result and len(made) == 1
    texts = [p.get_data(as_text=True) for p in pages] + [result, caplog.text]
    for table in inspect(db.engine).get_table_names():
        rows = db.session.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608 (our tables)
        texts += [repr(row) for row in rows]
    texts.append(repr(sim_state.events()))  # the simulator's record shows it as ***
    for secret in [sim_status.SIM_INITIATOR_PASSWORD, *made]:
        assert not [t for t in texts if secret in t], secret[:6]
    assert db.session.scalars(select(db.metadata.tables["initiator_credential"].c.id)).all()
