"""The shared webhook secret that every `/hooks/*` route requires."""
from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, request

F = TypeVar("F", bound=Callable[..., Any])


def require_webhook_key(view: F) -> F:
    """403 and no change unless `?key=` matches `security.webhook_key`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        expected = current_app.extensions["harambee"].settings.security.webhook_key
        given = request.args.get("key", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
