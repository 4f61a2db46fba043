"""The app factory: settings, services and blueprints wired in one place."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from runtime import http
from runtime.services import Services, build_services
from sms.http import bp as sms_hooks
from ussd.http import bp as ussd_hooks
from web.health import bp as health
from web.payments import bp as payment_hook


def create_app(test_config: Mapping[str, Mapping[str, Any]] | None = None, *,
               services: Services | None = None) -> Flask:
    """Build the app. `test_config` overrides settings by section; tests may pass
    ready-made `services` (sharing a database and Redis with the test)."""
    app = Flask(__name__)
    http.install(app, services or build_services(overrides=test_config))
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    for blueprint in (health, payment_hook, ussd_hooks, sms_hooks):
        app.register_blueprint(blueprint)
    return app
