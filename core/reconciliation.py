"""Reconciliation: a provider's statement of money moved, compared with the ledger.

`reconcile` is a read use case: it takes the statement's movements as plain values
(`Line`s, however the provider's export was read) and returns a `Report` of four
kinds of item, matched by the provider's receipt:

- matched: on the statement and in the ledger, for the same amount;
- missing from the ledger: on the statement, not in the ledger (a confirmation we never
  got, or a payout whose result never reached us);
- missing from the statement: in the ledger within the statement's period (its first
  to its last completion time), not on the statement;
- mismatched: the same receipt, a different amount.

Money in is compared with `Payment` rows (receipt = `transaction_id`), money out with
paid `Payout` rows (receipt = `receipt`), each of the given provider. A payout's time
is when we recorded its result (`settled_at`): the provider's own completion time is
not kept, so a payout paid in the statement's last seconds and recorded after them is
not counted as missing. Nothing is written; recording what is missing is the caller's
business, through `repayments.record_payment`, one transaction per payment.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select

from core.db import UnitOfWork
from core.models import Payment, Payout, PayoutStatus

CHUNK = 500  # receipts per IN (...) query: well under every backend's parameter limit
T = TypeVar("T")


class Side(StrEnum):
    IN = "in"  # money that came in: a Payment
    OUT = "out"  # money that went out: a Payout


@dataclass(frozen=True)
class Line:
    """One movement of the provider's statement."""

    row: int  # where it is in the statement (for people)
    receipt: str
    side: Side
    amount: int  # minor units
    completed_at: datetime  # aware UTC


@dataclass(frozen=True)
class Entry:
    """What the ledger holds for a receipt: a payment in or a paid payout."""

    side: Side
    id: int  # the Payment's or the Payout's id
    receipt: str
    amount: int
    at: datetime  # a payment's occurred_at, a payout's settled_at
    reference: str  # a payment's reference; a payout's purpose

    @property
    def label(self) -> str:
        return f"{'payment' if self.side == Side.IN else 'payout'} #{self.id}"


@dataclass(frozen=True)
class Item:
    """One receipt in the report: as the statement has it, as the ledger has it."""

    side: Side
    receipt: str
    line: Line | None = None
    entry: Entry | None = None


@dataclass(frozen=True)
class Report:
    provider: str
    period: tuple[datetime, datetime] | None  # the statement's first and last time
    matched: list[Item] = field(default_factory=list)
    missing_from_ledger: list[Item] = field(default_factory=list)
    missing_from_statement: list[Item] = field(default_factory=list)
    mismatched: list[Item] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Everything on either side matches."""
        return not (self.missing_from_ledger or self.missing_from_statement
                    or self.mismatched)


def reconcile(uow: UnitOfWork, *, provider: str, lines: Sequence[Line]) -> Report:
    """Compare the statement's `lines` with the ledger's payments and paid payouts of
    `provider`. Each receipt appears at most once per side in `lines`."""
    provider = provider.strip().lower()
    period = ((min(line.completed_at for line in lines), max(line.completed_at for line in lines))
              if lines else None)
    report = Report(provider=provider, period=period)
    with uow:
        if uow.is_postgres and not uow.session.in_transaction():
            # One snapshot for every query: a payment landing meanwhile is seen by all.
            uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        for side in Side:
            side_lines = [line for line in lines if line.side == side]
            receipts = {line.receipt for line in side_lines}
            known = {entry.receipt: entry
                     for part in _chunks(sorted(receipts), CHUNK)
                     for entry in _entries(uow, side, provider, receipts=part)}
            for line in side_lines:
                entry = known.get(line.receipt)
                item = Item(side, line.receipt, line, entry)
                if entry is None:
                    report.missing_from_ledger.append(item)
                elif entry.amount != line.amount:
                    report.mismatched.append(item)
                else:
                    report.matched.append(item)
            if period is not None:
                for entry in _entries(uow, side, provider, period=period):
                    if entry.receipt not in receipts:
                        report.missing_from_statement.append(Item(side, entry.receipt,
                                                                  entry=entry))
        return report


def _entries(uow: UnitOfWork, side: Side, provider: str, *,
             receipts: Iterable[str] | None = None,
             period: tuple[datetime, datetime] | None = None) -> Iterator[Entry]:
    """The ledger's entries of one side with these receipts, or within this period (its
    last second included: stored times may carry fractions of one)."""
    query: Any
    if side == Side.IN:
        query = select(Payment.id, Payment.transaction_id, Payment.amount,
                       Payment.occurred_at, Payment.reference).where(
            Payment.provider == provider)
        key, moment = Payment.transaction_id, Payment.occurred_at
    else:
        query = select(Payout.id, Payout.receipt, Payout.amount, Payout.settled_at,
                       Payout.purpose).where(
            Payout.provider == provider, Payout.status == PayoutStatus.PAID,
            Payout.receipt.is_not(None))
        key, moment = Payout.receipt, Payout.settled_at  # type: ignore[assignment]
    if receipts is not None:
        query = query.where(key.in_(list(receipts)))
    if period is not None:
        query = query.where(moment >= period[0], moment < period[1] + timedelta(seconds=1))
    for row in uow.session.execute(query.order_by(moment)):
        yield Entry(side=side, id=row[0], receipt=row[1], amount=row[2], at=row[3],
                    reference=str(row[4]))


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
