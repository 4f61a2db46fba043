"""The fault harness: the production topology, a synthetic village playing through the
public hooks, and faults injected on a schedule; then the invariants.

    .venv/bin/python bench/faults.py --seconds 30      # CI
    .venv/bin/python bench/faults.py --minutes 3       # the full run

It starts, in process groups of its own: a private `redis-server`, gunicorn with 2
workers, 2 RQ workers (`harambee worker`) and `harambee cron`, on a PostgreSQL database
it creates and drops (`DATABASE_URL`'s server, default
postgresql://postgres@127.0.0.1:5432). SMS go to a fake Africa's Talking and M-Pesa is a
fake Daraja, both run here, so the harness sees every message sent and every shilling
moved. Faults, each recorded: Redis SIGKILLed and restarted after a pause, an RQ worker
SIGKILLed and restarted, a gunicorn worker SIGKILLed, `pg_terminate_backend` on the
app's connections, the SMS gateway answering 500 or hanging past the SDK's timeout, and
callbacks duplicated and reordered. The clock is moved by `harambee tick --now` so
reminders come due. Every loop is bounded; the run stops by itself.

Exits non-zero when money the customer paid is missing from the ledger, a committed SMS
was never sent, a USSD answer was not CON/END, an answer was a 500, the system did not
drain, or `harambee check` is not clean. See docs/faults.md for what the figures mean.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fault_gateway  # noqa: E402
from bench.fault_accounts import Accounts, account  # noqa: E402
from bench.fault_topology import OBSERVER, Topology, free_port, observer, own_database  # noqa: E402
from bench.fault_village import Hooks, Tally, Village  # noqa: E402
from cli.demo import FAKE  # noqa: E402
from mpesa.fake import FakeDaraja  # noqa: E402
from runtime.clock import OffsetClock, move_to  # noqa: E402

KEY = "faults-webhook-key-0123456789"
TOKEN = "faults-callback-token-0123456789"
AGENTS = ("+254700000001", "+254700000002", "+254700000003")
NAIROBI = ZoneInfo("Africa/Nairobi")
KINDS = ("sms_500", "redis_kill", "rq_worker_kill", "pg_terminate", "gunicorn_worker_kill",
         "sms_timeout", "duplicate_callbacks", "reorder_callbacks")


@dataclass
class Fault:
    kind: str
    start: float  # time.monotonic()
    end: float = 0.0
    detail: str = ""


@dataclass
class Faults:
    """Every fault injected, in order."""

    log: list[Fault] = field(default_factory=list)
    clock_moves: list[float] = field(default_factory=list)  # when the clock jumped (not a fault)
    started: float = 0.0  # when the play began

    @property
    def by_kind(self) -> Counter[str]:
        return Counter(f.kind for f in self.log)

    @property
    def last_end(self) -> float:
        return max((f.end for f in self.log), default=0.0)


# ---------------------------------------------------------------- the settings


def app_env(database_url: str, redis_url: str, web_port: int, gateway_url: str,
            daraja: FakeDaraja, instance: Path) -> dict[str, str]:
    """Production's gateways (Africa's Talking, Daraja) pointed at the fakes, with
    development's permission to call back over http; timings shortened so faults drain
    in seconds (see docs/faults.md)."""
    return {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).parents[1]),
        "HARAMBEE_ENV": "development", "HARAMBEE_INSTANCE": str(instance),
        "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "HARAMBEE_WEBHOOK_KEY": KEY, "HARAMBEE_SESSION_SECRET": "faults-session-secret-0123",
        "HARAMBEE_GATEWAY": "africastalking", "AT_USERNAME": "harambee",
        "AT_API_KEY": fault_gateway.API_KEY, "HARAMBEE_GATEWAY__API_BASE_URL": gateway_url,
        **FAKE, "MPESA_BASE_URL": daraja.base_url, "MPESA_CALLBACK_TOKEN": TOKEN,
        "HARAMBEE_GATEWAY__PAYOUT": "daraja",
        "HARAMBEE_MPESA__CALLBACK_BASE_URL": f"http://127.0.0.1:{web_port}",
        # The village is small and busy: an agent registers a member in ~11 hops, several
        # a minute (USSD's default is 60 hops a minute per phone), and a lender may send
        # LEND and YES a few times a minute (the SMS hook's default is 30 a minute).
        "HARAMBEE_USSD__RATE_LIMIT_PER_MINUTE": "600",
        "HARAMBEE_SECURITY__SMS_RATE_LIMIT": "300 per minute",
        "HARAMBEE_PIN__HASH_COST": "10",  # scrypt at 2^14 per PIN is too dear on 2 cores
        "HARAMBEE_BACKGROUND__SWEEP_SECONDS": "5",
        "HARAMBEE_BACKGROUND__SMS_RETRY_SECONDS": "5",
        "HARAMBEE_PAYOUTS__RESULT_WAIT_MINUTES": "1",
        "HARAMBEE_PAYOUTS__ASK_EVERY_MINUTES": "1",
        "HARAMBEE_APP__CLOCK_FILE": str(instance / "clock"),  # moved by move_clock
    }


def register_c2b(env: dict[str, str]) -> None:
    """Our paybill's URLs registered with (fake) Daraja, as `harambee demo` does."""
    from core.config import load_settings
    from runtime.mpesa import CallbackUrls
    from runtime.services import build_services

    settings = load_settings(env=env)
    svc = build_services(settings)
    try:
        urls = CallbackUrls.of(settings)
        assert svc.daraja is not None
        svc.daraja.register_urls(confirmation_url=urls.c2b_confirmation,
                                 validation_url=urls.c2b_validation)
    finally:
        svc.close()


def add_agents(env: dict[str, str]) -> None:
    """The operator adds the village's agents, as `harambee members add` does."""
    from core import members
    from core.config import load_settings
    from core.db import Database, UnitOfWork

    database = Database(load_settings(env=env))
    try:
        for n, phone in enumerate(AGENTS):
            members.register(UnitOfWork(database), phone=phone, name=f"Agent {'ABC'[n]} Village",
                             national_id=f"{20_000_000 + n}", language="en", roles=["agent"],
                             pin="2580", by_operator=True, now=datetime.now(UTC))
    finally:
        database.dispose()


# ---------------------------------------------------------------- the faults


class Injector:
    """Breaks one thing at a time, records it, and puts it right."""

    def __init__(self, topology: Topology, gateway: fault_gateway.FakeGateway,
                 village: Village, faults: Faults, pause: float) -> None:
        self.topology, self.gateway, self.village = topology, gateway, village
        self.faults, self.pause = faults, pause
        self.admin = observer(topology.database_url.rsplit("/", 1)[0] + "/postgres")
        self.worker_turn = 0

    def inject(self, kind: str) -> None:
        fault = Fault(kind, time.monotonic())
        fault.detail = getattr(self, kind)()
        fault.end = time.monotonic()
        self.faults.log.append(fault)

    def redis_kill(self) -> str:
        self.topology.kill_redis()
        time.sleep(self.pause)
        self.topology.start_redis()
        return f"down {self.pause:.0f} s, restarted empty"

    def rq_worker_kill(self) -> str:
        n = self.worker_turn % len(self.topology.workers)
        self.worker_turn += 1
        self.topology.kill_worker(n)
        time.sleep(1.0)
        self.topology.start_worker(n)
        return f"worker {n} killed, restarted after 1 s"

    def gunicorn_worker_kill(self) -> str:
        pids = self.topology.web_workers()
        if not pids:
            return "no worker to kill"
        pid = random.choice(pids)
        os.kill(pid, 9)
        return f"worker pid {pid} killed; the master starts another"

    def pg_terminate(self) -> str:
        from sqlalchemy import text

        name = self.topology.database_url.rsplit("/", 1)[1]
        with self.admin.connect() as conn:
            ended = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid() "
                "AND coalesce(application_name, '') <> :me"), {"db": name, "me": OBSERVER}
            ).scalar_one()
            conn.commit()
        return f"{ended} connections terminated"

    def sms_500(self) -> str:
        return self._gateway(fault_gateway.FAIL_500)

    def sms_timeout(self) -> str:
        return self._gateway(fault_gateway.TIMEOUT)

    def _gateway(self, mode: str) -> str:
        before = sum(self.gateway.requests.values())
        self.gateway.mode = mode
        time.sleep(self.pause)
        self.gateway.mode = fault_gateway.OK
        return f"{sum(self.gateway.requests.values()) - before} requests answered {mode}"

    def duplicate_callbacks(self) -> str:
        """The last callbacks of every kind sent again: SMS (same AT id), USSD hops,
        paybill confirmations and B2C results."""
        hooks, daraja = self.village.hooks, self.village.hooks.daraja
        sms, hops = hooks.recent_sms[-5:], hooks.latest_hops(5)
        receipts = hooks.recent_receipts[-5:]
        for form in sms:
            hooks.sms(form["from"], form["text"], sms_id=form["id"])
        for hop in hops:
            hooks.replay_hop(hop)
        for trans_id in receipts:
            daraja.replay_confirmation(trans_id)
        results = daraja.deliveries_of("b2c_result")[-3:]
        for delivery in results:
            daraja.redeliver(delivery.id)
        reports = self.village.reports()
        for taken in self.gateway.snapshot()[-5:]:
            hooks.report(taken.message_id, taken.phone, "Success")
        return (f"{len(sms)} SMS, {len(hops)} hops, {len(receipts)} confirmations, "
                f"{len(results)} B2C results, {reports + 5} delivery reports again")

    def reorder_callbacks(self) -> str:
        """Callbacks out of order: final delivery reports before interim ones, older
        paybill confirmations and B2C results after newer ones."""
        daraja = self.village.hooks.daraja
        reports = self.village.reports(reorder=True)
        receipts = list(reversed(self.village.hooks.recent_receipts[-5:]))
        for trans_id in receipts:
            daraja.replay_confirmation(trans_id)
        results = list(reversed(daraja.deliveries_of("b2c_result")[-3:]))
        for delivery in results:
            daraja.redeliver(delivery.id)
        return (f"{reports} reports final-first, {len(receipts)} confirmations and "
                f"{len(results)} B2C results newest-first")


def schedule(seconds: float, rng: random.Random) -> list[tuple[float, str]]:
    """When each fault starts (seconds into the play): every kind once in the first
    pass, in a fixed order, then shuffled passes; none in the last few seconds."""
    every = max(3.0, min(8.0, seconds / (len(KINDS) + 2)))
    at, plan, kinds = 2.0, [], list(KINDS)
    while at < seconds - 4:
        plan.append((at, kinds[len(plan) % len(kinds)]))
        at += every
        if len(plan) % len(kinds) == 0:
            rng.shuffle(kinds)
    return plan


# ---------------------------------------------------------------- the play


def actor(village: Village, stop_at: float, rng: random.Random) -> None:
    """One person after another doing something, until `stop_at`."""
    tasks: list[tuple[Callable[[], object], int]] = [
        (village.register, 1), (village.top_up, 2), (village.ask_loan, 2),
        (village.pledge, 4), (village.confirm, 4), (village.repay, 3),
        (village.chatter, 1), (village.reports, 1)]
    while time.monotonic() < stop_at:
        if len(village.members) < 9:  # a few neighbours first
            task: Callable[[], object] = village.register
        else:
            task = rng.choices([t for t, _ in tasks], weights=[w for _, w in tasks])[0]
        try:
            task()
        except Exception as exc:  # noqa: BLE001 - a harness bug must not hang the run
            print(f"  actor: {task.__name__} failed: {type(exc).__name__}: {exc}")
            time.sleep(0.2)


def move_clock(topology: Topology, tally: Tally, faults: Faults) -> None:
    """Five days pass in the village: every process's clock is moved to 10:00 in
    Nairobi five days on (`app.clock_file`), and the operator runs the day's duties
    (`harambee tick`): installments come near or fall late, and reminders are written."""
    path = topology.env["HARAMBEE_APP__CLOCK_FILE"]
    day = (OffsetClock(path)().astimezone(NAIROBI) + timedelta(days=5)).date()
    move_to(path, datetime(day.year, day.month, day.day, 10, 0, tzinfo=NAIROBI))
    faults.clock_moves.append(time.monotonic())
    time.sleep(1.0)  # every process reads the file again within half a second
    done = topology.run_cli("tick", "--only", "mark_arrears", "--only", "reminders",
                            timeout=60)
    tally.add("reminder_runs")
    said = " ".join(done.stdout.split()) if done.returncode == 0 else done.stderr.strip()[-300:]
    print(f"  clock moved to {day} 10:00 in Nairobi; tick: {said}")


def play(village: Village, injector: Injector, topology: Topology, seconds: float,
         actors: int, seed: int) -> None:
    started = time.monotonic()
    injector.faults.started = started
    stop_at = started + seconds
    threads = [threading.Thread(target=actor, args=(village, stop_at, random.Random(seed + n)),
                                daemon=True) for n in range(actors)]
    for thread in threads:
        thread.start()
    # A jump of days lapses every pledge still waiting for its YES: in a short run that
    # would leave nothing funded, so the clock moves only after the play (see `run`).
    clock_moves = [seconds * 0.5] if seconds >= 120 else []
    for at, kind in schedule(seconds, random.Random(seed)):
        while clock_moves and clock_moves[0] <= at:
            _wait_until(started + clock_moves.pop(0))
            move_clock(topology, village.hooks.tally, injector.faults)
        _wait_until(started + at)
        injector.inject(kind)
        fault = injector.faults.log[-1]
        print(f"  t={fault.start - started:5.1f}-{fault.end - started:5.1f}s {kind}: "
              f"{fault.detail}")
    for moment in clock_moves:
        _wait_until(started + moment)
        move_clock(topology, village.hooks.tally, injector.faults)
    for thread in threads:
        thread.join(timeout=max(0.0, stop_at - time.monotonic()) + 60)


def _wait_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def drain(accounts: Accounts, hooks: Hooks, village: Village, limit: float) -> float | None:
    """Wait until nothing is left to do (no SMS to send, none to answer, no job queued,
    no payout in flight, every paybill confirmation taken); the time it took from the
    last fault, or None when `limit` seconds were not enough."""
    started = time.monotonic()
    deadline = started + limit
    shown = started
    while time.monotonic() < deadline:
        hooks.confirm_again()
        village.confirm()
        village.reports()
        left = accounts.pending()
        if not left and not hooks.unconfirmed:
            return time.monotonic()
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            print(f"  draining, {shown - started:.0f} s: {left}")
        time.sleep(1.0)
    return None


# ---------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float)
    length.add_argument("--minutes", type=float)
    parser.add_argument("--actors", type=int, default=3, help="people acting at once")
    parser.add_argument("--drain", type=float, default=100.0,
                        help="seconds allowed to drain after the play")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every process group is stopped and the database
    # dropped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress as it goes
    seconds = args.seconds or (args.minutes or 0.5) * 60
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"wt_faults_run_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp, \
            own_database(base, name) as database_url:
        return run(Path(tmp), database_url, seconds, args)


def run(workdir: Path, database_url: str, seconds: float, args: argparse.Namespace) -> int:
    (workdir / "instance").mkdir()
    gateway = fault_gateway.FakeGateway().start()
    daraja = FakeDaraja(seed=args.seed).start()
    web_port = free_port()
    topology = Topology(env={}, workdir=workdir, web_port=web_port, redis_port=free_port(),
                        database_url=database_url)
    topology.env = app_env(database_url, topology.redis_url, web_port, gateway.base_url,
                           daraja, workdir / "instance")
    db = observer(database_url)
    try:
        began = time.monotonic()
        topology.start_all()
        add_agents(topology.env)
        register_c2b(topology.env)
        print(f"topology up in {time.monotonic() - began:.1f} s: gunicorn :{web_port} "
              f"(2 workers), 2 RQ workers, cron, redis-server :{topology.redis_port}, "
              f"PostgreSQL {database_url.rsplit('/', 1)[1]}")
        tally, faults = Tally(), Faults()
        hooks = Hooks(topology.base_url, KEY, tally, daraja)
        village = Village(hooks, gateway, db, list(AGENTS), random.Random(args.seed))
        injector = Injector(topology, gateway, village, faults,
                            pause=3.0 if seconds < 120 else 6.0)
        started = time.monotonic()
        print(f"playing for {seconds:.0f} s with {args.actors} people at once; faults:")
        play(village, injector, topology, seconds, args.actors, args.seed)
        for _ in range(2):  # near the first installments, then past them
            move_clock(topology, tally, faults)
        accounts = Accounts(db, topology.redis_url, gateway, daraja,
                            OffsetClock(topology.env["HARAMBEE_APP__CLOCK_FILE"]))
        played = time.monotonic()
        drained = drain(accounts, hooks, village, args.drain)
        dead = topology.dead()
        for name in dead:
            print(f"-- {name} exited on its own; the end of its log:\n{topology.log_tail(name)}")
        result = account(accounts, tally, faults, drained, topology.run_cli("check"), dead)
        print(f"phases: start {started - began:.1f} s, play {played - started:.1f} s, "
              f"drain and accounts {time.monotonic() - played:.1f} s")
        return 0 if result else 1
    finally:
        stopping = time.monotonic()
        topology.stop_all()
        print(f"stopped in {time.monotonic() - stopping:.1f} s")
        db.dispose()
        gateway.stop()
        daraja.stop()


if __name__ == "__main__":
    sys.exit(main())
