"""Paybill confirmations: stored at the door, recorded in the ledger behind.

M-Pesa confirms a paybill payment (C2B) after the money has moved: the confirmation
cannot be refused, only acknowledged, and Daraja waits for the acknowledgement. So the
hook does the least a durable acknowledgement needs and no more:

1. `store` keeps the confirmation, once per (provider, TransID): one
   `INSERT ... ON CONFLICT DO NOTHING` and a commit, with no lock on any account. A
   replay finds the row and changes nothing; the same TransID with another amount or
   account is a `Conflict` (answered 409, as before). The hook then answers Daraja.
2. After commit a `record` job (the `payments` queue) records the payment through
   `repayments.record_payment`, the one use case every door uses (STK results,
   `/hooks/payments`, `reconcile --apply`), keyed by the receipt: the same receipt
   never counts twice, whichever door it came through. The confirmation row is locked
   while it is recorded and marked `recorded_at` in the same transaction, so a second
   job (a redelivered one, the sweep's) finds it done.
3. A confirmation whose job was lost (Redis down at the door, a worker killed) is found
   by `unrecorded` (the `confirmations` duty) and recorded then. One that can never be
   recorded (its receipt already recorded through another door with other details)
   keeps the refusal and waits for a person; `harambee check` reports it, and any
   confirmation left unrecorded longer than `mpesa.record_within_seconds` (`overdue`).

Until its payment is recorded, a member's balance and a loan's standing do not show it;
the receipt SMS goes out when it is (docs/mpesa.md says how long that takes).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, select

from core import repayments
from core.db import UnitOfWork, insert_or_nothing
from core.errors import Conflict, DomainError, InvalidInput
from core.models import Confirmation

RECORD = "record_confirmation"  # the follow-up (UnitOfWork.follow_up) that records one
_TABLE = cast(Table, Confirmation.__table__)
_COLUMNS = ("provider", "trans_id", "amount", "bill_ref", "phone", "occurred_at",
            "received_at", "attempts")
_STORE = insert_or_nothing(_TABLE, _COLUMNS, "provider, trans_id")
_FOUND = select(_TABLE.c.id, _TABLE.c.amount, _TABLE.c.bill_ref).where(
    _TABLE.c.provider == bindparam("provider"), _TABLE.c.trans_id == bindparam("trans_id"))


@dataclass(frozen=True)
class Confirmed:
    """A paybill payment as the provider confirmed it (amount in minor units, the time
    aware UTC, `phone` E.164 or None when the provider masked it)."""

    provider: str
    trans_id: str
    amount: int
    bill_ref: str
    phone: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Stored:
    id: int
    created: bool


def store(uow: UnitOfWork, paid: Confirmed, now: datetime) -> Stored:
    """Keep a confirmation once; note the job that records it (after commit). A replay
    changes nothing; the same TransID with another amount or account raises
    Conflict."""
    provider, trans_id = paid.provider.strip().lower(), paid.trans_id.strip()
    bill_ref = paid.bill_ref.strip()[:64]
    if not provider or not trans_id or len(trans_id) > 64 or len(provider) > 20:
        raise InvalidInput("payment.invalid")
    if paid.amount <= 0:
        raise InvalidInput("ledger.amount_not_positive")
    with uow.bare() as conn:
        new_id = conn.execute(_STORE, {
            "provider": provider, "trans_id": trans_id, "amount": paid.amount,
            "bill_ref": bill_ref, "phone": paid.phone, "occurred_at": paid.occurred_at,
            "received_at": now, "attempts": 0}).scalar()
        if new_id is None:  # a replay, or the same confirmation at this very moment
            found = conn.execute(_FOUND, {"provider": provider, "trans_id": trans_id}).one()
            if (found.amount, found.bill_ref) != (paid.amount, bill_ref):
                raise Conflict("payment.replayed_differently")
            return Stored(found.id, created=False)
        uow.follow_up(RECORD, new_id)
        uow.commit()
        return Stored(new_id, created=True)


def record(uow: UnitOfWork, confirmation_id: int, now: datetime) -> str:
    """Record one stored confirmation in the ledger, exactly once: `recorded` now,
    `done` when it was before (or is none of ours), `refused` when it can never be
    (kept with the reason, for a person)."""
    with uow:
        row = uow.session.get(Confirmation, confirmation_id, with_for_update=True,
                              populate_existing=True)
        if row is None or row.recorded_at is not None or row.refusal is not None:
            return "done"
        row.attempts += 1
        try:
            with uow.savepoint():
                receipt = repayments.record_payment(
                    uow, provider=row.provider, transaction_id=row.trans_id, phone=row.phone,
                    amount=row.amount, currency=uow.settings.app.currency,
                    reference=row.bill_ref, occurred_at=row.occurred_at, now=now)
        except DomainError as exc:
            row.refusal = exc.key[:60]
            uow.commit()
            return "refused"
        row.payment_id, row.recorded_at = receipt.payment.id, now
        uow.commit()
        return "recorded"


def unrecorded(uow: UnitOfWork, before: datetime, *, limit: int = 500) -> list[int]:
    """Confirmations stored before `before` and not recorded yet, nor refused: their job
    was lost or failed (what the `confirmations` duty records)."""
    with uow:
        return list(uow.session.scalars(
            select(Confirmation.id).where(Confirmation.recorded_at.is_(None),
                                          Confirmation.refusal.is_(None),
                                          Confirmation.received_at <= before)
            .order_by(Confirmation.id).limit(limit)))


@dataclass(frozen=True)
class Waiting:
    """Confirmations not yet in the ledger: how many, and when the oldest came."""

    count: int
    oldest: datetime | None


def waiting(uow: UnitOfWork) -> Waiting:
    """Confirmations stored and not yet recorded (refused ones included)."""
    with uow:
        count, oldest = uow.session.execute(
            select(func.count(), func.min(Confirmation.received_at))
            .where(Confirmation.recorded_at.is_(None))).one()
        return Waiting(int(count), oldest)


@dataclass(frozen=True)
class Overdue:
    id: int
    trans_id: str
    amount: int
    received_at: datetime
    refusal: str | None


def overdue(uow: UnitOfWork, now: datetime, *, limit: int = 20) -> list[Overdue]:
    """Confirmations that should be in the ledger by now and are not: refused ones, and
    any stored longer than `mpesa.record_within_seconds` ago."""
    late = now - timedelta(seconds=uow.settings.mpesa.record_within_seconds)
    with uow:
        return [Overdue(*row) for row in uow.session.execute(
            select(Confirmation.id, Confirmation.trans_id, Confirmation.amount,
                   Confirmation.received_at, Confirmation.refusal)
            .where(Confirmation.recorded_at.is_(None),
                   Confirmation.refusal.is_not(None) | (Confirmation.received_at <= late))
            .order_by(Confirmation.id).limit(limit))]
