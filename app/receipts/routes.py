"""Receipt pages: a paid tab's receipt (signed in), sharing it by link, revoking a link, the
public page a link opens (signed out), and the owner's receipt details (address, KRA PIN)."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.enums import BAR_ROLES, Role
from app.extensions import db, limiter
from app.i18n import _
from app.models import Bar, ReceiptLink, Tab
from app.receipts import content, details, links, share
from app.receipts.forms import ActionForm, DetailsForm
from app.tabs.queries import tab_payments
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("receipts", __name__)
PAPERS = ("80mm", "a4")
# The public page is for one receipt: nothing about it may travel on (the token is in its URL)
# or be indexed.
PUBLIC_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


@bp.app_context_processor
def _tab_page_helpers() -> dict:
    """The tab page's receipt card (templates/receipts/_tab_card.html) asks these."""
    return {"receipt_ready": content.is_paid, "receipt_links": links.live_links}


def public_url(token: str) -> str:
    """The link as the customer opens it: on PUBLIC_BASE_URL, where the bar is reached."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return base + url_for("receipts.public", token=token)


def _share(receipt: content.Receipt, token: str, tab: Tab) -> dict:
    url = public_url(token)
    text = share.message(receipt.bar_name, url)
    phone = share.customer_phone(tab_payments(tab.id))
    return {
        "url": url,
        "qr": share.qr_data_uri(url),
        "whatsapp": share.whatsapp_url(text),
        "whatsapp_customer": share.whatsapp_url(text, phone) if phone else None,
        "phone": phone,
    }


def _page(tab: Tab, token: str | None = None, status: int = 200):
    receipt = content.build(tab, current_bar())
    if receipt is None:
        return render_template("receipts/not_paid.html", tab=tab), 409
    paper = request.args.get("paper")
    return render_template(
        "receipts/page.html",
        tab=tab,
        receipt=receipt,
        shared=_share(receipt, token, tab) if token else None,
        links=links.live_links(tab),
        paper=paper if paper in PAPERS else None,
        action=ActionForm(),
        timezone=receipt.timezone,
    ), status


@bp.get("/tabs/<int:tab_id>/receipt")
@role_required(*BAR_ROLES)
def show(tab_id: int):
    return _page(bar_object_or_404(Tab, tab_id))


@bp.post("/tabs/<int:tab_id>/receipt/link")
@role_required(*BAR_ROLES)
def create_link(tab_id: int):
    """A new link for the customer: shown once on the answer, with its QR and WhatsApp."""
    tab = bar_object_or_404(Tab, tab_id)
    if content.build(tab, current_bar()) is None:
        return render_template("receipts/not_paid.html", tab=tab), 409
    _link, token = links.issue(tab, current_user.id)
    return _page(tab, token=token, status=201)


@bp.post("/tabs/<int:tab_id>/receipt/link/<int:link_id>/revoke")
@role_required(*BAR_ROLES)
def revoke_link(tab_id: int, link_id: int):
    tab = bar_object_or_404(Tab, tab_id)
    link = bar_object_or_404(ReceiptLink, link_id)
    if link.tab_id != tab.id:
        abort(404)
    if links.revoke(link, current_user.id):
        flash(_("The receipt link no longer works."), "success")
    else:
        flash(_("That receipt link had already stopped working."), "info")
    back = request.form.get("back")
    target = url_for("tabs.detail", tab_id=tab.id) if back == "tab" else None
    return redirect(target or url_for("receipts.show", tab_id=tab.id))


def _too_many(_limit):
    return _public_answer(render_template("receipts/missing.html", too_many=True), 429)


def _public_answer(html: str, status: int):
    response = make_response(html, status)
    response.headers.update(PUBLIC_HEADERS)
    return response


@bp.get("/r/<token>")
@limiter.limit(
    lambda: current_app.config["RECEIPT_LIMIT_PER_ADDRESS"],
    on_breach=_too_many,
)
def public(token: str):
    """The receipt a link shows, to anyone holding it: that tab's receipt and nothing else.
    Unknown, tampered, revoked and expired links, and a tab no longer paid, answer the same
    404."""
    link = links.find_usable(token)
    receipt = None
    if link is not None:
        bar = db.session.get(Bar, link.bar_id)
        tab = db.session.get(Tab, link.tab_id)
        receipt = content.build(tab, bar) if tab is not None and bar is not None else None
    if receipt is None:
        return _public_answer(render_template("receipts/missing.html", too_many=False), 404)
    url = public_url(token)
    html = render_template(
        "receipts/public.html",
        receipt=receipt,
        qr=share.qr_data_uri(url),
        whatsapp=share.whatsapp_url(share.message(receipt.bar_name, url)),
    )
    return _public_answer(html, 200)


@bp.route("/settings/receipts/", methods=["GET", "POST"])
@role_required(Role.OWNER)
def settings():
    """What the bar's receipts print under its name: the address and the KRA PIN."""
    bar = current_bar()
    form = DetailsForm(obj=bar) if request.method == "GET" else DetailsForm()
    if request.method == "POST" and form.validate():
        details.save(bar, form.address.data or "", form.kra_pin.data or "")
        flash(_("Receipt details saved."), "success")
        return redirect(url_for("receipts.settings"))
    status = 400 if form.errors else 200
    return render_template("receipts/settings.html", form=form, bar=bar), status
