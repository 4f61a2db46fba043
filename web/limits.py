"""Rate limits on the hooks a flood could fill, by flask-limiter on the app's Redis (so
every web process counts together). The USSD hook keeps its own per-phone limit inside
the session's Redis round trip (`ussd/session.py`); the SMS hook counts each phone with
flask-limiter's engine directly (`runtime/http.py` `PhoneWindow`), since the door in
front of Flask answers it without a Flask request."""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from runtime.services import Services

LIMITED = ("payments.payment_hook", "console.login")  # limited below


def install(app: Flask, svc: Services) -> Limiter:
    """Limit `/hooks/payments` and console logins per calling address.
    A Redis outage lets requests through (the hooks store to the database, which is
    what must not be lost); a limited request gets 429 and nothing is stored.

    No X-RateLimit headers: the gateways ignore them, and they cost each limited
    request two more Redis round trips (the window's count and its expiry) on top of
    the one that counts it. A 429 still says when to come back (Retry-After: the
    window's length, an upper bound)."""
    security = svc.settings.security
    limiter = Limiter(get_remote_address, app=app, storage_uri="redis://",
                      storage_options={  # the app's own Redis connections
                          "connection_pool": svc.redis.client.connection_pool},  # type: ignore[dict-item]
                      strategy="fixed-window", swallow_errors=True, default_limits=[],
                      key_prefix="harambee:limits", headers_enabled=False,
                      auto_check=False)  # checked below, on the limited endpoints only

    _limit(app, limiter, "payments.payment_hook", security.payments_rate_limit,
           lambda: "payments:" + get_remote_address())
    # Console logins: a brake per address on top of the lock on each account.
    _limit(app, limiter, "console.login", security.console_login_limit,
           lambda: "console-login:" + get_remote_address(), methods=["POST"])
    # Every other endpoint has no limit and pays nothing: flask-limiter's own check before
    # each request cost a tenth of a paybill confirmation and of a USSD hop, even when
    # told at once that the endpoint is exempt.

    @app.before_request
    def _check() -> None:
        if request.endpoint in LIMITED:
            limiter.check()

    app.register_error_handler(429, _too_many)
    return limiter


def _limit(app: Flask, limiter: Limiter, endpoint: str, rate: str,
           key: Callable[[], str], methods: list[str] | None = None) -> None:
    view = app.view_functions[endpoint]
    app.view_functions[endpoint] = limiter.limit(  # type: ignore[assignment]
        rate, key_func=key, methods=methods)(view)


def _too_many(exc: Exception) -> Response:
    response = Response("too many requests; try again later", status=429,
                        mimetype="text/plain")
    if isinstance(exc, RateLimitExceeded):
        response.headers["Retry-After"] = str(exc.limit.limit.get_expiry())
    return response
