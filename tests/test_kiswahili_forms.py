"""The answers to forms, in Kiswahili, with no English left.

test_kiswahili.py walks every GET page; a screen reached only by a form POST (a refusal with its
sentence, a page shown once after a form) is not walked. Here each such form is sent with bad
input twice, by someone who reads English and by someone who reads Kiswahili, and the two
answers are compared with the same checker (`english_left`). A few also check that the
catalogue's Kiswahili sentence is the one shown.
"""

from __future__ import annotations

import io
from html import escape

import pytest

from app.extensions import db
from app.web.i18n_compile import merge
from tests.conftest import login_as
from tests.test_kiswahili import english_left

HX = {"HX-Request": "true"}
LANGUAGES = ("en", "sw")


@pytest.fixture(scope="module")
def catalogue() -> dict[str, str]:
    return {m.id: m.string for m in merge("sw") if m.id}


def kiswahili(catalogue, msgid: str, **values) -> str:
    """The Kiswahili for `msgid`, as a page shows it (HTML-escaped)."""
    found = catalogue.get(msgid)
    assert found and found != msgid, f"no Kiswahili for {msgid!r}"
    return escape(found % values if values else found, quote=False)


@pytest.fixture
def desk(factory, bar, owner, manager, cashier, sim_state):
    """A live bar with initiator credentials, an open tab and a paid payment; people named as
    people are (a role word in a name would count as data and hide an English word)."""
    from tests.test_verify import save_initiator

    for person, name in ((owner, "Wanjiru Kamau"), (manager, "Otieno Ouma"),
                         (cashier, "Akinyi Njeri")):  # fmt: skip
        person.name, person.email = name, f"{name.split()[0].lower()}@{bar.slug}.example.com"
    db.session.commit()
    factory.live_credentials(bar)
    save_initiator(bar, sim_state)
    tab = factory.tab(bar, "Meza 4", lines=(("Tusker", 2, 250), ("Nyama choma", 1, 500)))
    paid = factory.payment(bar, tab=tab, status="paid", amount=500, receipt="SGR1ABCDEF")
    from app.simulator import SIM_CONSUMER_KEY

    data = {bar.name, bar.slug, "Meza 4", "Tusker", "Nyama choma"}
    data |= {SIM_CONSUMER_KEY[-4:]}  # the consumer key's last 4, shown on the M-Pesa page
    data |= {p.name for p in (owner, manager, cashier)} | {
        p.email for p in (owner, manager, cashier)
    }
    return {"bar": bar, "tab": tab, "paid": paid, "data": data}


def posted(app, user, url, data, *, headers=None, follow=False, files=None) -> dict:
    """The same POST by `user` reading each language (`data` may be a function of it)."""
    answers = {}
    for locale in LANGUAGES:
        user.locale = locale
        db.session.commit()
        body = data(locale) if callable(data) else dict(data)
        if files:
            body |= files()
        answers[locale] = login_as(app, user).post(
            url, data=body, headers=headers, follow_redirects=follow
        )
    return answers


def check(answers, expected_status, data, *, shows=()) -> str:
    """Both answers have the status; the Kiswahili one has no English left and shows `shows`.
    Returns the Kiswahili answer."""
    got = {locale: r.status_code for locale, r in answers.items()}
    assert got == dict.fromkeys(LANGUAGES, expected_status), got
    en, sw = (answers[locale].get_data(as_text=True) for locale in LANGUAGES)
    assert 'lang="sw"' in sw or "<html" not in sw  # a fragment has no <html>
    assert english_left(en, sw, data) == []
    for sentence in shows:
        assert sentence in sw, sentence
    return sw


# The tab's pay form (push).


@pytest.mark.parametrize(
    ("phone", "amount", "sentence"),
    [
        ("07I2 ABC DEF", 100, "A phone number has only digits; enter it like 0712 345 678."),
        ("0712 345", 100, "That number is too short — a Kenyan mobile number has 10 digits, like "
                          "0712 345 678."),
        ("0808 374 149", 100, "That is not a mobile number; enter a Safaricom mobile number like "
                              "0712 345 678."),
        ("0708 374 149", 0, "Enter an amount of at least KES 1."),
        ("0708 374 149", 501, "Only KES %(left)s is left to ask for."),
    ],
)  # fmt: skip
@pytest.mark.parametrize("htmx", [True, False], ids=["panel", "page"])
def test_the_pay_form_refuses_in_kiswahili(
    app, desk, cashier, catalogue, phone, amount, sentence, htmx
):
    answers = posted(
        app, cashier, f"/tabs/{desk['tab'].id}/pay", {"phone": phone, "amount": amount},
        headers=HX if htmx else None,
    )  # fmt: skip
    check(answers, 422 if htmx else 400, desk["data"] | {phone},
          shows=[kiswahili(catalogue, sentence, left="500")])  # fmt: skip


def test_the_push_limit_is_said_in_kiswahili(app, desk, cashier, catalogue, live, sim_state):
    from tests.test_tabs import request_mpesa

    app.config["PUSH_LIMIT_PER_USER"] = "1 per minute"
    counter = login_as(app, cashier)
    assert request_mpesa(counter, desk["tab"], amount=10, sim_state=sim_state).status_code == 200
    for headers in (HX, None):
        answers = posted(
            app, cashier, f"/tabs/{desk['tab'].id}/pay",
            {"phone": "0711 000 000", "amount": 10}, headers=headers,
        )  # fmt: skip
        limit = "Too many M-Pesa requests in the last few minutes. Wait a moment, then send again."
        check(answers, 429, desk["data"] | {"0711 000 000"}, shows=[kiswahili(catalogue, limit)])


# A line and a tender with bad input.


@pytest.mark.parametrize(
    "line",
    [
        {"description": "Tusker", "quantity": 0, "unit_price": 250},
        {"description": "Tusker", "quantity": 1, "unit_price": ""},
        {"description": "x" * 81, "quantity": 1, "unit_price": 250},
    ],
)
def test_a_bad_line_is_refused_in_kiswahili(app, desk, cashier, line):
    answers = posted(app, cashier, f"/tabs/{desk['tab'].id}/lines", line)
    check(answers, 400, desk["data"] | {"x" * 81})


OWED = "Only KES %(owed)s is owed; give the rest back as change."


@pytest.mark.parametrize(
    ("tender", "sentence"),
    [
        ({"kind": "cash", "amount": ""}, "Enter the amount taken."),
        ({"kind": "cash", "amount": 0}, "Enter an amount of at least KES 1."),
        ({"kind": "card", "amount": 900}, OWED),
        ({"kind": "cheque", "amount": 100}, "Choose cash or card."),
        ({"kind": "cash", "amount": 100, "note": "n" * 121}, "A note is at most 120 characters."),
    ],
)  # fmt: skip
def test_a_bad_tender_is_refused_in_kiswahili(app, desk, cashier, catalogue, tender, sentence):
    answers = posted(app, cashier, f"/tabs/{desk['tab'].id}/tenders", tender)
    shows = [kiswahili(catalogue, sentence, owed="500")] if sentence else []
    check(answers, 422, desk["data"] | {"n" * 121}, shows=shows)


# The staff page.


@pytest.mark.parametrize(
    "person",
    [
        {"name": "Baraka Mwangi", "email": "not-an-email", "role": "cashier"},
        {"name": "B" * 200, "email": "baraka@example.com", "role": "cashier"},
        {"name": "Baraka Mwangi", "email": "", "phone": "", "role": "cashier"},
        {"name": "Baraka Mwangi", "email": "", "phone": "0712 345 678", "role": "manager"},
        {"name": "Baraka Mwangi", "email": "baraka@example.com", "role": "owner"},
    ],
)
def test_adding_a_person_badly_is_refused_in_kiswahili(app, desk, owner, catalogue, person):
    answers = posted(app, owner, "/settings/staff/", person)
    bad_email = "Enter a valid email address, like name@example.com."
    shows = [kiswahili(catalogue, bad_email)] if person["email"] == "not-an-email" else []
    if person["role"] == "owner":
        shows = [kiswahili(catalogue, "Choose Manager or Cashier.")]
    check(answers, 400, desk["data"] | {person["name"], person["email"]}, shows=shows)


def test_the_set_password_link_page_is_in_kiswahili(app, desk, owner, manager, cashier):
    def new_cashier(locale):
        return {"name": f"Baraka {locale.upper()}wa", "email": f"baraka.{locale}@example.com",
                "role": "cashier"}  # fmt: skip

    answers = posted(app, owner, "/settings/staff/", new_cashier)
    links = {
        t for r in answers.values() for t in r.get_data(as_text=True).split('"') if "/set-pass" in t
    }
    data = desk["data"] | {new_cashier(x)[k] for x in LANGUAGES for k in ("name", "email")}
    check(answers, 200, data | links)
    # A manager issues a cashier a new link.
    answers = posted(app, manager, f"/settings/staff/{cashier.id}/link", {})
    links = {
        t for r in answers.values() for t in r.get_data(as_text=True).split('"') if "/set-pass" in t
    }
    check(answers, 200, desk["data"] | links)


# Signing up, signing in, forgotten and new passwords (signed out: the browser's language).


def signed_out(client, url, data) -> dict:
    accept = {"en": "en", "sw": "sw,en;q=0.5"}
    return {
        locale: client.post(url, data=data, headers={"Accept-Language": accept[locale]})
        for locale in LANGUAGES
    }


@pytest.mark.parametrize(
    "form",
    [
        {"bar_name": "", "owner_name": "", "email": "", "password": ""},
        {"bar_name": "Baa Yetu", "owner_name": "Juma", "email": "juma@", "password": "short"},
        {"bar_name": "B" * 200, "owner_name": "J" * 200, "email": "juma@example.com",
         "password": "p" * 300},
    ],
)  # fmt: skip
def test_signing_up_badly_is_refused_in_kiswahili(client, desk, form):
    check(signed_out(client, "/signup", form), 200, desk["data"] | set(form.values()))


def test_a_wrong_password_is_said_in_kiswahili(client, desk, owner, catalogue):
    answers = signed_out(client, "/login", {"email": owner.email, "password": "wrong-password"})
    no_match = "That email or phone number and password do not match an active account."
    check(answers, 200, desk["data"], shows=[kiswahili(catalogue, no_match)])


@pytest.mark.parametrize("email", ["wanjiru@kwa-mama-pub.example.com", "nobody@example.com", "x"])
def test_forgot_passwords_answer_is_in_kiswahili(client, desk, email):
    check(signed_out(client, "/forgot-password", {"email": email}), 200, desk["data"] | {email})


def test_a_too_short_new_password_is_refused_in_kiswahili(client, desk, cashier, catalogue):
    from app.auth import accounts

    token = accounts.reissue_link(cashier, None)
    answers = signed_out(client, f"/set-password/{token}", {"password": "abc", "confirm": "abd"})
    data = desk["data"] | {accounts.sign_in_name(cashier)}
    check(answers, 200, data, shows=[kiswahili(catalogue, "Use at least %(min)d characters.",
                                               min=accounts.PASSWORD_MIN)])  # fmt: skip


# The M-Pesa settings.


@pytest.mark.parametrize(
    "form",
    [
        {"environment": "sandbox", "kind": "paybill", "shortcode": "ABCDE", "consumer_key": ""},
        {"environment": "sandbox", "kind": "till", "shortcode": "12", "till_number": "12",
         "consumer_key": "short", "consumer_secret": "$$", "passkey": "xyz"},
        {"environment": "sandbox", "kind": "paybill", "shortcode": "600000", "till_number": "5123"},
        {"environment": "live", "kind": "buy-goods", "shortcode": "600000"},
    ],
)  # fmt: skip
def test_bad_mpesa_settings_are_refused_in_kiswahili(app, owner, desk, catalogue, form):
    shows = {
        "ABCDE": ["The PayBill number is 5 to 7 digits."],
        "12": ["The store (head office) number is 5 to 7 digits."],
    }.get(form["shortcode"], [])
    if form["environment"] == "live":
        shows = ["Choose sandbox or production.", "Choose PayBill or Till."]
    answers = posted(app, owner, "/settings/mpesa/", form)
    check(answers, 400, desk["data"], shows=[kiswahili(catalogue, s) for s in shows])


def test_bad_mpesa_settings_the_first_time_are_refused_in_kiswahili(
    app, bar, owner, catalogue, sim_state
):
    owner.name = "Wanjiru Kamau"
    data = {bar.name, bar.slug, owner.name, owner.email}
    form = {"environment": "sandbox", "kind": "paybill", "shortcode": "ABC", "consumer_key": ""}
    check(posted(app, owner, "/settings/mpesa/", form), 400, data,
          shows=[kiswahili(catalogue, "Enter the consumer key.")])  # fmt: skip


NOT_A_CERTIFICATE = (
    "This is not a certificate: paste the whole PEM text, from -----BEGIN CERTIFICATE----- to "
    "-----END CERTIFICATE-----."
)


@pytest.mark.parametrize(
    ("form", "sentence"),
    [
        ({"initiator_name": "", "initiator_password": "", "certificate": ""},
         "Type the initiator's name."),
        ({"initiator_name": "n" * 65, "initiator_password": "p" * 101, "certificate": ""}, None),
        ({"initiator_name": "testapi", "initiator_password": "Safaricom999!",
          "certificate": "not a certificate"}, NOT_A_CERTIFICATE),
    ],
)  # fmt: skip
def test_bad_initiator_credentials_are_refused_in_kiswahili(
    app, desk, owner, catalogue, form, sentence
):
    answers = posted(app, owner, "/settings/mpesa/initiator", form, follow=True)
    shows = [kiswahili(catalogue, sentence)] if sentence else []
    check(answers, 200, desk["data"] | {"testapi"}, shows=shows)


# Verifying a code, and giving money back.


@pytest.mark.parametrize("code", ["QK12", "QK12-ABC3X", ""])
def test_a_malformed_code_is_refused_in_kiswahili(app, desk, cashier, catalogue, code):
    sentence = kiswahili(catalogue, "An M-Pesa code is 10 letters and digits, like QK12ABC3XY.")
    for headers in (HX, None):
        answers = posted(app, cashier, "/verify/", {"code": code}, headers=headers)
        check(answers, 422, desk["data"] | {code}, shows=[sentence])


@pytest.mark.parametrize(
    ("form", "sentence"),
    [
        ({"reason": "Paid twice", "amount": "12.5"},
         "Type the amount in whole shillings, like 500."),
        ({"reason": "", "amount": ""}, None),
        ({"reason": " x ", "amount": ""}, None),
        ({"reason": "Paid twice", "amount": "501"}, None),
    ],
)  # fmt: skip
@pytest.mark.parametrize("htmx", [True, False], ids=["card", "page"])
def test_a_bad_reversal_is_refused_in_kiswahili(app, desk, owner, catalogue, form, sentence, htmx):
    answers = posted(app, owner, f"/reversals/payments/{desk['paid'].id}", form,
                     headers=HX if htmx else None)  # fmt: skip
    shows = [kiswahili(catalogue, sentence)] if sentence else []
    check(answers, 422, desk["data"] | {"SGR1ABCDEF", "Paid twice"}, shows=shows)


# The statement upload and the API keys.


@pytest.mark.parametrize(
    ("name", "content"),
    [("statement.pdf", b"%PDF-1.4 not a statement"), ("statement.csv", b"hello,world\n1,2\n"),
     ("empty.csv", b"")],
)  # fmt: skip
def test_a_file_that_is_not_a_statement_is_refused_in_kiswahili(
    app, desk, owner, catalogue, name, content
):
    answers = posted(app, owner, "/reconciliation/statements/", {},
                     files=lambda: {"statement": (io.BytesIO(content), name)})  # fmt: skip
    not_csv = "Upload the statement as a .csv or .xlsx file, as the M-Pesa portal exports it."
    shows = [kiswahili(catalogue, not_csv)] if name.endswith(".pdf") else []
    check(answers, 422, desk["data"] | {name}, shows=shows)


def test_no_file_is_refused_in_kiswahili(app, desk, owner):
    check(posted(app, owner, "/reconciliation/statements/", {}), 400, desk["data"])


@pytest.mark.parametrize("label", ["", "K" * 200, "   "])
def test_a_bad_key_name_is_refused_in_kiswahili(app, desk, owner, catalogue, label):
    answers = posted(app, owner, "/settings/api-keys/", {"label": label})
    shows = (
        [kiswahili(catalogue, "Give the key a name, like “Till 1 POS”.")]
        if not label.strip()
        else []
    )
    check(answers, 400, desk["data"] | {label}, shows=shows)


def test_the_new_key_page_is_in_kiswahili(app, desk, owner):
    answers = posted(app, owner, "/settings/api-keys/", lambda locale: {"label": f"Till {locale}"})
    data = desk["data"] | {f"Till {x}" for x in LANGUAGES}
    pages = [r.get_data(as_text=True) for r in answers.values()]
    data |= {t for page in pages for t in page.replace("<", ">").split(">") if "pt_" in t}
    check(answers, 200, data)
