"""One loan, 10,000 lenders: a repayment of 1 unit, of a prime amount, and of all the rest
each allocate every unit exactly; in the end every lender has exactly their due."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bench.seeding import crowd_funded_loan, loan_total
from core import checks, repayments
from core.db import Database
from core.models import Account, AccountKind, OutboxMessage, Pledge
from runtime.services import Services
from tests.conftest import make_settings
from tests.support import START, Clock, clean_database

LENDERS = 10_000


@pytest.fixture
def crowd_services(services, redis_handle, database_url, tmp_root):
    config = make_settings(database_url, "", tmp_root,
                           loan={"max_amount": 10_000_000, "min_pledge": 1,
                                 "lender_interest_percent": "3"},
                           credit={"first_loan_limit": 10_000_000, "cap": 10_000_000})
    db = Database(config)
    svc = Services(settings=config, db=db, redis=redis_handle, clock=Clock())
    yield svc
    clean_database(db)
    db.dispose()


def pay(svc, number, amount, txid):
    with svc.uow() as uow:
        receipt = repayments.record_payment(
            uow, provider="mpesa", transaction_id=txid, phone=None, amount=amount,
            currency="KES", reference=number, occurred_at=START, now=START)
        uow.commit()
        return receipt.payment


def lender_state(svc, loan_id):
    with svc.uow() as uow:
        rows = uow.session.execute(select(Pledge.entitled, Pledge.repaid, Account.credits_posted
                                          - Account.debits_posted)
                                   .join(Account, (Account.member_id == Pledge.lender_id)
                                         & (Account.kind == AccountKind.WALLET))
                                   .where(Pledge.loan_id == loan_id)
                                   .order_by(Pledge.id)).all()
        assert checks.check(uow) == []
        return rows


def test_ten_thousand_lenders_receive_every_unit(crowd_services):
    svc = crowd_services
    crowd = crowd_funded_loan(svc.uow, svc.payouts, LENDERS, 5_003, START)
    with svc.uow() as uow:
        total = loan_total(uow, crowd.loan_id)
    paid = 0
    before = [0] * LENDERS
    for txid, amount in (("ONE", 1), ("PRIME", 1_000_003), ("REST", None)):
        amount = amount or total - paid
        payment = pay(svc, crowd.number, amount, txid)
        paid += amount
        assert payment.fee_part + payment.lender_part == amount and payment.refund_part == 0
        rows = lender_state(svc, crowd.loan_id)
        assert sum(r.repaid for r in rows) + 0 <= sum(r.entitled for r in rows)
        assert all(r.repaid <= r.entitled and r[2] == r.repaid for r in rows)
        with svc.uow() as uow:  # each lender with a share hears of it, once
            told = repayments.tell_lenders(uow, payment.id, START)
            uow.commit()
        assert told == sum(1 for r, was in zip(rows, before, strict=True) if r.repaid > was)
        before = [r.repaid for r in rows]
    assert all(r.repaid == r.entitled for r in rows)
    assert sum(r.entitled for r in rows) == LENDERS * 5_003 * 103 // 100
    with svc.uow() as uow:
        told = uow.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.template == "sms.lender_repaid"))
    assert told >= LENDERS
