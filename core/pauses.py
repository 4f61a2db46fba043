"""Hardship pauses: a borrower says "I can't pay this week" (USSD, with a reason);
a pause of `trust.pause_weeks`, with no fee, goes to their agent (USSD, with PIN) or to
an operator (`harambee pause`). Once approved, every unpaid installment moves by the
pause, the borrower gets the new dates as key facts, the lenders an SMS; reminders and
arrears follow the new dates. At most `trust.pauses_per_loan` per loan. A pause never
marks an installment late, so it never harms the credit ladder."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from core import outbox
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


def _weeks(weeks: int, lang: str) -> str:
    return text("ussd.weeks_one", lang) if weeks == 1 else text("ussd.weeks", lang, n=weeks)


def ask(uow: UnitOfWork, *, borrower_id: int, number: str, weeks: int, reason: str,
        now: datetime) -> Pause:
    """The borrower asks; their agent is told by SMS (with none, an operator sees it in
    `harambee pause list`)."""
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


def decide(uow: UnitOfWork, *, pause_id: int, approve: bool, now: datetime,
           agent_id: int | None = None, pin: str | None = None) -> Pause:
    """The agent (with `agent_id`; their PIN approves) or an operator (no agent)
    answers. Approving moves every unpaid installment by the pause, with no fee."""
    if agent_id is not None and approve:
        check_pin(uow, agent_id, pin or "", now)
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
            uow.commit()
            return pause
        moved = timedelta(weeks=pause.weeks)
        unpaid = [i for i in loan.installments if i.remaining > 0]
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
        uow.commit()
        return pause
