"""The app factory: settings, services and blueprints wired in one place."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from console import access as console
from console.render import install_filters
from mpesa.hooks import bp as mpesa_hooks
from runtime import http
from runtime.services import Services, build_services
from sms.http import at_the_door as sms_door
from sms.http import bp as sms_hooks
from ussd.http import at_the_door as ussd_door
from ussd.http import bp as ussd_hooks
from web import limits
from web.health import bp as health
from web.payments import bp as payment_hook
from web.simulator import bp as simulator


def create_app(test_config: Mapping[str, Mapping[str, Any]] | None = None, *,
               services: Services | None = None) -> Flask:
    """Build the app. `test_config` overrides settings by section; tests may pass
    ready-made `services` (sharing a database and Redis with the test)."""
    app = Flask(__name__)
    svc = services or build_services(overrides=test_config)
    http.install(app, svc)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    proxies = svc.settings.security.trusted_proxies
    if proxies:  # the caller's address, as the proxies we trust say it
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    for blueprint in (health, payment_hook, ussd_hooks, sms_hooks, mpesa_hooks):
        app.register_blueprint(blueprint)
    console.install(app, svc)
    install_filters(app)
    if svc.settings.simulator.enabled and svc.settings.app.environment != "production":
        app.register_blueprint(simulator)  # the demo's phones; never in production
    limits.install(app, svc)
    window = http.PhoneWindow(svc)
    http.install_sms_window(app, window)
    app.wsgi_app = http.Door(app.wsgi_app, svc.settings.security.webhook_key, {  # type: ignore[method-assign]
        "/hooks/ussd": ussd_door(svc), "/hooks/sms": sms_door(svc, window)})
    return app
