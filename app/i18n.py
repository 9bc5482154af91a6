"""Sentences in the person's language, from anywhere (domain code, forms, jobs).

Write every sentence people read in English, through these: `_("Nothing is owed on this
tab.")`, `_("Only KES %(left)s is left.", left=f"{n:,}")`, and in forms (defined once, read per
request) `lazy("Enter the amount.")`. In a request they answer in the request's language
(app/web/i18n.py chooses it); outside one (a job, a CLI command) in English. Templates call
`_()` directly. The Kiswahili lives in app/translations/sw/parts/*.po.
"""

from __future__ import annotations

from flask import g, has_request_context
from flask_babel import get_locale, get_translations, lazy_gettext

LANGUAGES = {"en": "English", "sw": "Kiswahili"}
DEFAULT = "en"


def _locale():
    # Flask-Babel keeps the request's locale in g._flask_babel (force_locale swaps it there).
    return getattr(g.get("_flask_babel"), "babel_locale", None) or get_locale()


def catalogue():
    """The request's translations, looked up once per request and locale (a page asks for
    100-200 sentences; Flask-Babel's own lookup costs about 20 us a time)."""
    locale = _locale()
    found = g.setdefault("_pesatab_catalogues", {})
    if locale not in found:
        found[locale] = get_translations()
    return found[locale]


def current_language() -> str:
    """The language of this request ('en', 'sw'); English outside a request."""
    if not has_request_context():
        return DEFAULT
    locale = _locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT


def _(text: str, **values) -> str:
    if has_request_context():
        text = catalogue().ugettext(text)
    return text % values if values else text


def n_(singular: str, plural: str, count: int, **values) -> str:
    values.setdefault("num", count)
    if has_request_context():
        return catalogue().ungettext(singular, plural, count) % values
    return (singular if count == 1 else plural) % values


def lazy(text: str, **values):
    """For sentences fixed when a module loads (form labels and validator messages)."""
    return lazy_gettext(text, **values)


def N_(text: str) -> str:
    """Marks a sentence for the catalogue without translating it here (a table of sentences
    read later through `_()`, such as Daraja's result codes)."""
    return text
