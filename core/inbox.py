"""The inbox of incoming SMS: stored before anything else, keyed by the gateway's id so
a redelivered message is stored once and answered once.

Answering is one transaction with the inbox row locked: the command's effects, the
reply in the outbox and the row marked handled commit together, so a second run (a
redelivered job, the sweep) finds the row handled and does nothing. The channel
(`sms/`) says what a message means and what to reply; this module makes it happen once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select
from sqlalchemy.engine import Connection

from core import outbox
from core.db import UnitOfWork, insert_or_nothing
from core.members import find_by_phone
from core.models import InboundSms, InboundStatus, Member, Purpose
from core.phones import try_normalise

MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=1)  # a row still `received` this long is swept


@dataclass(frozen=True)
class Stored:
    id: int
    created: bool
    status: InboundStatus


@dataclass(frozen=True)
class Inbound:
    """A stored message being answered: its sender as E.164 (None when the sender is
    not a phone number we can answer) and the member with that phone, if any."""

    id: int
    phone: str | None
    text: str
    member: Member | None


@dataclass(frozen=True)
class Answer:
    """What the channel made of a message: the command it named (for support), and the
    reply to send (a message key and its values, in `language`), if any."""

    command: str | None
    language: str
    reply: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


Respond = Callable[[UnitOfWork, Inbound], Answer]


def reply_key(inbound_id: int) -> str:
    """The outbox key of the one reply to an incoming message."""
    return f"reply:{inbound_id}"


def store(uow: UnitOfWork, *, provider_id: str, phone: str, text: str, now: datetime,
          short_code: str | None = None, link_id: str | None = None,
          network_code: str | None = None) -> Stored:
    """Keep an incoming SMS, once per provider id: one INSERT that skips an id already
    kept (no read first, and no race with the same message delivered twice at once),
    then a read only for a message seen before. The INSERT is a statement of its own,
    committed alone (no BEGIN, no COMMIT: one round trip), compiled once."""
    provider_id = provider_id.strip()[:80]
    row = {"provider_id": provider_id, "phone": phone.strip()[:32], "text": text[:2000],
           "short_code": (short_code or "")[:20] or None,
           "link_id": (link_id or "")[:80] or None,
           "network_code": (network_code or "")[:10] or None,
           "status": InboundStatus.RECEIVED, "attempts": 0, "received_at": now}
    if uow.active:  # a caller's open transaction (a test's setup): join it
        with uow:
            stored = _store(uow.connection, row)
            uow.commit()
            return stored
    with uow.autocommit() as conn:
        return _store(conn, row)


def _store(conn: Connection, row: dict[str, Any]) -> Stored:
    new_id = conn.execute(_INSERT_NEW, row).scalar()
    if new_id is not None:
        return Stored(new_id, created=True, status=InboundStatus.RECEIVED)
    kept = conn.execute(_KEPT, {"provider_id": row["provider_id"]}).one()
    return Stored(kept[0], created=False, status=kept[1])


_INBOX = cast(Table, InboundSms.__table__)
_KEPT = select(_INBOX.c.id, _INBOX.c.status).where(
    _INBOX.c.provider_id == bindparam("provider_id"))
_STORED = ("provider_id", "phone", "text", "short_code", "link_id", "network_code", "status",
           "attempts", "received_at")
_INSERT_NEW = insert_or_nothing(_INBOX, _STORED, "provider_id")


def lock_for_handling(uow: UnitOfWork, inbound_id: int) -> InboundSms | None:
    """The row, locked, if it still waits for an answer; None when already answered."""
    row = uow.session.get(InboundSms, inbound_id, with_for_update=True, populate_existing=True)
    if row is None or row.status != InboundStatus.RECEIVED:
        return None
    return row


def answer(uow: UnitOfWork, inbound_id: int, now: datetime, respond: Respond) -> str:
    """Answer one stored message exactly once: `respond` runs the command and says what
    to reply; the reply, the command's effects and the row marked handled commit
    together. Returns `handled`, or `done` when it was answered before."""
    with uow:
        row = lock_for_handling(uow, inbound_id)
        if row is None:
            return "done"
        phone = try_normalise(row.phone, uow.settings.app.default_region)
        member = find_by_phone(uow, phone) if phone else None
        answered = respond(uow, Inbound(row.id, phone, row.text, member))
        row.command = (answered.command or "")[:12] or None
        row.member_id = member.id if member else None
        if answered.reply is not None and phone is not None:
            outbox.queue(uow, [outbox.Sms(
                key=reply_key(inbound_id), phone=phone, language=answered.language,
                template=answered.reply, purpose=Purpose.NOTICE, params=answered.params,
                member_id=member.id if member else None)], now)
        row.status = InboundStatus.HANDLED
        row.handled_at = now
        uow.commit()
        return "handled"


def note_failure(uow: UnitOfWork, inbound_id: int, error: str, now: datetime) -> str:
    """Count a failed try at answering (`retry`); after MAX_ATTEMPTS tell the sender
    something went wrong and stop (`failed`)."""
    with uow:
        row = lock_for_handling(uow, inbound_id)
        if row is None:
            return "done"
        row.attempts += 1
        row.last_error = error[:200]
        outcome = "retry"
        if row.attempts >= MAX_ATTEMPTS:
            row.status = InboundStatus.FAILED
            row.handled_at = now
            outcome = "failed"
            phone = try_normalise(row.phone, uow.settings.app.default_region)
            if phone:
                member = find_by_phone(uow, phone)
                outbox.queue(uow, [outbox.Sms(
                    key=reply_key(inbound_id), phone=phone,
                    language=member.language if member else "en", template="error.generic",
                    purpose=Purpose.NOTICE, params={})], now)
        uow.commit()
        return outcome


def waiting_ids(uow: UnitOfWork, now: datetime, *, limit: int = 500) -> list[int]:
    """Messages never answered (the job queue was down, or the handler failed): what the
    inbound sweep hands to the handler again."""
    with uow:
        return list(uow.session.scalars(
            select(InboundSms.id).where(
                InboundSms.status == InboundStatus.RECEIVED,
                or_(InboundSms.received_at <= now - RETRY_AFTER, InboundSms.attempts > 0))
            .order_by(InboundSms.id).limit(limit)))


def waiting_in_slot(uow: UnitOfWork, slot: int, slots: int, *, limit: int) -> list[int]:
    """The oldest messages of one answerer's share (id modulo `slots`) that wait for a
    first try. Shares never overlap, so answerers running side by side never wait on
    each other's rows; a message whose try failed is left to the inbound sweep."""
    with uow:
        return list(uow.session.scalars(
            select(InboundSms.id).where(InboundSms.status == InboundStatus.RECEIVED,
                                        InboundSms.attempts == 0,
                                        InboundSms.id % slots == slot)
            .order_by(InboundSms.id).limit(limit)))


def oldest_of_each_share(uow: UnitOfWork, slots: int, before: datetime) -> list[int]:
    """For each answerer's share with a message waiting for a first try since before
    `before`, its oldest message: what the inbound sweep nudges an answerer for."""
    with uow:
        return list(uow.session.scalars(
            select(func.min(InboundSms.id)).where(
                InboundSms.status == InboundStatus.RECEIVED, InboundSms.attempts == 0,
                InboundSms.received_at <= before)
            .group_by(InboundSms.id % slots)))


def resume_sms(uow: UnitOfWork, member_id: int) -> None:
    """The member asked for messages again (START): try their number once more."""
    with uow:
        member = uow.session.get(Member, member_id)
        if member is not None and member.sms_unreachable:
            member.sms_unreachable = False
        uow.commit()
