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

from core import ledger
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


_COLUMNS = ("key", "phone", "member_id", "language", "purpose", "template", "text", "status",
            "attempts", "not_before", "next_attempt_at", "created_at")


def row_values(message: Sms, now: datetime) -> dict[str, object]:
    """The outbox row one message is written as: its text rendered in its language,
    queued to go at once (or from `not_before`)."""
    lang = language_or_default(message.language)
    return {"key": message.key, "phone": message.phone, "member_id": message.member_id,
            "language": lang, "purpose": str(message.purpose), "template": message.template,
            "text": text(message.template, lang, **message.params),
            "status": str(OutboxStatus.QUEUED), "attempts": 0, "not_before": message.not_before,
            "next_attempt_at": message.not_before or now, "created_at": now}


def queue(uow: UnitOfWork, messages: Iterable[Sms], now: datetime) -> list[int]:
    """Write outbox rows (skipping keys already written) and announce them for sending."""
    rows = []
    seen: set[str] = set()
    for m in messages:
        if m.key in seen:
            continue
        seen.add(m.key)
        rows.append(row_values(m, now))
    if not rows:
        return []
    ids: list[int] = insert_rows(uow.session, _OUTBOX, rows, returning="id",
                                 skip_existing="key")
    uow.announce(ids)
    return ids


def _announce(uow: UnitOfWork, outbox_id: int) -> None:
    uow.announce([outbox_id])


_PARAMS = tuple((f"sms_{column}", column) for column in _COLUMNS)

# One message written with a hold, as the last of the writes that follow it
# (ledger.place_hold): in the hold's own statement on PostgreSQL. A key already written
# is skipped, as `queue` skips it; a new row is announced for sending.
QUEUE_AFTER_HOLD = ledger.Step(
    "sms",
    f"INSERT INTO outbox ({', '.join(_COLUMNS)}) "
    f"SELECT {', '.join(f':{param}' for param, _ in _PARAMS)} WHERE {{after}} "
    "ON CONFLICT (key) DO NOTHING",
    types=tuple((param, _OUTBOX.c[column].type) for param, column in _PARAMS),
    optional=True, written=_announce)


def after_hold_values(message: Sms, now: datetime) -> dict[str, object]:
    """The values QUEUE_AFTER_HOLD writes for this message (`place_hold`'s params)."""
    row = row_values(message, now)
    return {param: row[column] for param, column in _PARAMS}
