"""Why Daraja would not (or did not) register a bar's C2B URLs, in one sentence each.

Daraja refuses C2B URLs with certain words in them (daraja.md: "mpesa", "m-pesa", "safaricom",
"exec", "cmd", "sql", "query"), so PesaTab checks PUBLIC_BASE_URL itself before asking and
names the word. Daraja's own refusals are read by code and wording:

- `401.003.01` "Invalid Access Token - Invalid API call as no apiproduct match found": the app on
  the Daraja portal lacks the C2B product, or has the other version of it (v1 and v2 are separate
  products with separate paths);
- "Urls are already registered" (integrators report it from production, where a shortcode's URLs
  register once and changes go through Safaricom; the exact code is not documented, so the words
  decide);
- `400.002.02` "Bad Request - Invalid ConfirmationURL" / "ValidationURL": the URL itself.
"""

from __future__ import annotations

import re
from datetime import datetime

from app.formats import local_time
from app.i18n import _
from app.mpesa import DarajaError

REFUSED_WORDS = ("m-pesa", "mpesa", "safaricom", "exec", "cmd", "sql", "query")
NO_PRODUCT = "401.003.01"
_ALREADY = re.compile(r"already\s+(been\s+)?registered|duplicate\s+url", re.IGNORECASE)
EAT = "Africa/Nairobi"

ALREADY_REGISTERED = "already_registered"
NO_PRODUCT_MATCH = "no_product"
URL_REFUSED = "url_refused"
OTHER = "other"


def refused_word(text: str) -> str | None:
    """The first word Daraja refuses in a C2B URL that `text` contains (any case), if any."""
    lowered = text.lower()
    return next((word for word in REFUSED_WORDS if word in lowered), None)


def in_eat(value: datetime | None) -> str:
    """A stored time as Safaricom's clock shows it: `07 Dec 2026, 21:05 EAT`."""
    return f"{local_time(value, EAT)} EAT" if value else ""


def url_problem(base: str, environment: str) -> str | None:
    """What is wrong with PUBLIC_BASE_URL for C2B, checked before Daraja is asked."""
    word = refused_word(base)
    if word is not None:
        return _(
            "PUBLIC_BASE_URL (%(base)s) contains “%(word)s”, and Daraja refuses C2B URLs with "
            "that word: they must not contain '%(word)s'. Serve PesaTab on an address without "
            "it (another host name or path), then register again.",
            base=base,
            word=word,
        )
    if environment == "production" and not base.lower().startswith("https://"):
        return _(
            "In production Daraja takes only https:// addresses, and PUBLIC_BASE_URL is "
            "%(base)s. Serve PesaTab over https, then register again.",
            base=base,
        )
    return None


def registered_already(shortcode: str, registered_at: datetime) -> str:
    """PesaTab itself registered this production shortcode before: do not send it blindly."""
    return _(
        "The C2B URLs of short code %(code)s were registered on %(when)s. In production "
        "Safaricom keeps the first registration, and changes go through Safaricom's "
        "self-service portal. Tick “Register again anyway” only if Safaricom has cleared the "
        "old URLs.",
        code=shortcode,
        when=in_eat(registered_at),
    )


def kind_of(err: DarajaError) -> str:
    """Which of Daraja's C2B refusals `err` is."""
    message = err.message or ""
    if err.error_code == NO_PRODUCT or "apiproduct" in message.lower():
        return NO_PRODUCT_MATCH
    if _ALREADY.search(message):
        return ALREADY_REGISTERED
    if (err.field or "").replace(" ", "").lower() in ("confirmationurl", "validationurl"):
        return URL_REFUSED
    return OTHER


def sentence(err: DarajaError, *, version: str, shortcode: str, base: str) -> str:
    """The one sentence for Daraja's refusal `err` of a C2B registration."""
    kind = kind_of(err)
    if kind == NO_PRODUCT_MATCH:
        other = "v1" if version == "v2" else "v2"
        return _(
            "Daraja answered “no apiproduct match found” (401.003.01): the app on the Daraja "
            "portal has no M-Pesa C2B %(version)s product. Add the C2B product to the app, or "
            "register with C2B %(other)s instead (the “My Daraja app only has C2B v1” box).",
            version=version,
            other=other,
        )
    if kind == ALREADY_REGISTERED:
        return _(
            "Daraja says the C2B URLs of short code %(code)s are registered already. In "
            "production they are registered once; changing them goes through Safaricom's "
            "self-service portal. If menu payments already show up in PesaTab, nothing needs "
            "doing.",
            code=shortcode,
        )
    if kind == URL_REFUSED:
        return _(
            "Daraja refused the %(which)s PesaTab gave it (built from PUBLIC_BASE_URL, "
            "%(base)s): it must be a public https address without words Daraja refuses "
            "(mpesa, safaricom, exec, cmd, sql, query).",
            which=err.field,
            base=base,
        )
    return _(
        "Daraja did not register the URLs (%(reason)s). Check that the app on the Daraja "
        "portal has the M-Pesa C2B product; in production a shortcode's URLs may already "
        "be registered and are changed through Safaricom.",
        reason=err.message,
    )
