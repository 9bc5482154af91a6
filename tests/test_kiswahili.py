"""Every page in Kiswahili, with no English left.

Each screen a person can open is rendered twice, for someone who reads English and for someone
who reads Kiswahili, from the same data. A piece of text the two pages share, with letters in
it, that is not data (a name, a receipt, an amount) nor a word both languages use (M-Pesa,
KES), is English left in the Kiswahili page: the test names it and its page. A second test
reads every sentence marked for translation in app/ and its templates and fails on any the
Kiswahili catalogue does not translate.

Every area's GET pages are walked (each area keeps its Kiswahili in
app/translations/sw/parts/<area>.po; `test_every_area_has_its_part` checks they all do); the
signed-out pages follow the browser's Accept-Language.
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
from app.models import StatementImport, StatementLine, Tender, User
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
    r"|^KES [\d,]+$|^[A-Z0-9]{10}$|^2547\*{4}\d{3}$|^\d{1,2}:\d{2}"
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


def english_left(en: str, sw: str, data: set[str]) -> list[str]:
    shared = texts(en) & texts(sw)
    data = data | {w for d in data for w in re.findall(r"[A-Za-z][\w-]+", d)}
    return sorted(
        t
        for t in shared
        if re.search(r"[A-Za-z]{2}", t)
        and t not in data
        and not DATA.search(t)
        and not set(re.findall(r"[A-Za-z][\w-]+", t)) <= SHARED_WORDS | data
    )


@pytest.fixture
def world(app, factory, bar, owner, manager, cashier):
    """One of everything a page can show."""
    from app.settings import vault
    from app.simulator import SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET, TILL_PASSKEY

    # A sandbox bar (so every page shows the sandbox marker), live, with new credentials
    # waiting beside the ones in use (the M-Pesa page's step 3 then shows them).
    factory.live_credentials(bar)
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
    db.session.commit()
    import_file(bar, csv_statement([line("QKA1B2C3D4", paid_in="650.00", account="WALKIN")]))
    api_key = keys.create_key(bar, "Till 1", created_by_id=owner.id).api_key
    statement = db.session.scalars(select(StatementImport)).one()
    people = list(db.session.scalars(select(User)))
    names = {u.name for u in people} | {u.email for u in people if u.email}
    data = names | {bar.name, bar.slug, "Meza 4", "Tusker", "Nyama choma", "Till 1"}
    # What the statement file says (who paid, M-Pesa's own words for the line) and its name.
    for found in db.session.scalars(select(StatementLine)):
        data |= {found.other_party, found.reason_type}
    data |= {statement.filename, api_key.prefix}
    data |= {SIM_CONSUMER_KEY[-4:]}  # the consumer key's last 4, shown on the M-Pesa page
    return {
        "tab_id": tab.id,
        "payment_id": waiting.id,
        "import_id": statement.id,
        "data": data,
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
    return re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", lambda m: str(world.get(m.group(1), 1)), rule)


def _client_for(app, area: str, user, locale: str):
    if area == "ops":
        return None
    user.locale = locale
    db.session.commit()
    return login_as(app, user)


@pytest.mark.parametrize("language", ["sw"])
def test_every_page_is_in_kiswahili(app, world, owner, language, factory):
    left = {}
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
            pages = {}
            for locale in ("en", language):
                operator.locale = locale
                db.session.commit()
                pages[locale] = login_as_operator(app, operator).get(url).get_data(as_text=True)
        else:
            pages = {
                locale: _client_for(app, area, owner, locale).get(url).get_data(as_text=True)
                for locale in ("en", language)
            }
        found = english_left(pages["en"], pages[language], world["data"])
        if found:
            left[url] = found
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
