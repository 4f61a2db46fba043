"""The app factory: settings, services and blueprints wired in one place."""
from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from web.services import Services, build_services

log = logging.getLogger(__name__)

# Channel blueprints: (module, attribute). Each is optional until its issue lands.
CHANNELS = (("ussd.http", "bp"), ("sms.http", "bp"))


def create_app(test_config: Mapping[str, Mapping[str, Any]] | None = None, *,
               services: Services | None = None) -> Flask:
    """Build the app. `test_config` overrides settings by section; tests may pass
    ready-made `services` (sharing a database and Redis with the test)."""
    app = Flask(__name__)
    svc = services or build_services(overrides=test_config)
    app.extensions["harambee"] = svc
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

    from web import health, payments

    app.register_blueprint(health.bp)
    app.register_blueprint(payments.bp)
    for module_name, attr in CHANNELS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise  # a missing dependency inside the module is a real error
            continue
        app.register_blueprint(getattr(module, attr))
    return app
