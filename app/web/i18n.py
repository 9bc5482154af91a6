"""English and Kiswahili (Flask-Babel): which language a request is answered in. Sentences are
written in English through app/i18n.py (`_()`, `lazy()`) and templates' `_()`;
app/translations/sw/parts/*.po hold the Kiswahili, one file an area (named as the area),
merged and compiled into messages.mo by `make` (python -m app.web.i18n_compile).

Who reads what: a person's own choice (User.locale), else their bar's (Bar.locale), else what
the browser asks for; signed out, the browser's. Amounts stay `KES 1,500` and times EAT in
both (app/formats.py does not change with the language).
"""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel, get_locale
from flask_login import current_user

from app.i18n import DEFAULT, LANGUAGES, catalogue

babel = Babel()


def select_locale() -> str:
    user = current_user if current_user else None
    if user is not None and getattr(user, "is_authenticated", False):
        chosen = user.locale or (user.bar.locale if user.bar is not None else None)
        if chosen in LANGUAGES:
            return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
    # Templates' _() read the request's catalogue found once (app/i18n.py), not Flask-Babel's
    # lookup per sentence.
    app.jinja_env.install_gettext_callables(
        gettext=lambda text: catalogue().ugettext(text),
        ngettext=lambda s, p, n: catalogue().ungettext(s, p, n),
        pgettext=lambda context, text: catalogue().upgettext(context, text),
        npgettext=lambda context, s, p, n: catalogue().unpgettext(context, s, p, n),
        newstyle=True,
    )
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale() or DEFAULT)
