"""USSD hop throughput: our app under gunicorn (2 sync workers) against PostgreSQL and
Redis, beside a bare Flask endpoint answering `CON hello` under the same gunicorn.

    .venv/bin/python bench/ussd.py [--sessions 50] [--seconds 8]

Loopback only; bounded in time and count. Creates and drops its own PostgreSQL
database (`DATABASE_URL`'s server, default postgresql://postgres@127.0.0.1:5432/postgres)
and uses its own Redis db number (9 by default; `REDIS_URL`'s server). Prints hops/s,
p50 and p99 for both, their ratio, and SQL queries per hop (counted in-process with a
SQLAlchemy `before_cursor_execute` event over the same menu walk).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime import processes  # noqa: E402

KEY = "bench-webhook-key"
PIN = "2580"
# Simulated sessions: dial, then hops. "menus": moving through menus with the caller
# cached in the session (the common hop); "reads": every other hop a screen that reads
# the database (loans to fund, my loans, pledges, how to repay, loan eligibility).
WALKS = {
    "menus": ["8", "0", "8", "1", "0", "0", "8", "3", "0", "0", "8", "0", "00", "8"],
    "reads": ["5", "0", "4", "0", "2", "0", "3", "0", "1", "0", "5", "1", "0", "00"],
}

BARE_APP = '''
import os
import redis
from flask import Flask, Response, request
app = Flask(__name__)
store = redis.Redis.from_url(os.environ["REDIS_URL"])

@app.post("/hooks/ussd")
def hop():
    return Response("CON hello", mimetype="text/plain")

@app.post("/hooks/floor")
def floor():
    # DESIGN.md's floor for a stateful hop: one Redis GET and one SET.
    key = "floor:" + request.form.get("sessionId", "")
    store.get(key)
    store.set(key, "x", ex=60)
    return Response("CON hello", mimetype="text/plain")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.post(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def gunicorn(app: str, port: int, env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--worker-class", "sync", "--log-level", "warning", app],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def drive(port: int, path: str, phones: list[str], seconds: float, max_hops: int,
          walk: list[str], think: float = 0.0) -> tuple[list[float], int]:
    """`len(phones)` concurrent sessions (asyncio, raw HTTP/1.0 so the client costs
    little CPU), each walking the menus again and again; `think` seconds between hops."""
    return asyncio.run(_drive(port, path, phones, seconds, max_hops, walk, think))


async def _drive(port: int, path: str, phones: list[str], seconds: float, max_hops: int,
                 walk: list[str], think: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def post(form: dict[str, str]) -> bytes:
        body = urlencode(form).encode()
        head = (f"POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body)
        raw = await reader.read()
        writer.close()
        return raw

    async def session_loop(n: int, phone: str) -> None:
        nonlocal errors
        round_no = 0
        done = 0
        while time.monotonic() < stop and done < max_hops:
            round_no += 1
            sid, typed = f"bench-{n}-{round_no}-{os.getpid()}", ""
            for i, value in enumerate([None, *walk]):
                if value is not None:
                    typed = value if i == 1 else f"{typed}*{value}"
                started = time.perf_counter()
                raw = await post({"sessionId": sid, "phoneNumber": phone,
                                  "serviceCode": "*384*123#", "text": typed})
                latencies.append(time.perf_counter() - started)
                done += 1
                answer = raw.partition(b"\r\n\r\n")[2]
                status = raw.split(b"\r\n", 1)[0]
                if b" 200 " not in status or not answer.startswith((b"CON ", b"END ")):
                    errors += 1
                    if errors == 1:
                        print("first bad answer:", raw[:300])
                if think:
                    await asyncio.sleep(think)

    started = time.perf_counter()
    await asyncio.gather(*(session_loop(n, p) for n, p in enumerate(phones)))
    elapsed = time.perf_counter() - started
    return [elapsed, *latencies], errors


def report(name: str, result: list[float]) -> tuple[float, float, float]:
    elapsed, lat = result[0], sorted(result[1:])
    rate = len(lat) / elapsed
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"{name:>16}: {len(lat):6d} hops in {elapsed:5.1f}s = {rate:7.0f} hops/s   "
          f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    return rate, p50, p99


def seed(env: dict[str, str], phones: list[str]) -> None:
    from core.config import load_settings
    from core.migrate import upgrade
    from runtime.services import build_services
    from tests.support import World

    settings = load_settings(env=env)
    upgrade(settings)
    svc = build_services(settings)
    world = World(svc)
    for n, phone in enumerate(phones):
        member = world.member(f"Bench Member {chr(65 + n % 26)}", phone=phone,
                              roles="borrower,lender")
        if n < 3:
            world.top_up(member, 500_000)
    world.listed_loan(world.member("Amina Otieno", roles="borrower"))
    svc.close()


def queries_per_hop(env: dict[str, str], phone: str, walk: list[str]) -> dict[str, int]:
    """The same walk in-process, counting SQL statements per hop."""
    from core.config import load_settings
    from runtime.services import build_services
    from web.app import create_app

    svc = build_services(load_settings(env=env))
    seen: list[str] = []
    event.listen(svc.db.engine, "before_cursor_execute",
                 lambda *a: seen.append(a[2]))
    client = create_app(services=svc).test_client()
    session = f"count-{len(walk)}-{walk[0]}"
    counts: dict[str, int] = {}
    typed = ""
    for i, value in enumerate([None, *walk]):
        if value is not None:
            typed = value if i == 1 else f"{typed}*{value}"
        seen.clear()
        client.post(f"/hooks/ussd?key={KEY}", data={"sessionId": session, "phoneNumber": phone,
                                                      "text": typed})
        counts[typed or "(dial)"] = len(seen)
    svc.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--max-hops", type=int, default=5000, help="per session")
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument("--think", type=float, default=0.1,
                        help="seconds between hops in the paced run")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    if url.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("bench/ussd.py runs on loopback only")
    db_name = f"harambee_bench_ussd_{os.getpid()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    redis_base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_url = urlunsplit(urlsplit(redis_base)._replace(path=f"/{args.redis_db}"))
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
           "DATABASE_URL": url.set(database=db_name).render_as_string(hide_password=False)
           .replace("postgresql+psycopg://", "postgresql://"),
           "REDIS_URL": redis_url, "HARAMBEE_WEBHOOK_KEY": KEY, "HARAMBEE_ENV": "development",
           "HARAMBEE_PIN__HASH_COST": "8",
           "HARAMBEE_USSD__RATE_LIMIT_PER_MINUTE": "1000000"}
    phones = [f"+2547110{n:05d}" for n in range(args.sessions)]
    servers: list[subprocess.Popen[bytes]] = []
    try:
        seed(env, phones)
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "bare.py").write_text(BARE_APP)
            ours_port, bare_port = free_port(), free_port()
            servers.append(gunicorn("wsgi:app", ours_port, env, str(ROOT)))
            servers.append(gunicorn("bare:app", bare_port, env, tmp))
            wait_up(f"http://127.0.0.1:{ours_port}/hooks/ussd?key={KEY}")
            wait_up(f"http://127.0.0.1:{bare_port}/hooks/ussd")
            print(f"{args.sessions} concurrent sessions, {args.seconds:.0f} s each, "
                  "gunicorn 2 sync workers, PostgreSQL + Redis on loopback")
            bare = drive(bare_port, "/hooks/ussd", phones, args.seconds, args.max_hops,
                         WALKS["menus"])
            floor = drive(bare_port, "/hooks/floor", phones, args.seconds, args.max_hops,
                          WALKS["menus"])
            ours = {name: drive(ours_port, f"/hooks/ussd?key={KEY}", phones, args.seconds,
                                args.max_hops, walk) for name, walk in WALKS.items()}
            # The same 50 sessions with people's pace between hops (here 0.1 s, far
            # quicker than a thumb): latency when the service is not saturated.
            paced = {name: drive(ours_port, f"/hooks/ussd?key={KEY}", phones, args.seconds,
                                 args.max_hops, walk, think=args.think)
                     for name, walk in WALKS.items()}
        bare_rate, _, _ = report("bare", bare[0])
        floor_rate, _, _ = report("GET+SET floor", floor[0])
        print(f"{'':>16}  {floor_rate / bare_rate:.0%} of bare hops/s (DESIGN.md: 57%)")
        for name, (result, errors) in ours.items():
            rate, _, p99 = report(f"harambee {name}", result)
            print(f"{'':>16}  {rate / bare_rate:.0%} of bare hops/s (target >= 40%), "
                  f"p99 {'<' if p99 < 50 else '>='} 50 ms, {errors} bad answers")
        print(f"{'':>16}  bare: {bare[1]} bad answers")
        print(f"paced at {args.think:.1f} s between hops (not saturated):")
        for name, (result, errors) in paced.items():
            _, _, p99 = report(f"harambee {name}", result)
            print(f"{'':>16}  p99 {'<' if p99 < 50 else '>='} 50 ms, {errors} bad answers")
        for name, walk in WALKS.items():
            counts = queries_per_hop(env, phones[0], walk)
            print(f"SQL per hop ({name}): max {max(counts.values())}, "
                  f"mean {statistics.mean(counts.values()):.2f} (target <= 4): "
                  + " ".join(str(v) for v in counts.values()))
    finally:
        processes.stop(servers)
        redis.Redis.from_url(redis_url).flushdb()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
