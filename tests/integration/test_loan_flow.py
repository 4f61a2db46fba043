"""A loan's whole life through the core use cases, on the real database."""
from __future__ import annotations

from sqlalchemy import select

from core import checks, loans, pledges, repayments
from core.models import LoanStatus, OutboxMessage, Pledge, PledgeStatus


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


def test_a_confirmation_updates_the_loan_and_pledge_this_session_already_holds(world):
    loan = world.listed_loan(amount=300_000)
    first, last = world.lender(), world.lender(name="Last Lender")
    partial = world.pledge(first, loan, 100_000, confirm=False)
    completing = world.pledge(last, loan, 200_000, confirm=False)
    with world.uow() as uow:
        held_loan = loans.find_loan(uow, loan.number)
        held_pledge = uow.session.get(Pledge, partial.id)
        assert (held_loan.pledged, held_pledge.status) == (0, PledgeStatus.PROPOSED)
        done = pledges.confirm_pledge(uow, phone=first.phone, code=partial.code,
                                      now=world.now)
        assert (done.pledge_id, done.status, done.funded) == (
            partial.id, PledgeStatus.CONFIRMED, False)
        assert held_loan.pledged == 100_000
        assert held_pledge.status == PledgeStatus.CONFIRMED
        assert held_pledge.hold_id is not None
        done = pledges.confirm_pledge(uow, phone=last.phone, code=completing.code,
                                      now=world.now)
        assert (done.status, done.loan_status, done.funded) == (
            PledgeStatus.POSTED, LoanStatus.FUNDED, True)
        assert (held_loan.pledged, held_loan.funded, held_loan.status) == (
            300_000, 300_000, LoanStatus.FUNDED)
        assert held_pledge.status == PledgeStatus.POSTED
        uow.commit()
    assert world.wallet(first).available == 900_000
    assert_books_clean(world)
