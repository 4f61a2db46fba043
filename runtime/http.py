"""What every HTTP hook shares: this process's services, the webhook secret check, the
door that answers the plain gateway hooks in front of Flask, and the per-phone window
both the door and Flask's route count SMS in."""
from __future__ import annotations

import hmac
import io
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401 - registers the "werkzeug.url_quote" error handler
from flask import Flask, abort, current_app, request
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from runtime.services import Services

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
_KEY = "harambee"


def install(app: Flask, svc: Services) -> None:
    """Give `app` these services (the app factory does this once)."""
    app.extensions[_KEY] = svc


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[_KEY]  # type: ignore[no-any-return]


def require_webhook_key(view: F) -> F:
    """403 and no change unless `?key=` matches `security.webhook_key`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        expected = services().settings.security.webhook_key
        given = request.args.get("key", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------- the door in front of Flask

FORM = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024  # as the app's MAX_CONTENT_LENGTH


@dataclass(frozen=True)
class Answer:
    """What a hook at the door says: a status, a plain text body, any extra headers."""

    body: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = field(default=())

    def status_line(self) -> str:
        return {200: "200 OK", 400: "400 Bad Request", 429: "429 Too Many Requests",
                503: "503 Service Unavailable"}[self.status]


Hook = Callable[[Mapping[str, str], str], Answer]  # the form, the caller's address


class Door:
    """The plain gateway hooks answered in front of Flask (`/hooks/ussd`, `/hooks/sms`).
    Their requests are small urlencoded forms and their answers plain text; Flask's
    request context, URL matching, form parser and before and after hooks cost about as
    much CPU as a USSD menu hop's own work, or an SMS intake's (docs/architecture.md).
    The door takes the plain case: a POST to one of its paths with the right `?key=` and
    an urlencoded body with a length under the limit, read as Werkzeug reads it.
    Anything else goes on to Flask's routes, which answer it the same way (each calls
    the same hook) or refuse it (Flask's 403, 405 or 413)."""

    def __init__(self, inner: WSGIApplication, key: str, hooks: Mapping[str, Hook]) -> None:
        self.inner = inner
        self.key = key.encode()
        self.hooks = dict(hooks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        hook = self.hooks.get(environ.get("PATH_INFO", ""))
        form = self._form(environ) if hook is not None else None
        if hook is None or form is None:
            return self.inner(environ, start_response)
        said = hook(form, environ.get("REMOTE_ADDR") or "")
        body = said.body.encode()
        start_response(said.status_line(), [
            ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
            *said.headers])
        return [body]

    def _form(self, environ: WSGIEnvironment) -> dict[str, str] | None:
        if environ.get("REQUEST_METHOD") != "POST" or \
                environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != FORM:
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 <= length <= MAX_BODY or not self._keyed(environ.get("QUERY_STRING", "")):
            return None
        raw = environ["wsgi.input"].read(length)
        try:
            return first_values(raw.decode())
        except UnicodeDecodeError:  # Flask says what it says to that
            environ["wsgi.input"] = io.BytesIO(raw)
            return None

    def _keyed(self, query: str) -> bool:
        given = first_values(query).get("key", "")
        return hmac.compare_digest(given.encode(), self.key)


def first_values(urlencoded: str) -> dict[str, str]:
    """An urlencoded form as Werkzeug reads `request.form` (the same parser and error
    handler: `+` for a space, a bad escape kept as typed), and as `.get` sees it: the
    first value of a repeated field."""
    form: dict[str, str] = {}
    for name, value in parse_qsl(urlencoded, keep_blank_values=True,
                                 errors="werkzeug.url_quote"):
        form.setdefault(name, value)
    return form


# ---------------------------------------------------------------- SMS per phone

_WINDOW = "harambee.sms_window"


class PhoneWindow:
    """`security.sms_rate_limit` per sending phone, counted in the app's Redis (so every
    web process counts together) with flask-limiter's own engine, the `limits` library
    (fixed window). Not through flask-limiter itself: its check needs a Flask request,
    and the door answers SMS without one; the door and Flask's route both count here.
    A Redis outage lets messages through, as flask-limiter's `swallow_errors` does (the
    hook stores to the database, which is what must not be lost)."""

    def __init__(self, svc: Services) -> None:
        self.item = parse(svc.settings.security.sms_rate_limit)
        self.window = FixedWindowRateLimiter(RedisStorage(
            "redis://", connection_pool=svc.redis.client.connection_pool))
        self.retry_after = str(self.item.get_expiry())

    def allows(self, phone: str) -> bool:
        try:
            return bool(self.window.hit(self.item, "harambee:limits", "sms", phone))
        except Exception:  # noqa: BLE001 - counted nowhere is better than stored nowhere
            log.warning("SMS rate limit not counted: Redis unavailable")
            return True


def install_sms_window(app: Flask, window: PhoneWindow) -> None:
    app.extensions[_WINDOW] = window


def sms_window() -> PhoneWindow:
    """The per-phone window of the app handling the current request."""
    return current_app.extensions[_WINDOW]  # type: ignore[no-any-return]
