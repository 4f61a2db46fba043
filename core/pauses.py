"""Hardship pauses: a borrower says "I can't pay this week" (USSD, with a reason);
a pause of `trust.pause_weeks`, with no fee, goes to their agent (USSD, with PIN) or to
an operator (the console's Pauses page, or `harambee pause`). Once approved, every
unpaid installment moves by the pause, the borrower gets the new dates as key facts, the
lenders an SMS; reminders and arrears follow the new dates. At most
`trust.pauses_per_loan` per loan. A pause never marks an installment late, so it never
harms the credit ladder. The console's decisions are audited in `decide`'s own
transaction (its `actor`); the agent's and the CLI's are not."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from core import audit, outbox
from core.db import UnitOfWork
from core.errors import InvalidInput, NotAllowed, NotFound
from core.loans import find_loan
from core.members import check_pin
from core.messages import format_date, text
from core.models import (
    BEING_REPAID,
    Loan,
    LoanStatus,
    Member,
    Pause,
    PauseStatus,
    Pledge,
    PledgeStatus,
    Purpose,
)

REASONS = ("sick", "business", "family", "other")


@dataclass(frozen=True)
class PauseView:
    id: int
    name: str  # the borrower's first name
    loan: str
    weeks: int
    reason: str  # a key of REASONS


@dataclass(frozen=True)
class PauseRow:
    """A pause as the console lists it: who asked, whose agent, and how it ended."""

    id: int
    loan: str
    borrower: str
    borrower_id: int
    agent: str | None
    agent_id: int | None
    weeks: int
    reason: str  # a key of REASONS
    status: PauseStatus
    asked_at: datetime
    decided_at: datetime | None
    decided_by: str | None  # the agent's name; None when an operator decided (see the audit)


def _weeks(weeks: int, lang: str) -> str:
    return text("ussd.weeks_one", lang) if weeks == 1 else text("ussd.weeks", lang, n=weeks)


def ask(uow: UnitOfWork, *, borrower_id: int, number: str, weeks: int, reason: str,
        now: datetime) -> Pause:
    """The borrower asks; their agent is told by SMS (with none, an operator sees it on
    the console's Pauses page or in `harambee pause list`)."""
    settings = uow.settings
    if weeks not in settings.trust.pause_weeks:
        raise InvalidInput("pause.weeks", weeks=" / ".join(map(str, settings.trust.pause_weeks)))
    if reason not in REASONS:
        raise InvalidInput("error.invalid")
    with uow:
        loan = find_loan(uow, number, lock=True)
        if loan.borrower_id != borrower_id:
            raise NotFound("loan.not_found", number=loan.number)
        if loan.status not in BEING_REPAID:
            raise NotAllowed("pause.not_repaying")
        asked = {status: n for status, n in uow.session.execute(
            select(Pause.status, func.count()).where(Pause.loan_id == loan.id)
            .group_by(Pause.status))}
        if asked.get(PauseStatus.ASKED):
            raise NotAllowed("pause.waiting", number=loan.number)
        if asked.get(PauseStatus.APPROVED, 0) >= settings.trust.pauses_per_loan:
            raise NotAllowed("pause.used", number=loan.number)
        pause = Pause(loan_id=loan.id, weeks=weeks, reason=reason, status=PauseStatus.ASKED,
                      asked_at=now)
        uow.session.add(pause)
        uow.session.flush()
        borrower = loan.borrower
        agent = borrower.agent
        if agent is not None:
            outbox.queue(uow, [outbox.sms_to(
                agent, f"pause_asked:{pause.id}", "sms.pause_asked", Purpose.NOTICE,
                name=borrower.first_name, loan=loan.number,
                weeks=_weeks(weeks, agent.language),
                reason=text(f"pause.reason.{reason}", agent.language),
                service_code=settings.ussd.service_code)], now)
        uow.commit()
        return pause


def request_for(uow: UnitOfWork, agent_id: int, pause_id: int) -> PauseView:
    """A pause waiting for this agent: only their own members'."""
    with uow:
        pause = uow.session.get(Pause, pause_id)
        loan = uow.session.get(Loan, pause.loan_id) if pause is not None else None
        if pause is None or loan is None or loan.borrower.agent_id != agent_id \
                or pause.status != PauseStatus.ASKED:
            raise NotFound("pause.not_found")
        return PauseView(pause.id, loan.borrower.first_name, loan.number or "", pause.weeks,
                         pause.reason)


def waiting(uow: UnitOfWork) -> list[PauseView]:
    """Every pause waiting for an answer, for an operator."""
    with uow:
        rows = uow.session.execute(
            select(Pause, Loan).join(Loan, Loan.id == Pause.loan_id)
            .where(Pause.status == PauseStatus.ASKED).order_by(Pause.id)).all()
        return [PauseView(p.id, loan.borrower.first_name, loan.number or "", p.weeks,
                          p.reason) for p, loan in rows]


def list_pauses(uow: UnitOfWork, status: PauseStatus | None = PauseStatus.ASKED,
                limit: int = 200) -> list[PauseRow]:
    """Pauses for the console, one statement: those waiting, oldest first (the queue an
    operator works through), or with `status=None` every pause, newest first."""
    borrower, agent, decider = aliased(Member), aliased(Member), aliased(Member)
    order = (Pause.asked_at, Pause.id) if status is not None else (
        Pause.asked_at.desc(), Pause.id.desc())
    query = (select(Pause, Loan.number, borrower.name, borrower.id, agent.name, agent.id,
                    decider.name)
             .join(Loan, Loan.id == Pause.loan_id)
             .join(borrower, borrower.id == Loan.borrower_id)
             .outerjoin(agent, agent.id == borrower.agent_id)
             .outerjoin(decider, decider.id == Pause.decided_by)
             .order_by(*order).limit(limit))
    if status is not None:
        query = query.where(Pause.status == status)
    with uow:
        return [PauseRow(id=p.id, loan=number or "", borrower=name, borrower_id=borrower_id,
                         agent=agent_name, agent_id=agent_id, weeks=p.weeks, reason=p.reason,
                         status=p.status, asked_at=p.asked_at, decided_at=p.decided_at,
                         decided_by=decider_name)
                for p, number, name, borrower_id, agent_name, agent_id, decider_name
                in uow.session.execute(query)]


def decide(uow: UnitOfWork, *, pause_id: int, approve: bool, now: datetime,
           agent_id: int | None = None, pin: str | None = None,
           actor: audit.Actor | None = None, note: str | None = None) -> Pause:
    """The agent (with `agent_id`; their PIN approves) or an operator (no agent)
    answers. Approving moves every unpaid installment by the pause, with no fee.

    With an `actor` (the console's operator): one audit row in the same transaction;
    declining needs a `note` (kept in the audit row, never sent); and a pause already
    answered is refused in words, even with the same answer (without an actor, as for
    the agent's USSD and `harambee pause decide`, the same answer again is a no-op)."""
    if agent_id is not None and approve:
        check_pin(uow, agent_id, pin or "", now)
    reason = audit.reason_given(note) if actor is not None and not approve else None
    settings = uow.settings
    with uow:
        pause = uow.session.get(Pause, pause_id, with_for_update=True)
        if pause is None:
            raise NotFound("pause.not_found")
        loan = uow.session.get(Loan, pause.loan_id, with_for_update=True)
        assert loan is not None
        borrower = loan.borrower
        if agent_id is not None and borrower.agent_id != agent_id:
            raise NotFound("pause.not_found")
        wanted = PauseStatus.APPROVED if approve else PauseStatus.DECLINED
        if actor is not None and pause.status != PauseStatus.ASKED:
            raise NotAllowed("pause.decided", id=pause.id, status=str(pause.status))
        if pause.status == wanted:
            return pause
        if pause.status != PauseStatus.ASKED:
            raise NotAllowed("pause.answered")
        if approve and loan.status not in BEING_REPAID:
            raise NotAllowed("pause.not_repaying")
        pause.status, pause.decided_by, pause.decided_at = wanted, agent_id, now
        if not approve:
            outbox.queue(uow, [outbox.sms_to(borrower, f"pause_no:{pause.id}",
                                             "sms.pause_declined", Purpose.NOTICE,
                                             loan=loan.number)], now)
            if actor is not None:
                audit.record(uow, actor, "pause.decline", f"pause:{pause.id}", now=now,
                             before={"status": "asked"}, after={"status": "declined"},
                             reason=reason)
            uow.commit()
            return pause
        moved = timedelta(weeks=pause.weeks)
        unpaid = [i for i in loan.installments if i.remaining > 0]
        was_last = loan.installments[-1].due_on
        for inst in unpaid:
            inst.due_on += moved
        today = now.astimezone(settings.zone).date()
        if loan.status == LoanStatus.IN_ARREARS and not any(
                i.due_on < today for i in unpaid):
            loan.status = LoanStatus.REPAYING
        last = loan.installments[-1].due_on
        messages = [outbox.sms_to(
            borrower, f"pause_yes:{pause.id}", "sms.pause_approved", Purpose.NOTICE,
            loan=loan.number, next_amount=settings.fmt(unpaid[0].remaining) if unpaid else "",
            next_due=format_date(unpaid[0].due_on) if unpaid else "",
            last_due=format_date(last), paybill=settings.payments.paybill)]
        lenders = uow.session.scalars(select(Member).where(Member.id.in_(
            select(Pledge.lender_id).where(Pledge.loan_id == loan.id,
                                           Pledge.status == PledgeStatus.POSTED))))
        messages += [outbox.sms_to(m, f"pause_lender:{pause.id}:{m.id}", "sms.pause_lender",
                                   Purpose.NOTICE, loan=loan.number,
                                   weeks=_weeks(pause.weeks, m.language),
                                   last_due=format_date(last)) for m in lenders]
        outbox.queue(uow, messages, now)
        if actor is not None:
            audit.record(uow, actor, "pause.approve", f"pause:{pause.id}", now=now,
                         before={"status": "asked", "last_due": was_last},
                         after={"status": "approved", "weeks": pause.weeks,
                                "moved": len(unpaid), "last_due": last})
        uow.commit()
        return pause
