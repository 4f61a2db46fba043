"""Receipts: repayments oldest installment first, overpayment forward, early payoff,
arrears and back, top-ups by phone in any form, unmatched money to suspense."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import checks, ledger, repayments
from core.models import LoanStatus, OutboxMessage, Pledge


def books_clean(world):
    with world.uow() as uow:
        assert checks.check(uow) == []


def paid(world, number):
    return [(i.amount, i.paid, i.late) for i in world.loan(number).installments]


def test_overpayment_fills_the_next_installments(world, clock):
    # Ksh 1,050 due: whole shillings, 262 x 3 and the remainder, 264, last
    loan = world.disbursed_loan(amount=100_000)
    world.pay(loan.number, 30_000)
    assert paid(world, loan.number) == [(26_200, 26_200, False), (26_200, 3_800, False),
                                        (26_200, 0, False), (26_400, 0, False)]
    world.pay(loan.number, 50_000)
    assert [p for _, p, _ in paid(world, loan.number)] == [26_200, 26_200, 26_200, 1_400]
    assert world.loan(loan.number).status == LoanStatus.REPAYING
    books_clean(world)


def test_early_payoff_with_overpayment_refunds_the_wallet(world, clock):
    loan = world.disbursed_loan(amount=100_000)
    borrower = loan.borrower
    clock.advance(days=2)
    receipt = world.pay(loan.number, 105_000 + 1_234)
    assert receipt.refund_part == 1_234 and receipt.fee_part + receipt.lender_part == 105_000
    fresh = world.loan(loan.number)
    assert fresh.status == LoanStatus.REPAID and fresh.outstanding == 0
    assert world.wallet(borrower).available == 1_234
    with world.uow() as uow:
        pledges = uow.session.scalars(select(Pledge).where(Pledge.loan_id == loan.id)).all()
        assert all(p.repaid == p.entitled for p in pledges)
        texts = uow.session.scalars(select(OutboxMessage.template)).all()
    assert "sms.repayment_overpaid" in texts and "sms.loan_repaid" in texts
    books_clean(world)


def test_late_installment_puts_the_loan_in_arrears_and_catching_up_clears_it(world, clock):
    loan = world.disbursed_loan(amount=100_000)
    clock.advance(days=8)
    with world.uow() as uow:
        assert repayments.mark_arrears(uow, clock()) == [loan.number]
        uow.commit()
    assert world.loan(loan.number).status == LoanStatus.IN_ARREARS
    assert world.loan(loan.number).borrower.limit_frozen
    world.pay(loan.number, 10_000)
    assert world.loan(loan.number).status == LoanStatus.IN_ARREARS  # still behind
    world.pay(loan.number, 16_250)
    assert world.loan(loan.number).status == LoanStatus.REPAYING
    world.pay(loan.number, 78_750)
    fresh = world.loan(loan.number)
    assert fresh.status == LoanStatus.REPAID
    assert fresh.borrower.credit_limit == 500_000  # a late loan never raises the limit
    books_clean(world)


def test_on_time_repayment_raises_the_credit_limit(world, clock):
    loan = world.disbursed_loan(amount=100_000)
    world.pay(loan.number, 105_000)
    assert world.loan(loan.number).borrower.credit_limit == 750_000


def test_arrears_use_the_local_date_at_a_payment_just_after_local_midnight(world, clock):
    """Nairobi is UTC+3: at 22:30 UTC it is already the next day there. A payment then
    that leaves yesterday's installment unpaid must leave the loan in arrears, as the
    arrears job (which counts local days) says."""
    loan = world.disbursed_loan(amount=100_000)
    first_due = world.loan(loan.number).installments[0].due_on
    clock.set(datetime.combine(first_due, datetime.min.time(), tzinfo=UTC)
              + timedelta(hours=22, minutes=30))  # local: the day after the due date
    with world.uow() as uow:
        assert repayments.mark_arrears(uow, clock()) == [loan.number]
        uow.commit()
    world.pay(loan.number, 1_000)
    assert world.loan(loan.number).status == LoanStatus.IN_ARREARS


@pytest.mark.parametrize("form", ["+254712345678", "0712345678", "0712 345 678",
                                  "254712345678", "712345678", "+254 712-345-678"])
def test_top_up_by_phone_in_any_common_form(world, form):
    lender = world.member("Otieno Lender", roles="lender", phone="+254712345678")
    payment = world.pay(form, 12_345, phone="0700000001")
    assert payment.kind == "topup" and payment.member_id == lender.id
    assert world.wallet(lender).available == 12_345
    books_clean(world)


@pytest.mark.parametrize("reference", ["L9999", "hello", "0799 000 111", "#"])
def test_unmatched_receipts_wait_in_suspense(world, reference):
    payment = world.pay(reference, 4_200, phone="0712000111")
    assert payment.kind == "unmatched"
    with world.uow() as uow:
        assert ledger.system_account(uow, ledger.SUSPENSE).balance == 4_200
        sms = uow.session.scalar(select(OutboxMessage))
        assert sms.phone == "+254712000111" and sms.template == "sms.payment_unmatched"
    books_clean(world)


def test_a_payment_to_a_loan_not_yet_disbursed_goes_to_the_borrowers_wallet(world):
    loan = world.listed_loan(amount=100_000)
    payment = world.pay(loan.number.lower(), 5_000)
    assert payment.kind == "topup" and payment.member_id == loan.borrower_id
    with world.uow() as uow:
        assert ledger.wallet(uow, loan.borrower_id).available == 5_000
    books_clean(world)


@pytest.mark.parametrize("lenders", [1, 3])
@pytest.mark.parametrize("kind", ["one", "prime", "whole"])
def test_a_repayment_allocates_every_unit(world, lenders, kind):
    loan = world.disbursed_loan(lenders=lenders, amount=100_300)
    total = loan.total_due
    amount = {"one": 1, "prime": 10_007, "whole": total}[kind]
    payment = world.pay(loan.number, amount)
    assert payment.fee_part + payment.lender_part == amount
    with world.uow() as uow:
        pledges = uow.session.scalars(select(Pledge).where(Pledge.loan_id == loan.id)
                                      .order_by(Pledge.id)).all()
        assert sum(p.repaid for p in pledges) == payment.lender_part
        assert all(p.repaid <= p.entitled for p in pledges)
        if kind == "whole":
            assert all(p.repaid == p.entitled for p in pledges)
        assert checks.check(uow) == []
