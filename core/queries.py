"""Read-only views the channels show: a member's account, their loans and pledges, a
loan's standing. No writes here; each function is a few indexed queries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core import ledger
from core.db import UnitOfWork
from core.errors import NotAllowed, NotFound
from core.loans import find_loan_for
from core.models import OPEN_LOAN_STATES, PAID_OUT, Loan, LoanStatus, Member, Pledge, PledgeStatus
from core.repayments import Standing, standing


@dataclass(frozen=True)
class LoanView:
    """A loan as its borrower or a lender sees it."""

    number: str
    status: LoanStatus
    amount: int
    pledged: int
    funded_percent: int
    outstanding: int
    total_due: int
    deadline: datetime | None
    purpose: str
    term_weeks: int
    borrower_first_name: str
    borrower_place: str | None
    borrower_on_time: int  # loans repaid with every installment on time
    borrower_repaid: int  # loans repaid in all
    standing: Standing | None  # only once disbursed

    @property
    def open_amount(self) -> int:
        return self.amount - self.pledged


@dataclass(frozen=True)
class PledgeView:
    loan_number: str
    amount: int
    status: PledgeStatus
    code: str
    entitled: int
    repaid: int


@dataclass(frozen=True)
class AccountView:
    """What `BAL` / "my account" shows."""

    wallet_balance: int  # posted
    wallet_available: int  # balance less holds
    held: int  # in pledges awaiting funding
    credit_limit: int
    limit_frozen: bool
    loans_repaid: int
    loans_repaid_on_time: int
    open_loan: LoanView | None
    active_pledges: int


def loan_view(loan: Loan, today: date) -> LoanView:
    borrower = loan.borrower
    disbursed = loan.status in PAID_OUT
    return LoanView(
        number=loan.number or "", status=loan.status, amount=loan.amount, pledged=loan.pledged,
        funded_percent=loan.pledged * 100 // loan.amount if loan.amount else 0,
        outstanding=loan.outstanding if disbursed else 0, total_due=loan.total_due,
        deadline=loan.deadline, purpose=loan.purpose, term_weeks=loan.term_weeks,
        borrower_first_name=borrower.first_name,
        borrower_place=borrower.place, borrower_on_time=borrower.loans_repaid_on_time,
        borrower_repaid=borrower.loans_repaid,
        standing=standing(loan, today) if disbursed else None)


def _today(uow: UnitOfWork, now: datetime) -> date:
    return now.astimezone(uow.settings.zone).date()


def loan_seen_by(uow: UnitOfWork, member_id: int, number: str, now: datetime) -> LoanView:
    """A loan by number as `member_id` may see it: a listed loan, or one they are a
    party to (its borrower, the borrower's agent, a lender); any other raises the
    NotFound of a number that does not exist (`loans.find_loan_for`)."""
    with uow:
        return loan_view(find_loan_for(uow, member_id, number), _today(uow, now))


def listed(uow: UnitOfWork, now: datetime, *, offset: int = 0, limit: int = 3,
           exclude_borrower: int | None = None) -> list[LoanView]:
    """Loans open to pledges, soonest deadline first, a page at a time."""
    with uow:
        query = (select(Loan).where(Loan.status == LoanStatus.LISTED, Loan.deadline > now,
                                    Loan.guaranteed >= Loan.guarantee_needed)
                 .options(selectinload(Loan.borrower)).order_by(Loan.deadline, Loan.id)
                 .offset(offset).limit(limit))
        if exclude_borrower is not None:
            query = query.where(Loan.borrower_id != exclude_borrower)
        today = _today(uow, now)
        return [loan_view(loan, today) for loan in uow.session.scalars(query)]


def loans_of(uow: UnitOfWork, borrower_id: int, now: datetime, *, offset: int = 0,
             limit: int = 5) -> list[LoanView]:
    """A borrower's loans, newest first (drafts left out)."""
    with uow:
        today = _today(uow, now)
        rows = uow.session.scalars(
            select(Loan).where(Loan.borrower_id == borrower_id, Loan.status != LoanStatus.DRAFT)
            .options(selectinload(Loan.installments), selectinload(Loan.borrower))
            .order_by(Loan.id.desc()).offset(offset).limit(limit))
        return [loan_view(loan, today) for loan in rows]


def loan_of(uow: UnitOfWork, borrower_id: int, number: str, now: datetime) -> LoanView:
    """One of the borrower's own loans; any other number is not found, whoever's it is."""
    with uow:
        loan = uow.session.scalar(select(Loan).where(
            Loan.number == number, Loan.borrower_id == borrower_id,
            Loan.status != LoanStatus.DRAFT))
        if loan is None:
            raise NotFound("loan.not_found", number=number)
        return loan_view(loan, _today(uow, now))


def open_loan(uow: UnitOfWork, member_id: int, now: datetime) -> LoanView | None:
    """The borrower's open loan, with where its repayment stands, if they have one."""
    with uow:
        loan = _open_loan(uow, member_id)
        return loan_view(loan, _today(uow, now)) if loan is not None else None


def _open_loan(uow: UnitOfWork, member_id: int) -> Loan | None:
    """The borrower's open loan (an unsent draft does not count)."""
    return uow.session.scalar(
        select(Loan).where(Loan.borrower_id == member_id, Loan.status.in_(OPEN_LOAN_STATES),
                           Loan.status != LoanStatus.DRAFT)
        .order_by(Loan.id.desc()).limit(1))


def pledges_of(uow: UnitOfWork, lender_id: int, *, offset: int = 0, limit: int = 5
               ) -> list[PledgeView]:
    """A lender's pledges, newest first."""
    with uow:
        rows = uow.session.execute(
            select(Loan.number, Pledge.amount, Pledge.status, Pledge.code, Pledge.entitled,
                   Pledge.repaid).join(Loan, Loan.id == Pledge.loan_id)
            .where(Pledge.lender_id == lender_id).order_by(Pledge.id.desc())
            .offset(offset).limit(limit))
        return [PledgeView(loan_number=n or "", amount=a, status=s, code=c, entitled=e, repaid=r)
                for n, a, s, c, e, r in rows]


def account(uow: UnitOfWork, member_id: int, now: datetime) -> AccountView:
    """A member's wallet, credit standing, open loan and pledges in flight."""
    with uow:
        member = uow.session.get(Member, member_id)
        if member is None:
            raise NotFound("member.not_found")
        wallet = ledger.find_account(uow, ledger.wallet_code(member.id))
        open_loan = _open_loan(uow, member.id)
        active = len(list(uow.session.scalars(select(Pledge.id).where(
            Pledge.lender_id == member.id,
            Pledge.status.in_([PledgeStatus.PROPOSED, PledgeStatus.CONFIRMED])))))
        return AccountView(
            wallet_balance=wallet.balance if wallet else 0,
            wallet_available=wallet.available if wallet else 0,
            held=wallet.debits_pending if wallet else 0,
            credit_limit=member.credit_limit, limit_frozen=member.limit_frozen,
            loans_repaid=member.loans_repaid, loans_repaid_on_time=member.loans_repaid_on_time,
            open_loan=loan_view(open_loan, _today(uow, now)) if open_loan else None,
            active_pledges=active)


def pledge_offer(uow: UnitOfWork, member_id: int, number: str, now: datetime
                 ) -> tuple[LoanView, int]:
    """A listed loan as a lender about to pledge sees it, and what their wallet has free
    (raises NotAllowed when the loan is not open for pledges, to its parties; NotFound
    to anyone else)."""
    with uow:
        view = loan_view(find_loan_for(uow, member_id, number), _today(uow, now))
        if view.status != LoanStatus.LISTED:
            raise NotAllowed("loan.not_listed", number=view.number)
        wallet = ledger.find_account(uow, ledger.wallet_code(member_id))
        return view, wallet.available if wallet is not None else 0
