"""Choices when a loan is not fully funded: at its deadline a loan at least
`trust.partial_min_percent` funded is offered to its borrower (`loans.expire_loans`
writes the SMS and sets `choice_until`); within `trust.choice_hours` they take what
was pledged (new key facts, their PIN), extend once by `trust.extend_days`, or cancel
(`loans.cancel_loan`). No answer in time cancels the loan and releases every hold
(`lapse`, the `lapse_choices` duty)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from core import ledger, outbox
from core.allocation import largest_remainder_whole
from core.bulk import set_rows
from core.db import UnitOfWork
from core.errors import NotAllowed, NotFound
from core.loans import Quote, find_loan, quote, release
from core.members import check_pin
from core.messages import format_date
from core.models import (
    HoldState,
    Loan,
    LoanStatus,
    Member,
    Pledge,
    PledgeStatus,
    Purpose,
    Transfer,
)

_PLEDGES = Pledge.__table__


@dataclass(frozen=True)
class Choice:
    """The choice as the borrower reads it, with the key facts of taking what was
    pledged (None when that is below the smallest loan)."""

    loan: str
    amount: int
    pledged: int
    can_extend: bool
    until: datetime
    facts: Quote | None


def _waiting(uow: UnitOfWork, borrower_id: int, number: str, now: datetime) -> Loan:
    loan = find_loan(uow, number, lock=True)
    if loan.borrower_id != borrower_id:
        raise NotFound("loan.not_found", number=loan.number)
    if loan.status != LoanStatus.LISTED or loan.choice_until is None \
            or loan.choice_until <= now:
        raise NotAllowed("choice.none", number=loan.number)
    return loan


def _facts(uow: UnitOfWork, loan: Loan, now: datetime) -> Quote | None:
    settings = uow.settings
    if loan.pledged < settings.minor(settings.loan.min_amount):
        return None
    return quote(settings, loan.pledged, loan.term_weeks, now.astimezone(settings.zone).date())


def choice(uow: UnitOfWork, borrower_id: int, number: str, now: datetime) -> Choice:
    with uow:
        loan = _waiting(uow, borrower_id, number, now)
        assert loan.choice_until is not None
        return Choice(loan.number or "", loan.amount, loan.pledged, not loan.extended,
                      loan.choice_until, _facts(uow, loan, now))


def take_pledged(uow: UnitOfWork, *, borrower_id: int, number: str, pin: str,
                 now: datetime) -> Loan:
    """The borrower accepts the new key facts with their PIN: the loan becomes what was
    pledged, every confirmed hold is posted, each lender's share fixed, and it is funded.
    A replay returns the loan as it is."""
    check_pin(uow, borrower_id, pin, now)
    settings = uow.settings
    with uow:
        loan = find_loan(uow, number, lock=True)
        if loan.borrower_id == borrower_id and loan.status == LoanStatus.FUNDED \
                and loan.amount == loan.pledged:
            return loan
        loan = _waiting(uow, borrower_id, number, now)
        facts = _facts(uow, loan, now)
        if facts is None:
            raise NotAllowed("choice.too_small",
                             min=settings.fmt(settings.minor(settings.loan.min_amount)))
        backers = list(uow.session.scalars(select(Pledge).where(
            Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.CONFIRMED)
            .order_by(Pledge.id)))
        holds = list(uow.session.scalars(select(Transfer).where(
            Transfer.id.in_([p.hold_id for p in backers]))))
        assert loan.account_id is not None
        ledger.lock_accounts(uow, [loan.account_id, *(h.debit_account_id for h in holds)])
        ledger.resolve_holds(uow, holds, now, to=HoldState.POSTED)
        shares = largest_remainder_whole(facts.amount + facts.interest,
                                         [p.amount for p in backers], settings.app.minor_scale)
        set_rows(uow.session, _PLEDGES, "id",
                 [{"id": p.id, "entitled": share} for p, share in zip(backers, shares,
                                                                      strict=True)],
                 same={"status": PledgeStatus.POSTED})
        uow.session.execute(update(Pledge).where(
            Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.PROPOSED)
            .values(status=PledgeStatus.LAPSED, closed_at=now)
            .execution_options(synchronize_session=False))
        for pledge in backers:
            uow.session.refresh(pledge)
        loan.amount, loan.fee, loan.interest = facts.amount, facts.fee, facts.interest
        loan.installment_count = facts.count
        loan.funded = loan.pledged
        loan.status = LoanStatus.FUNDED
        loan.funded_at = now
        loan.choice_until = None
        lenders = {m.id: m for m in uow.session.scalars(select(Member).where(
            Member.id.in_([p.lender_id for p in backers])))}
        outbox.queue(uow, [
            outbox.sms_to(loan.borrower, f"funded:{loan.id}", "sms.loan_funded_borrower",
                          Purpose.NOTICE, loan=loan.number, amount=settings.fmt(loan.amount)),
            *(outbox.sms_to(lenders[p.lender_id], f"funded:{loan.id}:{p.id}",
                            "sms.loan_funded_lender", Purpose.NOTICE, loan=loan.number,
                            amount=settings.fmt(p.amount)) for p in backers)], now)
        uow.commit()
        return loan


def extend(uow: UnitOfWork, *, borrower_id: int, number: str, now: datetime) -> Loan:
    """Once per loan: lenders may pledge for `trust.extend_days` more days."""
    settings = uow.settings
    with uow:
        loan = _waiting(uow, borrower_id, number, now)
        if loan.extended:
            raise NotAllowed("choice.extended", number=loan.number)
        loan.extended = True
        loan.choice_until = None
        loan.deadline = now + timedelta(days=settings.trust.extend_days)
        outbox.queue(uow, [outbox.sms_to(
            loan.borrower, f"extended:{loan.id}", "sms.choice_extended", Purpose.NOTICE,
            loan=loan.number, deadline=format_date(loan.deadline.astimezone(settings.zone)))],
            now)
        uow.commit()
        return loan


def lapse(uow: UnitOfWork, now: datetime, *, limit: int = 200) -> list[str]:
    """Choices not made within `trust.choice_hours`: the loan is cancelled and every
    hold (pledges, guarantees) released; everyone is told."""
    with uow:
        due = list(uow.session.scalars(select(Loan).where(
            Loan.status == LoanStatus.LISTED, Loan.choice_until.is_not(None),
            Loan.choice_until <= now).order_by(Loan.id).limit(limit)
            .with_for_update(skip_locked=True)))
        for loan in due:
            release(uow, loan, now, status=LoanStatus.CANCELLED, hold_state=HoldState.VOIDED,
                    lender_template="sms.loan_cancelled_lender",
                    borrower_template="sms.choice_lapsed")
        uow.commit()
        return [loan.number or "" for loan in due]
