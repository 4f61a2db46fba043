"""The audit log: every change an operator makes, written in the same transaction as
the change, so there is never one without the other. Rows are only ever added
(`AuditEntry`; on PostgreSQL a trigger refuses UPDATE and DELETE)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core.db import UnitOfWork
from core.errors import InvalidInput
from core.models import AuditEntry

MAX_REASON = 500


@dataclass(frozen=True)
class Actor:
    """The operator acting, as the console knows them."""

    operator_id: int
    email: str


def reason_given(reason: str | None) -> str:
    """The reason an operator typed, tidied; refused when empty."""
    tidy = " ".join((reason or "").split())
    if not tidy:
        raise InvalidInput("console.reason_needed")
    return tidy[:MAX_REASON]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def record(uow: UnitOfWork, actor: Actor, action: str, subject: str, *, now: datetime,
           before: Any = None, after: Any = None, reason: str | None = None) -> AuditEntry:
    """Inside the acting use case's transaction: one audit row."""
    entry = AuditEntry(operator_id=actor.operator_id, operator_email=actor.email,
                       action=action, subject=subject[:60], before=_json(before),
                       after=_json(after), reason=reason, created_at=now)
    uow.session.add(entry)
    uow.session.flush()
    return entry


@dataclass(frozen=True)
class AuditFilter:
    operator: str = ""  # an email, or part of one
    action: str = ""
    subject: str = ""  # e.g. "member:12", or its start ("member:")
    since: datetime | None = None
    until: datetime | None = None


def entries(uow: UnitOfWork, where: AuditFilter, *, limit: int = 200,
            offset: int = 0) -> Sequence[AuditEntry]:
    """Audit rows matching `where`, newest first."""
    query = select(AuditEntry)
    if where.operator:
        query = query.where(AuditEntry.operator_email.contains(where.operator.lower()))
    if where.action:
        query = query.where(AuditEntry.action == where.action)
    if where.subject:
        query = query.where(AuditEntry.subject.startswith(where.subject))
    if where.since is not None:
        query = query.where(AuditEntry.created_at >= where.since)
    if where.until is not None:
        query = query.where(AuditEntry.created_at < where.until)
    with uow:
        return list(uow.session.scalars(
            query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)))


def actions(uow: UnitOfWork) -> list[str]:
    """The actions written so far (for the filter's choices)."""
    with uow:
        return sorted(uow.session.scalars(select(AuditEntry.action).distinct()))
