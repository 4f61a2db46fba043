"""The inbox of incoming SMS: stored before anything else, keyed by the gateway's id so
a redelivered message is stored once and answered once."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from core.db import UnitOfWork
from core.models import InboundSms, InboundStatus, Member

MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=1)  # a row still `received` this long is swept


@dataclass(frozen=True)
class Stored:
    id: int
    created: bool
    status: InboundStatus


def store(uow: UnitOfWork, *, provider_id: str, phone: str, text: str, now: datetime,
          short_code: str | None = None, link_id: str | None = None,
          network_code: str | None = None) -> Stored:
    """Keep an incoming SMS (once per provider id); the caller commits."""
    provider_id = provider_id.strip()[:80]
    existing = uow.session.execute(select(InboundSms.id, InboundSms.status).where(
        InboundSms.provider_id == provider_id)).first()
    if existing is not None:
        return Stored(existing[0], created=False, status=existing[1])
    row = InboundSms(provider_id=provider_id, phone=phone.strip()[:32], text=text[:2000],
                     short_code=(short_code or "")[:20] or None,
                     link_id=(link_id or "")[:80] or None,
                     network_code=(network_code or "")[:10] or None,
                     status=InboundStatus.RECEIVED, attempts=0, received_at=now)
    try:
        with uow.session.begin_nested():
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError:  # the same message, delivered twice at once
        again = uow.session.execute(select(InboundSms.id, InboundSms.status).where(
            InboundSms.provider_id == provider_id)).one()
        return Stored(again[0], created=False, status=again[1])
    return Stored(row.id, created=True, status=row.status)


def lock_for_handling(uow: UnitOfWork, inbound_id: int) -> InboundSms | None:
    """The row, locked, if it still waits for an answer; None when already answered."""
    row = uow.session.get(InboundSms, inbound_id, with_for_update=True, populate_existing=True)
    if row is None or row.status != InboundStatus.RECEIVED:
        return None
    return row


def waiting_ids(uow: UnitOfWork, now: datetime, *, limit: int = 500) -> list[int]:
    """Messages never answered (the job queue was down, or the handler failed): what the
    inbound sweep hands to the handler again."""
    return list(uow.session.scalars(
        select(InboundSms.id).where(
            InboundSms.status == InboundStatus.RECEIVED,
            or_(InboundSms.received_at <= now - RETRY_AFTER, InboundSms.attempts > 0))
        .order_by(InboundSms.id).limit(limit)))


def resume_sms(uow: UnitOfWork, member_id: int) -> None:
    """The member asked for messages again (START): try their number once more."""
    member = uow.session.get(Member, member_id)
    if member is not None and member.sms_unreachable:
        member.sms_unreachable = False
