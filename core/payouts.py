"""Payouts: money leaving Harambee to a phone (disbursements, withdrawals).

A payout is idempotent by the caller's key: paying the same key twice pays once and
returns the same provider reference. What a gateway must do is stated here
(`PayoutGateway`); the gateways themselves are adapters the composition root picks
(`runtime/payouts.py`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select

from core import ledger
from core.db import UnitOfWork
from core.errors import Conflict
from core.models import Member, Payout, PayoutPurpose


class PayoutGateway(Protocol):
    provider: str

    def pay(self, *, key: str, phone: str, amount: int, currency: str) -> str:
        """Send `amount` to `phone`; return the provider's reference."""
        ...


def payout_key(key: str) -> str:
    """The key of the transfer that records the payout with our key `key`."""
    return f"payout:{key}"


def find_payout(uow: UnitOfWork, key: str) -> Payout | None:
    return uow.session.scalar(select(Payout).where(Payout.key == key))


def pay_out(uow: UnitOfWork, gateway: PayoutGateway, *, key: str, purpose: PayoutPurpose,
            member: Member,
            amount: int, debit_id: int, now: datetime, loan_id: int | None = None) -> Payout:
    """Move `amount` out of `debit_id` to the member's phone, exactly once per key.

    The ledger transfer is made first (it may be refused for lack of funds, and it locks
    the debited row); only then is the gateway asked to pay, by our key, so a retry after
    a crash pays once. The transfer is keyed by our key (`payout_key`) and never changed
    after it is written; the provider's reference is kept on the payout row (invariant 6).
    """
    done = find_payout(uow, key)
    if done is not None:
        if (done.member_id, done.amount, done.purpose) != (member.id, amount, purpose):
            raise Conflict("ledger.key_reused")
        return done
    out = ledger.system_account(uow, ledger.payout_code(gateway.provider))
    moved = ledger.transfer(uow, ledger.Movement(
        key=payout_key(key), debit_id=debit_id, credit_id=out.id, amount=amount,
        code=purpose.code,
        loan_id=loan_id), now)
    reference = gateway.pay(key=key, phone=member.phone, amount=amount,
                            currency=uow.settings.app.currency)
    record = Payout(key=key, provider=gateway.provider, reference=reference, purpose=purpose,
                    phone=member.phone, amount=amount, member_id=member.id, loan_id=loan_id,
                    transfer_id=moved.id, created_at=now)
    uow.session.add(record)
    uow.session.flush()
    return record

