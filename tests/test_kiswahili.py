"""Every page in Kiswahili, with no English left.

Each screen a person can open is rendered twice, for someone who reads English and for someone
who reads Kiswahili, from the same data. A piece of text the two pages share, with letters in
it, that is not data (a name, a receipt, an amount) nor a word both languages use (M-Pesa,
KES), is English left in the Kiswahili page: the test names it and its page. A second test
reads every sentence marked for translation in app/ and its templates and fails on any the
Kiswahili catalogue does not translate.

Every area's GET pages are walked, and each must open (200, save the few in NOT_A_PAGE) and
show the world's content (SHOWS), so no error page is compared with another. Each area keeps
its Kiswahili in app/translations/sw/parts/<area>.po (`test_every_area_has_its_part` checks
they all do); the signed-out pages follow the browser's Accept-Language.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from sqlalchemy import select

from app.api import keys
from app.extensions import db
from app.models import InitiatorRequest, StatementImport, StatementLine, Tender, User, utcnow
from app.web.i18n_compile import merge
from tests.conftest import login_as
from tests.test_ops import OPERATOR_PASSWORD, login_as_operator
from tests.test_statements import csv_statement, import_file, line

APP = Path(__file__).resolve().parent.parent / "app"
PARTS = APP / "translations" / "sw" / "parts"
AREAS = (
    "auth", "dashboard", "tabs", "payments", "reconciliation", "statements", "settings",
    "staff", "audit", "ops", "errors", "receipts", "verify", "balance", "reversals",
)  # fmt: skip
# Words that are the same in both languages, and how data looks.
SHARED_WORDS = {"PesaTab", "M-Pesa", "KES", "Daraja", "API", "CSV", "PayBill", "Till", "OK", "SMS"}
SHARED_WORDS |= {"English", "Kiswahili"}  # the language choice names each language in its own words
DATA = re.compile(
    r"^[\W\d_]*$"  # numbers, amounts' digits, punctuation
    r"|^KES [\d,]+$|^[A-Z0-9]{10}$|^2547\*{4}\d{3}$"
    r"|^\d{1,2}:\d{2}( ?[–-] ?\d{1,2}:\d{2})?$"  # a time of day, or a range of them, alone
    r"|^\d{2} \w{3} \d{4}, \d{2}:\d{2}$|^#\d+$|^Africa/Nairobi$|^pt_(live|test)_\w*"
    r"|^TAB\d+$"  # a tab payment's account reference, as Daraja carries it
    r"|^/api/v1/[\w/.]+$|^Authorization: Bearer \S*…$"  # the API's address and header, as typed
    r"|^[·–\s]*(\d{2} \w{3} \d{4}, \d{2}:\d{2}(:\d{2})?[·–\s]*)+$"  # times, alone or a range
)


class _Text(HTMLParser):
    """The words a person sees: text, and the placeholder, title, aria-label and alt attributes,
    and button values."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in ("placeholder", "title", "aria-label", "alt") and value:
                self.found.append(value)
        given = dict(attrs)
        button = tag == "input" and given.get("type") in ("submit", "button", "reset")
        if button and given.get("value"):
            self.found.append(given["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.found.append(" ".join(data.split()))


def texts(html: str) -> set[str]:
    parser = _Text()
    parser.feed(html)
    return set(parser.found)


def _without_data(text: str, data: set[str]) -> str:
    """`text` with each whole piece of data in it (longest first, as whole words) taken out: a
    data word alone ("Owner" of "Wanjiru Owner", "Pay" of "Pay Bill Online") is not data."""
    for piece in sorted(data, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", " ", text)
    return text


def english_left(en: str, sw: str, data: set[str]) -> list[str]:
    shared = texts(en) & texts(sw)
    return sorted(
        t
        for t in shared
        if re.search(r"[A-Za-z]{2}", t)
        and t not in data
        and not DATA.search(t)
        and not set(re.findall(r"[A-Za-z][\w-]+", _without_data(t, data))) <= SHARED_WORDS
    )


@pytest.fixture
def world(app, factory, bar, owner, manager, cashier, sim_state):
    """One of everything a page can show, and the value of each route parameter that shows it."""
    from app.enums import BalanceOutcome, InitiatorKind, InitiatorState, VerifyOutcome
    from app.payments import c2b
    from app.receipts import links
    from app.settings import vault
    from app.simulator import SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET, TILL_PASSKEY
    from tests.test_c2b_confirmations import SAMPLE
    from tests.test_verify import save_initiator

    # People named as people are: a role word in a name ("Wanjiru Owner") would count as data
    # and let an English "Owner" on a page pass.
    for person, name in ((owner, "Wanjiru Kamau"), (manager, "Otieno Ouma"),
                         (cashier, "Akinyi Njeri")):  # fmt: skip
        person.name, person.email = name, f"{name.split()[0].lower()}@{bar.slug}.example.com"
    bar.address, bar.kra_pin = "Moi Avenue, Nairobi", "P051234567Q"
    db.session.commit()
    # A sandbox bar (so every page shows the sandbox marker), live, with new credentials
    # waiting beside the ones in use (the M-Pesa page's step 3 then shows them), and the
    # initiator credentials that verify codes and ask the balance.
    factory.live_credentials(bar)
    save_initiator(bar, sim_state)
    # Money from the M-Pesa menu on no tab yet: /tabs/incoming and the open tab list it.
    secret = c2b.registration_for(bar).url_secret
    walk_in = {**SAMPLE, "BillRefNumber": "WALKIN", "TransID": "UKM4WALK1N", "FirstName": "JANE"}
    hook = app.test_client().post(f"/hooks/c2b/{secret}/confirmation", json=walk_in)
    assert hook.status_code == 200, hook.get_data(as_text=True)
    vault.save(bar, vault.CredentialInput(
        environment="sandbox", kind="till", shortcode="174380", till_number="5123456",
        consumer_key=SIM_CONSUMER_KEY, consumer_secret=SIM_CONSUMER_SECRET, passkey=TILL_PASSKEY,
    ))  # fmt: skip
    tab = factory.tab(bar, "Meza 4", lines=(("Tusker", 2, 250), ("Nyama choma", 1, 800)))
    factory.payment(bar, tab=tab, status="paid", amount=500, receipt="SGR1ABCDEF")
    factory.payment(bar, tab=tab, status="failed", amount=300, result_code="1032",
                    message="The customer cancelled.")  # fmt: skip
    waiting = factory.payment(bar, tab=tab, status="sent", amount=200)
    db.session.add(Tender(bar_id=bar.id, tab_id=tab.id, kind="cash", amount=100))
    # A settled tab paid KES 100 more than its lines, by M-Pesa and card (the reversal form then
    # offers to give back that part), with a receipt link for the customer.
    settled = factory.tab(bar, "Meza 9", lines=(("Tusker", 2, 250),), status="settled")
    overpaid = factory.payment(bar, tab=settled, status="paid", amount=550, receipt="SGR2ABCDEF")
    db.session.add(Tender(bar_id=bar.id, tab_id=settled.id, kind="card", amount=50))
    db.session.commit()
    _link, token = links.issue(settled, owner.id)
    # M-Pesa's answers to a code the bar's records do not have, and to the balance.
    asked = InitiatorRequest(
        bar_id=bar.id, kind=InitiatorKind.STATUS, subject="QKX9Y8Z7W6", url_secret="a" * 40,
        requested_by_id=cashier.id, state=InitiatorState.ANSWERED, result_code="0",
        outcome=VerifyOutcome.GENUINE, answered_at=utcnow(), parameters={
            "Amount": "450.00", "DebitPartyName": "254708374149 - JOHN DOE",
            "CreditPartyName": "600000 - Kwa Mama Pub", "FinalisedTime": "20261206213000",
            "TransactionStatus": "Completed",
        },
    )  # fmt: skip
    balance = InitiatorRequest(
        bar_id=bar.id, kind=InitiatorKind.BALANCE, subject="600000", url_secret="b" * 40,
        requested_by_id=owner.id, state=InitiatorState.ANSWERED, result_code="0",
        outcome=BalanceOutcome.SHOWN, answered_at=utcnow(), parameters={
            "AccountBalance": "Working Account|KES|700000.00|700000.00|0.00|0.00"
            "&Utility Account|KES|22800.00|22800.00|0.00|0.00",
            "BOCompletedTime": "20261206213000",
        },
    )  # fmt: skip
    db.session.add_all([asked, balance])
    db.session.commit()
    import_file(bar, csv_statement([line("QKA1B2C3D4", paid_in="650.00", account="WALKIN")]))
    api_key = keys.create_key(bar, "Till 1", created_by_id=owner.id).api_key
    statement = db.session.scalars(select(StatementImport)).one()
    people = list(db.session.scalars(select(User)))
    names = {u.name for u in people} | {u.email for u in people if u.email}
    data = names | {bar.name, bar.slug, bar.address, "Meza 4", "Meza 9", "Tusker", "Nyama choma"}
    data |= {"Till 1", "JANE", "JOHN DOE", "WALKIN"}  # WALKIN: an account typed on the menu
    # M-Pesa's names for the shortcode's accounts, as the balance card shows them.
    data |= {"Working Account", "Utility Account"}
    # What the statement file says (who paid, M-Pesa's own words for the line) and its name.
    for found in db.session.scalars(select(StatementLine)):
        data |= {found.other_party, found.reason_type}
    data |= {statement.filename, api_key.prefix}
    data |= {SIM_CONSUMER_KEY[-4:]}  # the consumer key's last 4, shown on the M-Pesa page
    return {
        "tab_id": tab.id,
        "payment_id": waiting.id,
        "import_id": statement.id,
        "token": token,
        # Where one parameter must pick another row for the page to show its real content.
        "rules": {
            "/tabs/<int:tab_id>/receipt": {"tab_id": settled.id},  # a paid tab has a receipt
            "/reversals/payments/<int:payment_id>": {"payment_id": overpaid.id},  # a paid one
            "/verify/<int:request_id>": {"request_id": asked.id},
            "/balance/<int:request_id>": {"request_id": balance.id},
        },
        "data": data,
    }


# Pages that answer other than 200 with the world above, and why. Every other page must open.
NOT_A_PAGE = {
    "/": 302,  # the home address sends a signed-in person to their first page
}


# What shows that a page rendered its real content from the world, not an empty state.
SHOWS = {
    "/tabs/<int:tab_id>/receipt": 'id="receipt-paid"',  # the paid tab's receipt slip
    "/r/<token>": "SGR2ABCDEF",  # the customer's receipt, by its link
    "/reversals/payments/<int:payment_id>": 'id="reversal-amount"',  # the form, a part offered
    "/verify/<int:request_id>": "JOHN DOE",  # M-Pesa's answer about a code
    "/balance/<int:request_id>": 'id="balance-accounts"',  # the accounts M-Pesa gave
    "/tabs/incoming": "JANE",  # menu money waiting to be claimed
}


def _pages(app) -> list[tuple[str, str]]:
    """(blueprint, rule) of every HTML page a GET can open."""
    found = []
    for rule in app.url_map.iter_rules():
        area = rule.endpoint.split(".")[0]
        if "GET" not in rule.methods or area in ("static", "daraja_sim", "health", "api"):
            continue
        if rule.rule.endswith(".csv"):
            continue
        found.append((area, rule.rule))
    return sorted(found)


def _url(rule: str, world: dict) -> str:
    """The rule with each parameter the world's value for it (a parameter the world has no
    value for fails: add a row that page shows to `world`)."""
    values = {**world, **world["rules"].get(rule, {})}

    def value(m: re.Match) -> str:
        assert m.group(1) in values, f"{rule}: the world has no {m.group(1)}"
        return str(values[m.group(1)])

    return re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", value, rule)


def _client_for(app, area: str, user, locale: str):
    if area == "ops":
        return None
    user.locale = locale
    db.session.commit()
    return login_as(app, user)


@pytest.mark.parametrize("language", ["sw"])
def test_every_page_is_in_kiswahili(app, world, owner, language, factory):
    left, answers = {}, {}
    for area, rule in _pages(app):
        if area == "auth":  # signed-out pages: test_signed_out_pages_follow_the_browser
            continue
        url = _url(rule, world)
        if area == "ops":
            from app.ops.operators import create_operator

            operator = db.session.scalar(select(User).where(User.role == "operator"))
            operator = operator or create_operator(
                "Nuru", "nuru@ops.example.com", OPERATOR_PASSWORD
            )
            responses = {}
            for locale in ("en", language):
                operator.locale = locale
                db.session.commit()
                responses[locale] = login_as_operator(app, operator).get(url)
        else:
            responses = {
                locale: _client_for(app, area, owner, locale).get(url)
                for locale in ("en", language)
            }
        expected = NOT_A_PAGE.get(rule, 200)
        got = {locale: r.status_code for locale, r in responses.items()}
        if set(got.values()) != {expected}:
            answers[url] = got
            continue
        pages = {locale: r.get_data(as_text=True) for locale, r in responses.items()}
        if rule in SHOWS and not all(SHOWS[rule] in page for page in pages.values()):
            answers[url] = f"no {SHOWS[rule]!r} on the page"
            continue
        found = english_left(pages["en"], pages[language], world["data"])
        if found:
            left[url] = found
    assert not answers, "Pages that did not open (give `world` what they show):\n" + "\n".join(
        f"{url}: {got}" for url, got in answers.items()
    )
    assert not left, "English left in Kiswahili pages:\n" + "\n".join(
        f"{url}: {found}" for url, found in left.items()
    )


def test_signed_out_pages_follow_the_browser(app, client, bar, owner, cashier):
    from app.auth import accounts

    # The set-password page, for someone with an email and for a cashier with a phone alone.
    cashier.email, cashier.phone, cashier.password_hash = None, "254712345678", None
    db.session.commit()
    people = (owner, cashier)
    data = {bar.name} | {p.name for p in people} | {accounts.sign_in_name(p) for p in people}
    urls = ["/login", "/signup", "/forgot-password"]
    urls += [f"/set-password/{accounts.reissue_link(p, None)}" for p in people]
    for url in urls:
        en = client.get(url, headers={"Accept-Language": "en"})
        sw = client.get(url, headers={"Accept-Language": "sw,en;q=0.5"})
        assert en.status_code == sw.status_code == 200, url
        assert 'lang="sw"' in sw.get_data(as_text=True), url
        found = english_left(en.get_data(as_text=True), sw.get_data(as_text=True), data)
        assert found == [], url


def test_every_marked_sentence_has_its_kiswahili():
    catalogue = {m.id: m.string for m in merge("sw") if m.id}
    missing = []
    methods = [
        ("**/templates/**.html", "jinja2"),
        ("**/templates/**.txt", "jinja2"),
        ("**.py", "python"),
    ]
    keywords = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "n_": (1, 2),
        "lazy": None,
        "N_": None,
    }
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(APP), method_map=methods, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else message[0]
        if not catalogue.get(msgid):
            missing.append(f"app/{filename}: {msgid!r}")
    assert not missing, "no Kiswahili for:\n" + "\n".join(sorted(set(missing)))


def test_the_checker_catches_english_left():
    en = "<p>Nothing is owed on this tab.</p><p>KES 500</p><button title='Close'>x</button>"
    sw = "<p>Nothing is owed on this tab.</p><p>KES 500</p><button title='Funga'>x</button>"
    assert english_left(en, sw, set()) == ["Nothing is owed on this tab."]
    assert english_left(en, sw.replace("Nothing is owed on this tab.", "Hakuna deni."), set()) == []
    button = "<input type='submit' value='Save'><input type='hidden' name='x' value='Hidden'>"
    assert english_left(button, button, set()) == ["Save"]  # a button's value is read, not data


def test_a_word_of_the_data_alone_is_not_data():
    """A name or M-Pesa's words pass whole; one of their words alone is English left."""
    data = {"Wanjiru Owner", "Pay Bill Online"}
    page = "<p>Wanjiru Owner</p><p>Pay Bill Online</p><p>{}</p>"
    for english in ("Owner", "Pay", "Online", "Owner: Wanjiru Owner"):
        assert english_left(page.format(english), page.format(english), data) == [english]
    assert english_left(page.format("Wanjiru Owner · #3"), page.format("Wanjiru Owner · #3"),
                        data) == []  # fmt: skip


@pytest.mark.parametrize("shown", ["21:30", "21:30–23:00", "9:05 - 11:00"])
def test_a_time_alone_is_data(shown):
    assert english_left(f"<p>{shown}</p>", f"<p>{shown}</p>", set()) == []


def test_text_after_a_time_is_not_data():
    assert english_left("<p>21:30 Closed</p>", "<p>21:30 Closed</p>", set()) == ["21:30 Closed"]


def test_a_person_chooses_their_language_and_the_bar_sets_the_default(app, bar, owner, cashier):
    desk = login_as(app, owner)
    desk.post("/dashboard/language", data={"locale": "", "bar_locale": "sw"})
    db.session.expire_all()
    assert bar.locale == "sw"
    counter = login_as(app, cashier)
    assert 'lang="sw"' in counter.get("/tabs/").get_data(as_text=True)
    counter.post("/dashboard/language", data={"locale": "en", "bar_locale": "sw"})
    db.session.expire_all()
    assert cashier.locale == "en" and bar.locale == "sw"
    assert 'lang="en"' in counter.get("/tabs/").get_data(as_text=True)
    assert counter.post("/dashboard/language", data={"locale": "fr"}).status_code == 400


def test_every_area_has_its_part(app):
    areas = {rule.endpoint.split(".")[0] for rule in app.url_map.iter_rules()}
    ours = areas - {"static", "daraja_sim", "health", "api", "hooks"}
    assert ours <= set(AREAS), sorted(ours - set(AREAS))
    assert [a for a in AREAS if not (PARTS / f"{a}.po").exists()] == []
