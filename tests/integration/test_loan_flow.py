"""A loan's whole life through the core use cases, on the real database."""
from __future__ import annotations

from sqlalchemy import select

from core import checks, loans, repayments
from core.models import LoanStatus, OutboxMessage


def assert_books_clean(world):
    with world.uow() as uow:
        assert checks.check(uow) == []


def test_loan_lists_funds_disburses_and_repays(world, clock):
    loan = world.disbursed_loan(lenders=3, amount=300_000)
    assert loan.status == LoanStatus.DISBURSED
    assert len(loan.installments) == 4
    assert sum(i.amount for i in loan.installments) == loan.total_due
    clock.advance(days=3)
    payment = world.pay(loan.number, loan.total_due)
    with world.uow() as uow:
        texts = list(uow.session.scalars(select(OutboxMessage.template)))
    assert "sms.lender_repaid" not in texts  # written after the repayment, not in it
    with world.uow() as uow:
        assert repayments.tell_lenders(uow, payment.id, clock()) == 3
        uow.commit()
    with world.uow() as uow:
        assert repayments.tell_lenders(uow, payment.id, clock()) == 0  # once only
    loan = world.loan(loan.number)
    assert loan.status == LoanStatus.REPAID
    assert loan.outstanding == 0
    assert_books_clean(world)
    with world.uow() as uow:
        texts = list(uow.session.scalars(select(OutboxMessage.template)))
    assert texts.count("sms.lender_repaid") == 3
    assert "sms.loan_repaid" in texts


def test_expiry_voids_every_hold(world, clock):
    loan = world.listed_loan(amount=300_000)
    lender = world.lender(balance=200_000)
    world.pledge(lender, loan, 100_000)
    assert world.wallet(lender).available == 100_000
    clock.advance(days=15)
    with world.uow() as uow:
        expired = loans.expire_loans(uow, clock())
        uow.commit()
    assert expired == [loan.number]
    assert world.wallet(lender).available == 200_000
    assert world.loan(loan.number).status == LoanStatus.EXPIRED
    assert_books_clean(world)
