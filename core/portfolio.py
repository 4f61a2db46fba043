"""The loan book as operators read it: portfolio figures for the dashboard, and the
filtered lists behind every figure. Read-only; every figure is an aggregate computed
in SQL (a handful of GROUP BY queries, whatever the size of the book).

Definitions (docs/console.md says them for people):
- **Days late** of a loan: days since the due date of its oldest installment not yet
  fully paid, counted in local dates; 0 when none is past due.
- **Principal outstanding** of a loan being repaid (or defaulted): its amount less the
  principal part of what lenders have received. A repayment pays the fee and the
  lenders (principal and interest together) pro rata, so the principal part is
  `(repaid - fee_paid) * amount / (amount + interest)`, rounded down.
- **PAR N**: principal outstanding on loans more than N days late, over all principal
  outstanding.
- **Repayment rate**: what was paid against installments due up to today, over what
  they asked.
- **Default rate** of ended loans: defaulted over repaid plus defaulted.
- **Disbursed per week** and **median days to fund**: of loans paid out in the period,
  or, without one, in the last 26 weeks.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Select,
    and_,
    cast,
    func,
    select,
)

from core.db import UnitOfWork
from core.models import (
    OWING,
    Installment,
    Loan,
    LoanStatus,
    Member,
    OutboxMessage,
    OutboxStatus,
    Pledge,
    PledgeStatus,
)

PAR_DAYS = (1, 30, 90)
RECENT = timedelta(weeks=26)
"""Without a period, disbursements per week and the days to fund are of the loans paid
out in this window (the chart's half year), not the whole history."""
ENDED = (LoanStatus.REPAID, LoanStatus.DEFAULTED)


@dataclass(frozen=True)
class BookFilter:
    """Which loans: by the borrower's agent and village, and loans disbursed in a period
    (`since` inclusive, `until` exclusive)."""

    agent_id: int | None = None
    village: str = ""
    since: date | None = None
    until: date | None = None

    def query_args(self) -> dict[str, str]:
        """As query-string arguments (for links through to the loans)."""
        args = {"agent": str(self.agent_id or ""), "village": self.village,
                "since": self.since.isoformat() if self.since else "",
                "until": self.until.isoformat() if self.until else ""}
        return {k: v for k, v in args.items() if v}


def _filtered(query: Select[Any], where: BookFilter, zone: Any) -> Select[Any]:
    """`query` (over `loans`) narrowed by the filter; joins the borrower only when needed."""
    if where.agent_id is not None or where.village:
        query = query.join(Member, Member.id == Loan.borrower_id)
        if where.agent_id is not None:
            query = query.where(Member.agent_id == where.agent_id)
        if where.village:
            query = query.where(func.lower(Member.place) == where.village.strip().lower())
    if where.since is not None:
        query = query.where(Loan.disbursed_at >= _start_of(where.since, zone))
    if where.until is not None:
        query = query.where(Loan.disbursed_at < _start_of(where.until, zone))
    return query


def _start_of(day: date, zone: Any) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def oldest_unpaid(today: date) -> Any:
    """Per loan, the due date of its oldest installment past due and not fully paid
    (a subquery: `loan_id`, `oldest`). Reads the partial index of unpaid installments."""
    return (select(Installment.loan_id.label("loan_id"),
                   func.min(Installment.due_on).label("oldest"))
            .where(Installment.paid < Installment.amount, Installment.due_on < today)
            .group_by(Installment.loan_id).subquery("late"))


def principal_outstanding() -> ColumnElement[int]:
    lent_back = Loan.repaid - Loan.fee_paid
    return cast(Loan.amount - (lent_back * Loan.amount) // (Loan.amount + Loan.interest),
                BigInteger)  # integer division: rounded down, no NUMERIC on the way


@dataclass
class Dashboard:
    today: date
    where: BookFilter
    by_state: dict[str, int] = field(default_factory=dict)  # loans by state
    outstanding: int = 0  # principal outstanding on loans being repaid
    at_risk: dict[int, int] = field(default_factory=dict)  # days -> principal outstanding
    due_to_date: int = 0
    paid_to_date: int = 0
    disbursed_weeks: list[tuple[date, int, int]] = field(default_factory=list)  # monday, n, sum
    median_days_to_fund: float | None = None
    recent_since: date | None = None  # without a period: the window of the two above
    active_borrowers: int = 0
    active_lenders: int = 0
    sms_by_status: dict[str, int] = field(default_factory=dict)

    def par(self, days: int) -> float | None:
        """PAR `days` as a fraction (None when nothing is outstanding)."""
        if not self.outstanding:
            return None
        return self.at_risk.get(days, 0) / self.outstanding

    @property
    def repayment_rate(self) -> float | None:
        return self.paid_to_date / self.due_to_date if self.due_to_date else None

    @property
    def default_rate(self) -> float | None:
        defaulted = self.by_state.get(LoanStatus.DEFAULTED, 0)
        ended = defaulted + self.by_state.get(LoanStatus.REPAID, 0)
        return defaulted / ended if ended else None

    @property
    def sms_delivery_rate(self) -> float | None:
        """Delivered over every message that went to the gateway and has a final word
        (delivered, failed or undeliverable); None before any."""
        done = sum(self.sms_by_status.get(s, 0) for s in (
            OutboxStatus.DELIVERED, OutboxStatus.FAILED, OutboxStatus.UNDELIVERABLE))
        return self.sms_by_status.get(OutboxStatus.DELIVERED, 0) / done if done else None

    @property
    def loans(self) -> int:
        return sum(self.by_state.values())


def dashboard(uow: UnitOfWork, where: BookFilter, now: datetime) -> Dashboard:
    """Every figure of the dashboard, in seven queries."""
    zone = uow.settings.zone
    today = now.astimezone(zone).date()
    board = Dashboard(today=today, where=where)
    late = oldest_unpaid(today)
    owing = Loan.status.in_(OWING)
    principal = principal_outstanding()
    filtered = where.agent_id is not None or bool(where.village) or where.since is not None \
        or where.until is not None
    with uow:
        s = uow.session
        # 1. loans by state (an index-only count), then the loans still owed: principal
        # outstanding and at risk. A borrower has one open loan at most, so the loans
        # owed count the active borrowers.
        board.by_state = {str(status): count for status, count in s.execute(_filtered(
            select(Loan.status, func.count()).select_from(Loan).group_by(Loan.status),
            where, zone))}
        outstanding, borrowers, *at_risk = s.execute(_filtered(
            select(func.coalesce(func.sum(principal), 0), func.count(),
                   *(func.coalesce(func.sum(principal).filter(
                       late.c.oldest < today - timedelta(days=n)), 0) for n in PAR_DAYS))
            .select_from(Loan).outerjoin(late, late.c.loan_id == Loan.id).where(owing),
            where, zone)).one()
        board.outstanding, board.active_borrowers = int(outstanding), borrowers
        board.at_risk = {n: int(amount) for n, amount in zip(PAR_DAYS, at_risk, strict=True)}
        # 2. repayment rate: paid against installments due up to today
        due_query = (select(func.coalesce(func.sum(Installment.amount), 0),
                            func.coalesce(func.sum(Installment.paid), 0))
                     .select_from(Installment).where(Installment.due_on <= today))
        if filtered:  # the loans only when the filter needs them
            due_query = _filtered(due_query.join(Loan, Loan.id == Installment.loan_id),
                                  where, zone)
        due, paid = s.execute(due_query).one()
        board.due_to_date, board.paid_to_date = int(due), int(paid)
        # 3. disbursed per day (weeks are summed here: a few hundred rows at most), of the
        # period, or of the last half year (`RECENT`)
        recent = where
        if where.since is None:
            board.recent_since = today - RECENT
            recent = replace(where, since=board.recent_since)
        day = cast(Loan.disbursed_at, Date) if uow.is_postgres else func.date(Loan.disbursed_at)
        weeks: dict[date, list[int]] = {}
        for on, count, amount in s.execute(_filtered(
                select(day, func.count(), func.sum(Loan.amount))
                .where(Loan.disbursed_at.is_not(None)).group_by(day), recent, zone)):
            on = on if isinstance(on, date) else date.fromisoformat(on)
            monday = on - timedelta(days=on.weekday())
            entry = weeks.setdefault(monday, [0, 0])
            entry[0] += count
            entry[1] += int(amount)
        board.disbursed_weeks = [(m, n, a) for m, (n, a) in sorted(weeks.items())]
        # 4. median days from listing to funding (whole days, as a histogram)
        to_fund: Any = (func.date_part("day", Loan.funded_at - Loan.listed_at)
                        if uow.is_postgres else
                        cast(func.julianday(func.date(Loan.funded_at))
                             - func.julianday(func.date(Loan.listed_at)), BigInteger))
        histogram = s.execute(_filtered(
            select(to_fund, func.count()).where(Loan.funded_at.is_not(None),
                                                Loan.listed_at.is_not(None))
            .group_by(to_fund), recent, zone)).all()
        board.median_days_to_fund = _median(histogram)
        # 5. active lenders: with money in a loan still owed
        # (DISTINCT in a subquery: hashed, where count(DISTINCT ...) sorts every pledge)
        lenders = _filtered(
            select(Pledge.lender_id).select_from(Loan)
            .join(Pledge, and_(Pledge.loan_id == Loan.id, Pledge.status == PledgeStatus.POSTED))
            .where(owing), where, zone).distinct().subquery()
        board.active_lenders = s.scalar(select(func.count()).select_from(lenders)) or 0
        # 6. SMS by status (the whole service's: messages are not per loan)
        sms = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        if where.since is not None:
            sms = sms.where(OutboxMessage.created_at >= _start_of(where.since, zone))
        if where.until is not None:
            sms = sms.where(OutboxMessage.created_at < _start_of(where.until, zone))
        board.sms_by_status = {str(status): count for status, count in s.execute(sms)}
    return board


def _median(histogram: Sequence[Any]) -> float | None:
    """The median of whole days given as (days, how many loans) rows."""
    counts = sorted((float(days), int(n)) for days, n in histogram)
    total = sum(n for _, n in counts)
    if not total:
        return None
    middle = [(total - 1) // 2, total // 2]  # the one or two middle positions
    found, seen = [], 0
    for days, n in counts:
        found += [days for position in middle if seen <= position < seen + n]
        seen += n
    return sum(found) / len(found)


# ---------------------------------------------------------------- the loans behind them

@dataclass(frozen=True)
class LoanFilter:
    book: BookFilter = BookFilter()
    state: str = ""  # a LoanStatus value, or "owing" for every loan still owed
    late_over: int | None = None  # more than this many days late
    number: str = ""


@dataclass(frozen=True)
class LoanRow:
    id: int
    number: str
    status: str
    amount: int
    outstanding: int
    borrower_id: int
    borrower: str
    place: str | None
    days_late: int
    disbursed_at: datetime | None


def loans(uow: UnitOfWork, where: LoanFilter, now: datetime, *, limit: int = 100,
          offset: int = 0) -> list[LoanRow]:
    """The loans a filter names, newest first, with days late worked out as above."""
    zone = uow.settings.zone
    today = now.astimezone(zone).date()
    late = oldest_unpaid(today)
    query = (select(Loan.id, Loan.number, Loan.status, Loan.amount,
                    Loan.amount + Loan.fee + Loan.interest - Loan.repaid, Member.id,
                    Member.name, Member.place, late.c.oldest, Loan.disbursed_at)
             .select_from(Loan).join(Member, Member.id == Loan.borrower_id)
             .outerjoin(late, late.c.loan_id == Loan.id))
    book = where.book
    if book.agent_id is not None:
        query = query.where(Member.agent_id == book.agent_id)
    if book.village:
        query = query.where(func.lower(Member.place) == book.village.strip().lower())
    if book.since is not None:
        query = query.where(Loan.disbursed_at >= _start_of(book.since, zone))
    if book.until is not None:
        query = query.where(Loan.disbursed_at < _start_of(book.until, zone))
    if where.state == "owing":
        query = query.where(Loan.status.in_(OWING))
    elif where.state:
        query = query.where(Loan.status == LoanStatus(where.state))
    if where.late_over is not None:
        query = query.where(Loan.status.in_(OWING),
                            late.c.oldest < today - timedelta(days=where.late_over))
    if where.number:
        query = query.where(Loan.number == where.number.strip().upper())
    with uow:
        return [LoanRow(lid, number or "", str(status), amount, outstanding, mid, name, place,
                        (today - oldest).days if oldest else 0, disbursed)
                for lid, number, status, amount, outstanding, mid, name, place, oldest, disbursed
                in uow.session.execute(query.order_by(Loan.id.desc()).limit(limit)
                                       .offset(offset))]
