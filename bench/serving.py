"""What the HTTP benchmarks share (`bench/ussd.py`, `bench/mpesa.py`): a PostgreSQL
database and a Redis db of their own, our app and a bare floor app under the same
gunicorn settings (2 sync workers), concurrent clients that drive them, the figures
they print, and round trips counted in-process.

Loopback only; every loop is bounded in time and count, and the servers are stopped by
the handles kept (`runtime/processes.py`), never looked up by name.
"""
from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime import processes  # noqa: E402
from tests.round_trips import RoundTrips, counting  # noqa: E402, F401 - the benches' counter

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WORKERS = 2


# ---------------------------------------------------------------- a database and a Redis db


@contextmanager
def own_database(name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database `name` on DATABASE_URL's server (default
    postgresql://postgres@127.0.0.1:5432/postgres), dropped afterwards even if the run
    fails. Yields its URL as the app reads it (`postgresql://...`)."""
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    if url.host not in LOOPBACK:
        raise SystemExit(f"{sys.argv[0]} runs on loopback only")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (url.set(database=name).render_as_string(hide_password=False)
               .replace("postgresql+psycopg://", "postgresql://"))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fresh_database(name: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database for a benchmark run in this process or its children, and a
    function that drops it: `name` on DATABASE_URL's PostgreSQL server (dropped first if
    a run left it behind), or without DATABASE_URL a SQLite file in a temporary folder."""
    base = os.environ.get("DATABASE_URL")
    if not base:
        path = Path(tempfile.mkdtemp(prefix="harambee-bench-")) / "bench.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@contextmanager
def own_redis(db: int) -> Iterator[str]:
    """Redis database number `db` on REDIS_URL's server (default redis://127.0.0.1:6379),
    flushed before and after; no other db is touched."""
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(base)
    if parts.hostname not in LOOPBACK:
        raise SystemExit(f"{sys.argv[0]} runs on loopback only")
    url = urlunsplit(parts._replace(path=f"/{db}"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def app_env(database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """The app's settings, by environment as in production (development mode)."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "HARAMBEE_ENV": "development", **settings}


# ---------------------------------------------------------------- the servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 20.0) -> None:
    """Until the server answers anything at all (a 404 will do)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.post(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def gunicorn(app: str, port: int, env: dict[str, str], cwd: str,
             log: Path) -> subprocess.Popen[bytes]:
    """`app` under gunicorn, its stderr (gunicorn's warnings, the app's logs) to `log`:
    a pipe nobody reads would block the workers once full."""
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
             str(WORKERS), "--worker-class", "sync", "--log-level", "warning", app],
            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)


@dataclass
class Servers:
    """Our app's and the bare app's ports, and their gunicorn masters."""

    ours: int
    bare: int
    masters: dict[int, subprocess.Popen[bytes]]

    def workers(self, port: int) -> list[int]:
        """The worker processes of the server on `port` (children of its master)."""
        return children(self.masters[port].pid)


@contextmanager
def app_and_bare(env: dict[str, str], bare_source: str) -> Iterator[Servers]:
    """Our app (`wsgi:app`) and a bare Flask app (`bare_source`, which defines `app`)
    under the same gunicorn settings and environment, once both answer; on the way out
    both are stopped (SIGTERM, then SIGKILL) by the handles kept, and whatever they
    wrote to stderr is shown."""
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            Path(tmp, "bare.py").write_text(bare_source)
            ours, bare = free_port(), free_port()
            servers.append(gunicorn("wsgi:app", ours, env, str(ROOT), Path(tmp, "ours.log")))
            servers.append(gunicorn("bare:app", bare, env, tmp, Path(tmp, "bare.log")))
            wait_up(f"http://127.0.0.1:{ours}/")
            wait_up(f"http://127.0.0.1:{bare}/")
            yield Servers(ours, bare, {ours: servers[0], bare: servers[1]})
        finally:
            processes.stop(servers)
            for name in ("ours", "bare"):
                logged = Path(tmp, f"{name}.log")
                lines = logged.read_text(errors="replace").splitlines() if logged.exists() else []
                if lines:
                    print(f"{name} server wrote {len(lines)} lines to stderr; the last:")
                    print("\n".join(f"  {line}" for line in lines[-15:]))


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux /proc; empty elsewhere)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User plus system CPU seconds used so far by each of these processes (Linux
    /proc; a process gone or unreadable is left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


# ---------------------------------------------------------------- the clients


@dataclass
class Measured:
    """One driven run: wall time, each request's latency, bad answers and statuses, and
    the CPU seconds the processes metered during it used."""

    elapsed: float
    latencies: list[float]
    bad: int
    statuses: Counter[int] = field(default_factory=Counter)
    failed: set[tuple[int, int]] = field(default_factory=set)  # (client, n) answered badly
    cpu: dict[str, float] = field(default_factory=dict)  # by part, e.g. "workers"

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        if q == 50:
            return statistics.median(ordered) * 1000
        return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] * 1000

    @property
    def p50(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99(self) -> float:
        return self.percentile_ms(99)

    def cpu_ms(self, part: str) -> float:
        """CPU milliseconds per request used by `part` (nan when not metered)."""
        if part not in self.cpu or not self.count:
            return float("nan")
        return self.cpu[part] / self.count * 1000


# (path, body, content type) of request n of client c
Request = tuple[str, bytes, str]
MakeRequest = Callable[[int, int], Request]
IsGood = Callable[[int, bytes], bool]
# CPU seconds used so far, by part ("workers", "postgres"): called before and after a run
Meter = Callable[[], dict[str, float]]
TIMEOUT = 30.0  # seconds for one request before it counts as a bad answer (status 0)


def drive(port: int, clients: int, seconds: float, max_per_client: int,
          make: MakeRequest, good: IsGood, *, think: float = 0.0,
          meter: Meter | None = None) -> Measured:
    """`clients` concurrent clients (asyncio, raw HTTP/1.0, one connection a request, so
    the client costs little CPU), each sending `make(client, n)` for n = 0, 1, ... until
    `seconds` have passed or it has sent `max_per_client`; `think` seconds between its
    requests. `good(status, body)` judges each answer; `meter`, read before and after,
    says what CPU the run cost."""
    before = meter() if meter else {}
    measured = asyncio.run(_drive(port, clients, seconds, max_per_client, make, good, think))
    if meter:
        after = meter()
        measured.cpu = {part: after[part] - before.get(part, 0.0) for part in after}
    return measured


async def post(port: int, path: str, body: bytes, content_type: str,
               timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """One POST over its own connection: (status, body); status 0 when the answer is
    not HTTP at all, or does not come within `timeout` seconds."""
    head = (f"POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head + body)
            return await reader.read()
        finally:
            writer.close()

    try:
        raw = await asyncio.wait_for(exchange(), timeout)
    except (TimeoutError, OSError):
        return 0, b""
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, answer = rest.partition(b"\r\n\r\n")
    parts = status_line.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, answer


async def _drive(port: int, clients: int, seconds: float, max_per_client: int,
                 make: MakeRequest, good: IsGood, think: float) -> Measured:
    measured = Measured(0.0, [], 0)
    stop = time.monotonic() + seconds

    async def client(c: int) -> None:
        n = 0
        while n < max_per_client and time.monotonic() < stop:
            path, body, content_type = make(c, n)
            started = time.perf_counter()
            status, answer = await post(port, path, body, content_type)
            measured.latencies.append(time.perf_counter() - started)
            measured.statuses[status] += 1
            if not good(status, answer):
                measured.bad += 1
                measured.failed.add((c, n))
                if measured.bad == 1:
                    print(f"first bad answer: {status} {answer[:300]!r}")
            n += 1
            if think:
                await asyncio.sleep(think)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    measured.elapsed = time.perf_counter() - started
    return measured


def run_all(calls: list[Awaitable[Any]]) -> list[Any]:
    """Await these together (a replay, a probe) and return their results in order."""
    async def together() -> list[Any]:
        return list(await asyncio.gather(*calls))
    return asyncio.run(together())


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process; Linux
    /proc/stat; nan elsewhere): on shared cores, what others took shows here."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- figures


def report(name: str, m: Measured, unit: str = "hops") -> tuple[float, float, float]:
    """One line: count, wall time, rate, p50 and p99; returns (rate, p50, p99)."""
    print(f"{name:>16}: {m.count:6d} {unit} in {m.elapsed:5.1f}s = {m.rate:7.0f} {unit}/s   "
          f"p50 {m.p50:6.1f} ms   p99 {m.p99:6.1f} ms")
    return m.rate, m.p50, m.p99


