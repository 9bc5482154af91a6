"""The counter's "Verify an M-Pesa code": ask (POST /verify/) and watch the answer arrive
(GET /verify/<id>, polled every 2 s while M-Pesa is being asked). Everyone at the counter."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, request
from flask_login import current_user
from limits import parse

from app.enums import BAR_ROLES
from app.extensions import limiter
from app.verify import codes
from app.web import htmx
from app.web.security import current_bar, role_required

bp = Blueprint("verify", __name__, url_prefix="/verify")


def _may_ask() -> bool:
    """One more code asked of M-Pesa for this bar, if VERIFY_LIMIT_PER_BAR has room (counted
    where the other rate limits are, so every worker counts the same)."""
    if not limiter.enabled:
        return True
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    limit = parse(current_app.config["VERIFY_LIMIT_PER_BAR"])
    return limiter.limiter.hit(limit, prefix, "verify-bar", str(current_user.bar_id))


def _render(answer: codes.Answer | None, *, error: str | None = None, code: str = "",
            status: int = 200):  # fmt: skip
    return htmx.render(
        "verify/_result.html",
        "verify/page.html",
        status,
        answer=answer,
        error=error,
        code=code,
        tab_id=request.values.get("tab", type=int),
    )


@bp.post("/")
@role_required(*BAR_ROLES)
def ask():
    typed = (request.form.get("code") or "")[:40]
    try:
        answer = codes.verify(current_bar(), current_user.id, typed, _may_ask)
    except codes.CodeError as err:
        return _render(None, error=str(err), code=typed, status=422)
    except codes.AskLimited as err:
        return _render(None, error=str(err), code=typed, status=429)
    return _render(answer, code=answer.code)


@bp.get("/<int:request_id>")
@role_required(*BAR_ROLES)
def answer(request_id: int):
    found = codes.request_for(current_bar(), request_id)
    if found is None:
        abort(404)
    return _render(codes.present(current_bar(), found), code=found.subject)
