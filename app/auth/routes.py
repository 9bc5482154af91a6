from urllib.parse import unquote, urlsplit, urlunsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required, login_url, login_user, logout_user

from app.auth import accounts, reset, throttle
from app.auth.forms import ForgotPasswordForm, LoginForm, SetPasswordForm, SignupForm
from app.enums import Role
from app.extensions import limiter, login_manager
from app.i18n import DEFAULT, N_, _
from app.models import SetPasswordLink
from app.web import htmx

bp = Blueprint("auth", __name__)

NO_MATCH = N_("That email or phone number and password do not match an active account.")
TOO_MANY_HERE = N_(
    "Too many wrong passwords for this account from here. Wait a few minutes and try again, "
    "or ask your bar's owner or manager for a new set-password link."
)
TOO_MANY_FOR_ACCOUNT = N_(
    "This account is being signed in to with wrong passwords from many places, so new devices "
    "wait a few minutes. A device you have signed in from before can sign in now."
)


# What a browser does to a URL before it follows it (WHATWG URL parsing): it drops tabs and
# newlines anywhere, trims leading control characters and spaces, and reads a backslash as a
# slash. So "/\t/evil.example" and "/\\evil.example" are both "//evil.example", another host.
_BROWSER_DROPS = dict.fromkeys(map(ord, "\t\n\r"))


def local_path(target: str | None) -> str | None:
    """`target` as a path on this host, or None when a browser could read it as anywhere else.

    Decided on what the browser will see, and strictly: a path of ours never needs a control
    character, a backslash or a leading space, so any of them (raw or percent-encoded, decoded
    up to three times) refuses the whole value rather than being repaired.
    """
    if not target:
        return None
    seen = target
    # Decoded, and decoded again: proxies and frameworks may decode once more.
    for _decoding in range(3):
        browser = seen.translate(_BROWSER_DROPS).lstrip("".join(map(chr, range(0x21))))
        if browser != seen or "\\" in seen or any(ord(c) < 0x20 or ord(c) == 0x7F for c in seen):
            return None
        if not seen.startswith("/") or seen.startswith("//"):
            return None
        decoded = unquote(seen)
        if decoded == seen:
            break
        seen = decoded
    else:
        return None  # still changing after three decodings: nobody of ours writes that
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def _safe_next(target: str | None, user) -> str:
    """Where to go after signing in: a `next` on this host, else the person's working page (a
    cashier's is the tab list; owners and managers start on the dashboard)."""
    path = local_path(target)
    if path is not None:
        return path
    return url_for("tabs.index") if user.role == Role.CASHIER else url_for("dashboard.index")


@login_manager.unauthorized_handler
def sign_in_first():
    """A signed-out request for a page goes to the sign-in form and comes back after it.

    An htmx request (a live-status poll, a form swap) answers 401 with `HX-Redirect` instead: a
    302 would be followed inside the request and the sign-in form swapped into a corner of the
    screen. The whole page goes to sign in, and returns to where the person was.
    """
    if htmx.is_htmx():
        here = urlsplit(request.headers.get("HX-Current-URL", ""))
        back = local_path(urlunsplit(("", "", here.path, here.query, ""))) or request.path
        response = current_app.response_class(status=401)
        response.headers["HX-Redirect"] = login_url(login_manager.login_view, next_url=back)
        return response
    # The message is lazy (app/__init__.py): flashed as text in this request's language.
    flash(str(login_manager.login_message), login_manager.login_message_category)
    return redirect(login_url(login_manager.login_view, next_url=request.full_path.rstrip("?")))


# Fair throttling (app/auth/throttle.py): per (address or known device, account), per address,
# per account; a known device is exempt from the last two. Only failed attempts count.
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    throttle.limit("LOGIN_LIMIT_PER_ADDRESS"),
    methods=["POST"],
    deduct_when=throttle.failed,
    exempt_when=throttle.known_device,
)
@limiter.limit(
    throttle.limit("LOGIN_LIMIT_PER_PAIR"),
    key_func=throttle.pair_key,
    methods=["POST"],
    deduct_when=throttle.failed,
    error_message=lambda: _(TOO_MANY_HERE),
)
@limiter.limit(
    throttle.limit("LOGIN_LIMIT_PER_ACCOUNT"),
    key_func=throttle.account_key,
    methods=["POST"],
    deduct_when=throttle.failed,
    exempt_when=throttle.known_device,
    error_message=lambda: _(TOO_MANY_FOR_ACCOUNT),
)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=form.remember.data)
            response = redirect(_safe_next(request.args.get("next"), user))
            throttle.remember_device(response, user)
            return response
        form.password.errors.append(_(NO_MATCH))
    return render_template("auth/login.html", form=form)


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(throttle.limit("FORGOT_PASSWORD_LIMIT_PER_ADDRESS"), methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        reset.request_link(form.email.data)
        return render_template("auth/forgot_password.html", form=form, answer=reset.answer())
    return render_template("auth/forgot_password.html", form=form, answer=None)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGNUP_LIMIT_PER_ADDRESS"], methods=["POST"])
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        try:
            owner = accounts.create_bar_with_owner(
                form.bar_name.data,
                form.owner_name.data,
                form.email.data,
                form.password.data,
                locale=str(get_locale() or DEFAULT),  # the language the sign-up was read in
            )
        except accounts.AccountError as err:
            getattr(form, err.field or "email").errors.append(str(err))
        else:
            login_user(owner)
            flash(
                _(
                    "Welcome to PesaTab, %(name)s. %(bar)s is ready.",
                    name=owner.name,
                    bar=owner.bar.name,
                ),
                "success",
            )
            return redirect(url_for("dashboard.index"))
    return render_template("auth/signup.html", form=form)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def set_password(token: str):
    link = SetPasswordLink.find_usable(token)
    if link is None:
        return render_template("auth/link_invalid.html"), 404
    form = SetPasswordForm()
    if form.validate_on_submit():
        user = accounts.use_link(link, form.password.data)
        logout_user()
        login_user(user)
        flash(_("Your password is set. Welcome!"), "success")
        response = redirect(_safe_next(None, user))
        throttle.remember_device(response, user)
        return response
    return render_template(
        "auth/set_password.html",
        form=form,
        user=link.user,
        sign_in_name=accounts.sign_in_name(link.user),
    )
