"""Payouts: money leaving Harambee for a member's phone (disbursements, withdrawals).

A payout moves in three steps, and the provider is never called inside a transaction:

1. The use case that decides it (`disbursements.disburse`, `withdrawals.withdraw`)
   calls `start`: a ledger hold from the source account (the loan's escrow, the
   member's wallet) to the provider's payout account, and the payout row, `pending`,
   in its own transaction. The payout account's pending credits are the payouts in
   flight; its posted credits, the money that has left.
2. A job (`workers/duties.py` `send_payouts`) `claim`s it (`sending`, with a lease),
   calls the provider with `originator_id(payout)` as the provider's idempotency key,
   and records the answer: the provider took it (`sent`), refused it (`failed`), or
   gave no answer to trust (`unknown`: the request may or may not have reached it).
3. The provider's result settles it (`settlement.py`): paid posts the hold, failed
   voids it, each exactly once. A `sent` payout whose result is late, and an
   `unknown` one, are asked about (the provider's status query) and the answer
   settles them; one the provider still has no record of a day later failed.

So a payout is sent once: a failed disbursement is tried again as a new payout, with
a new id, never the same request twice. Before sending, the provider's float (its last reported
balance less what is already in flight) must cover the payout; when it does not,
payouts wait (`paused`) and the duty says so.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, update

from core import ledger
from core.bulk import rowcount
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput
from core.models import (
    HoldState,
    Member,
    Payout,
    PayoutPurpose,
    PayoutStatus,
    ProviderFloat,
    Transfer,
)

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # a job holding a payout this long has died
ORIGINATOR_PREFIX = "HRB"


# ---------------------------------------------------------------- what a gateway does

@dataclass(frozen=True)
class Order:
    """What the provider is asked to pay: `originator` is our idempotency key for it."""

    payout_id: int
    originator: str
    phone: str
    amount: int
    currency: str
    purpose: PayoutPurpose


@dataclass(frozen=True)
class Taken:
    """The provider took the request; its result comes later (by callback)."""

    conversation_id: str | None


@dataclass(frozen=True)
class Outcome:
    """The provider's final word on a payout."""

    paid: bool
    receipt: str | None = None
    code: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class NeverReceived:
    """The provider has no record of the order: it never reached it."""


class Unsure(Exception):
    """No answer to trust: the request may or may not have reached the provider."""


class Refused(Exception):
    """The provider refused the request outright; it was not paid and never will be."""

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.code = code


class PayoutGateway(Protocol):
    """A provider that pays a phone. `send` answers at once (`Taken`, or a final
    `Outcome` when the provider settles synchronously) or raises `Unsure`/`Refused`;
    `ask` requests the provider's word on an earlier order (a final `Outcome` or
    `NeverReceived` now, or None when the answer comes later by callback; `Unsure`
    when it cannot be asked now); `ask_float` requests the paying account's balance
    (reported later, by callback, when the provider has one)."""

    provider: str

    def send(self, order: Order) -> Taken | Outcome: ...

    def ask(self, order: Order) -> Outcome | NeverReceived | None: ...

    def ask_float(self) -> None: ...


def originator_id(payout_id: int) -> str:
    """The provider's idempotency key for a payout (Daraja's OriginatorConversationID)."""
    return f"{ORIGINATOR_PREFIX}{payout_id:010d}"


def payout_id_of(originator: str) -> int | None:
    """The payout an originator id names, or None when it is not one of ours."""
    digits = originator[len(ORIGINATOR_PREFIX):] if originator.startswith(
        ORIGINATOR_PREFIX) else ""
    return int(digits) if digits.isdigit() and len(digits) == 10 else None


def payout_key(key: str) -> str:
    """The key of the hold that records the payout with our key `key`."""
    return f"payout:{key}"


# ---------------------------------------------------------------- step 1: the hold

def find_payout(uow: UnitOfWork, key: str) -> Payout | None:
    return uow.session.scalar(select(Payout).where(Payout.key == key))


def start(uow: UnitOfWork, *, provider: str, key: str, purpose: PayoutPurpose, member: Member,
          amount: int, debit_id: int, now: datetime, loan_id: int | None = None) -> Payout:
    """Inside the deciding use case's transaction: hold `amount` from `debit_id` for the
    member's phone and write the payout, `pending`, exactly once per key (a second call
    with the key returns the first payout; with other fields, Conflict). Refused with
    InsufficientFunds when the source cannot cover it, and InvalidInput for an amount
    the provider cannot pay (cents)."""
    done = find_payout(uow, key)
    if done is not None:
        if (done.member_id, done.amount, done.purpose) != (member.id, amount, purpose):
            raise Conflict("ledger.key_reused")
        return done
    settings = uow.settings
    if amount <= 0 or amount % settings.app.minor_scale:
        raise InvalidInput("payout.whole_units", currency=settings.app.currency_label)
    out = ledger.system_account(uow, ledger.payout_code(provider))
    hold = ledger.transfer(uow, ledger.Movement(
        key=payout_key(key), debit_id=debit_id, credit_id=out.id, amount=amount,
        code=purpose.code, loan_id=loan_id), now, pending=True)
    payout = Payout(key=key, provider=provider, purpose=purpose, phone=member.phone,
                    amount=amount, member_id=member.id, loan_id=loan_id, hold_id=hold.id,
                    status=PayoutStatus.PENDING, attempts=0, next_attempt_at=now,
                    created_at=now)
    uow.session.add(payout)
    uow.session.flush()
    uow.follow_up(SEND, payout.id)
    return payout


SEND = "send_payout"  # the follow-up (UnitOfWork.follow_up) that sends a new payout


# ---------------------------------------------------------------- step 2: sending

def due(uow: UnitOfWork, now: datetime, *, limit: int = 100) -> list[int]:
    """Pending payouts whose turn has come, oldest first."""
    with uow:
        return list(uow.session.scalars(
            select(Payout.id).where(Payout.status == PayoutStatus.PENDING,
                                    Payout.next_attempt_at <= now)
            .order_by(Payout.id).limit(limit)))


def claim(uow: UnitOfWork, payout_id: int, now: datetime) -> Order | None:
    """Take a pending payout to send it (`sending`, leased): None when it is not
    pending (another job has it, or it was settled), or when the provider's float is
    too low (it stays pending; `paused` says why)."""
    with uow:
        payout = uow.session.get(Payout, payout_id, with_for_update=True)
        if payout is None or payout.status != PayoutStatus.PENDING:
            return None
        short = float_short(uow, payout.provider, payout.amount, exclude=payout.id)
        if short is not None:
            payout.last_error = f"paused: float {short} short"
            uow.commit()
            log.warning("payout %s paused: %s float is %s short", payout.id, payout.provider,
                        short)
            return None
        payout.status = PayoutStatus.SENDING
        payout.attempts += 1
        payout.next_attempt_at = now + LEASE
        payout.last_error = None
        uow.commit()
        return Order(payout.id, originator_id(payout.id), payout.phone, payout.amount,
                     uow.settings.app.currency, payout.purpose)


def float_short(uow: UnitOfWork, provider: str, amount: int, *,
                exclude: int | None = None) -> int | None:
    """By how much the provider's last reported float, less what is already on its way
    (sent, or being sent), falls short of paying `amount`; None when it covers it or
    the provider reports no float."""
    reported = uow.session.get(ProviderFloat, provider)
    if reported is None:
        return None
    query = select(func.coalesce(func.sum(Payout.amount), 0)).where(
        Payout.provider == provider,
        Payout.status.in_([PayoutStatus.SENDING, PayoutStatus.SENT, PayoutStatus.UNKNOWN]))
    if exclude is not None:
        query = query.where(Payout.id != exclude)
    committed = int(uow.session.scalar(query) or 0)
    short = amount - (reported.available - committed)
    return short if short > 0 else None


def record_float(uow: UnitOfWork, provider: str, available: int, now: datetime) -> None:
    """The provider reported its paying account's balance."""
    with uow:
        row = uow.session.get(ProviderFloat, provider, with_for_update=True)
        if row is None:
            uow.session.add(ProviderFloat(provider=provider, available=available,
                                          reported_at=now))
        elif row.reported_at <= now:
            row.available, row.reported_at = available, now
        uow.commit()


def record_taken(uow: UnitOfWork, payout_id: int, taken: Taken, now: datetime,
                 result_wait: timedelta) -> None:
    """The provider took the request: its result is awaited until `result_wait` has
    passed, when the provider is asked."""
    with uow:
        changed = rowcount(uow.session.execute(
            update(Payout).where(Payout.id == payout_id, Payout.status == PayoutStatus.SENDING)
            .values(status=PayoutStatus.SENT, conversation_id=taken.conversation_id,
                    sent_at=now, next_attempt_at=now + result_wait)
            .execution_options(synchronize_session=False)))
        uow.commit()
    if not changed:  # its result came back before we recorded this: it is settled
        log.info("payout %s was settled before its request was recorded", payout_id)


def record_unsure(uow: UnitOfWork, payout_id: int, detail: str, now: datetime) -> None:
    """The request may or may not have reached the provider: ask it, never resend."""
    with uow:
        uow.session.execute(
            update(Payout).where(Payout.id == payout_id, Payout.status.in_(
                [PayoutStatus.SENDING, PayoutStatus.SENT]))
            .values(status=PayoutStatus.UNKNOWN, last_error=detail[:200], next_attempt_at=now)
            .execution_options(synchronize_session=False))
        uow.commit()


def to_ask(uow: UnitOfWork, now: datetime, *, limit: int = 100) -> list[int]:
    """Payouts whose fate the provider must be asked: `unknown` ones, `sent` ones whose
    result is late, and `sending` ones whose job died (it may have sent them), each
    when its time has come. The dead jobs' payouts become `unknown` here."""
    with uow:
        uow.session.execute(
            update(Payout).where(Payout.status == PayoutStatus.SENDING,
                                 Payout.next_attempt_at <= now)
            .values(status=PayoutStatus.UNKNOWN,
                    last_error="the sending job stopped; asking the provider")
            .execution_options(synchronize_session=False))
        ids = list(uow.session.scalars(
            select(Payout.id).where(Payout.status.in_([PayoutStatus.SENT,
                                                       PayoutStatus.UNKNOWN]),
                                    Payout.next_attempt_at <= now)
            .order_by(Payout.id).limit(limit)))
        uow.commit()
        return ids


def asking(uow: UnitOfWork, payout_id: int, now: datetime, wait: timedelta) -> Order | None:
    """The order to ask the provider about (None when it is settled by now); the next
    question, if no answer comes, waits `wait`."""
    with uow:
        payout = uow.session.get(Payout, payout_id, with_for_update=True)
        if payout is None or payout.status not in (PayoutStatus.SENT, PayoutStatus.UNKNOWN):
            return None
        payout.next_attempt_at = now + wait
        uow.commit()
        return Order(payout.id, originator_id(payout.id), payout.phone, payout.amount,
                     uow.settings.app.currency, payout.purpose)


# ---------------------------------------------------------------- step 3: the hold settled

def settle_hold(uow: UnitOfWork, payout: Payout, outcome: Outcome, now: datetime) -> bool:
    """Inside the settling use case: post (paid) or void (failed) the payout's hold and
    record the outcome. False when it was already settled this way (a replayed result);
    Conflict when a result contradicts an earlier one."""
    final = PayoutStatus.PAID if outcome.paid else PayoutStatus.FAILED
    if payout.status in (PayoutStatus.PAID, PayoutStatus.FAILED):
        if payout.status != final:
            log.error("payout %s: a %s result after it was %s; kept as %s", payout.id,
                      final, payout.status, payout.status)
            raise Conflict("payout.settled_otherwise")
        return False
    hold = uow.session.get(Transfer, payout.hold_id)
    assert hold is not None
    ledger.resolve_holds(uow, [hold], now,
                         to=HoldState.POSTED if outcome.paid else HoldState.VOIDED)
    payout.status = final
    payout.receipt = (outcome.receipt or "")[:64] or None
    payout.result_code = (outcome.code or "")[:20] or None
    payout.last_error = None if outcome.paid else (outcome.detail or "failed")[:200]
    payout.settled_at = now
    payout.next_attempt_at = None
    uow.session.flush()
    return True


def lock_payout(uow: UnitOfWork, payout_id: int) -> Payout | None:
    return uow.session.get(Payout, payout_id, with_for_update=True, populate_existing=True)
