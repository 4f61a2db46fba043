"""USSD hop throughput: our app under gunicorn (2 sync workers) against PostgreSQL and
Redis, beside a bare Flask endpoint answering `CON hello` under the same gunicorn.

    .venv/bin/python bench/ussd.py [--sessions 50] [--seconds 8]

Loopback only; bounded in time and count. Creates and drops its own PostgreSQL
database (`DATABASE_URL`'s server, default postgresql://postgres@127.0.0.1:5432/postgres)
and uses its own Redis db number (9 by default; `REDIS_URL`'s server). Prints hops/s,
p50 and p99 for both, their ratio, and SQL queries per hop (counted in-process with a
SQLAlchemy `before_cursor_execute` event over the same menu walk). The servers, the
clients and the figures are `bench/serving.py`'s, shared with `bench/mpesa.py`.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import (  # noqa: E402
    MakeRequest,
    Measured,
    app_and_bare,
    app_env,
    counting,
    drive,
    own_database,
    own_redis,
    report,
)

KEY = "bench-webhook-key"
PIN = "2580"
# Simulated sessions: dial, then hops. "menus": moving through menus with the caller
# cached in the session (the common hop); "reads": every other hop a screen that reads
# the database (loans to fund, my loans, pledges, how to repay, loan eligibility).
WALKS = {
    "menus": ["8", "0", "8", "1", "0", "0", "8", "3", "0", "0", "8", "0", "00", "8"],
    "reads": ["5", "0", "4", "0", "2", "0", "3", "0", "1", "0", "5", "1", "0", "00"],
}

RUNS = itertools.count(1)

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


def hops(path: str, phones: list[str], walk: list[str]) -> MakeRequest:
    """Session after session per phone: the dial, then the walk's hops, each hop's text
    everything typed so far (as Africa's Talking sends it)."""
    steps = len(walk) + 1
    run = next(RUNS)  # a run's sessions are its own, even where the last one stopped mid-walk

    def make(client: int, n: int) -> tuple[str, bytes, str]:
        round_no, i = divmod(n, steps)
        form = {"sessionId": f"bench-{run}-{client}-{round_no}-{os.getpid()}",
                "phoneNumber": phones[client], "serviceCode": "*384*123#",
                "text": "*".join(walk[:i])}
        return path, urlencode(form).encode(), "application/x-www-form-urlencoded"

    return make


def screen(status: int, answer: bytes) -> bool:
    return status == 200 and answer.startswith((b"CON ", b"END "))


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
    client = create_app(services=svc).test_client()
    session = f"count-{len(walk)}-{walk[0]}"
    counts: dict[str, int] = {}
    typed = ""
    with counting(svc.db.engine) as seen:
        for i, value in enumerate([None, *walk]):
            if value is not None:
                typed = value if i == 1 else f"{typed}*{value}"
            seen.clear()
            client.post(f"/hooks/ussd?key={KEY}", data={"sessionId": session,
                                                          "phoneNumber": phone, "text": typed})
            counts[typed or "(dial)"] = len(seen.sql)
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

    phones = [f"+2547110{n:05d}" for n in range(args.sessions)]
    with (own_database(f"harambee_bench_ussd_{os.getpid()}") as database_url,
          own_redis(args.redis_db) as redis_url):
        env = app_env(database_url, redis_url, HARAMBEE_WEBHOOK_KEY=KEY,
                      HARAMBEE_PIN__HASH_COST="8",
                      HARAMBEE_USSD__RATE_LIMIT_PER_MINUTE="1000000")
        seed(env, phones)
        with app_and_bare(env, BARE_APP) as servers:
            print(f"{args.sessions} concurrent sessions, {args.seconds:.0f} s each, "
                  "gunicorn 2 sync workers, PostgreSQL + Redis on loopback")

            def run(port: int, path: str, walk: list[str], think: float = 0.0) -> Measured:
                return drive(port, args.sessions, args.seconds, args.max_hops,
                             hops(path, phones, walk), screen, think=think)

            bare = run(servers.bare, "/hooks/ussd", WALKS["menus"])
            floor = run(servers.bare, "/hooks/floor", WALKS["menus"])
            ours = {name: run(servers.ours, f"/hooks/ussd?key={KEY}", walk)
                    for name, walk in WALKS.items()}
            # The same 50 sessions with people's pace between hops (here 0.1 s, far
            # quicker than a thumb): latency when the service is not saturated.
            paced = {name: run(servers.ours, f"/hooks/ussd?key={KEY}", walk, args.think)
                     for name, walk in WALKS.items()}
        bare_rate, _, _ = report("bare", bare)
        floor_rate, _, _ = report("GET+SET floor", floor)
        print(f"{'':>16}  {floor_rate / bare_rate:.0%} of bare hops/s (DESIGN.md: 57%)")
        for name, measured in ours.items():
            rate, _, p99 = report(f"harambee {name}", measured)
            print(f"{'':>16}  {rate / bare_rate:.0%} of bare hops/s (target >= 40%), "
                  f"p99 {'<' if p99 < 50 else '>='} 50 ms, {measured.bad} bad answers")
        print(f"{'':>16}  bare: {bare.bad} bad answers")
        print(f"paced at {args.think:.1f} s between hops (not saturated):")
        for name, measured in paced.items():
            _, _, p99 = report(f"harambee {name}", measured)
            print(f"{'':>16}  p99 {'<' if p99 < 50 else '>='} 50 ms, "
                  f"{measured.bad} bad answers")
        for name, walk in WALKS.items():
            counts = queries_per_hop(env, phones[0], walk)
            print(f"SQL per hop ({name}): max {max(counts.values())}, "
                  f"mean {statistics.mean(counts.values()):.2f} (target <= 4): "
                  + " ".join(str(v) for v in counts.values()))


if __name__ == "__main__":
    main()
