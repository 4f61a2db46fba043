"""Read-only views the channels show: a member's account, their loans and pledges, a
loan's standing. No writes here.

The screens a USSD hop shows (`listed`, `loans_of`, `loan_of`, `open_loan`, `account`,
`pledges_of`) are each ONE Core statement on a connection of their own
(`UnitOfWork.reading`: autocommit on PostgreSQL, so no BEGIN or ROLLBACK round trip;
one statement reads one snapshot). A loan's standing comes from its installments in
correlated subqueries of that statement, never from lazily loaded rows. A test counts
the statements (tests/integration/test_ussd_budget.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Integer, Select, String, and_, bindparam, case, exists, func, select
from sqlalchemy.orm import aliased

from core import ledger
from core.db import UnitOfWork
from core.errors import NotAllowed, NotFound
from core.loans import find_loan_for
from core.models import (
    OPEN_LOAN_STATES,
    PAID_OUT,
    Account,
    Installment,
    Loan,
    LoanStatus,
    Member,
    Pledge,
    PledgeStatus,
)
from core.repayments import Standing, standing
from core.reputation import ENDED, AgentRecord, agent_records


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
    agent: AgentRecord | None = None  # the borrower's agent's record (core/reputation.py)

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


def loan_view(loan: Loan, today: date, agents: dict[int, AgentRecord] | None = None
              ) -> LoanView:
    """`agents`: agent records by agent id, for loans shown to lenders; without it the
    view carries none."""
    borrower = loan.borrower
    agent_id = borrower.agent_id
    agent = (agents.get(agent_id, AgentRecord(ended=0, on_time=0))
             if agents is not None and agent_id is not None else None)
    disbursed = loan.status in PAID_OUT
    return LoanView(
        number=loan.number or "", status=loan.status, amount=loan.amount, pledged=loan.pledged,
        funded_percent=loan.pledged * 100 // loan.amount if loan.amount else 0,
        outstanding=loan.outstanding if disbursed else 0, total_due=loan.total_due,
        deadline=loan.deadline, purpose=loan.purpose, term_weeks=loan.term_weeks,
        borrower_first_name=borrower.first_name,
        borrower_place=borrower.place, borrower_on_time=borrower.loans_repaid_on_time,
        borrower_repaid=borrower.loans_repaid,
        standing=standing(loan, today) if disbursed else None, agent=agent)


def _with_agents(uow: UnitOfWork, loans: list[Loan], today: date) -> list[LoanView]:
    """Views of loans shown to lenders, each with its agent's record (one query for all)."""
    records = agent_records(uow, (loan.borrower.agent_id for loan in loans
                                  if loan.borrower.agent_id is not None))
    return [loan_view(loan, today, records) for loan in loans]


def _today(uow: UnitOfWork, now: datetime) -> date:
    return now.astimezone(uow.settings.zone).date()


def loan_seen_by(uow: UnitOfWork, member_id: int, number: str, now: datetime) -> LoanView:
    """A loan by number as `member_id` may see it: a listed loan, or one they are a
    party to (its borrower, the borrower's agent, a lender); any other raises the
    NotFound of a number that does not exist (`loans.find_loan_for`)."""
    with uow:
        return loan_view(find_loan_for(uow, member_id, number), _today(uow, now))


def first_name(name: str) -> str:
    """As `Member.first_name`, for a name read as a column."""
    return name.split()[0] if name.strip() else name


# The screens' statements are built once, their values bound at each execution: a
# statement built afresh costs its construction and its cache key on every hop (about
# 0.3 ms for these), a statement reused costs neither.
_TODAY = bindparam("today", type_=Installment.due_on.type)
_MEMBER = bindparam("member_id", type_=Integer)
_OFFSET = bindparam("offset", type_=Integer)
_LIMIT = bindparam("limit", type_=Integer)


def _loan_columns() -> Select[Any]:
    """A loan as `LoanView` needs it, with its borrower's columns and where its
    installments stand on `today` (correlated subqueries: no second statement)."""
    remaining = Installment.amount - Installment.paid
    of_loan = Installment.loan_id == Loan.id
    behind = (select(func.coalesce(func.sum(remaining), 0))
              .where(of_loan, Installment.due_on < _TODAY).scalar_subquery())
    upcoming = select(Installment.due_on, remaining).where(of_loan, remaining > 0) \
        .order_by(Installment.seq).limit(1)
    return select(
        Loan.number, Loan.status, Loan.amount, Loan.pledged, Loan.fee, Loan.interest,
        Loan.repaid, Loan.deadline, Loan.purpose, Loan.term_weeks,
        Member.name.label("borrower_name"), Member.place.label("borrower_place"),
        Member.loans_repaid_on_time.label("borrower_on_time"),
        Member.loans_repaid.label("borrower_repaid"),
        behind.label("behind"),
        upcoming.with_only_columns(Installment.due_on).scalar_subquery().label("next_due"),
        upcoming.with_only_columns(remaining).scalar_subquery().label("next_amount"))


def _of_borrower() -> Select[Any]:
    return _loan_columns().join(Member, Member.id == Loan.borrower_id)


def _open_loan_id(member_id: Any) -> Any:
    """The id of the borrower's open loan (an unsent draft does not count), as a scalar
    subquery on its own alias of loans."""
    inner = aliased(Loan)
    return (select(inner.id).where(inner.borrower_id == member_id,
                                   inner.status.in_(OPEN_LOAN_STATES),
                                   inner.status != LoanStatus.DRAFT)
            .order_by(inner.id.desc()).limit(1).scalar_subquery())


def _with_agent_record(query: Select[Any]) -> Select[Any]:
    """The borrower's agent's record as `reputation.agent_records` counts it (loans of
    the agent's members that ended, those repaid with no installment late), in
    correlated subqueries of the same statement."""
    members, loans, installments = aliased(Member), aliased(Loan), aliased(Installment)
    of_agent = (select().select_from(members).join(loans, loans.borrower_id == members.id)
                .where(members.agent_id == Member.agent_id, loans.status.in_(ENDED)))
    late = exists().where(installments.loan_id == loans.id, installments.late.is_(True))
    on_time = case((and_(loans.status == LoanStatus.REPAID, ~late), 1), else_=0)
    return query.add_columns(
        Member.agent_id.label("agent_id"),
        of_agent.with_only_columns(func.count(loans.id)).scalar_subquery()
        .label("agent_ended"),
        of_agent.with_only_columns(func.coalesce(func.sum(on_time), 0)).scalar_subquery()
        .label("agent_on_time"))


@cache
def _statement(name: str) -> Select[Any]:
    """The statement of one screen, built on first use."""
    if name in ("listed", "listed_excluding"):
        query = (_with_agent_record(_of_borrower())
                 .where(Loan.status == LoanStatus.LISTED,
                        Loan.deadline > bindparam("now", type_=Loan.deadline.type),
                        Loan.guaranteed >= Loan.guarantee_needed)
                 .order_by(Loan.deadline, Loan.id).offset(_OFFSET).limit(_LIMIT))
        return query.where(Loan.borrower_id != _MEMBER) if name == "listed_excluding" \
            else query
    if name == "loans_of":
        return (_of_borrower()
                .where(Loan.borrower_id == _MEMBER, Loan.status != LoanStatus.DRAFT)
                .order_by(Loan.id.desc()).offset(_OFFSET).limit(_LIMIT))
    if name == "loan_of":
        return _of_borrower().where(Loan.number == bindparam("number", type_=String),
                                    Loan.borrower_id == _MEMBER,
                                    Loan.status != LoanStatus.DRAFT)
    if name == "open_loan":
        return _of_borrower().where(Loan.id == _open_loan_id(_MEMBER))
    if name == "pledges_of":
        return (select(Loan.number, Pledge.amount, Pledge.status, Pledge.code,
                       Pledge.entitled, Pledge.repaid).join(Loan, Loan.id == Pledge.loan_id)
                .where(Pledge.lender_id == _MEMBER).order_by(Pledge.id.desc())
                .offset(_OFFSET).limit(_LIMIT))
    if name == "account":
        active = (select(func.count()).select_from(Pledge)
                  .where(Pledge.lender_id == Member.id,
                         Pledge.status.in_([PledgeStatus.PROPOSED, PledgeStatus.CONFIRMED]))
                  .correlate(Member).scalar_subquery())
        return (_loan_columns().add_columns(
            Member.credit_limit, Member.limit_frozen, Loan.id.label("loan_id"),
            Account.credits_posted, Account.debits_posted, Account.debits_pending,
            active.label("active_pledges"))
            .select_from(Member)
            .outerjoin(Account, Account.code == bindparam("wallet", type_=String))
            .outerjoin(Loan, Loan.id == _open_loan_id(Member.id))
            .where(Member.id == _MEMBER))
    raise KeyError(name)


def _view(row: Any) -> LoanView:
    """A `_loan_columns` row as a `LoanView`, exactly as `loan_view` makes it."""
    status = LoanStatus(row.status)
    disbursed = status in PAID_OUT
    total_due = row.amount + row.fee + row.interest
    return LoanView(
        number=row.number or "", status=status, amount=row.amount, pledged=row.pledged,
        funded_percent=row.pledged * 100 // row.amount if row.amount else 0,
        outstanding=total_due - row.repaid if disbursed else 0, total_due=total_due,
        deadline=row.deadline, purpose=row.purpose, term_weeks=row.term_weeks,
        borrower_first_name=first_name(row.borrower_name), borrower_place=row.borrower_place,
        borrower_on_time=row.borrower_on_time, borrower_repaid=row.borrower_repaid,
        standing=Standing(next_due=row.next_due, next_amount=row.next_amount or 0,
                          behind=row.behind or 0) if disbursed else None,
        agent=AgentRecord(ended=int(row.agent_ended or 0), on_time=int(row.agent_on_time or 0))
        if "agent_ended" in row._fields and row.agent_id is not None else None)


def _loans(uow: UnitOfWork, name: str, **values: Any) -> list[LoanView]:
    with uow.reading() as conn:
        return [_view(row) for row in conn.execute(_statement(name), values)]


def listed(uow: UnitOfWork, now: datetime, *, offset: int = 0, limit: int = 3,
           exclude_borrower: int | None = None) -> list[LoanView]:
    """Loans open to pledges, soonest deadline first, a page at a time: one statement."""
    if exclude_borrower is None:
        return _loans(uow, "listed", today=_today(uow, now), now=now, offset=offset,
                      limit=limit)
    return _loans(uow, "listed_excluding", today=_today(uow, now), now=now, offset=offset,
                  limit=limit, member_id=exclude_borrower)


def loans_of(uow: UnitOfWork, borrower_id: int, now: datetime, *, offset: int = 0,
             limit: int = 5) -> list[LoanView]:
    """A borrower's loans, newest first (drafts left out): one statement."""
    return _loans(uow, "loans_of", today=_today(uow, now), member_id=borrower_id,
                  offset=offset, limit=limit)


def loan_of(uow: UnitOfWork, borrower_id: int, number: str, now: datetime) -> LoanView:
    """One of the borrower's own loans; any other number is not found, whoever's it is.
    One statement."""
    found = _loans(uow, "loan_of", today=_today(uow, now), member_id=borrower_id,
                   number=number)
    if not found:
        raise NotFound("loan.not_found", number=number)
    return found[0]


def open_loan(uow: UnitOfWork, member_id: int, now: datetime) -> LoanView | None:
    """The borrower's open loan, with where its repayment stands, if they have one.
    One statement."""
    found = _loans(uow, "open_loan", today=_today(uow, now), member_id=member_id)
    return found[0] if found else None


def pledges_of(uow: UnitOfWork, lender_id: int, *, offset: int = 0, limit: int = 5
               ) -> list[PledgeView]:
    """A lender's pledges, newest first: one statement."""
    with uow.reading() as conn:
        rows = conn.execute(_statement("pledges_of"),
                            {"member_id": lender_id, "offset": offset, "limit": limit})
        return [PledgeView(loan_number=n or "", amount=a, status=PledgeStatus(s), code=c,
                           entitled=e, repaid=r) for n, a, s, c, e, r in rows]


def account(uow: UnitOfWork, member_id: int, now: datetime) -> AccountView:
    """A member's wallet, credit standing, open loan and pledges in flight: one
    statement (the member, their wallet, their open loan with its standing, a count)."""
    with uow.reading() as conn:
        row = conn.execute(_statement("account"), {
            "member_id": member_id, "wallet": ledger.wallet_code(member_id),
            "today": _today(uow, now)}).first()
    if row is None:
        raise NotFound("member.not_found")
    posted = (row.credits_posted or 0) - (row.debits_posted or 0)
    held = row.debits_pending or 0
    return AccountView(
        wallet_balance=posted, wallet_available=posted - held, held=held,
        credit_limit=row.credit_limit, limit_frozen=row.limit_frozen,
        loans_repaid=row.borrower_repaid, loans_repaid_on_time=row.borrower_on_time,
        open_loan=_view(row) if row.loan_id is not None else None,
        active_pledges=row.active_pledges)


def pledge_offer(uow: UnitOfWork, member_id: int, number: str, now: datetime
                 ) -> tuple[LoanView, int]:
    """A listed loan as a lender about to pledge sees it, and what their wallet has free
    (raises NotAllowed when the loan is not open for pledges, to its parties; NotFound
    to anyone else)."""
    with uow:
        view = _with_agents(uow, [find_loan_for(uow, member_id, number)], _today(uow, now))[0]
        if view.status != LoanStatus.LISTED:
            raise NotAllowed("loan.not_listed", number=view.number)
        wallet = ledger.find_account(uow, ledger.wallet_code(member_id))
        return view, wallet.available if wallet is not None else 0
