"""C2B confirmations per second: our app under gunicorn (2 sync workers) against
PostgreSQL and Redis, beside a bare Flask endpoint under the same gunicorn that reads
the JSON body and acknowledges it (the floor).

    .venv/bin/python bench/mpesa.py [--seconds 8] [--rounds 3] [--clients 16]

Loopback only; bounded in time and count. Creates and drops its own PostgreSQL
database (`DATABASE_URL`'s server, default postgresql://postgres@127.0.0.1:5432/postgres),
migrates it and seeds a book with `bench/seeding.py` and `tests/support.World`: a few
thousand members, loans pledged by 5 to 100 of them each and disbursed, a third of
them part repaid. Uses its own Redis db (8 by default; `REDIS_URL`'s server), flushed
before and after.

Each round drives the floor, a second floor that also stores the body (one INSERT ...
ON CONFLICT DO NOTHING and a commit: the least a durable acknowledgement costs), then
the app's door, each with `--clients` concurrent clients posting Daraja-shaped
confirmations to `POST /hooks/c2b/<token>/confirmation`: a TransID of its own,
TransTime now in Nairobi, whole shillings, the MSISDN masked, and a BillRefNumber that
is a disbursed loan's number (a repayment, allocated to every lender), a member's phone
(a top-up) or nothing we know (suspense). Every answer must be 200 with ResultCode "0".
No recorder runs meanwhile: the door stores each confirmation and enqueues its job on
the `payments` queue (docs/mpesa.md).

Then the recorder: one `harambee worker --queue payments --burst` process records
everything stored; its drain rate (confirmations recorded per second, from the first
payment recorded to the last), the time until all were recorded, and its CPU per
confirmation are printed. Every confirmation answered 200 must then be a payment in the
ledger, `core.checks.check` must find the books sound, and a sample sent again (the
same TransIDs) must be acknowledged and change nothing. A steady run last: one recorder
running while 2 clients send confirmations at half the rate it drained, for the lag a
payer sees from the acknowledgement to the payment in the ledger (p50, p95, max) when
the recorders keep up.

Prints confirmations/s, p50 and p99 for the app's door and the floors, the door's
share of each floor (the median of the rounds), the CPU each confirmation cost in the
gunicorn workers and in PostgreSQL, what other processes took of the machine
meanwhile, and, in-process, the SQL statements, Redis round trips and CPU of one
confirmation of each kind at the door and recorded. `--profile N` also stores and
records N repayments in-process under cProfile and prints where the time went. Exits
non-zero when a check fails; the 500/s target is printed as met or not, never
asserted.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import (  # noqa: E402
    ROOT,
    Measured,
    Servers,
    app_and_bare,
    app_env,
    counting,
    cpu_seconds,
    drive,
    machine_busy_seconds,
    own_database,
    own_redis,
    post,
    report,
    run_all,
)
from runtime import processes  # noqa: E402

TOKEN = "bench-callback-token-0123456789"
KEY = "bench-webhook-key-0123456789"
PATH = f"/hooks/c2b/{TOKEN}/confirmation"
STORED = f"/hooks/c2b/{TOKEN}/stored"  # the bare app's second floor
JSON = "application/json"
NAIROBI = ZoneInfo("Africa/Nairobi")
TARGET = 500  # confirmations/s (issue #11)
PREFIX = "BN"  # every TransID the timed runs send starts so; the seeded receipts do not
# What the BillRefNumbers name, by weight: most paybill payments to a lender are repayments.
MIX = {"repayment": 6, "topup": 3, "suspense": 1}
FIRST_LENDER_PHONE = 730_000_000
FLOOR_TABLE = "bench_floor"  # the stored floor's table, in the bench's own database

BARE_APP = f'''
import os
import psycopg
from flask import Flask, jsonify, request
app = Flask(__name__)
_db = []

@app.post("/hooks/c2b/<token>/confirmation")
def confirmation(token):
    body = request.get_json(force=True)
    assert body["TransID"]
    return jsonify({{"ResultCode": "0", "ResultDesc": "Accepted"}}), 200

@app.post("/hooks/c2b/<token>/stored")
def stored(token):
    raw = request.get_data()
    body = request.get_json(force=True)
    if not _db:  # one connection per worker, opened after the fork
        _db.append(psycopg.connect(os.environ["DATABASE_URL"]))
    _db[0].execute("INSERT INTO {FLOOR_TABLE} (trans_id, body) VALUES (%s, %s) "
                   "ON CONFLICT DO NOTHING", (body["TransID"], raw.decode()))
    _db[0].commit()
    return jsonify({{"ResultCode": "0", "ResultDesc": "Accepted"}}), 200
'''


@dataclass(frozen=True)
class Book:
    """What the seeding made: the references a confirmation may name."""

    loans: list[str]  # numbers of disbursed loans being repaid
    phones: list[str]  # members' phones (E.164)
    lenders_per_loan: dict[str, int]


# ---------------------------------------------------------------- the book


def seed(env: dict[str, str], members: int, loans: int, rng: random.Random) -> Book:
    """`members` lenders in bulk, then `loans` loans each pledged by 5 to 100 of them,
    funded and disbursed 10 days ago (weekly installments: one already due), and a third
    of them part repaid, through the real use cases."""
    from bench.seeding import bulk_lenders, crowd_funded_loan
    from core.config import load_settings
    from core.migrate import upgrade
    from runtime.services import build_services
    from tests.support import World

    settings = load_settings(env=env)
    upgrade(settings)
    svc = build_services(settings)
    then = datetime.now(UTC) - timedelta(days=10)
    try:
        with svc.uow() as uow:
            pool = bulk_lenders(uow, members, settings.minor(50_000), then,
                                first_phone=FIRST_LENDER_PHONE)
            uow.commit()
        numbers: dict[str, int] = {}
        for i in range(loans):
            pledge = rng.choice([100, 200, 250, 500, 1000])
            count = rng.randint(5, min(100, settings.loan.max_amount // pledge))
            crowd = crowd_funded_loan(svc.uow, svc.payouts, rng.sample(pool, count),
                                      settings.minor(pledge), then,
                                      borrower_phone=f"+254711{i:06d}")
            numbers[crowd.number] = count
        world = World(svc)
        for number in list(numbers)[::3]:
            world.pay(number, settings.minor(rng.randint(200, 2000)))
        with svc.db.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {FLOOR_TABLE} "
                                 "(trans_id text PRIMARY KEY, body text NOT NULL)")
        phones = [f"+254{FIRST_LENDER_PHONE + i}" for i in range(members)]
        return Book(list(numbers), phones, numbers)
    finally:
        svc.close()


# ---------------------------------------------------------------- confirmations


class Confirmations:
    """Daraja-shaped C2B confirmation bodies, each with a TransID of its own, kept by
    (round, client, n) so a sample can be sent again."""

    def __init__(self, book: Book, rng: random.Random, prefix: str = PREFIX) -> None:
        self.book = book
        self.rng = rng
        self.prefix = prefix
        self.sent: dict[tuple[int, int, int], bytes] = {}
        self.kinds: Counter[str] = Counter()
        self._seq = 0

    def reference(self) -> tuple[str, str, int]:
        """(kind, BillRefNumber as a payer types it, whole shillings)."""
        rng = self.rng
        kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "repayment":
            number = rng.choice(self.book.loans)
            return kind, rng.choice([number, number.lower(), f" {number}"]), rng.randint(50, 800)
        if kind == "topup":
            phone = rng.choice(self.book.phones)
            typed = rng.choice([phone, phone[1:], "0" + phone[4:]])  # +2547.., 2547.., 07..
            return kind, typed, rng.randint(100, 5_000)
        unknown = rng.choice([f"INV{rng.randint(1000, 99999)}", "L9999999", "", "0712"])
        return kind, unknown, rng.randint(10, 2_000)

    def body(self, round_no: int, client: int, n: int) -> bytes:
        self._seq += 1
        kind, reference, shillings = self.reference()
        self.kinds[kind] += 1
        body = daraja_body(f"{self.prefix}{round_no % 10}{self._seq:07d}", reference,
                           shillings, self.rng)
        self.sent[(round_no, client, n)] = body
        return body


def daraja_body(trans_id: str, reference: str, shillings: int,
                rng: random.Random | None = None) -> bytes:
    """A C2B confirmation as Daraja posts it: amounts as decimal strings, the time in
    Nairobi, the payer's number masked."""
    rng = rng or random.Random(trans_id)
    return json.dumps({
        "TransactionType": "Pay Bill",
        "TransID": trans_id,
        "TransTime": datetime.now(NAIROBI).strftime("%Y%m%d%H%M%S"),
        "TransAmount": f"{shillings}.00",
        "BusinessShortCode": "174379",
        "BillRefNumber": reference,
        "InvoiceNumber": "",
        "OrgAccountBalance": f"{rng.randint(10_000, 9_000_000)}.00",
        "ThirdPartyTransID": "",
        "MSISDN": f"2547{rng.randint(0, 99):02d}****{rng.randint(0, 999):03d}",
        "FirstName": rng.choice(["AMINA", "JOHN", "WANJIRU", "OTIENO", "GRACE"]),
        "MiddleName": "",
        "LastName": rng.choice(["OTIENO", "KAMAU", "WANJIKU", "MUTUA", ""]),
    }).encode()


def acknowledged(status: int, answer: bytes) -> bool:
    if status != 200:
        return False
    try:
        return bool(json.loads(answer).get("ResultCode") == "0")
    except ValueError:
        return False


# ---------------------------------------------------------------- CPU, by process


class Meter:
    """CPU seconds used so far by the workers of the server on `port`, by this
    database's PostgreSQL backends (a backend gone keeps what it used), by this process
    (the clients), and by the whole machine."""

    def __init__(self, servers: Servers, port: int, svc: Any) -> None:
        self.servers, self.port, self.svc = servers, port, svc
        self.backends: dict[int, float] = {}

    def __call__(self) -> dict[str, float]:
        from sqlalchemy import text

        with self.svc.db.engine.connect() as conn:
            pids = conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalars().all()
        self.backends.update(cpu_seconds(pids))
        return {"workers": sum(cpu_seconds(self.servers.workers(self.port)).values()),
                "postgres": sum(self.backends.values()), "client": time.process_time(),
                "machine": machine_busy_seconds()}


def others(m: Measured) -> float:
    """Cores other processes kept busy during the run (shared cores show here)."""
    ours = m.cpu.get("workers", 0) + m.cpu.get("postgres", 0) + m.cpu.get("client", 0)
    return (m.cpu.get("machine", float("nan")) - ours) / m.elapsed if m.elapsed else 0.0


def line(name: str, m: Measured) -> None:
    report(name, m, "conf")
    print(f"{'':>16}  CPU per confirmation: workers {m.cpu_ms('workers'):5.2f} ms, "
          f"PostgreSQL {m.cpu_ms('postgres'):5.2f} ms; others kept {others(m):.1f} cores "
          f"busy; {m.bad} bad answers")


# ---------------------------------------------------------------- the books afterwards


def snapshot(svc: Any) -> dict[str, int]:
    """What a confirmation changes: rows, money, and jobs waiting in Redis."""
    from sqlalchemy import text

    from runtime.jobs import QUEUES

    with svc.db.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM transfers), "
            "(SELECT count(*) FROM outbox), (SELECT count(*) FROM confirmations), "
            "(SELECT coalesce(sum(debits_posted + credits_posted), 0) FROM accounts), "
            "(SELECT coalesce(sum(repaid), 0) FROM pledges), "
            "(SELECT coalesce(sum(repaid), 0) FROM loans)")).one()
    queued = sum(svc.redis.client.llen(f"rq:queue:{name}") for name in QUEUES)
    return dict(zip(["payments", "transfers", "outbox", "confirmations", "posted",
                     "pledges_repaid", "loans_repaid", "jobs_queued"], [*row, queued],
                    strict=True))


def recorded(svc: Any, prefix: str = PREFIX) -> Counter[str]:
    """The payments of the confirmations whose TransID starts with `prefix`, by kind."""
    from sqlalchemy import func, select

    from core.models import Payment

    with svc.db.engine.connect() as conn:
        rows = conn.execute(select(Payment.kind, func.count()).where(
            Payment.transaction_id.like(f"{prefix}%")).group_by(Payment.kind)).all()
    return Counter({str(kind): count for kind, count in rows})


@dataclass(frozen=True)
class Stored:
    """The confirmations whose TransID starts with a prefix: how many were stored, how
    many are recorded, and the first and last moment one was recorded."""

    stored: int
    recorded: int
    first: datetime | None
    last: datetime | None


def stored(svc: Any, prefix: str = PREFIX) -> Stored:
    from sqlalchemy import func, select

    from core.models import Confirmation

    with svc.db.engine.connect() as conn:
        row = conn.execute(select(func.count(), func.count(Confirmation.recorded_at),
                                  func.min(Confirmation.recorded_at),
                                  func.max(Confirmation.recorded_at))
                           .where(Confirmation.trans_id.like(f"{prefix}%"))).one()
    return Stored(*row)


def lags(svc: Any, prefix: str) -> list[float]:
    """Seconds from each confirmation's acknowledgement to its payment in the ledger."""
    from sqlalchemy import select

    from core.models import Confirmation

    with svc.db.engine.connect() as conn:
        rows = conn.execute(select(Confirmation.received_at, Confirmation.recorded_at).where(
            Confirmation.trans_id.like(f"{prefix}%"),
            Confirmation.recorded_at.is_not(None))).all()
    return sorted((done - came).total_seconds() for came, done in rows)


# ---------------------------------------------------------------- the recorder


def recorder(env: dict[str, str], *, burst: bool) -> subprocess.Popen[bytes]:
    """One `harambee worker --queue payments` process (what production runs beside the
    web tier), its output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--queue", "payments",
         *(["--burst"] if burst else [])],
        env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass(frozen=True)
class Drained:
    count: int  # confirmations recorded
    wall: float  # seconds from starting the worker to its exit (start-up included)
    span: float  # seconds from the first payment recorded to the last
    cpu: float  # CPU seconds the worker used
    postgres: float  # CPU seconds PostgreSQL's backends used meanwhile

    @property
    def rate(self) -> float:
        return self.count / self.span if self.span else float("nan")


def drain(env: dict[str, str], svc: Any, meter: Meter, limit: float) -> Drained:
    """Record every stored confirmation with one worker (burst: it stops when the
    payments queue is empty), within `limit` seconds."""
    before = stored(svc)
    cpu_before = meter()
    started = time.perf_counter()
    worker = recorder(env, burst=True)
    used = 0.0
    try:
        while worker.poll() is None and time.perf_counter() - started < limit:
            used = max(used, sum(cpu_seconds([worker.pid]).values()))
            meter()  # notes the worker's PostgreSQL backend while it lives
            time.sleep(0.5)
    finally:
        processes.stop([worker])
    wall = time.perf_counter() - started
    cpu_after = meter()
    after = stored(svc)
    span = ((after.last - after.first).total_seconds()
            if after.last is not None and after.first is not None else 0.0)
    return Drained(after.recorded - before.recorded, wall, span, used,
                   cpu_after["postgres"] - cpu_before["postgres"])


def books_sound(svc: Any) -> list[str]:
    from core.checks import check

    return [str(v) for v in check(svc.uow())]


def replay(port: int, bodies: list[bytes], clients: int) -> tuple[int, float]:
    """Send these again, `clients` at a time: (bad answers, seconds)."""
    bad = 0
    started = time.perf_counter()
    for start in range(0, len(bodies), clients):
        answers = run_all([post(port, PATH, body, JSON)
                           for body in bodies[start:start + clients]])
        bad += sum(not acknowledged(status, answer) for status, answer in answers)
    return bad, time.perf_counter() - started


# ---------------------------------------------------------------- in-process counts


def one_at_a_time(svc: Any, book: Book, repeat: int = 20) -> dict[str, list[float]]:
    """Confirmations of each kind in this process, one at a time: at the door (through
    the app) and then recorded (`confirmations.record`, what the job runs). For each:
    SQL statements (besides BEGIN and COMMIT) and Redis round trips of the first, then
    the mean CPU and wall milliseconds of `repeat` more."""
    from sqlalchemy import select

    from core import confirmations
    from core.models import Confirmation
    from web.app import create_app

    client = create_app(services=svc).test_client()
    number = max(book.loans, key=lambda n: book.lenders_per_loan[n])
    cases = {f"repayment ({book.lenders_per_loan[number]} lenders)": [number],
             "top-up": book.phones, "suspense": ["INV00000"],
             "replay": [number]}  # the first repayment's TransID, again and again
    found: dict[str, list[float]] = {}

    def ids_of(bodies: list[bytes]) -> list[int]:
        trans_ids = [json.loads(body)["TransID"] for body in bodies]
        with svc.db.engine.connect() as conn:
            by_trans = dict(conn.execute(select(Confirmation.trans_id, Confirmation.id).where(
                Confirmation.trans_id.in_(trans_ids))).tuples().all())
        return [by_trans[t] for t in trans_ids]

    for n, (name, references) in enumerate(cases.items()):
        bodies = [daraja_body("CT00000000" if name == "replay" else f"CT{n:02d}{i:06d}",
                              references[i % len(references)], 100)
                  for i in range(repeat + 1)]
        with counting(svc.db) as seen:
            answers = [client.post(PATH, data=bodies[0], content_type=JSON)]
        started, cpu = time.perf_counter(), time.process_time()
        answers += [client.post(PATH, data=body, content_type=JSON) for body in bodies[1:]]
        found[f"door: {name}"] = [len(seen.sql), seen.redis,
                                  (time.process_time() - cpu) / repeat * 1000,
                                  (time.perf_counter() - started) / repeat * 1000]
        assert all(answer.status_code == 200 for answer in answers), name
        ids = ids_of(bodies)
        with counting(svc.db) as seen:
            confirmations.record(svc.uow(), ids[0], svc.now())
        started, cpu = time.perf_counter(), time.process_time()
        for confirmation_id in ids[1:]:
            confirmations.record(svc.uow(), confirmation_id, svc.now())
        found[f"recorded: {name}"] = [len(seen.sql), seen.redis,
                                      (time.process_time() - cpu) / repeat * 1000,
                                      (time.perf_counter() - started) / repeat * 1000]
    return found


def profile(svc: Any, book: Book, count: int) -> str:
    """`count` repayments in this process under cProfile (CPU time), at the door and
    recorded: the top of the table by own time, and our functions by cumulative time."""
    from sqlalchemy import select

    from core import confirmations
    from core.models import Confirmation
    from web.app import create_app

    client = create_app(services=svc).test_client()
    bodies = [daraja_body(f"PF{n:08d}", book.loans[n % len(book.loans)], 100)
              for n in range(count)]
    profiler = cProfile.Profile(time.process_time)
    started, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    for body in bodies:
        client.post(PATH, data=body, content_type=JSON)
    with svc.db.engine.connect() as conn:
        ids = conn.execute(select(Confirmation.id).where(
            Confirmation.trans_id.like("PF%")).order_by(Confirmation.id)).scalars().all()
    for confirmation_id in ids:
        confirmations.record(svc.uow(), confirmation_id, svc.now())
    profiler.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = io.StringIO()
    out.write(f"{count} repayments in-process, one at a time, stored then recorded, under "
              f"the profiler: {elapsed / count * 1000:.1f} ms each, "
              f"{cpu / count * 1000:.1f} ms of CPU\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(r"/(core|mpesa|runtime|web)/", 25)
    return out.getvalue()


# ---------------------------------------------------------------- the run


def median(runs: list[Measured], figure: Callable[[Measured], float]) -> float:
    return statistics.median(figure(m) for m in runs)


def steady(env: dict[str, str], port: int, svc: Any, book: Book, rng: random.Random,
           seconds: float, clients: int, think: float) -> tuple[Measured, list[float], int]:
    """With one recorder running, `clients` clients each sending a confirmation every
    `think` seconds for `seconds`: what a payer waits from the acknowledgement to the
    payment in the ledger. Returns the run, the lags (seconds) and how many were left
    unrecorded after waiting up to 60 s."""
    from redis import Redis
    from rq import Worker

    worker = recorder(env, burst=False)
    try:
        deadline = time.monotonic() + 30
        while not Worker.all(connection=Redis.from_url(env["REDIS_URL"])):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the recorder did not start")
            time.sleep(0.2)
        bodies = Confirmations(book, rng, prefix="LG")
        run = drive(port, clients, seconds, 10_000, lambda c, n: (PATH, bodies.body(0, c, n),
                                                                   JSON),
                    acknowledged, think=think)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = stored(svc, "LG")
            if now.recorded == now.stored:
                break
            time.sleep(0.2)
    finally:
        processes.stop([worker])
    now = stored(svc, "LG")
    return run, lags(svc, "LG"), now.stored - now.recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each round: the floor, the stored floor, the app")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per client per run")
    parser.add_argument("--members", type=int, default=3_000)
    parser.add_argument("--loans", type=int, default=150)
    parser.add_argument("--replays", type=int, default=500, help="confirmations sent again")
    parser.add_argument("--drain-limit", type=float, default=600.0,
                        help="seconds the recorder may take to record everything stored")
    parser.add_argument("--steady-seconds", type=float, default=10.0,
                        help="the steady run that measures the lag to the ledger")
    parser.add_argument("--redis-db", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile N repayments in-process")
    args = parser.parse_args()

    from core.config import load_settings
    from runtime.jobs import PAYMENTS
    from runtime.services import build_services

    rng = random.Random(args.seed)
    with (own_database(f"harambee_bench_mpesa_{os.getpid()}") as database_url,
          own_redis(args.redis_db) as redis_url):
        env = app_env(database_url, redis_url, MPESA_CALLBACK_TOKEN=TOKEN,
                      HARAMBEE_WEBHOOK_KEY=KEY, HARAMBEE_PIN__HASH_COST="8")
        started = time.perf_counter()
        book = seed(env, args.members, args.loans, rng)
        print(f"seeded {args.members} lenders and {len(book.loans)} disbursed loans "
              f"({min(book.lenders_per_loan.values())} to "
              f"{max(book.lenders_per_loan.values())} lenders each) in "
              f"{time.perf_counter() - started:.0f} s")
        with closing(build_services(load_settings(env=env))) as svc:
            confirmations = Confirmations(book, rng)
            floor_bodies = Confirmations(book, random.Random(args.seed + 1), prefix="FL")
            floors: list[Measured] = []
            stored_floors: list[Measured] = []
            apps: list[Measured] = []
            with app_and_bare(env, BARE_APP) as servers:
                print(f"{args.clients} concurrent clients, {args.seconds:.0f} s a run, "
                      f"{args.rounds} rounds, gunicorn 2 sync workers, PostgreSQL + Redis on "
                      f"loopback, {os.cpu_count()} cores (load average "
                      f"{os.getloadavg()[0]:.1f}); references by weight {MIX}; no recorder "
                      f"runs during the rounds")
                bare_meter, app_meter = Meter(servers, servers.bare, svc), Meter(
                    servers, servers.ours, svc)
                for r in range(1, args.rounds + 1):
                    floors.append(drive(
                        servers.bare, args.clients, args.seconds, args.max_requests,
                        lambda c, n, r=r: (PATH, floor_bodies.body(r, c, n), JSON),
                        acknowledged, meter=bare_meter))
                    stored_floors.append(drive(
                        servers.bare, args.clients, args.seconds, args.max_requests,
                        lambda c, n, r=r: (STORED, floor_bodies.body(r + 10, c, n), JSON),
                        acknowledged, meter=bare_meter))
                    apps.append(drive(
                        servers.ours, args.clients, args.seconds, args.max_requests,
                        lambda c, n, r=r: (PATH, confirmations.body(r, c, n), JSON),
                        acknowledged, meter=app_meter))
                    print(f"round {r}:")
                    line("floor", floors[-1])
                    line("stored floor", stored_floors[-1])
                    line("app (door)", apps[-1])
                    print(f"{'':>16}  app {apps[-1].rate / floors[-1].rate:.0%} of the floor, "
                          f"{apps[-1].rate / stored_floors[-1].rate:.0%} of the stored floor")
                answered = sum(m.statuses[200] for m in apps)
                at_door = stored(svc)
                waiting_jobs = svc.redis.client.llen(f"rq:queue:{PAYMENTS}")
                drained = drain(env, svc, app_meter, args.drain_limit)
                after_drain = stored(svc)
                kinds = recorded(svc)
                problems = books_sound(svc)
                before = snapshot(svc)
                failed = {(r, c, n) for r, m in enumerate(apps, 1) for c, n in m.failed}
                good = [body for key, body in confirmations.sent.items() if key not in failed]
                sample = rng.sample(good, min(args.replays, len(good)))
                replay_bad, replay_seconds = replay(servers.ours, sample, args.clients)
                after = snapshot(svc)
                # offered at half what one recorder drains: the lag a payer sees when
                # the recorders keep up (a backlog only adds its own wait)
                steady_rate = max(drained.rate / 2, 0.5)
                steady_run, steady_lags, steady_left = steady(
                    env, servers.ours, svc, book, rng, args.steady_seconds, 2,
                    2 / steady_rate)
                steady_problems = books_sound(svc)

            app_rate, floor_rate = median(apps, lambda m: m.rate), median(floors, lambda m: m.rate)
            stored_rate = median(stored_floors, lambda m: m.rate)
            print(f"median of {args.rounds} rounds:")
            for name, runs in (("app (door)", apps), ("floor", floors),
                               ("stored floor", stored_floors)):
                print(f"{name:>16}: {median(runs, lambda m: m.rate):7.0f} conf/s   p50 "
                      f"{median(runs, lambda m: m.p50):6.1f} ms   p99 "
                      f"{median(runs, lambda m: m.p99):6.1f} ms   CPU/conf: workers "
                      f"{median(runs, lambda m: m.cpu_ms('workers')):5.2f} ms, PostgreSQL "
                      f"{median(runs, lambda m: m.cpu_ms('postgres')):5.2f} ms   "
                      f"{sum(m.bad for m in runs)} bad answers")
            cpu_ratio = (median(apps, lambda m: m.cpu_ms("workers"))
                         / median(floors, lambda m: m.cpu_ms("workers")))
            print(f"{'':>16}  door: app {app_rate / floor_rate:.0%} of the floor's conf/s "
                  f"({app_rate / stored_rate:.0%} of the stored floor's), {cpu_ratio:.1f}x the "
                  f"floor's worker CPU per confirmation; target >= {TARGET} conf/s: "
                  f"{'met' if app_rate >= TARGET else 'NOT met'} on this machine")
            print(f"stored at the door {at_door.stored} = answered 200 {answered}: "
                  f"{'yes' if at_door.stored == answered else 'NO'}; {at_door.recorded} "
                  f"recorded meanwhile; {waiting_jobs} jobs waiting on the payments queue")
            print(f"recorder, 1 worker (harambee worker --queue payments --burst): "
                  f"{drained.count} recorded in {drained.span:.1f} s = {drained.rate:.0f} "
                  f"conf/s; all recorded {drained.wall:.1f} s after it started (start-up "
                  f"included); CPU/conf: worker {drained.cpu / max(drained.count, 1) * 1000:.2f}"
                  f" ms, PostgreSQL {drained.postgres / max(drained.count, 1) * 1000:.2f} ms")
            total = sum(kinds.values())
            all_in = after_drain.recorded == after_drain.stored == answered == total
            print(f"payments recorded {total}, confirmations recorded {after_drain.recorded} "
                  f"of {after_drain.stored}, answered 200 {answered}: "
                  f"{'all in the ledger' if all_in else 'NOT all in the ledger'} "
                  f"(sent {dict(confirmations.kinds)}; recorded {dict(kinds)})")
            print("check after the drain: " + (
                "the books are sound" if not problems else
                f"{len(problems)} violations\n  " + "\n  ".join(problems[:20])))
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            print(f"replayed {len(sample)} (the same TransIDs) in {replay_seconds:.1f} s: "
                  f"{replay_bad} bad answers, "
                  + ("nothing changed" if not changed else f"CHANGED {changed}"))
            if steady_lags:
                ordered = steady_lags
                print(f"steady: {steady_run.rate:.1f} conf/s for {steady_run.elapsed:.0f} s with "
                      f"one recorder running: acknowledgement to ledger p50 "
                      f"{statistics.median(ordered) * 1000:.0f} ms, p95 "
                      f"{ordered[int(len(ordered) * 0.95)] * 1000:.0f} ms, max "
                      f"{ordered[-1] * 1000:.0f} ms over {len(ordered)}; "
                      f"{steady_left} left unrecorded; check: "
                      + ("sound" if not steady_problems else f"{len(steady_problems)} violations"))
            print("in-process, one at a time (statements besides BEGIN and COMMIT):")
            for name, (sql, trips, cpu, wall) in one_at_a_time(svc, book).items():
                print(f"{name:>36}: {sql:3.0f} SQL, {trips:.0f} Redis round trips, "
                      f"{cpu:5.1f} ms CPU, {wall:5.1f} ms wall")
            if args.profile:
                print(profile(svc, book, args.profile))
            if (problems or steady_problems or changed or replay_bad or not all_in
                    or steady_left or steady_run.bad or any(m.bad for m in apps)):
                raise SystemExit(1)


if __name__ == "__main__":
    main()
