"""Disputes: a borrower or lender of a loan opens a case; support follows it up."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from core import outbox
from core.db import UnitOfWork
from core.errors import InvalidInput, NotAllowed, NotFound
from core.loans import find_loan
from core.members import get_member
from core.models import Dispute, DisputeStatus, Pledge, Purpose
from core.numbers import case_number

MAX_TEXT = 500


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
                          text=reason[:MAX_TEXT], status=DisputeStatus.OPEN, created_at=now)
        uow.session.add(dispute)
        uow.session.flush()
        dispute.number = case_number(dispute.id)
        outbox.queue(uow, [outbox.sms_to(
            member, f"dispute:{dispute.id}", "sms.dispute_opened", Purpose.NOTICE,
            case=dispute.number, loan=loan.number)], now)
        uow.commit()
        return dispute
