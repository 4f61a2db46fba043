"""The production topology the fault harness runs and breaks: a private `redis-server`,
a PostgreSQL database of its own, gunicorn with 2 workers, 2 RQ workers (`harambee
worker`) and `harambee cron`.

Every process is started in a process group of its own (`start_new_session`), kept by
its `Popen` handle, and stopped by that group's id: nothing is looked up by name. The
database is created at start and dropped at the end, whatever happened in between.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OBSERVER = "faults-observer"  # application_name of the harness's own connections


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(child: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """SIGTERM the child's process group, wait up to `grace`, then SIGKILL the group."""
    if child is None:
        return
    if child.poll() is None:
        _signal_group(child, signal.SIGTERM)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(child, signal.SIGKILL)  # whatever the leader left behind in its group
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def kill_group(child: subprocess.Popen[Any]) -> None:
    """SIGKILL the child's whole process group (the fault), and reap the leader."""
    _signal_group(child, signal.SIGKILL)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(child: subprocess.Popen[Any], sig: int) -> None:
    try:
        os.killpg(child.pid, sig)  # its own group: the group id is the leader's pid
    except ProcessLookupError:
        pass


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux /proc)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextmanager
def own_database(base_url: str, name: str) -> Iterator[str]:
    """A new PostgreSQL database `name` on `base_url`'s server, dropped afterwards even
    if the run fails; yields its URL (`postgresql://...`)."""
    url = make_url(base_url.replace("postgresql://", "postgresql+psycopg://", 1))
    if url.host not in LOOPBACK:
        raise SystemExit("the fault harness runs on loopback only")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (url.set(database=name).render_as_string(hide_password=False)
               .replace("postgresql+psycopg://", "postgresql://"))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def observer(database_url: str) -> Engine:
    """The harness's own reads of the app's database: one connection a read (so a
    terminated backend never lingers here), named so the fault spares it."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url, poolclass=NullPool,
                         connect_args={"application_name": OBSERVER})


@dataclass
class Topology:
    """The running processes, by role, and how to reach them."""

    env: dict[str, str]
    workdir: Path
    web_port: int
    redis_port: int
    database_url: str
    redis_server: subprocess.Popen[bytes] | None = None
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes] | None] = field(default_factory=lambda: [None, None])
    cron: subprocess.Popen[bytes] | None = None

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

    # ------------------------------------------------------------ Redis

    def start_redis(self) -> None:
        """A private redis-server without persistence: a kill loses everything in it."""
        self.redis_server = self._spawn("redis", [
            "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir)])
        client = redis.Redis.from_url(self.redis_url, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
            finally:
                client.close()
        raise SystemExit("redis-server did not come up")

    def kill_redis(self) -> None:
        assert self.redis_server is not None
        kill_group(self.redis_server)

    # ------------------------------------------------------------ the app

    def run_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`harambee ARGS` in a process of its own (a group of its own, waited for)."""
        return subprocess.run([PYTHON, "-m", "cli", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout,
                              start_new_session=True, check=False)

    def start_web(self) -> None:
        self.web = self._spawn("web", [
            PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.web_port}", "--workers", "2",
            "--timeout", "30", "--log-level", "warning", "wsgi:app"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.web.poll() is None:
            try:
                requests.get(f"{self.base_url}/healthz", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not come up (see web.log)")

    def web_workers(self) -> list[int]:
        assert self.web is not None
        return children(self.web.pid)

    def start_worker(self, n: int) -> None:
        self.workers[n] = self._spawn(f"worker{n}", [PYTHON, "-m", "cli", "worker"])

    def kill_worker(self, n: int) -> None:
        worker = self.workers[n]
        assert worker is not None
        kill_group(worker)

    def start_cron(self) -> None:
        self.cron = self._spawn("cron", [PYTHON, "-m", "cli", "cron"])

    def start_all(self) -> None:
        self.start_redis()
        migrated = self.run_cli("db", "upgrade")
        if migrated.returncode != 0:
            raise SystemExit(f"migration failed:\n{migrated.stderr[-2000:]}")
        for n in range(len(self.workers)):
            self.start_worker(n)
        self.start_cron()
        self.start_web()

    def stop_all(self, grace: float = 10.0) -> None:
        """Everything this topology started, each by its own process group: SIGTERM to
        all at once, up to `grace` seconds for all, then SIGKILL to what is left."""
        running = [c for c in (self.cron, *self.workers, self.web, self.redis_server)
                   if c is not None]
        for child in running:
            if child.poll() is None:
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in running:
            stop_group(child, grace=max(0.1, deadline - time.monotonic()))

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def dead(self) -> list[str]:
        """Processes that exited on their own (the harness restarts only what it killed)."""
        named = {"web": self.web, "cron": self.cron, "redis": self.redis_server,
                 **{f"worker{n}": w for n, w in enumerate(self.workers)}}
        return [name for name, child in named.items()
                if child is not None and child.poll() is not None]
