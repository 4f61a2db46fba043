"""Sending the outbox: claim rows, record what the gateway said, apply delivery reports,
and find rows left behind. No HTTP and no Redis here: the worker layer calls these
around its gateway call, each step its own short transaction.

A row moves `queued -> sending -> sent -> delivered | failed`, or to `undeliverable`
(invalid or blacklisted number: never retried), or `skipped` (a tip to a member who
sent STOP). While `sending`, `next_attempt_at` is the lease: a row still `sending`
after it (its worker died mid-send) goes back to `queued`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Result as SqlResult
from sqlalchemy.exc import IntegrityError

from core.db import UnitOfWork
from core.models import DeliveryReport, Member, OutboxMessage, OutboxStatus, Purpose

SKIPPED = OutboxStatus.SKIPPED
# How long a sender may hold a row before another takes it back: longer than a gateway
# request can take (the Africa's Talking SDK gives up after 3 s to connect and 9 s to
# read), short enough that a sender killed mid-send delays its rows by seconds.
LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(minutes=1)  # the default of background.sms_retry_seconds
BACKOFF_CAP = timedelta(hours=1)

FINAL_OK = {"Success"}
FINAL_FAILED = {"Failed", "Rejected"}
# Reasons after which the number will not take SMS from us: stop trying that member.
UNREACHABLE_REASONS = {"UserInBlackList", "UserDoesNotExist", "NotNetworkSubscriber"}

_OUTBOX = cast(Table, OutboxMessage.__table__)


@dataclass(frozen=True)
class Claimed:
    """A row a sender now holds: it alone may send it until the lease ends."""

    id: int
    phone: str
    text: str
    member_id: int | None
    attempts: int
    lease: datetime | None = None  # until when (`next_attempt_at` while `sending`)


@dataclass(frozen=True)
class Result:
    """What the gateway said about one row: `sent`, `retry` or `invalid` (never retry)."""

    id: int
    state: str
    message_id: str | None = None
    cost: str | None = None
    detail: str = ""
    attempt: int | None = None  # the claim's attempt number (`record_sent` needs it)


def backoff(attempts: int, base: timedelta = BACKOFF_BASE) -> timedelta:
    """Wait before the next try: base, twice, four times ... (1, 2, 4 ... minutes by
    default), at most an hour."""
    return min(base * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def skip_opted_out_tips(uow: UnitOfWork, ids: Sequence[int], now: datetime) -> int:
    """Tips to members who sent STOP (or TIPS OFF) are never sent; receipts, reminders, codes and
    notices always are."""
    opted_out = select(Member.id).where(
        or_(Member.tips_opt_out.is_(True), Member.tips_wanted.is_(False))).scalar_subquery()
    return _changed(uow.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == OutboxStatus.QUEUED,
               OutboxMessage.purpose == Purpose.TIP, OutboxMessage.member_id.in_(opted_out))
        .values(status=SKIPPED, last_error="member opted out of tips", next_attempt_at=None)
        .execution_options(synchronize_session=False)))


def give_up_unreachable(uow: UnitOfWork, ids: Sequence[int], now: datetime) -> int:
    """Rows to members whose number refused us before go straight to `undeliverable`."""
    unreachable = select(Member.id).where(Member.sms_unreachable.is_(True)).scalar_subquery()
    return _changed(uow.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == OutboxStatus.QUEUED,
               OutboxMessage.member_id.in_(unreachable))
        .values(status=OutboxStatus.UNDELIVERABLE, last_error="member unreachable by SMS",
                next_attempt_at=None)
        .execution_options(synchronize_session=False)))


def _changed(result: SqlResult[Any]) -> int:
    """Rows an UPDATE changed."""
    return int(getattr(result, "rowcount", 0) or 0)


def _due(now: datetime) -> Any:
    """A queued row whose next try has come."""
    return or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now)


def claim(uow: UnitOfWork, ids: Sequence[int], now: datetime) -> list[Claimed]:
    """Take the due, queued rows among `ids` for sending (`queued -> sending`,
    attempts + 1). A conditional update: two senders never hold one row."""
    if not ids:
        return []
    with uow:
        skip_opted_out_tips(uow, ids, now)
        give_up_unreachable(uow, ids, now)
        due = and_(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == OutboxStatus.QUEUED,
                   _due(now),
                   or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now))
        rows = uow.session.execute(
            update(OutboxMessage).where(due)
            .values(status=OutboxStatus.SENDING, attempts=OutboxMessage.attempts + 1,
                    next_attempt_at=now + LEASE)
            .returning(OutboxMessage.id, OutboxMessage.phone, OutboxMessage.text,
                       OutboxMessage.member_id, OutboxMessage.attempts,
                       OutboxMessage.next_attempt_at)
            .execution_options(synchronize_session=False)).all()
        uow.commit()
        return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


# A sent row, written for many rows in one executemany: only while its sender still
# holds it (a row whose lease ran out belongs to whoever took it, and theirs counts).
_RECORD_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("row_id"), _OUTBOX.c.status == OutboxStatus.SENDING)
    .values(status=OutboxStatus.SENT, provider_message_id=bindparam("message_id"),
            cost=bindparam("row_cost"), last_error=bindparam("detail"),
            sent_at=bindparam("at"), next_attempt_at=None))


def record(uow: UnitOfWork, results: Iterable[Result], now: datetime) -> list[str]:
    """Write what the gateway said. Sent rows keep the provider's id and cost (one
    statement for them all); retryable failures go back to `queued` with backoff (or
    `failed` after MAX_ATTEMPTS); invalid numbers become `undeliverable` and their
    member unreachable. Returns the provider message ids of the sent rows (to apply
    early delivery reports)."""
    results = list(results)
    sent = [r for r in results if r.state == "sent"]
    base = timedelta(seconds=uow.settings.background.sms_retry_seconds)
    with uow:
        if sent:
            uow.session.execute(_RECORD_SENT, [
                {"row_id": r.id, "message_id": r.message_id,
                 "row_cost": (r.cost or "")[:20] or None, "detail": r.detail[:200] or None,
                 "at": now} for r in sent])
        unreachable: set[int] = set()
        for result in results:
            if result.state == "sent":
                continue
            row = uow.session.get(OutboxMessage, result.id)
            if row is None or row.status != OutboxStatus.SENDING:
                continue  # the lease ran out and someone else took it; theirs counts
            row.last_error = result.detail[:200] or None
            if result.state == "invalid":
                row.status = OutboxStatus.UNDELIVERABLE
                row.next_attempt_at = None
                if row.member_id is not None:
                    unreachable.add(row.member_id)
            elif row.attempts >= MAX_ATTEMPTS:
                row.status = OutboxStatus.FAILED
                row.next_attempt_at = None
            else:
                row.status = OutboxStatus.QUEUED
                row.next_attempt_at = now + backoff(row.attempts, base)
        if unreachable:
            mark_unreachable(uow, unreachable)
        uow.session.flush()
        recorded = [r.message_id for r in sent if r.message_id]
        if recorded:
            apply_pending_reports(uow, now, message_ids=recorded)
        uow.commit()
        return recorded


# The same for the sender's hot path: only while this claim still holds the row (its
# attempt number says which claim: a row taken back and claimed again has moved on).
_RECORD_HELD = _RECORD_SENT.where(_OUTBOX.c.attempts == bindparam("attempt"))
_REPORTS_WAITING = (select(DeliveryReport.id)
                    .where(DeliveryReport.provider_message_id.in_(bindparam("ids",
                                                                            expanding=True)),
                           DeliveryReport.applied_at.is_(None)).limit(1))


def record_sent(conn: Connection, sent: Sequence[Result], now: datetime) -> None:
    """Write the sent rows of one gateway request on the sender's autocommit connection
    (`UnitOfWork.autocommit`): one statement that commits by itself, with no BEGIN and no
    COMMIT, so each row is on record the moment its answer is back and a sender killed
    after this never sends it again. A row is written only while its claim still holds
    it. Delivery reports that came early wait for `apply_early_reports`."""
    conn.execute(_RECORD_HELD, [
        {"row_id": r.id, "attempt": r.attempt, "message_id": r.message_id,
         "row_cost": (r.cost or "")[:20] or None, "detail": r.detail[:200] or None,
         "at": now} for r in sent])


_RENEW = (update(_OUTBOX)
          .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
                 _OUTBOX.c.status == OutboxStatus.SENDING,
                 _OUTBOX.c.next_attempt_at == bindparam("lease"))
          .values(next_attempt_at=bindparam("until")).returning(_OUTBOX.c.id))


def renew(conn: Connection, rows: Sequence[Claimed], now: datetime) -> list[Claimed]:
    """Hold these rows of one claim for another LEASE (a slow gateway: the claim takes
    longer than its lease would last); returns those still held, with their new lease.
    A row whose lease ran out may have been taken back already: it is no longer ours
    to send. One statement on the sender's autocommit connection."""
    if not rows:
        return []
    until = now + LEASE
    kept: set[int] = set()
    for lease in {row.lease for row in rows}:
        kept.update(conn.scalars(_RENEW, {"ids": [r.id for r in rows if r.lease == lease],
                                          "lease": lease, "until": until}))
    return [replace(row, lease=until) for row in rows if row.id in kept]


def apply_early_reports(uow: UnitOfWork, conn: Connection, message_ids: Sequence[str],
                        now: datetime) -> int:
    """Apply the delivery reports that came before their rows were recorded: one look
    per claim on the sender's connection, and a transaction only when one waits."""
    if not message_ids or conn.execute(_REPORTS_WAITING, {"ids": list(message_ids)}
                                       ).first() is None:
        return 0
    return apply_pending_reports(uow, now, message_ids=message_ids)


def mark_unreachable(uow: UnitOfWork, member_ids: Iterable[int]) -> None:
    uow.session.execute(update(Member).where(Member.id.in_(list(member_ids)))
                        .values(sms_unreachable=True)
                        .execution_options(synchronize_session=False))


def release_stuck(uow: UnitOfWork, now: datetime) -> list[int]:
    """Rows still `sending` after their lease (the sender died) go back to `queued`;
    returns their ids."""
    with uow:
        released = list(uow.session.scalars(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.SENDING,
                   OutboxMessage.next_attempt_at <= now)
            .values(status=OutboxStatus.QUEUED, next_attempt_at=now,
                    last_error="sender stopped mid-send; retrying")
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)))
        uow.commit()
        return released


def prune_unmatched_reports(uow: UnitOfWork, now: datetime) -> int:
    """Drop delivery reports that never met a message of ours within
    `security.unmatched_report_days`: a flood of made-up ids cannot grow the table."""
    days = uow.settings.security.unmatched_report_days
    with uow:
        gone = list(uow.session.scalars(
            delete(DeliveryReport).where(DeliveryReport.applied_at.is_(None),
                                         DeliveryReport.received_at < now - timedelta(days=days))
            .returning(DeliveryReport.id).execution_options(synchronize_session=False)))
        uow.commit()
        return len(gone)


def due_ids(uow: UnitOfWork, now: datetime, *, limit: int = 5000) -> list[int]:
    """Queued rows due now, oldest first: what the sweep re-enqueues."""
    with uow:
        return list(uow.session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == OutboxStatus.QUEUED, _due(now))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)))


# ---------------------------------------------------------------- delivery reports

def record_report(uow: UnitOfWork, *, message_id: str, status: str, failure_reason: str | None,
                  phone: str | None, now: datetime) -> bool:
    """Store a delivery report once (by message id and status) and apply it when its row
    is known. Returns False for a redelivered report."""
    with uow:
        message_id, status = message_id.strip()[:80], status.strip()[:20]
        exists = uow.session.scalar(select(DeliveryReport.id).where(
            DeliveryReport.provider_message_id == message_id, DeliveryReport.status == status))
        if exists is not None:
            return False
        report = DeliveryReport(provider_message_id=message_id, status=status,
                                failure_reason=(failure_reason or "")[:40] or None,
                                phone=(phone or "")[:32] or None, received_at=now)
        try:
            with uow.session.begin_nested():
                uow.session.add(report)
                uow.session.flush()
        except IntegrityError:
            return False  # the same report, racing itself
        apply_pending_reports(uow, now, message_ids=[message_id])
        uow.commit()
        return True


def apply_pending_reports(uow: UnitOfWork, now: datetime, *,
                          message_ids: Sequence[str] | None = None, limit: int = 1000) -> int:
    """Apply stored reports whose outbox row now has that message id. Final reports win
    over interim ones; a delivered row never goes back."""
    with uow:
        query = (select(DeliveryReport, OutboxMessage)
                 .join(OutboxMessage, OutboxMessage.provider_message_id
                       == DeliveryReport.provider_message_id)
                 .where(DeliveryReport.applied_at.is_(None)).order_by(DeliveryReport.id).limit(limit))
        if message_ids is not None:
            query = query.where(DeliveryReport.provider_message_id.in_(list(message_ids)))
        applied = 0
        unreachable: set[int] = set()
        for report, row in uow.session.execute(query).all():
            report.applied_at = now
            applied += 1
            if row.status not in (OutboxStatus.SENT, OutboxStatus.SENDING, OutboxStatus.QUEUED):
                continue  # already final
            if report.status in FINAL_OK:
                row.status = OutboxStatus.DELIVERED
                row.delivered_at = now
            elif report.status in FINAL_FAILED:
                reason = report.failure_reason or report.status
                row.last_error = f"delivery: {reason}"[:200]
                if reason in UNREACHABLE_REASONS:
                    row.status = OutboxStatus.UNDELIVERABLE
                    if row.member_id is not None:
                        unreachable.add(row.member_id)
                else:
                    row.status = OutboxStatus.FAILED
        if unreachable:
            mark_unreachable(uow, unreachable)
        uow.commit()
        return applied


def pending_report_count(uow: UnitOfWork) -> int:
    with uow:
        return uow.session.scalar(select(func.count()).select_from(DeliveryReport)
                                  .where(DeliveryReport.applied_at.is_(None))) or 0
