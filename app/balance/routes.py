"""The owner's "M-Pesa balance": ask (POST /balance/) and watch the answer arrive
(GET /balance/<id>, polled every 2 s while M-Pesa is being asked).

Owner only, like the M-Pesa page and the initiator credentials the request is signed with: the
balance is the whole business's money (not a shift's, which managers see), and each ask spends
the bar's few Account Balance requests. A manager or cashier gets 403; another bar's request
answers 404."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

from app.balance import service
from app.enums import Role
from app.web import htmx
from app.web.security import current_bar, role_required

bp = Blueprint("balance", __name__, url_prefix="/balance")


def _render(card: service.Card, status: int = 200):
    return htmx.render("balance/_card.html", "balance/page.html", status, card=card)


@bp.post("/")
@role_required(Role.OWNER)
def ask():
    bar = current_bar()
    try:
        card = service.ask(bar, current_user.id)
    except service.TooSoon as err:
        return _render(service.card(bar, notice=str(err)), 429)
    return _render(card)


@bp.get("/<int:request_id>")
@role_required(Role.OWNER)
def show(request_id: int):
    found = service.request_for(current_bar(), request_id)
    if found is None:
        abort(404)
    return _render(service.card(current_bar(), found))
