"""USSD hop throughput, measured the way peers are measured: short sessions that each
start with a dial, our app under gunicorn (2 sync workers) against PostgreSQL and Redis,
beside a bare Flask endpoint answering `CON hello` and the floor of any stateful hop
(Flask + one Redis GET and one SET) under the same gunicorn, in the same run.

    .venv/bin/python bench/ussd.py [--seconds 2] [--rounds 3] [--members 20000] [--redis-db 9]

Journeys (each a new session; its first hop is the dial of a known caller):
- `menu`     dial, then Settings (a menu: no read);
- `loans`    dial, then My loans (a repaying loan, its installments);
- `lend`     dial, then Lend (a lender's list of loans to fund);
- `pledges`  dial, then My pledges;
- `account`  dial, then My account, which asks the PIN first (once a session), then the
             screen: three hops, the PIN check (a locked row, scrypt) among them;
- `wallet`   dial, then Wallet, the same way.

Every answer is checked: the dial must be the caller's main menu exactly, the PIN
prompt exactly that, and the last screen must start `CON ` and say what that screen
says (a marker from the English catalogue); any other answer counts as bad. Each
journey runs at 16 and at 50 connections; the median of `--rounds` rounds (interleaved,
so load on the machine hits all alike) gives hops/s, p50 and p99, and the ratios to
bare and floor are taken within the run; `cpu ms` is the gunicorn workers' CPU per hop
(from /proc), the figure that busy neighbours on shared cores change least. SQL
statements, PostgreSQL round trips and Redis round trips per hop are counted in-process
(SQLAlchemy events, Redis's `send_packed_command`) over the same journeys, for a caller
seen before (the dial's cold figure is printed too).

Loopback only; bounded in time and count. Creates and drops its own PostgreSQL
database (`DATABASE_URL`'s server, default postgresql://postgres@127.0.0.1:5432/postgres)
and uses its own Redis db number (`REDIS_URL`'s server), flushed before and after. The
servers, the clients and the figures are `bench/serving.py`'s.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import (  # noqa: E402
    IsGood,
    MakeRequest,
    Measured,
    app_and_bare,
    app_env,
    counting,
    cpu_seconds,
    drive,
    own_database,
    own_redis,
)

KEY = "bench-webhook-key"
PIN = "2580"
CONNECTIONS = (16, 50)
PATH = f"/hooks/ussd?key={KEY}"


@dataclass(frozen=True)
class Journey:
    name: str
    typed: tuple[str, ...]  # what is typed after the dial, one hop each
    marker: str  # catalogue key whose text (its part before any `{`) the last screen holds
    kind: str  # "menu" or "read"


JOURNEYS = (
    Journey("menu", ("8",), "ussd.settings.title", "menu"),
    Journey("loans", ("2",), "ussd.nav.back", "read"),
    Journey("lend", ("4",), "ussd.nav.back", "read"),
    Journey("pledges", ("5",), "ussd.nav.back", "read"),
    Journey("account", ("7", PIN), "ussd.account.record", "read"),
    Journey("wallet", ("6", PIN), "ussd.wallet.balance", "read"),
)
# What each read screen must show besides its marker (checked on the first answer of
# the in-process walk, which prints every screen once).
SHOWS = {"loans": "pay ", "lend": "% funded", "pledges": "Ksh", "account": "Limit",
         "wallet": "Free to lend"}

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
    # The floor for any stateful hop: one Redis GET and one SET.
    key = "floor:" + request.form.get("sessionId", "")
    store.get(key)
    store.set(key, "x", ex=60)
    return Response("CON hello", mimetype="text/plain")
'''

RUNS = itertools.count(1)


def sessions(path: str, phones: list[str], typed: tuple[str, ...]) -> MakeRequest:
    """Session after session per client: the dial, then `typed` one hop at a time, each
    hop's text everything typed so far (as Africa's Talking sends it)."""
    steps = len(typed) + 1
    run = next(RUNS)

    def make(client: int, n: int) -> tuple[str, bytes, str]:
        round_no, i = divmod(n, steps)
        form = {"sessionId": f"bench-{run}-{client}-{round_no}-{os.getpid()}",
                "phoneNumber": phones[client % len(phones)], "serviceCode": "*384*123#",
                "text": "*".join(typed[:i])}
        return path, urlencode(form).encode(), "application/x-www-form-urlencoded"

    return make


# ---------------------------------------------------------------- the world


def seed(env: dict[str, str], members: int, callers: int) -> list[str]:
    """`members` verified lenders with money (bulk), `callers` borrowers each with a
    disbursed loan funded by five of them (through the real use cases) who are lenders
    too and have the bench PIN, and 200 loans listed for lenders. Returns the callers'
    phones."""
    from sqlalchemy import select, update

    from bench.seeding import borrower_with_listed_loan, bulk_lenders, crowd_funded_loan
    from core import repayments
    from core.config import load_settings
    from core.members import hash_pin
    from core.migrate import upgrade
    from core.models import Member
    from runtime.services import build_services

    settings = load_settings(env=env)
    upgrade(settings)
    svc = build_services(settings)
    now = svc.now() - timedelta(days=1)
    with svc.uow() as uow:
        lenders = bulk_lenders(uow, members, 1_000_000, now)
        uow.commit()
    phones = []
    for n in range(callers):
        phone = f"+2547119{n:05d}"
        crowd_funded_loan(svc.uow, svc.payouts, lenders[n * 5:n * 5 + 5], 100_000, now,
                          borrower_phone=phone)
        phones.append(phone)
    for n in range(200):
        borrower_with_listed_loan(svc.uow, 50_000, now, f"+2547118{n:05d}")
    pin = hash_pin(PIN, settings)
    with svc.uow() as uow:
        uow.session.execute(update(Member).where(Member.phone.in_(phones))
                            .values(roles="borrower,lender", pin_hash=pin))
        uow.commit()
        ids = list(uow.session.scalars(select(Member.id).where(Member.phone.in_(phones))
                                       .order_by(Member.id)))
    # The callers lend too: a top-up each, then two loans' worth of pledges each.
    for n, phone in enumerate(phones):
        repayments.record_payment(svc.uow(), provider="mpesa", transaction_id=f"BENCH{n}",
                                  phone=phone, amount=500_000, currency=settings.app.currency,
                                  reference=phone, occurred_at=now, now=now)
    for n in range(0, 2 * len(ids), 5):
        group = [ids[(n + k) % len(ids)] for k in range(5)]
        crowd_funded_loan(svc.uow, svc.payouts, group, 50_000, now,
                          borrower_phone=f"+2547117{n:05d}")
    svc.close()
    return phones


def walk(env: dict[str, str], phones: list[str]) -> dict[str, list[tuple[int, int, int]]]:
    """Every journey in-process, twice for each caller of the first two: the answers
    printed once, and (SQL statements, Redis round trips) per hop of the last walk."""
    from core.config import load_settings
    from runtime.services import build_services
    from web.app import create_app

    svc = build_services(load_settings(env=env))
    client = create_app(services=svc).test_client()
    counts: dict[str, list[tuple[int, int, int]]] = {}
    cold = None
    with counting(svc.db) as seen:
        for round_no in range(2):
            for journey in JOURNEYS:
                per_hop = []
                for i in range(len(journey.typed) + 1):
                    seen.clear()
                    answer = client.post(PATH, data={
                        "sessionId": f"walk-{journey.name}-{round_no}",
                        "phoneNumber": phones[0], "text": "*".join(journey.typed[:i])
                    }).get_data(as_text=True)
                    per_hop.append((len(seen.sql), seen.pg, seen.redis))
                    if cold is None:
                        cold = per_hop[0]
                    if round_no == 0 and i == len(journey.typed):
                        print(f"--- {journey.name}:\n{answer}")
                        shows = SHOWS.get(journey.name, "")
                        if shows not in answer:
                            raise SystemExit(f"{journey.name}: the screen lacks {shows!r}")
                counts[journey.name] = per_hop
    counts["(cold dial)"] = [cold or (0, 0, 0)]
    svc.close()
    return counts


def checker(journey: Journey, main_menu: str) -> IsGood:
    """Exactly the caller's main menu, exactly the PIN prompt, or the journey's screen
    (`CON `, its marker, and not the main menu)."""
    from core.messages import CATALOG, text

    pin_prompt = "CON " + text("ussd.gate.pin", "en")
    marker = CATALOG["en"][journey.marker].split("{")[0]

    def good(status: int, answer: bytes) -> bool:
        said = answer.decode("utf-8", "replace")
        return status == 200 and (said in (main_menu, pin_prompt) or (
            said.startswith("CON ") and marker in said and said != main_menu))

    return good


def dial_answer(port: int, phone: str) -> str:
    import requests
    return requests.post(f"http://127.0.0.1:{port}{PATH}", data={
        "sessionId": f"bench-dial-{os.getpid()}", "phoneNumber": phone,
        "serviceCode": "*384*123#", "text": ""}, timeout=10).text


def always_hello(status: int, answer: bytes) -> bool:
    return status == 200 and answer == b"CON hello"


# ---------------------------------------------------------------- figures


@dataclass
class Figures:
    rates: list[float]
    p50s: list[float]
    p99s: list[float]
    cpus: list[float]
    bad: int = 0
    hops: int = 0

    def add(self, m: Measured) -> None:
        self.rates.append(m.rate)
        self.p50s.append(m.p50)
        self.p99s.append(m.p99)
        self.cpus.append(m.cpu_ms("workers"))
        self.bad += m.bad
        self.hops += m.count

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def p50(self) -> float:
        return statistics.median(self.p50s)

    @property
    def p99(self) -> float:
        return statistics.median(self.p99s)

    @property
    def cpu(self) -> float:
        """Worker CPU ms per hop: the server's own cost, which neighbours on shared
        cores barely change (throughput and latency they change a lot)."""
        return statistics.median(self.cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per journey per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--max-hops", type=int, default=20_000, help="per connection")
    parser.add_argument("--redis-db", type=int, default=9)
    args = parser.parse_args()

    with (own_database(f"harambee_bench_ussd_{os.getpid()}") as database_url,
          own_redis(args.redis_db) as redis_url):
        env = app_env(database_url, redis_url, HARAMBEE_WEBHOOK_KEY=KEY,
                      HARAMBEE_PIN__HASH_COST="8",
                      HARAMBEE_USSD__RATE_LIMIT_PER_MINUTE="1000000")
        phones = seed(env, args.members, args.callers)
        counts = walk(env, phones)
        figures: dict[tuple[str, int], Figures] = {}
        with app_and_bare(env, BARE_APP) as servers:
            menu = dial_answer(servers.ours, phones[-1])
            if not menu.startswith("CON Harambee: Bench"):
                raise SystemExit(f"the dial answered {menu!r}")
            checks = {j.name: checker(j, menu) for j in JOURNEYS}
            print(f"{args.members} members, {args.callers} callers with a repaying loan, "
                  f"gunicorn {2} sync workers, PostgreSQL + Redis on loopback; "
                  f"{args.rounds} rounds of {args.seconds:.0f} s per journey and load")
            for _ in range(args.rounds):
                for conns in CONNECTIONS:
                    def run(port: int, path: str, make: MakeRequest, good: IsGood,
                            conns: int = conns) -> Measured:
                        def meter() -> dict[str, float]:  # the server's workers' CPU
                            return {"workers": sum(cpu_seconds(servers.workers(port))
                                                   .values())}
                        return drive(port, conns, args.seconds, args.max_hops, make, good,
                                     meter=meter)

                    plan: list[tuple[str, Measured]] = [
                        ("bare", run(servers.bare, "/hooks/ussd",
                                     sessions("/hooks/ussd", phones, ("8",)), always_hello)),
                        ("floor", run(servers.bare, "/hooks/floor",
                                      sessions("/hooks/floor", phones, ("8",)), always_hello)),
                    ]
                    plan += [(j.name, run(servers.ours, PATH, sessions(PATH, phones, j.typed),
                                          checks[j.name])) for j in JOURNEYS]
                    for name, measured in plan:
                        figures.setdefault((name, conns), Figures([], [], [], [])).add(measured)
        print_figures(figures, counts)


def print_figures(figures: dict[tuple[str, int], Figures],
                  counts: dict[str, list[tuple[int, int, int]]]) -> None:
    kinds = {j.name: j.kind for j in JOURNEYS}
    for conns in CONNECTIONS:
        bare = figures[("bare", conns)].rate
        floor = figures[("floor", conns)].rate
        print(f"\nat {conns} connections (median of rounds):")
        print(f"{'':>10} {'hops/s':>8} {'x bare':>7} {'x floor':>8} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'cpu ms':>7} {'bad':>4} {'hops':>7}  target")
        for name in ["bare", "floor", *kinds]:
            f = figures[(name, conns)]
            kind = kinds.get(name, "")
            if kind == "menu":
                target = (f">=0.50x bare, >=0.9x floor, p99 < {15 if conns == 16 else 50} ms")
            elif kind == "read":
                target = f">=0.35x bare, p99 < {25 if conns == 16 else 50} ms"
            else:
                target = ""
            print(f"{name:>10} {f.rate:8.0f} {f.rate / bare:7.3f} {f.rate / floor:8.3f} "
                  f"{f.p50:7.1f} {f.p99:7.1f} {f.cpu:7.2f} {f.bad:4d} {f.hops:7d}  {target}")
    print("\nper hop (dial, pick[, PIN]), a caller seen before: SQL statements / PostgreSQL "
          "round trips (with BEGIN, COMMIT, ROLLBACK) / Redis round trips")
    for name, per_hop in counts.items():
        print(f"{name:>12}: " + "   ".join(f"{s} SQL {p} PG {r} Redis" for s, p, r in per_hop))


if __name__ == "__main__":
    main()
