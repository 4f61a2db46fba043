"""Many lenders confirming at once: never over-funded, never overdrawn, books clean.

Each thread has its own unit of work and connection; a Barrier starts them together.
PostgreSQL runs them truly in parallel (row locks decide); SQLite serialises writers.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from core import checks, ledger, pledges
from core.db import Database, UnitOfWork
from core.errors import DomainError
from core.models import Account, Loan, LoanStatus, Pledge, PledgeStatus
from tests.support import all_at_once

REFUSALS = {"wallet.insufficient", "pledge.over_open", "loan.not_listed"}


def race(database: Database, jobs: list[Callable[[UnitOfWork], Any]]) -> list[Any]:
    """Each job given a unit of work of its own, all at once (`all_at_once`)."""
    return all_at_once([lambda job=job: job(UnitOfWork(database)) for job in jobs])


@pytest.fixture
def wide_database(services):
    """A pool big enough for 50 threads at once (the shared one holds 20)."""
    db = Database(services.settings, pool_size=26)
    yield db
    db.dispose()


def confirm_job(phone: str, code: str, now: Any) -> Callable[[UnitOfWork], Any]:
    return lambda uow: pledges.confirm_pledge(uow, phone=phone, code=code, now=now)


def unexpected(results: list[Any]) -> list[Any]:
    return [r for r in results if isinstance(r, Exception)
            and not (isinstance(r, DomainError) and r.key in REFUSALS)]


def fifty_lenders_race(world, database: Database, amounts: list[int]) -> None:
    loan = world.listed_loan(amount=300_000)
    rng = random.Random(7)
    jobs, lenders = [], []
    for i, amount in enumerate(amounts):
        lender = world.lender(balance=amount, name=f"Lender {chr(65 + i % 26)}")
        pledge = world.pledge(lender, loan, amount, confirm=False)
        if i % 5 == 0:  # the wallet shrinks after proposing: the hold must be refused
            world.withdraw(lender, rng.randint(50, max(50, amount // 100)) * 100,
                           key=f"shrink:{i}")
        lenders.append(lender)
        jobs.append(confirm_job(lender.phone, pledge.code, world.now))
    assert sum(amounts) > loan.amount
    results = race(database, jobs)
    assert unexpected(results) == []
    with world.uow() as uow:
        assert checks.check(uow) == []
        fresh = uow.session.get(Loan, loan.id)
        held = uow.session.scalars(select(Pledge).where(
            Pledge.loan_id == loan.id,
            Pledge.status.in_([PledgeStatus.CONFIRMED, PledgeStatus.POSTED]))).all()
        total = sum(p.amount for p in held)
        assert fresh.pledged == total <= fresh.amount
        assert (fresh.status == LoanStatus.FUNDED) == (total == fresh.amount)
        if fresh.status == LoanStatus.FUNDED:
            assert fresh.funded == fresh.amount
            assert all(p.status == PledgeStatus.POSTED for p in held)
        wallets = uow.session.scalars(select(Account).where(Account.no_overdraft.is_(True)))
        assert all(a.debits_pending + a.debits_posted <= a.credits_posted for a in wallets)
        succeeded = [r for r in results if isinstance(r, pledges.Confirmation)]
        assert len(succeeded) == len(held)
        refused_for_funds = [r for r in results if isinstance(r, DomainError)
                             and r.key == "wallet.insufficient"]
        assert refused_for_funds  # some wallets were too small, and said so


def test_fifty_lenders_fund_one_loan_exactly(world, wide_database):
    fifty_lenders_race(world, wide_database, [10_000] * 50)
    with world.uow() as uow:
        assert uow.session.scalar(select(Loan.status)) == LoanStatus.FUNDED


def test_fifty_lenders_with_uneven_pledges(world, wide_database):
    rng = random.Random(11)
    fifty_lenders_race(world, wide_database, [rng.randrange(50, 140) * 100 for _ in range(50)])


def test_the_same_pledge_confirmed_at_once_is_held_once(world, wide_database):
    loan = world.listed_loan(amount=300_000)
    lender = world.lender(balance=100_000)
    pledge = world.pledge(lender, loan, 100_000, confirm=False)
    results = race(wide_database, [confirm_job(lender.phone, pledge.code, world.now)] * 12)
    assert unexpected(results) == []
    with world.uow() as uow:
        assert checks.check(uow) == []
        assert uow.session.get(Loan, loan.id).pledged == 100_000
    assert world.wallet(lender).available == 0


def test_lenders_shared_across_loans_confirm_at_once_without_deadlock(world, wide_database):
    """Funding a loan posts every hold (many wallets) while the same lenders confirm on
    other loans: row locks are taken in one order, so nobody deadlocks."""
    rng = random.Random(3)
    listed = [world.listed_loan(amount=100_000) for _ in range(4)]
    lenders = [world.lender(balance=400_000, name=f"Lender {chr(65 + i)}") for i in range(10)]
    jobs = []
    for loan in listed:
        for lender in lenders:
            pledge = world.pledge(lender, loan, 10_000 + rng.randrange(0, 2) * 5_000,
                                  confirm=False)
            jobs.append(confirm_job(lender.phone, pledge.code, world.now))
    rng.shuffle(jobs)
    results = race(wide_database, jobs)
    assert unexpected(results) == []
    with world.uow() as uow:
        assert checks.check(uow) == []


def test_yes_and_no_for_the_same_pledge_at_once_agree_with_the_books(world, wide_database):
    loan = world.listed_loan(amount=500_000)
    for round_ in range(8):
        lender = world.lender(balance=20_000, name=f"Lender {chr(65 + round_)}")
        pledge = world.pledge(lender, loan, 20_000, confirm=False)
        results = race(wide_database, [
            confirm_job(lender.phone, pledge.code, world.now),
            lambda uow, p=lender.phone, c=pledge.code: pledges.decline_pledge(
                uow, phone=p, code=c, now=world.now)])
        assert all(r is None or not isinstance(r, Exception)
                   or (isinstance(r, DomainError) and r.key == "pledge.done") for r in results)
        with world.uow() as uow:
            assert checks.check(uow) == []
            status = uow.session.get(Pledge, pledge.id).status
        assert status in (PledgeStatus.CONFIRMED, PledgeStatus.CANCELLED)
        assert world.wallet(lender).available == (0 if status == PledgeStatus.CONFIRMED
                                                  else 20_000)


@pytest.mark.postgres
def test_a_repayment_never_holds_the_providers_account_while_waiting_for_a_wallet(
        world, services):
    """A repayment changes the provider's account, the loan's escrow, the fees and the
    lenders' wallets in several steps. It takes their locks together, in id order, before
    the first step: a top-up holding one of those lenders' wallets (its next lock is the
    provider's account) must find that account free, or the two would deadlock."""
    lender = world.member("Early Lender", roles="lender")
    wallet = world.wallet(lender).id  # opened before the provider's account: a lower id
    loan = world.listed_loan(amount=100_000)
    world.top_up(lender, 50_000)
    world.pledge(lender, loan, 50_000)
    world.pledge(world.lender(balance=50_000), loan, 50_000)
    loan = world.disburse(world.loan(loan.number))
    with world.uow() as uow:
        provider = ledger.system_account(uow, ledger.mobile_money_code("mpesa")).id
        uow.commit()
    assert wallet < provider

    watcher = services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    top_up = services.db.engine.connect()
    try:
        top_up.begin()
        top_up.execute(text("SELECT id FROM accounts WHERE id = :id FOR UPDATE"),
                       {"id": wallet})
        repaying = threading.Thread(target=lambda: world.pay(loan.number, 10_000))
        repaying.start()
        deadline = time.monotonic() + 10
        while not watcher.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar():
            assert time.monotonic() < deadline, "the repayment never waited for the wallet"
            time.sleep(0.02)
        # The top-up's next lock: free, since the repayment waits before taking it.
        top_up.execute(text("SELECT id FROM accounts WHERE id = :id FOR UPDATE NOWAIT"),
                       {"id": provider})
        top_up.rollback()
        repaying.join(timeout=30)
        assert not repaying.is_alive()
    finally:
        top_up.close()
        watcher.close()
    assert world.loan(loan.number).repaid == 10_000
    with world.uow() as uow:
        assert checks.check(uow) == []
