"""Disputes: a borrower or lender of a loan opens a case; support follows it up.

Each case runs against two clocks, set when it is opened: support acknowledges it
within `ACK_WITHIN` and settles it (resolved or rejected) within `RESOLVE_WITHIN`.
Every step an operator takes (acknowledge, note, resolve, reject) is a `DisputeNote`
and an audit row, and the member is sent an SMS in their language (a note only when
the operator chooses to tell them).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, select

from core import audit, outbox
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.loans import find_loan
from core.members import get_member
from core.messages import format_date
from core.models import (
    OPEN_DISPUTES,
    Dispute,
    DisputeNote,
    DisputeStatus,
    Loan,
    Member,
    Pledge,
    Purpose,
)
from core.numbers import case_number

MAX_TEXT = 500
MAX_SMS_NOTE = 80  # what an operator may send a member in one step: it fits one SMS
ACK_WITHIN = timedelta(days=2)
RESOLVE_WITHIN = timedelta(days=7)


def open_dispute(uow: UnitOfWork, *, member_id: int, number: str, reason: str, now: datetime,
                 request_key: str) -> Dispute:
    """Open a case about a loan the member borrowed or lent to, and acknowledge it by
    SMS with its number. Idempotent by `request_key`."""
    with uow:
        existing = uow.session.scalar(select(Dispute).where(Dispute.request_key == request_key))
        if existing is not None:
            return existing
        member = get_member(uow, member_id)
        reason = " ".join(reason.split())
        if not reason:
            raise InvalidInput("sms.dispute_usage")
        try:
            loan = find_loan(uow, number)
        except NotFound:
            loan = None
        # Any pledge counts here, even one never confirmed ("my YES was not counted").
        # A loan that does not exist gets the same answer as another's: no one learns
        # of a loan by disputing it.
        lent = loan is not None and uow.session.scalar(select(Pledge.id).where(
            Pledge.loan_id == loan.id, Pledge.lender_id == member.id).limit(1)) is not None
        if loan is None or (loan.borrower_id != member.id and not lent):
            raise NotAllowed("dispute.not_party")
        dispute = Dispute(request_key=request_key, loan_id=loan.id, member_id=member.id,
                          text=reason[:MAX_TEXT], status=DisputeStatus.OPEN, created_at=now,
                          ack_by=now + ACK_WITHIN, resolve_by=now + RESOLVE_WITHIN)
        uow.session.add(dispute)
        uow.session.flush()
        dispute.number = case_number(dispute.id)
        outbox.queue(uow, [outbox.sms_to(
            member, f"dispute:{dispute.id}", "sms.dispute_opened", Purpose.NOTICE,
            case=dispute.number, loan=loan.number)], now)
        uow.commit()
        return dispute


# ---------------------------------------------------------------- support's side

def due_at(dispute: Dispute) -> datetime | None:
    """The deadline the case runs against now: acknowledging it, then settling it."""
    if dispute.status not in OPEN_DISPUTES:
        return None
    return dispute.ack_by if dispute.acknowledged_at is None else dispute.resolve_by


@dataclass(frozen=True)
class CaseRow:
    dispute: Dispute
    member: Member
    loan_number: str
    due: datetime | None


def cases(uow: UnitOfWork, *, open_only: bool = True, limit: int = 500) -> list[CaseRow]:
    """Cases with the nearest deadline first (past ones first of all); closed cases
    after, newest first."""
    deadline = case((Dispute.acknowledged_at.is_(None), Dispute.ack_by),
                    else_=Dispute.resolve_by)
    query = (select(Dispute, Member, Loan.number).join(Member, Member.id == Dispute.member_id)
             .join(Loan, Loan.id == Dispute.loan_id))
    if open_only:
        query = query.where(Dispute.status.in_(OPEN_DISPUTES)).order_by(deadline, Dispute.id)
    else:
        query = query.order_by(case((Dispute.status.in_(OPEN_DISPUTES), 0), else_=1),
                               deadline, Dispute.id.desc())
    with uow:
        return [CaseRow(d, m, number or "", due_at(d))
                for d, m, number in uow.session.execute(query.limit(limit))]


def case_file(uow: UnitOfWork, dispute_id: int) -> tuple[CaseRow, Sequence[DisputeNote]]:
    with uow:
        row = uow.session.execute(
            select(Dispute, Member, Loan.number).join(Member, Member.id == Dispute.member_id)
            .join(Loan, Loan.id == Dispute.loan_id).where(Dispute.id == dispute_id)).first()
        if row is None:
            raise NotFound("dispute.not_found")
        notes = list(uow.session.scalars(select(DisputeNote).where(
            DisputeNote.dispute_id == dispute_id).order_by(DisputeNote.id)))
        d, m, number = row
        return CaseRow(d, m, number or "", due_at(d)), notes


_STEPS = {
    # step: (the status it needs, the status it leaves, the member's SMS template)
    "acknowledge": ((DisputeStatus.OPEN,), DisputeStatus.ACKNOWLEDGED, "sms.dispute_acknowledged"),
    "note": (OPEN_DISPUTES, None, "sms.dispute_note"),
    "resolve": (OPEN_DISPUTES, DisputeStatus.RESOLVED, "sms.dispute_resolved"),
    "reject": (OPEN_DISPUTES, DisputeStatus.REJECTED, "sms.dispute_rejected"),
}


def take_step(uow: UnitOfWork, actor: audit.Actor, *, dispute_id: int, step: str, text: str,
              now: datetime, tell_member: bool = True) -> Dispute:
    """An operator's step on a case: acknowledge, note, resolve or reject, with what
    they write. The member is sent it by SMS in their language (a note only with
    `tell_member`; every other step always), and the step is audited."""
    if step not in _STEPS:
        raise InvalidInput("dispute.bad_step")
    written = " ".join(text.split())
    if not written:
        raise InvalidInput("console.reason_needed")
    if len(written) > MAX_SMS_NOTE:
        raise InvalidInput("dispute.note_too_long", n=MAX_SMS_NOTE)
    tell = tell_member or step != "note"
    needs, leaves, template = _STEPS[step]
    with uow:
        dispute = uow.session.get(Dispute, dispute_id, with_for_update=True)
        if dispute is None:
            raise NotFound("dispute.not_found")
        if dispute.status not in needs:
            raise Conflict("dispute.wrong_state", state=str(dispute.status))
        before = {"status": str(dispute.status)}
        if leaves is not None:
            dispute.status = leaves
        if step == "acknowledge" or (dispute.acknowledged_at is None and step != "note"):
            dispute.acknowledged_at = now
        if leaves in (DisputeStatus.RESOLVED, DisputeStatus.REJECTED):
            dispute.closed_at, dispute.outcome = now, written
        note = DisputeNote(dispute_id=dispute.id, operator_id=actor.operator_id, step=step,
                           text=written, told_member=tell, created_at=now)
        uow.session.add(note)
        uow.session.flush()
        if tell:
            member = get_member(uow, dispute.member_id)
            loan = uow.session.get(Loan, dispute.loan_id)
            assert loan is not None
            outbox.queue(uow, [outbox.sms_to(
                member, f"dispute:{dispute.id}:{step}:{note.id}", template, Purpose.NOTICE,
                case=dispute.number, loan=loan.number, note=written,
                by=format_date((dispute.resolve_by or now).astimezone(uow.settings.zone)),
                support=uow.settings.app.support_phone)], now)
        audit.record(uow, actor, f"dispute.{step}", f"dispute:{dispute.number}", now=now,
                     before=before, after={"status": str(dispute.status), "told_member": tell},
                     reason=written)
        uow.commit()
        return dispute
