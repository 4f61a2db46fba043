"""Ledger benchmark: pledge confirmations per second and the 10,000-lender repayment.

    .venv/bin/python bench/ledger.py                  # SQLite (temp file) and PostgreSQL
    .venv/bin/python bench/ledger.py --backend sqlite
    .venv/bin/python bench/ledger.py --pg-url postgresql://postgres@127.0.0.1:5432/postgres

PostgreSQL: a database of its own is created on that server and dropped afterwards.
Confirmations are spread over 100 listed loans (each loan funds at its last one, so
funding — every hold posted at once — is part of the figure); they run in one process,
then in 4 processes at once, each with its own connection. Each figure comes with its
ratio to a floor measured just before it in the same way: as many empty units of work
with a confirmation's round trips (BEGIN, two trivial statements, COMMIT; on PostgreSQL
the commit is flushed to disk as a confirmation's is), so a slow or busy machine shows
in both. The repayment figure is the
whole `record_payment` use case (10,000 ledger transfers, wallet counters and pledge
totals, the borrower's receipt, commit) for a payment every one of 10,000 lenders gets a
share of (target: under 0.5 s). The lenders' 10,000 notices are written after commit by
a job (`tell_lenders`), timed on its own line; the pure largest-remainder split is timed
separately too. Durability is left as configured (synchronous_commit on).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.seeding import borrower_with_listed_loan, bulk_lenders, crowd_funded_loan  # noqa: E402
from core import checks, pledges, repayments  # noqa: E402
from core.allocation import largest_remainder  # noqa: E402
from core.config import Settings, load_settings  # noqa: E402
from core.db import Database, UnitOfWork  # noqa: E402
from core.errors import DomainError  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.models import Loan, LoanStatus, Member, Pledge, PledgeStatus  # noqa: E402
from runtime.payouts import ConsolePayouts  # noqa: E402
from tests.support import clean_database  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLEDGE = 10_000  # KES 100
LOANS = 100
LENDERS = 400


def bench_settings(url: str) -> Settings:
    return load_settings(env={}, overrides={
        "database": {"url": url}, "pin": {"hash_cost": 8},
        "loan": {"max_amount": 10_000_000, "min_pledge": 1, "lender_interest_percent": "3"},
        "credit": {"first_loan_limit": 10_000_000, "cap": 10_000_000}})


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    """A fresh, migrated database URL for the run; removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="harambee-bench-") as path:
            url = f"sqlite:///{path}/bench.db"
            upgrade(bench_settings(url))
            yield url
        return
    base = make_url(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"harambee_bench_{os.getpid()}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(bench_settings(url))
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ---------------------------------------------------------------- confirmations

def open_loans(db: Database, per_loan: int) -> list[tuple[str, str]]:
    """100 listed loans, each with `per_loan` proposed pledges that exactly fund it;
    returns (phone, code) for every pledge, interleaved across the loans."""
    clean_database(db)
    numbers = [borrower_with_listed_loan(lambda: UnitOfWork(db), per_loan * PLEDGE, NOW,
                                         f"+25471{i:07d}")[1] for i in range(LOANS)]
    with UnitOfWork(db) as uow:
        lenders = bulk_lenders(uow, LENDERS, PLEDGE * per_loan * LOANS // LENDERS + PLEDGE, NOW)
        phones = dict(uow.session.execute(select(Member.id, Member.phone)
                                          .where(Member.id.in_(lenders))).tuples().all())
        loan_ids = dict(uow.session.execute(select(Loan.number, Loan.id)).tuples().all())
        rows, jobs = [], []
        for k in range(per_loan):
            for j, number in enumerate(numbers):
                n = k * LOANS + j
                lender = lenders[n % LENDERS]
                code = f"{1000 + n // LENDERS}"
                rows.append({"loan_id": loan_ids[number], "lender_id": lender, "amount": PLEDGE,
                             "code": code, "status": PledgeStatus.PROPOSED, "repaid": 0,
                             "entitled": 0, "created_at": NOW,
                             "confirm_by": NOW.replace(hour=20)})
                jobs.append((phones[lender], code))
        uow.session.execute(insert(Pledge), rows)
        uow.commit()
    return jobs


def confirm_all(db: Database, jobs: list[tuple[str, str]]) -> tuple[int, int]:
    done = refused = 0
    for phone, code in jobs:
        try:
            with UnitOfWork(db) as uow:
                pledges.confirm_pledge(uow, phone=phone, code=code, now=NOW)
                uow.commit()
            done += 1
        except DomainError:
            refused += 1
    return done, refused


def floor_all(db: Database, jobs: list[tuple[str, str]]) -> tuple[int, int]:
    """The baseline: as many units of work as `jobs`, each with the round trips of a
    confirmation (BEGIN, two statements, COMMIT) and no work in them. On PostgreSQL the
    second takes a transaction id, so the commit is flushed to disk as a confirmation's
    is."""
    second = text("SELECT pg_current_xact_id()" if db.is_postgres else "SELECT 1")
    for _ in jobs:
        with UnitOfWork(db) as uow:
            uow.connection.execute(_TRIVIAL).one()
            uow.connection.execute(second).one()
            uow.commit()
    return len(jobs), 0


_TRIVIAL = text("SELECT 1")
Task = Callable[[Database, list[tuple[str, str]]], tuple[int, int]]


def _worker(url: str, task: Task, jobs: list[tuple[str, str]], barrier: object,
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    db = Database(bench_settings(url), pool_size=1)
    with UnitOfWork(db) as uow:  # connect before the clock starts
        uow.session.execute(text("SELECT 1"))
    barrier.wait()  # type: ignore[attr-defined]
    start = time.perf_counter()
    done, refused = task(db, jobs)
    out.put((start, time.perf_counter(), done, refused))
    db.dispose()


def run(url: str, task: Task, jobs: list[tuple[str, str]],
        processes: int) -> tuple[float, int, int]:
    """Seconds from the first process's start to the last one's end, done, refused."""
    if processes == 1:
        db = Database(bench_settings(url))
        start = time.perf_counter()
        done, refused = task(db, jobs)
        elapsed = time.perf_counter() - start
        db.dispose()
        return elapsed, done, refused
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, task, jobs[i::processes], barrier, out))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    return elapsed, sum(r[2] for r in results), sum(r[3] for r in results)


def confirmations(url: str, processes: int, per_loan: int) -> list[str]:
    db = Database(bench_settings(url))
    jobs = open_loans(db, per_loan)
    floor_s, _, _ = run(url, floor_all, jobs, processes)
    elapsed, done, refused = run(url, confirm_all, jobs, processes)
    with UnitOfWork(db) as uow:
        violations = checks.check(uow)
        funded = uow.session.scalar(select(Loan.id).where(Loan.status != LoanStatus.FUNDED)
                                    .limit(1))
    db.dispose()
    assert not violations, violations
    assert refused == 0 and funded is None, (refused, funded)
    rate, floor = done / elapsed, len(jobs) / floor_s
    return [f"{rate:8.0f} confirmations/s  ({done} over {LOANS} loans in {elapsed:.2f} s, "
            f"{processes} process{'es' if processes > 1 else ''}; all {LOANS} loans funded; "
            f"check clean)",
            f"{'':8}   = {rate / floor:.0%} of the floor measured just before: {floor:,.0f} "
            f"empty units of work/s with a confirmation's round trips and commit"]


# ---------------------------------------------------------------- allocation

def allocation(url: str, lenders: int) -> list[str]:
    db = Database(bench_settings(url))
    clean_database(db)
    crowd = crowd_funded_loan(lambda: UnitOfWork(db), ConsolePayouts(), lenders, 5_003, NOW)
    with UnitOfWork(db) as uow:
        loan = uow.session.get(Loan, crowd.loan_id)
        assert loan is not None
        total = loan.total_due
        weights = [p.entitled for p in uow.session.scalars(
            select(Pledge).where(Pledge.loan_id == loan.id).order_by(Pledge.id))]
    lines = []
    for txid, amount in (("BENCH1", total // 4), ("BENCH2", total - total // 4)):
        start = time.perf_counter()
        with UnitOfWork(db) as uow:
            receipt = repayments.record_payment(
                uow, provider="mpesa", transaction_id=txid, phone=None, amount=amount,
                currency="KES", reference=crowd.number, occurred_at=NOW, now=NOW)
            uow.commit()
        elapsed = time.perf_counter() - start
        what = "a quarter of the loan" if txid == "BENCH1" else "the rest (loan repaid)"
        lines.append(f"{elapsed:8.3f} s  record_payment of {what} to {lenders:,} lenders "
                     f"(lender part {receipt.payment.lender_part:,}; 10,000 transfers, "
                     f"wallets and pledges, the borrower's receipt, commit)")
        start = time.perf_counter()
        with UnitOfWork(db) as uow:
            told = repayments.tell_lenders(uow, receipt.payment.id, NOW)
            uow.commit()
        elapsed = time.perf_counter() - start
        assert told == lenders, told
        lines.append(f"{elapsed:8.3f} s    then, after commit, the job writing the {told:,} "
                     f"lenders' notices to the outbox")
    with UnitOfWork(db) as uow:
        assert not checks.check(uow)
        received = uow.session.execute(select(Pledge.repaid, Pledge.entitled)
                                       .where(Pledge.loan_id == crowd.loan_id)).all()
        assert all(r == e for r, e in received)
    db.dispose()
    start = time.perf_counter()
    shares = largest_remainder(total // 4, weights)
    pure = time.perf_counter() - start
    assert sum(shares) == total // 4
    lines.append(f"{pure:8.4f} s  largest_remainder alone over {lenders:,} lenders")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["all", "sqlite", "postgres"], default="all")
    parser.add_argument("--pg-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--lenders", type=int, default=10_000)
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    for backend in backends:
        print(f"== {backend}")
        with database(backend, args.pg_url) as url:
            for processes, per_loan in ((1, 20), (4, 40)):
                print("\n".join(confirmations(url, processes, per_loan)), flush=True)
            for line in allocation(url, args.lenders):
                print(line, flush=True)


if __name__ == "__main__":
    main()


