"""Wallet money to its owner's phone: a PIN-checked payout of the wallet, and the SMS
once the provider has paid it (with its receipt) or failed it (the money is back)."""
from __future__ import annotations

from datetime import datetime

from core import ledger, outbox, payouts
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed
from core.members import check_pin, get_member
from core.models import MemberStatus, Payout, PayoutPurpose, PayoutStatus, Purpose


def withdraw(uow: UnitOfWork, *, member_id: int, amount: int, pin: str, provider: str,
             request_key: str, now: datetime) -> Payout:
    """Start sending `amount` of the member's wallet to their phone: the PIN first, then
    a hold on the wallet and a pending payout. Idempotent by `request_key`."""
    settings = uow.settings
    key = f"withdraw:{request_key}"
    check_pin(uow, member_id, pin, now)
    with uow:
        done = payouts.find_payout(uow, key)
        if done is not None:
            if (done.member_id, done.amount) != (member_id, amount):
                raise Conflict("ledger.key_reused")
            return done
        member = get_member(uow, member_id)
        if member.status == MemberStatus.SUSPENDED:
            raise NotAllowed("member.suspended")
        if amount <= 0:
            raise InvalidInput("ledger.amount_not_positive")
        smallest = settings.minor(settings.payouts.min_withdrawal)
        if amount < smallest:
            raise InvalidInput("withdrawal.too_small", min=settings.fmt(smallest))
        wallet = ledger.wallet(uow, member.id)
        if amount > wallet.available:
            raise ledger.InsufficientFunds(available=settings.fmt(wallet.available))
        try:
            payout = payouts.start(uow, provider=provider, key=key,
                                   purpose=PayoutPurpose.WITHDRAWAL, member=member,
                                   amount=amount, debit_id=wallet.id, now=now)
        except ledger.InsufficientFunds:
            raise ledger.InsufficientFunds(available=settings.fmt(
                ledger.wallet(uow, member.id).available)) from None
        uow.commit()
        return payout


def after_payout(uow: UnitOfWork, payout: Payout, now: datetime) -> None:
    """Inside the settling use case: tell the member it arrived (with the receipt and
    what the wallet holds now), or that it failed and the money is back."""
    settings = uow.settings
    member = get_member(uow, payout.member_id)
    available = settings.fmt(ledger.wallet(uow, member.id).available)
    if payout.status == PayoutStatus.PAID:
        sms = outbox.sms_to(member, f"withdrawal:{payout.id}", "sms.withdrawal",
                            Purpose.RECEIPT, amount=settings.fmt(payout.amount),
                            receipt=payout.receipt or "-", balance=available)
    else:
        sms = outbox.sms_to(member, f"withdrawal:{payout.id}", "sms.withdrawal_failed",
                            Purpose.RECEIPT, amount=settings.fmt(payout.amount),
                            balance=available)
    outbox.queue(uow, [sms], now)
