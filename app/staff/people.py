"""The Staff page's domain: who is listed, who may give whom a new set-password link, and the
sentence a link is passed on with. No views here (accounts themselves: app/auth/accounts.py)."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select

from app.enums import Role
from app.extensions import db
from app.i18n import _
from app.models import User

WHATSAPP_SHARE = "https://wa.me/?text="


def of_bar(bar_id: int) -> list[User]:
    """The bar's people, active first, by name."""
    return list(
        db.session.scalars(
            select(User).where(User.bar_id == bar_id).order_by(User.active.desc(), User.name)
        )
    )


def may_issue_link(issuer: User, person: User) -> bool:
    """Owners give new set-password links to everyone else in the bar, managers to cashiers;
    nobody to a deactivated person, or to themselves (they are signed in)."""
    if not person.active or person.id == issuer.id or person.bar_id != issuer.bar_id:
        return False
    if issuer.role == Role.OWNER:
        return True
    return issuer.role == Role.MANAGER and person.role == Role.CASHIER


def link_refusal(issuer: User, person: User) -> str:
    """Why `issuer` may not give `person` a link, in a sentence."""
    if not person.active:
        return _(
            "%(name)s is deactivated: reactivate them first, then give a new link.",
            name=person.name,
        )
    if person.id == issuer.id:
        return _("You are signed in: a link is for someone who cannot sign in.")
    return _("Managers give new links to cashiers only; ask the bar's owner for this one.")


def share_sentence(person: User, link: str, hours: int) -> str:
    """What the owner sends with the link (WhatsApp, SMS, by hand), in the language it is
    called in (the Staff page chooses the person's: `accounts.reader_locale`)."""
    return _(
        "Hi %(name)s, choose your PesaTab password for %(bar)s with this link "
        "(it works once, within %(hours)s hours): %(link)s",
        name=person.name,
        bar=person.bar.name,
        hours=hours,
        link=link,
    )


def whatsapp_url(sentence: str) -> str:
    """WhatsApp's share link: the person chooses the chat, the sentence is filled in."""
    return WHATSAPP_SHARE + quote(sentence, safe="")
