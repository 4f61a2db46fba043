"""The transactional outbox: every SMS is a row written with the change it tells of.

A send job (workers/) picks rows up after commit; a sweep re-enqueues rows left
behind, so losing Redis loses no message. Keys make writing idempotent: the same key
twice writes one row.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.bulk import insert_rows
from core.db import UnitOfWork
from core.messages import language_or_default, text
from core.models import Member, OutboxMessage, OutboxStatus, Purpose

_OUTBOX = OutboxMessage.__table__


@dataclass(frozen=True)
class Sms:
    """One message to queue: who, which template, why, and its idempotency key."""

    key: str
    phone: str
    language: str
    template: str
    purpose: Purpose
    params: dict[str, Any]
    member_id: int | None = None
    not_before: datetime | None = None


def sms_to(member: Member, key: str, template: str, purpose: Purpose,
           not_before: datetime | None = None, **params: Any) -> Sms:
    """An Sms for a member, in their language."""
    return Sms(key=key, phone=member.phone, language=member.language, template=template,
               purpose=purpose, params=params, member_id=member.id, not_before=not_before)


def row_values(message: Sms) -> dict[str, object]:
    """The outbox columns one message fills (its text rendered in its language)."""
    lang = language_or_default(message.language)
    return {"key": message.key, "phone": message.phone, "member_id": message.member_id,
            "language": lang, "purpose": str(message.purpose), "template": message.template,
            "text": text(message.template, lang, **message.params)}


def queue(uow: UnitOfWork, messages: Iterable[Sms], now: datetime) -> list[int]:
    """Write outbox rows (skipping keys already written) and announce them for sending."""
    rows = []
    seen: set[str] = set()
    for m in messages:
        if m.key in seen:
            continue
        seen.add(m.key)
        lang = language_or_default(m.language)
        rows.append({
            "key": m.key, "phone": m.phone, "member_id": m.member_id, "language": lang,
            "purpose": str(m.purpose), "template": m.template,
            "text": text(m.template, lang, **m.params), "status": OutboxStatus.QUEUED,
            "attempts": 0, "not_before": m.not_before, "next_attempt_at": m.not_before or now,
            "created_at": now,
        })
    if not rows:
        return []
    ids: list[int] = insert_rows(uow.session, _OUTBOX, rows, returning="id",
                                 skip_existing="key")
    uow.announce(ids)
    return ids
