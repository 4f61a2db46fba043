"""The app served over real HTTP in a thread, wired to a fake Daraja that calls it back:
money moved only by Daraja-format calls, end to end, as in production."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from werkzeug.serving import make_server

from mpesa.fake import FakeDaraja
from runtime.mpesa import CallbackUrls
from runtime.services import Services
from web.app import create_app
from workers import jobs


@dataclass
class Live:
    """The services (with the daraja rail), the fake Daraja, and the app's base URL."""

    services: Services
    fake: FakeDaraja
    base_url: str

    @property
    def urls(self) -> CallbackUrls:
        return CallbackUrls.of(self.services.settings)


class _Late:
    """A WSGI app set after the server has its port (the settings need the port)."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@contextmanager
def live_daraja(services: Services) -> Iterator[Live]:
    """The test's services switched to the daraja rail against a fake Daraja, the app
    served on a free port, the C2B URLs registered, and the services bound for jobs."""
    fake = FakeDaraja(seed=7).start()
    late = _Late()
    server = make_server("127.0.0.1", 0, late, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    s = services.settings
    settings = replace(
        s, gateway=replace(s.gateway, payout="daraja"),
        mpesa=replace(s.mpesa, base_url=fake.base_url, consumer_key=fake.consumer_key,
                      consumer_secret=fake.consumer_secret, shortcode=fake.shortcode,
                      passkey=fake.passkey, initiator_name=fake.initiator_name,
                      security_credential=fake.security_credential,
                      callback_base_url=base_url))
    svc = Services(settings=settings, db=services.db, redis=services.redis,
                   clock=services.clock)
    late.app = create_app(services=svc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    jobs.bind(svc)
    try:
        assert svc.daraja is not None
        urls = CallbackUrls.of(settings)
        svc.daraja.register_urls(confirmation_url=urls.c2b_confirmation,
                                 validation_url=urls.c2b_validation)
        yield Live(svc, fake, base_url)
    finally:
        jobs.bind(None)
        server.shutdown()
        thread.join(timeout=10)
        fake.stop()
