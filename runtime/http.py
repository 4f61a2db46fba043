"""What every HTTP hook shares: this process's services and the webhook secret check."""
from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, request

from runtime.services import Services

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
