"""Reputation people can read: an agent's record, and a lender's portfolio.

An agent's record is about the loans of the members that agent registered or vouched
for (`members.agent_id`): of those loans that ended (repaid, or defaulted), how many
were repaid with every installment paid by its due date (no installment `late`). A
loan still being repaid, or never paid out, is not counted yet. Lenders read it as
"agent: 19 of 20 on time" beside each loan they may lend to.

A lender's portfolio, over their posted pledges (the money that went out):
- lent: what they lent;
- got back: what has come back to their wallet;
- late: what is still due to them on loans behind on payments;
- lost: what is still due to them on loans in default (anything paid later still
  reaches them, and leaves this figure);
- to come: what is still due on loans being repaid on time.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, exists, func, select

from core.db import UnitOfWork
from core.messages import text
from core.models import BEING_REPAID, Installment, Loan, LoanStatus, Member, Pledge, PledgeStatus

ENDED = (LoanStatus.REPAID, LoanStatus.DEFAULTED)


@dataclass(frozen=True)
class AgentRecord:
    """Loans of an agent's members that ended, and how many of them were repaid on time."""

    ended: int
    on_time: int


def agent_words(agent: AgentRecord | None, lang: str) -> str:
    """An agent's record as lenders read it, on every channel: "agent: 19 of 20 on
    time", "agent: no loans ended yet"; "" for a borrower no agent vouched for."""
    if agent is None:
        return ""
    if not agent.ended:
        return text("agent.new", lang)
    return text("agent.record", lang, on_time=agent.on_time, ended=agent.ended)


def agent_records(uow: UnitOfWork, agent_ids: Iterable[int]) -> dict[int, AgentRecord]:
    """Each agent's record, in one query; an agent with no ended loan is absent."""
    ids = sorted(set(agent_ids))
    if not ids:
        return {}
    late = exists().where(Installment.loan_id == Loan.id, Installment.late.is_(True))
    on_time = case((and_(Loan.status == LoanStatus.REPAID, ~late), 1), else_=0)
    rows = uow.session.execute(
        select(Member.agent_id, func.count(Loan.id), func.sum(on_time))
        .join(Loan, Loan.borrower_id == Member.id)
        .where(Member.agent_id.in_(ids), Loan.status.in_(ENDED))
        .group_by(Member.agent_id))
    return {agent: AgentRecord(ended=int(ended), on_time=int(good or 0))
            for agent, ended, good in rows}


@dataclass(frozen=True)
class Portfolio:
    loans: int  # loans lent to (posted pledges)
    lent: int
    got_back: int
    late: int
    lost: int
    to_come: int


def portfolio(uow: UnitOfWork, lender_id: int) -> Portfolio:
    """What a lender has lent, got back, is late and was lost, in one query."""
    with uow:
        owed = Pledge.entitled - Pledge.repaid

        def owed_when(*states: LoanStatus) -> Any:
            return func.coalesce(func.sum(case((Loan.status.in_(states), owed), else_=0)), 0)

        current = tuple(s for s in BEING_REPAID if s != LoanStatus.IN_ARREARS)
        row = uow.session.execute(
            select(func.count(func.distinct(Pledge.loan_id)),
                   func.coalesce(func.sum(Pledge.amount), 0),
                   func.coalesce(func.sum(Pledge.repaid), 0),
                   owed_when(LoanStatus.IN_ARREARS), owed_when(LoanStatus.DEFAULTED),
                   owed_when(*current, LoanStatus.FUNDED))
            .join(Loan, Loan.id == Pledge.loan_id)
            .where(Pledge.lender_id == lender_id, Pledge.status == PledgeStatus.POSTED)).one()
        loans, lent, got_back, late, lost, to_come = (int(value) for value in row)
        return Portfolio(loans=loans, lent=lent, got_back=got_back, late=late, lost=lost,
                         to_come=to_come)
