"""The SMS path at queue speed, on PostgreSQL and Redis with the production topology:
our app under gunicorn (2 sync workers) beside a bare Flask form endpoint, and
`harambee worker` processes with the console gateway.

    .venv/bin/python bench/sms.py [--seconds 6] [--paced-seconds 30] [--rate 100]

Loopback only; bounded in time and count. Creates and drops its own PostgreSQL database
(`DATABASE_URL`'s server, default postgresql://postgres@127.0.0.1:5432/postgres) and
uses its own Redis db (10 by default; `REDIS_URL`'s server), flushed before and after.
Seeds a few thousand members (lenders with money, some with pledges on loans), then:

1. intake: `--clients` concurrent clients post Africa's Talking-shaped SMS to
   `/hooks/sms` (a mix of BAL, LOANS, STATUS, HELP and typos), then the same to the
   bare endpoint; prints both rates and their ratio;
2. drain: the SMS stored by the intake run are answered by 1 worker, then another
   intake's by 2 workers; replies per second from the replies' own sent times;
3. paced latency: 1 worker running, SMS posted at `--rate` per second for
   `--paced-seconds`; the time from the hook's acceptance to the reply's sending, p50
   and p99 per 5-second window (a backlog shows as a growing p99);
4. outbound: 10,000 outbox rows of distinct texts sent by 1 worker, then 10,000 of one
   text (bulk requests of up to 100 phones).

Then every stored SMS must have exactly one reply, and `core.checks.check` must find
the books sound. Targets are printed as met or not, never asserted; the exit status is
non-zero only when a correctness check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import (  # noqa: E402
    ROOT,
    Measured,
    app_and_bare,
    app_env,
    counting,
    drive,
    own_database,
    own_redis,
    post,
    report,
)
from runtime import processes  # noqa: E402

KEY = "bench-webhook-key-0123456789"
PATH = f"/hooks/sms?key={KEY}"
FORM = "application/x-www-form-urlencoded"
FIRST_PHONE = 731_000_000
MIX = {"BAL": 35, "LOANS": 20, "STATUS": 15, "HELP": 15, "typo": 15}
TYPOS = ["BLA", "hlp", "lend", "", "SALDO", "bal 5", "LOANS please", "??"]
TARGETS = {"replies/s per worker": 200, "intake share of bare": 0.35,
           "2 workers over 1": 1.8, "paced p99 (s)": 2.0, "outbound/s": 1_000}

BARE_APP = '''
from flask import Flask, Response, request
app = Flask(__name__)

@app.post("/hooks/sms")
def incoming():
    assert request.form["from"] and request.args["key"]
    return Response("", mimetype="text/plain")
'''


# ---------------------------------------------------------------- the world


@dataclass(frozen=True)
class Book:
    phones: list[str]  # members' phones (E.164)
    loans: list[str]  # loan numbers some of them lent to


def seed(env: dict[str, str], members: int, loans: int, rng: random.Random) -> Book:
    """`members` lenders with money, and `loans` loans each funded by some of them."""
    from bench.seeding import bulk_lenders, crowd_funded_loan
    from core.config import load_settings
    from core.migrate import upgrade
    from runtime.services import build_services

    settings = load_settings(env=env)
    upgrade(settings)
    svc = build_services(settings)
    then = datetime.now(UTC) - timedelta(days=3)
    try:
        with svc.uow() as uow:
            pool = bulk_lenders(uow, members, settings.minor(20_000), then,
                                first_phone=FIRST_PHONE)
            uow.commit()
        numbers = []
        for i in range(loans):
            crowd = crowd_funded_loan(svc.uow, svc.payouts, rng.sample(pool, 10),
                                      settings.minor(500), then,
                                      borrower_phone=f"+254712{i:06d}")
            numbers.append(crowd.number)
        return Book([f"+254{FIRST_PHONE + i}" for i in range(members)], numbers)
    finally:
        svc.close()


class Messages:
    """Africa's Talking-shaped inbound SMS forms, each with an id of its own."""

    def __init__(self, book: Book, rng: random.Random, prefix: str) -> None:
        self.book, self.rng, self.prefix = book, rng, prefix
        self.count = 0

    def text(self) -> str:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "STATUS":
            return f"STATUS {self.rng.choice(self.book.loans)}"
        if kind == "typo":
            return self.rng.choice(TYPOS)
        return kind if self.rng.random() < 0.7 else kind.lower()

    def form(self, *_: int) -> tuple[str, bytes, str]:
        self.count += 1
        body = urlencode({"from": self.rng.choice(self.book.phones), "to": "22384",
                          "text": self.text(), "id": f"{self.prefix}{self.count:08d}",
                          "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                          "linkId": "", "networkCode": "63902"}).encode()
        return PATH, body, FORM


def accepted(status: int, _answer: bytes) -> bool:
    return status == 200


# ---------------------------------------------------------------- workers


class Workers:
    """`harambee worker` processes, each leading a process group of its own, stopped by
    the handles kept; their stderr goes to files in a temporary folder."""

    def __init__(self, env: dict[str, str], folder: str) -> None:
        self.env, self.folder = env, folder
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, count: int, *, burst: bool) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            log = Path(self.folder, f"worker{len(self.running)}.log").open("ab")
            args = [sys.executable, "-m", "cli", "worker"] + (["--burst"] if burst else [])
            started.append(subprocess.Popen(args, env=self.env, cwd=str(ROOT),
                                            stdout=subprocess.DEVNULL, stderr=log,
                                            start_new_session=True))
        self.running.extend(started)
        return started

    def stop(self) -> None:
        processes.stop(self.running)
        self.running.clear()

    def finish(self) -> float:
        """Stop the workers and return the CPU seconds they used in all (their own
        rusage, read as each is reaped: a burst worker may have exited already)."""
        used = 0.0
        for worker in self.running:
            with suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            _, status, usage = os.wait4(worker.pid, 0)
            worker.returncode = os.waitstatus_to_exitcode(status)
            used += usage.ru_utime + usage.ru_stime
        self.running.clear()
        return used


# ---------------------------------------------------------------- what the database says


def replies_sent(svc: Any, prefix: str) -> list[tuple[datetime, datetime]]:
    """(received, reply sent) for every SMS with this id prefix whose reply was sent."""
    from sqlalchemy import text as sql

    with svc.db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sql(
            "SELECT i.received_at, o.sent_at FROM sms_inbox i JOIN outbox o "
            "ON o.key = 'reply:' || i.id WHERE i.provider_id LIKE :p AND o.sent_at IS NOT NULL"),
            {"p": f"{prefix}%"})]


def waiting(svc: Any, prefix: str) -> int:
    """SMS of this prefix not yet answered, or answered with a reply not yet sent."""
    from sqlalchemy import text as sql

    with svc.db.engine.connect() as conn:
        return int(conn.execute(sql(
            "SELECT count(*) FROM sms_inbox i LEFT JOIN outbox o ON o.key = 'reply:' || i.id "
            "WHERE i.provider_id LIKE :p AND (i.status = 'received' "
            "OR (o.id IS NOT NULL AND o.sent_at IS NULL))"), {"p": f"{prefix}%"}).scalar_one())


def stored(svc: Any, prefix: str) -> int:
    from sqlalchemy import text as sql

    with svc.db.engine.connect() as conn:
        return int(conn.execute(sql("SELECT count(*) FROM sms_inbox WHERE provider_id LIKE :p"),
                                {"p": f"{prefix}%"}).scalar_one())


def wait_until_drained(svc: Any, prefix: str, limit: float) -> float:
    """Seconds until nothing of this prefix waits (at most `limit`)."""
    started = time.monotonic()
    while waiting(svc, prefix) and time.monotonic() - started < limit:
        time.sleep(0.2)
    return time.monotonic() - started


def span_rate(times: list[datetime]) -> float:
    """Events per second between the first and the last of these moments."""
    if len(times) < 2:
        return float("nan")
    seconds = (max(times) - min(times)).total_seconds()
    return (len(times) - 1) / seconds if seconds else float("inf")


# ---------------------------------------------------------------- the parts


def intake(servers: Any, messages: Messages, clients: int, seconds: float) -> tuple[
        Measured, Measured]:
    bare = drive(servers.bare, clients, seconds, 100_000, messages.form, accepted)
    ours = drive(servers.ours, clients, seconds, 100_000, messages.form, accepted)
    return ours, bare


def startup_cpu(workers: Workers) -> float:
    """CPU seconds a worker spends starting and stopping with nothing to do."""
    workers.start(1, burst=True)
    return workers.finish()


def drain(svc: Any, workers: Workers, count: int, prefix: str, startup: float
          ) -> tuple[float, int, float]:
    """Answer what is stored under `prefix` with `count` burst workers: replies/s, the
    replies sent, and worker CPU milliseconds per reply (start-up taken out)."""
    workers.start(count, burst=True)
    wait_until_drained(svc, prefix, 600)
    cpu = workers.finish() - count * startup
    sent = replies_sent(svc, prefix)
    return span_rate([s for _, s in sent]), len(sent), cpu / max(len(sent), 1) * 1000


async def paced_posts(port: int, messages: Messages, rate: float, seconds: float) -> int:
    """Post one SMS every 1/rate seconds (open loop: a slow answer delays no other)."""
    tasks = []
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < seconds:
        path, body, kind = messages.form()
        tasks.append(asyncio.create_task(post(port, path, body, kind)))
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
    answers = await asyncio.gather(*tasks)
    return sum(1 for status, _ in answers if status == 200)


def paced(svc: Any, servers: Any, workers: Workers, messages: Messages, rate: float,
          seconds: float) -> list[tuple[int, int, float, float]]:
    """(window start s, replies, p50 s, p99 s) per 5-second window of arrival."""
    workers.start(1, burst=False)
    time.sleep(2.0)  # the worker is up and listening before the first SMS
    asyncio.run(paced_posts(servers.ours, messages, rate, seconds))
    wait_until_drained(svc, messages.prefix, 120)
    workers.stop()
    pairs = replies_sent(svc, messages.prefix)
    if not pairs:
        return []
    first = min(r for r, _ in pairs)
    windows: dict[int, list[float]] = {}
    for received, sent in pairs:
        window = int((received - first).total_seconds() // 5) * 5
        windows.setdefault(window, []).append((sent - received).total_seconds())
    return [(w, len(v), statistics.median(v), sorted(v)[min(len(v) - 1, int(len(v) * .99))])
            for w, v in sorted(windows.items())]


def outbound(svc: Any, workers: Workers, count: int, *, same_text: bool) -> float:
    """Queue `count` outbox rows and send them with 1 burst worker: messages/s."""
    from sqlalchemy import text as sql

    from core.bulk import insert_rows
    from core.models import OutboxMessage

    now = datetime.now(UTC)
    tag = "same" if same_text else "distinct"
    rows = [{"key": f"bench:{tag}:{i}", "phone": f"+254{FIRST_PHONE + i % 5000}",
             "member_id": None, "language": "en", "purpose": "notice", "template": "help",
             "text": "Harambee: your loan is due on Friday." if same_text
             else f"Harambee: message {i} of the bench.", "status": "queued", "attempts": 0,
             "not_before": None, "next_attempt_at": now, "created_at": now}
            for i in range(count)]
    with svc.uow() as uow:
        ids = insert_rows(uow.session, OutboxMessage.__table__, rows, returning="id",
                          skip_existing="key")
        uow.commit()
    svc.jobs.send(ids)
    workers.start(1, burst=True)
    started = time.monotonic()
    with svc.db.engine.connect() as conn:
        def left() -> int:
            return int(conn.execute(sql(
                "SELECT count(*) FROM outbox WHERE key LIKE :k AND sent_at IS NULL"),
                {"k": f"bench:{tag}:%"}).scalar_one())
        while left() and time.monotonic() - started < 300:
            time.sleep(0.2)
        conn.rollback()
        times = [row[0] for row in conn.execute(sql(
            "SELECT sent_at FROM outbox WHERE key LIKE :k AND sent_at IS NOT NULL"),
            {"k": f"bench:{tag}:%"})]
    workers.stop()
    return span_rate(times)


def round_trips(svc: Any, book: Book) -> None:
    """SQL statements and Redis round trips of one intake and of one answer sent,
    counted in this process (BEGIN and COMMIT not included)."""
    from urllib.parse import parse_qsl

    from web.app import create_app
    from workers import duties

    client = create_app(services=svc).test_client()
    messages = Messages(book, random.Random(1), "RT")
    for _ in range(3):  # warm: the first request builds what later ones reuse
        path, body, _kind = messages.form()
        client.post(path, data=dict(parse_qsl(body.decode())))
    path, body, _kind = messages.form()
    with counting(svc.db) as seen:
        client.post(path, data=dict(parse_qsl(body.decode())))
    intake_sql, intake_redis = len(seen.sql), seen.redis
    with svc.uow() as uow:
        from sqlalchemy import select

        from core.models import InboundSms, InboundStatus
        waiting_ids = list(uow.session.scalars(select(InboundSms.id).where(
            InboundSms.provider_id.like("RT%"), InboundSms.status == InboundStatus.RECEIVED)
            .order_by(InboundSms.id)))
    answer = getattr(duties, "answer_and_send", None)
    own = 0
    if answer is None:  # the code before share answerers (a before/after run)
        answer, own = _answer_then_send, 1
    answer(svc, waiting_ids[:-1])
    with counting(svc.db) as seen:
        answer(svc, waiting_ids[-1:])
    print(f"0. round trips: one intake {intake_sql} SQL + {intake_redis} Redis; one answer "
          f"and its reply sent alone {len(seen.sql) - own} SQL + {seen.redis} Redis")


def _answer_then_send(svc: Any, inbound_ids: list[int]) -> None:
    """Before share answerers: the answer job, then the send job of its reply."""
    from workers import duties

    for inbound_id in inbound_ids:
        duties.answer_sms(svc, inbound_id)
        with svc.db.engine.connect() as conn:
            from sqlalchemy import text as sql
            reply = conn.execute(sql("SELECT id FROM outbox WHERE key = :k"),
                                 {"k": f"reply:{inbound_id}"}).scalar()
        if reply is not None:
            duties.send_outbox(svc, [reply])


def exactly_one_reply(svc: Any) -> list[str]:
    """Every stored SMS answered once: no inbound row left unanswered, no reply twice."""
    from sqlalchemy import text as sql

    with svc.db.engine.connect() as conn:
        unanswered = conn.execute(sql(
            "SELECT count(*) FROM sms_inbox WHERE status = 'received'")).scalar_one()
        unsent = conn.execute(sql(
            "SELECT count(*) FROM outbox WHERE key LIKE 'reply:%' AND sent_at IS NULL"
        )).scalar_one()
        sends = conn.execute(sql(
            "SELECT count(*) FROM outbox WHERE key LIKE 'reply:%' AND attempts > 1")).scalar_one()
    problems = []
    if unanswered:
        problems.append(f"{unanswered} SMS never answered")
    if unsent:
        problems.append(f"{unsent} replies never sent")
    if sends:
        problems.append(f"{sends} replies sent more than once")
    return problems


# ---------------------------------------------------------------- the run


def verdict(name: str, value: float, met: bool) -> str:
    return f"{name} {value:.2f}: {'met' if met else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per intake run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--paced-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="paced SMS per second")
    parser.add_argument("--outbound", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=3_000)
    parser.add_argument("--loans", type=int, default=20)
    parser.add_argument("--redis-db", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from core import checks
    from core.config import load_settings
    from core.db import UnitOfWork
    from runtime.services import build_services

    rng = random.Random(args.seed)
    with (own_database(f"harambee_bench_sms_{os.getpid()}") as database_url,
          own_redis(args.redis_db) as redis_url, tempfile.TemporaryDirectory() as tmp):
        env = app_env(database_url, redis_url, HARAMBEE_WEBHOOK_KEY=KEY,
                      HARAMBEE_PIN__HASH_COST="8",
                      HARAMBEE_SECURITY__SMS_RATE_LIMIT="100000 per minute")
        started = time.perf_counter()
        book = seed(env, args.members, args.loans, rng)
        print(f"seeded {args.members} lenders and {len(book.loans)} loans in "
              f"{time.perf_counter() - started:.0f} s; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}; gunicorn 2 sync workers, console SMS gateway; "
              f"mix {MIX}")
        workers = Workers(env, tmp)
        with closing(build_services(load_settings(env=env))) as svc, \
                app_and_bare(env, BARE_APP) as servers:
            try:
                round_trips(svc, book)
                startup = startup_cpu(workers)
                one = Messages(book, rng, "BA")
                ours, bare = intake(servers, one, args.clients, args.seconds)
                print(f"1. intake, {args.clients} connections:")
                report("bare form", bare, "sms")
                report("/hooks/sms", ours, "sms")
                share = ours.rate / bare.rate
                print(f"{'':>16}  {share:.2f}x bare; {ours.bad + bare.bad} bad answers")

                print("2. drain (the SMS the intake stored; replies/s from their sent times;"
                      " worker CPU per reply without start-up):")
                rate1, sent1, cpu1 = drain(svc, workers, 1, "BA", startup)
                print(f"{'1 worker':>16}: {sent1} replies, {rate1:7.0f} replies/s, "
                      f"{cpu1:5.2f} ms CPU each (= {1000 / cpu1:4.0f} replies per CPU second)")
                two = Messages(book, rng, "BB")
                intake(servers, two, args.clients, min(args.seconds, sent1 / ours.rate * 1.2
                                                        if ours.rate else args.seconds))
                rate2, sent2, cpu2 = drain(svc, workers, 2, "BB", startup)
                print(f"{'2 workers':>16}: {sent2} replies, {rate2:7.0f} replies/s "
                      f"({rate2 / rate1:.2f}x one), {cpu2:5.2f} ms CPU each")

                print(f"3. paced: {args.rate:.0f} SMS/s for {args.paced_seconds:.0f} s, "
                      "1 worker; hook accepted -> reply sent, by arrival window:")
                windows = paced(svc, servers, workers, Messages(book, rng, "BP"), args.rate,
                                args.paced_seconds)
                for start, count, p50, p99 in windows:
                    print(f"{'':>8}{start:3d}-{start + 5:<3d}s: {count:5d} replies   "
                          f"p50 {p50 * 1000:7.0f} ms   p99 {p99 * 1000:7.0f} ms")
                worst = max((p99 for *_, p99 in windows), default=float("nan"))

                print(f"4. outbound, 1 worker, {args.outbound} rows:")
                distinct = outbound(svc, workers, args.outbound, same_text=False)
                same = outbound(svc, workers, args.outbound, same_text=True)
                print(f"{'distinct texts':>16}: {distinct:7.0f} messages/s")
                print(f"{'one text (bulk)':>16}: {same:7.0f} messages/s")
            finally:
                workers.stop()
            problems = exactly_one_reply(svc) + [str(v) for v in checks.check(UnitOfWork(svc.db))]
        print("targets: " + "; ".join([
            verdict("replies/s per worker", rate1, rate1 >= TARGETS["replies/s per worker"]),
            verdict("2 workers over 1", rate2 / rate1,
                    rate2 / rate1 >= TARGETS["2 workers over 1"]),
            verdict("intake share of bare", share, share >= TARGETS["intake share of bare"]),
            verdict("paced worst p99 (s)", worst, worst < TARGETS["paced p99 (s)"]),
            verdict("outbound/s", distinct, distinct >= TARGETS["outbound/s"])]))
        print("exactly one reply each, and check: " + (
            "yes, the books are sound" if not problems else "NO\n  " + "\n  ".join(problems)))
        if problems:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
