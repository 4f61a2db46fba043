"""What the console shows of one loan, one member, or the agents: everything that
happened, read from the tables that recorded it. Read-only."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.orm import aliased

from core import ledger
from core.db import UnitOfWork
from core.errors import NotFound
from core.groups import group_of
from core.models import (
    OWING,
    Account,
    AuditEntry,
    Dispute,
    Group,
    InboundSms,
    Installment,
    Loan,
    LoanStatus,
    Member,
    OutboxMessage,
    OutboxStatus,
    Payment,
    Payout,
    Pledge,
    Role,
    Transfer,
)
from core.numbers import normalise_loan_number
from core.phones import try_normalise
from core.portfolio import oldest_unpaid, principal_outstanding


@dataclass(frozen=True)
class Event:
    """One line of a timeline: when, what kind, what it says, and an amount if any."""

    at: datetime
    kind: str  # loan, installment, pledge, payment, transfer, payout, sms, dispute
    text: str
    amount: int | None = None
    status: str = ""


@dataclass
class LoanFile:
    loan: Loan
    borrower: Member
    installments: list[Installment]
    pledges: list[tuple[Pledge, Member]]
    events: list[Event] = field(default_factory=list)
    days_late: int = 0


def loan_file(uow: UnitOfWork, number: str, now: datetime) -> LoanFile:
    """A loan with its schedule, pledges and lenders, payments, ledger transfers, payouts
    and every SMS that names it, on one timeline (oldest first)."""
    settings = uow.settings
    normal = normalise_loan_number(number, settings.loan.number_prefix)
    with uow:
        s = uow.session
        loan = s.scalar(select(Loan).where(Loan.number == normal)) if normal else None
        if loan is None:
            raise NotFound("loan.not_found", number=number.strip()[:10])
        borrower = loan.borrower
        installments = list(loan.installments)
        pledges = list(s.execute(select(Pledge, Member).join(Member, Member.id == Pledge.lender_id)
                                 .where(Pledge.loan_id == loan.id).order_by(Pledge.id)).tuples())
        events = [Event(loan.created_at, "loan", "asked for", loan.amount, "draft")]
        for moment, label in ((loan.listed_at, "listed for lenders"), (loan.funded_at, "funded"),
                              (loan.disbursed_at, "paid out"), (loan.closed_at, "closed")):
            if moment is not None:
                events.append(Event(moment, "loan", label))
        zone = settings.zone
        for inst in installments:
            due = datetime.combine(inst.due_on, time(23, 59), zone)
            events.append(Event(due, "installment", f"installment {inst.seq} due"
                                f"{' (paid late)' if inst.late and inst.remaining == 0 else ''}",
                                inst.amount, "paid" if inst.remaining == 0 else
                                f"{settings.fmt(inst.paid)} paid"))
        for pledge, lender in pledges:
            events.append(Event(pledge.created_at, "pledge", f"pledge by {lender.name}",
                                pledge.amount, str(pledge.status)))
        for payment in s.scalars(select(Payment).where(Payment.loan_id == loan.id)):
            events.append(Event(payment.created_at, "payment",
                                f"{payment.provider} receipt {payment.transaction_id}",
                                payment.amount, str(payment.kind)))
        accounts = aliased(Account)
        credit = aliased(Account)
        for transfer, debit_code, credit_code in s.execute(
                select(Transfer, accounts.code, credit.code)
                .join(accounts, accounts.id == Transfer.debit_account_id)
                .join(credit, credit.id == Transfer.credit_account_id)
                .where(Transfer.loan_id == loan.id).order_by(Transfer.id).limit(500)).tuples():
            events.append(Event(transfer.created_at, "transfer",
                                f"{transfer.code}: {debit_code} -> {credit_code}",
                                transfer.amount, str(transfer.hold_state or transfer.kind)))
        for payout in s.scalars(select(Payout).where(Payout.loan_id == loan.id)):
            events.append(Event(payout.created_at, "payout", f"payout {payout.id} to the borrower",
                                payout.amount, str(payout.status)))
        for dispute in s.scalars(select(Dispute).where(Dispute.loan_id == loan.id)):
            events.append(Event(dispute.created_at, "dispute", f"case {dispute.number}: "
                                f"{dispute.text}", None, str(dispute.status)))
        phones = [borrower.phone, *(lender.phone for _, lender in pledges)]
        exact = re.compile(rf"\b{re.escape(loan.number or '')}\b")
        for sms in s.scalars(select(OutboxMessage).where(
                OutboxMessage.phone.in_(phones[:1000]),
                OutboxMessage.text.contains(loan.number or "")).limit(500)):
            if exact.search(sms.text):
                events.append(Event(sms.created_at, "sms", f"to {sms.phone}: {sms.text}", None,
                                    str(sms.status)))
        events.sort(key=lambda e: e.at)
        today = now.astimezone(zone).date()
        late = [i.due_on for i in installments if i.remaining > 0 and i.due_on < today]
        return LoanFile(loan, borrower, installments, pledges, events,
                        (today - min(late)).days if late else 0)


# ---------------------------------------------------------------- members

def search_members(uow: UnitOfWork, query: str, *, limit: int = 50) -> list[Member]:
    """Members by phone (any common form), loan number (its borrower), national ID
    (held or claimed) or name (any part)."""
    q = " ".join(query.split())
    if not q:
        return []
    settings = uow.settings
    conditions: list[Any] = [func.lower(Member.name).contains(q.lower()),
                             Member.national_id == q, Member.claimed_national_id == q]
    phone = try_normalise(q, settings.app.default_region)
    if phone:
        conditions.append(Member.phone == phone)
    number = normalise_loan_number(q, settings.loan.number_prefix)
    if number:
        conditions.append(Member.id.in_(select(Loan.borrower_id).where(Loan.number == number)))
    with uow:
        return list(uow.session.scalars(select(Member).where(or_(*conditions))
                                        .order_by(Member.name, Member.id).limit(limit)))


@dataclass
class MemberFile:
    member: Member
    agent: Member | None
    wallet_available: int
    loans: list[Loan]
    pledges: list[tuple[Pledge, str | None]]  # the pledge and its loan number
    sms_out: list[OutboxMessage]
    sms_in: list[InboundSms]
    disputes: list[Dispute]
    audit: list[AuditEntry]
    registered: int  # members this one registered, as an agent
    group: Group | None = None  # the group they joined, if any


def member_file(uow: UnitOfWork, member_id: int) -> MemberFile:
    with uow:
        s = uow.session
        member = s.get(Member, member_id)
        if member is None:
            raise NotFound("member.not_found")
        wallet = ledger.find_account(uow, ledger.wallet_code(member.id))
        return MemberFile(
            member=member, agent=member.agent,
            wallet_available=wallet.available if wallet else 0,
            loans=list(s.scalars(select(Loan).where(Loan.borrower_id == member.id)
                                 .order_by(Loan.id.desc()))),
            pledges=list(s.execute(select(Pledge, Loan.number).join(Loan)
                                   .where(Pledge.lender_id == member.id)
                                   .order_by(Pledge.id.desc()).limit(100)).tuples()),
            sms_out=list(s.scalars(select(OutboxMessage).where(OutboxMessage.phone == member.phone)
                                   .order_by(OutboxMessage.id.desc()).limit(100))),
            sms_in=list(s.scalars(select(InboundSms).where(InboundSms.phone == member.phone)
                                  .order_by(InboundSms.id.desc()).limit(100))),
            disputes=list(s.scalars(select(Dispute).where(Dispute.member_id == member.id)
                                    .order_by(Dispute.id.desc()))),
            audit=list(s.scalars(select(AuditEntry).where(
                AuditEntry.subject == f"member:{member.id}").order_by(AuditEntry.id.desc()))),
            registered=s.scalar(select(func.count()).select_from(Member)
                                .where(Member.agent_id == member.id)) or 0,
            group=group_of(uow, member.id))


# ---------------------------------------------------------------- agents

@dataclass(frozen=True)
class AgentRow:
    id: int
    name: str
    phone: str
    status: str
    place: str | None
    members: int
    outstanding: int
    at_risk_30: int
    defaulted: int
    ended: int
    last_acted: datetime | None

    @property
    def par30(self) -> float | None:
        return self.at_risk_30 / self.outstanding if self.outstanding else None

    @property
    def default_rate(self) -> float | None:
        return self.defaulted / self.ended if self.ended else None


def agents(uow: UnitOfWork, now: datetime) -> list[AgentRow]:
    """Every agent: the members they registered, those members' PAR30 and default rate,
    and when they last acted (registered or verified someone). Three grouped queries."""
    today = now.astimezone(uow.settings.zone).date()
    late = oldest_unpaid(today)
    owing = Loan.status.in_(OWING)
    principal = principal_outstanding()
    registered = aliased(Member)
    with uow:
        s = uow.session
        agent_rows = list(s.scalars(select(Member).where(
            cast(Member.roles, String).contains(str(Role.AGENT))).order_by(Member.name)))
        ids = [a.id for a in agent_rows if a.has_role(Role.AGENT)]
        members = dict(s.execute(
            select(Member.agent_id, func.count()).where(Member.agent_id.in_(ids))
            .group_by(Member.agent_id)).tuples().all())
        last = dict(s.execute(
            select(Member.agent_id, func.max(func.coalesce(Member.verified_at, Member.created_at)))
            .where(Member.agent_id.in_(ids)).group_by(Member.agent_id)).tuples().all())
        books: dict[int, tuple[int, int, int, int]] = {}
        for agent_id, out, risk, defaulted, ended in s.execute(
                select(registered.agent_id,
                       func.sum(case((owing, principal), else_=0)),
                       func.sum(case((and_(owing, late.c.oldest < today - timedelta(days=30)),
                                      principal), else_=0)),
                       func.sum(case((Loan.status == LoanStatus.DEFAULTED, 1), else_=0)),
                       func.sum(case((Loan.status.in_((LoanStatus.DEFAULTED,
                                                       LoanStatus.REPAID)), 1), else_=0)))
                .select_from(Loan).join(registered, registered.id == Loan.borrower_id)
                .outerjoin(late, late.c.loan_id == Loan.id)
                .where(registered.agent_id.in_(ids)).group_by(registered.agent_id)):
            books[agent_id] = (int(out or 0), int(risk or 0), int(defaulted or 0), int(ended or 0))
        return [AgentRow(a.id, a.name, a.phone, str(a.status), a.place, members.get(a.id, 0),
                         *books.get(a.id, (0, 0, 0, 0)), last.get(a.id))
                for a in agent_rows if a.id in ids]


def agent_choices(uow: UnitOfWork) -> list[tuple[int, str]]:
    """The id and name of every agent who registered someone (the filters' choices:
    an agent with no members has no loans to filter), read by `ix_members_agent_id`."""
    with uow:
        return list(uow.session.execute(
            select(Member.id, Member.name).where(Member.id.in_(
                select(Member.agent_id).where(Member.agent_id.is_not(None)).distinct()))
            .order_by(Member.name)).tuples())


def places(uow: UnitOfWork) -> Sequence[str]:
    """The villages members live in (the dashboard's filter choices)."""
    with uow:
        return [p for p in uow.session.scalars(select(Member.place).where(
            Member.place.is_not(None)).distinct().order_by(Member.place).limit(500)) if p]


def today_in(uow: UnitOfWork, now: datetime) -> date:
    return now.astimezone(uow.settings.zone).date()


def failed_sms(uow: UnitOfWork, *, limit: int = 500) -> list[OutboxMessage]:
    """Outbox rows the gateway failed or could not deliver, newest first."""
    with uow:
        return list(uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.status.in_(
                (OutboxStatus.FAILED, OutboxStatus.UNDELIVERABLE)))
            .order_by(OutboxMessage.id.desc()).limit(limit)))
