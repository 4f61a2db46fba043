"""A funded loan reaches its borrower: the payout of its escrow to their phone, and, once
the provider has paid it, the repayment schedule counted from that day.

A disbursement the provider fails is tried again by the next run of the
`disburse_funded` duty, up to `payouts.max_attempts` tries; then it waits for an
operator (`awaiting_attention`). The borrower is told each time.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, select

from core import outbox, payouts
from core.db import UnitOfWork
from core.errors import Conflict, NotFound
from core.loans import schedule
from core.messages import format_date, text
from core.models import (
    PAYOUTS_IN_FLIGHT,
    Installment,
    Loan,
    LoanStatus,
    Payout,
    PayoutPurpose,
    PayoutStatus,
    Purpose,
)


def disburse(uow: UnitOfWork, *, loan_id: int, provider: str, now: datetime,
             beyond_tries: bool = False) -> Payout | None:
    """Start paying a funded loan out to its borrower (a hold on the loan's escrow and
    a pending payout). Idempotent: the payout already in flight is returned; None when
    its tries are used up and it waits for an operator, who may try once more
    (`beyond_tries`, `core/payout_desk.py`)."""
    settings = uow.settings
    with uow:
        loan = uow.session.get(Loan, loan_id, with_for_update=True)
        if loan is None:
            raise NotFound("loan.not_found", number=str(loan_id))
        tries = list(uow.session.scalars(select(Payout).where(
            Payout.loan_id == loan.id, Payout.purpose == PayoutPurpose.DISBURSEMENT)
            .order_by(Payout.id)))
        live = [p for p in tries if p.status in (*PAYOUTS_IN_FLIGHT, PayoutStatus.PAID)]
        if live:
            return live[-1]
        if loan.status != LoanStatus.FUNDED:
            raise Conflict("loan.not_funded", number=loan.number)
        if len(tries) >= settings.payouts.max_attempts and not beyond_tries:
            return None
        assert loan.account_id is not None and loan.number is not None
        payout = payouts.start(
            uow, provider=provider, key=f"disburse:{loan.number}:{len(tries) + 1}",
            purpose=PayoutPurpose.DISBURSEMENT, member=loan.borrower, amount=loan.amount,
            debit_id=loan.account_id, now=now, loan_id=loan.id)
        uow.commit()
        return payout


def after_payout(uow: UnitOfWork, payout: Payout, now: datetime) -> None:
    """Inside the settling use case: a paid disbursement starts the loan's schedule from
    today and tells the borrower the dates and the M-Pesa receipt; a failed one tells
    them it will be tried again, or that an operator will call."""
    settings = uow.settings
    loan = uow.session.get(Loan, payout.loan_id, with_for_update=True)
    assert loan is not None and loan.number is not None
    borrower = loan.borrower
    if payout.status == PayoutStatus.FAILED:
        failed = uow.session.scalar(select(func.count()).select_from(Payout).where(
            Payout.loan_id == loan.id, Payout.purpose == PayoutPurpose.DISBURSEMENT,
            Payout.status == PayoutStatus.FAILED)) or 0
        final = failed >= settings.payouts.max_attempts
        outbox.queue(uow, [outbox.sms_to(
            borrower, f"disbursement_failed:{payout.id}",
            "sms.disbursement_stuck" if final else "sms.disbursement_retry", Purpose.NOTICE,
            amount=settings.fmt(payout.amount), loan=loan.number)], now)
        return
    if loan.status != LoanStatus.FUNDED:
        return
    start = now.astimezone(settings.zone).date()
    every = settings.loan.installment_every_weeks
    dues = schedule(loan.total_due, loan.installment_count, start, every,
                    settings.app.minor_scale)
    for seq, (due_on, amount) in enumerate(dues, start=1):
        uow.session.add(Installment(loan_id=loan.id, seq=seq, due_on=due_on, amount=amount,
                                    paid=0, late=False))
    loan.status = LoanStatus.DISBURSED
    loan.disbursed_at = now
    loan.payout_reference = payout.receipt
    period = ("period.week", {}) if every == 1 else ("period.weeks", {"n": every})
    outbox.queue(uow, [outbox.sms_to(
        borrower, f"disbursed:{loan.id}", "sms.loan_disbursed", Purpose.RECEIPT,
        amount=settings.fmt(loan.amount), loan=loan.number,
        installment=settings.fmt(dues[0][1]),
        period=text(period[0], borrower.language, **period[1]),
        first_due=format_date(dues[0][0]), paybill=settings.payments.paybill,
        receipt=payout.receipt or "-")], now)


def _tries(status: tuple[PayoutStatus, ...] | None = None) -> ColumnElement[bool]:
    """Disbursement payouts of the loan being selected (optionally in these states)."""
    condition: ColumnElement[bool] = and_(Payout.loan_id == Loan.id,
                                          Payout.purpose == PayoutPurpose.DISBURSEMENT)
    if status is not None:
        condition = and_(condition, Payout.status.in_(status))
    return condition


def funded_awaiting_payout(uow: UnitOfWork, *, limit: int = 100) -> list[int]:
    """Funded loans with no payout in flight and tries left, oldest first."""
    settings = uow.settings
    tries = (select(func.count()).select_from(Payout).where(_tries()).scalar_subquery())
    with uow:
        return list(uow.session.scalars(
            select(Loan.id).where(Loan.status == LoanStatus.FUNDED,
                                  ~exists().where(_tries(PAYOUTS_IN_FLIGHT)),
                                  tries < settings.payouts.max_attempts)
            .order_by(Loan.id).limit(limit)))


def awaiting_attention(uow: UnitOfWork, *, limit: int = 100) -> list[int]:
    """Funded loans whose every try of a payout failed: an operator must look."""
    settings = uow.settings
    failed = (select(func.count()).select_from(Payout)
              .where(_tries((PayoutStatus.FAILED,))).scalar_subquery())
    with uow:
        return list(uow.session.scalars(
            select(Loan.id).where(Loan.status == LoanStatus.FUNDED,
                                  ~exists().where(_tries(PAYOUTS_IN_FLIGHT)),
                                  failed >= settings.payouts.max_attempts)
            .order_by(Loan.id).limit(limit)))
