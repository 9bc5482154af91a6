"""Error pages that say what to do and reveal nothing internal."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.i18n import N_, _
from app.web import htmx

MESSAGES = {
    400: (
        N_("Something in that request was not right"),
        N_("Go back, check the form and try again."),
    ),
    403: (
        N_("You can't open this page"),
        N_("Your role does not allow it. Ask the bar's owner if you need it."),
    ),
    404: (
        N_("Page not found"),
        N_("The page or item does not exist, or belongs to another bar."),
    ),
    405: (
        N_("That action is not allowed here"),
        N_("Go back and use the buttons on the page."),
    ),
    413: (N_("That upload is too large"), N_("Choose a smaller file and try again.")),
    429: (N_("Too many attempts"), N_("Wait a few minutes, then try again.")),
    500: (
        N_("Something went wrong on our side"),
        N_("Nothing was changed. Try again in a moment."),
    ),
}


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def render_error(status: int, title: str | None = None, hint: str | None = None):
    default_title, default_hint = MESSAGES.get(status, MESSAGES[400 if status < 500 else 500])
    title, hint = title or default_title, hint or default_hint
    if _wants_json():  # for programs: the API speaks English
        return jsonify(error={"code": str(status), "message": f"{title}. {hint}"}), status
    template = "errors/_fragment.html" if htmx.is_htmx() else "errors/error.html"
    # Known sentences in the reader's language; one the raiser wrote itself as it is.
    return render_template(template, status=status, title=_(title), hint=_(hint)), status


def _csrf_error(error: CSRFError):
    return render_error(
        400,
        N_("This form has expired"),
        N_("Reload the page and submit it again; nothing was saved."),
    )


def _http_error(error: HTTPException):
    if error.response is not None:
        # The raiser built the answer itself (the push limit answers with the pay panel and
        # its sentence, app/tabs/routes.py): that is the page to show.
        return error.response
    hint = None
    # Flask-Limiter puts a custom sentence in the description; its default is the limit itself.
    if error.code == 429 and error.description and " per " not in error.description:
        hint = error.description
    return render_error(error.code or 500, hint=hint)


def _unexpected_error(error: Exception):
    # Log the traceback for operators; the person sees only a generic page.
    from flask import current_app

    current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
    return render_error(InternalServerError.code)
