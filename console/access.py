"""Who is using the console, and what they may do.

- Sessions are Flask-Login's, in Flask's signed cookie (`security.console_secret`),
  named `harambee_console`, HttpOnly, SameSite=Lax, and Secure everywhere but in
  development (`app.environment = "development"`, which the demo and the tests use
  over plain http on localhost): production serves the console over https only.
- Every POST under `/console` must carry the CSRF token (Flask-WTF's `csrf.protect()`
  in the blueprint's `before_request`; the hooks elsewhere are not forms and are not
  touched); a form without it gets 400 and changes nothing.
- Nobody logged in: every `/console` page but the login redirects there.
- `requires(*roles)` wraps every view and action; admin may do anything. The menu
  hides what a role may not open, but the check is here, on the server.
- Failed logins: flask-limiter per calling address (`security.console_login_limit`,
  `web/limits.py`) and a lock on the account after five in a row (`core/operators.py`).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Request,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Response as FlaskResponse
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response

from console.render import form_text
from core import audit, operators
from core.errors import DomainError
from core.messages import text
from core.models import Operator, OperatorRole
from runtime.http import services
from runtime.services import Services

F = TypeVar("F", bound=Callable[..., Any])
bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf = CSRFProtect()
OPEN = ("console.login", "console.static")

SUPPORT, FINANCE, ADMIN = OperatorRole.SUPPORT, OperatorRole.FINANCE, OperatorRole.ADMIN
ANYONE = (SUPPORT, FINANCE, ADMIN)


class ConsoleUser:
    """The logged-in operator as Flask-Login keeps them (plain values, no ORM row)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, operator: Operator) -> None:
        self.id, self.email, self.role = operator.id, operator.email, operator.role

    def get_id(self) -> str:
        return str(self.id)

    def may(self, *roles: OperatorRole) -> bool:
        return self.role == ADMIN or self.role in roles

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(self.id, self.email)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with no work for a request that brings no cookie
    and leaves the session untouched: every hook a gateway calls. Flask's own builds its
    signer and reads seven cookie settings on each request (a tenth of a USSD hop)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)) and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: FlaskResponse
                     ) -> None:
        if session or session.modified:
            super().save_session(app, session, response)
        elif session.accessed:  # as Flask's own does for a session left empty
            response.vary.add("Cookie")


def install(app: Flask, svc: Services) -> None:
    """The console's blueprint, sessions and CSRF on `app`."""
    app.session_interface = CookieSessions()
    development = svc.settings.app.environment == "development"
    app.config.update(
        SECRET_KEY=svc.settings.security.console_secret,
        SESSION_COOKIE_NAME="harambee_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=not development,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=not development,
        WTF_CSRF_CHECK_DEFAULT=False,  # only the console's forms; not the hooks
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        WTF_CSRF_SSL_STRICT=not development,
    )
    csrf.init_app(app)
    manager = LoginManager()
    manager.login_view = "console.login"
    manager.session_protection = "strong"
    manager.init_app(app)

    @manager.user_loader
    def load(operator_id: str) -> ConsoleUser | None:
        if not operator_id.isdigit():
            return None
        operator = operators.get_operator(services().uow(), int(operator_id))
        return ConsoleUser(operator) if operator is not None else None

    from console import admin, book, community, money, people  # noqa: F401 - views join `bp`

    app.register_blueprint(bp)


@bp.before_request
def _gate() -> Response | None:
    if request.endpoint in OPEN:
        if request.method == "POST":
            csrf.protect()
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method == "POST":
        csrf.protect()
    return None


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template("console/refused.html", title="Form refused",
                           why=f"{error.description} Nothing was changed; reload the page "
                               "and try again."), 400


@bp.errorhandler(403)
def _forbidden(_: Exception) -> tuple[str, int]:
    return render_template("console/refused.html", title="Not for your role",
                           why="Your role may not open this page."), 403


@bp.errorhandler(404)
def _not_found(_: Exception) -> tuple[str, int]:
    return render_template("console/refused.html", title="Not found",
                           why="There is nothing at this address."), 404


def requires(*roles: OperatorRole) -> Callable[[F], F]:
    """Let only these roles (and admin) through; 403 for anyone else."""

    def wrap(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("console.login"))
            if not current_user.may(*roles):
                abort(403)
            return view(*args, **kwargs)

        checked.roles = roles  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return wrap


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console/"):
            return target
    return url_for("console.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("console/login.html", title="Log in",
                               next=request.args.get("next", ""))
    svc = services()
    try:
        operator = operators.authenticate(
            svc.uow(), email=form_text("email", 254),
            password=form_text("password", 200),
            code=form_text("code", 12), now=svc.now())
    except DomainError as exc:
        flash(text(exc.key, "en", **exc.params), "error")
        return render_template("console/login.html", title="Log in",
                               next=request.form.get("next", ""),
                               email=form_text("email", 254)), 401
    session.clear()  # a fresh session: nothing from before the login carries over
    session.permanent = True
    login_user(ConsoleUser(operator))
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
@requires(*ANYONE)
def logout() -> Response:
    logout_user()
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/")
@requires(*ANYONE)
def home() -> Response:
    if current_user.may(FINANCE):
        return redirect(url_for("console.dashboard"))
    return redirect(url_for("console.members"))
