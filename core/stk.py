"""Pay now: an M-Pesa prompt pushed to a borrower's own phone (STK push).

1. `request` (USSD "Repay now", SMS `PAY 500`) writes the request, `pending`, naming
   what it pays: the borrower's loan being repaid (the account reference).
2. A job `claim`s it, asks the provider to prompt the phone (outside any transaction)
   and records the provider's id for the prompt (`sent`), or that it failed.
3. The prompt's result (`result`) records the payment through the same use case as a
   paybill payment, keyed by the M-Pesa receipt: the same receipt is never counted
   twice, whichever door it came through. A cancelled or failed prompt is told to the
   borrower: nothing was taken.

A prompt is never pushed twice for one request: pushing again would ask the borrower
to pay twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update

from core import outbox, repayments
from core.db import UnitOfWork
from core.errors import InvalidInput, NotAllowed
from core.members import get_member
from core.models import OWING, Loan, MemberStatus, Purpose, StkRequest, StkStatus

SEND = "send_stk"  # the follow-up (UnitOfWork.follow_up) that pushes a new prompt


@dataclass(frozen=True)
class Prompt:
    """What the provider is asked to prompt: `account` is what it pays (a loan number)."""

    request_id: int
    phone: str
    amount: int
    account: str


class PromptRefused(Exception):
    """The provider would not prompt the phone; nothing was asked of the customer."""


class StkGateway(Protocol):
    """A provider that prompts a phone to pay: `push` returns its id for the prompt
    (the result comes later, by callback) or raises PromptRefused."""

    provider: str

    def push(self, prompt: Prompt) -> str: ...


@dataclass(frozen=True)
class StkResult:
    """The prompt's result: paid (with the receipt and what was paid), or not."""

    checkout_request_id: str
    paid: bool
    cancelled: bool = False
    receipt: str | None = None
    amount: int | None = None
    phone: str | None = None
    paid_at: datetime | None = None
    code: str | None = None
    detail: str = ""


def request(uow: UnitOfWork, *, member_id: int, amount: int, provider: str, key: str,
            now: datetime) -> StkRequest:
    """Ask for `amount` from the borrower's phone towards their loan being repaid.
    Idempotent by `key`."""
    settings = uow.settings
    with uow:
        done = uow.session.scalar(select(StkRequest).where(StkRequest.key == key))
        if done is not None:
            return done
        member = get_member(uow, member_id)
        if member.status == MemberStatus.SUSPENDED:
            raise NotAllowed("member.suspended")
        loan = uow.session.scalar(select(Loan).where(
            Loan.borrower_id == member.id, Loan.status.in_(OWING)).order_by(Loan.id.desc())
            .limit(1))
        if loan is None or loan.number is None:
            raise NotAllowed("stk.nothing_owed")
        scale = settings.app.minor_scale
        high = min(loan.outstanding, settings.minor(settings.mpesa.max_amount))
        if amount < scale or amount % scale or amount > high:
            raise InvalidInput("stk.amount", min=settings.fmt(scale),
                               max=settings.fmt(high - high % scale))
        row = StkRequest(key=key, provider=provider, member_id=member.id, loan_id=loan.id,
                         phone=member.phone, amount=amount, account=loan.number,
                         status=StkStatus.PENDING, attempts=0, next_attempt_at=now,
                         created_at=now)
        uow.session.add(row)
        uow.session.flush()
        uow.follow_up(SEND, row.id)
        uow.commit()
        return row


def claim(uow: UnitOfWork, request_id: int, now: datetime) -> Prompt | None:
    """Take a pending request to push its prompt; None when it is not pending."""
    with uow:
        row = uow.session.get(StkRequest, request_id, with_for_update=True)
        if row is None or row.status != StkStatus.PENDING:
            return None
        row.status = StkStatus.SENDING
        row.attempts += 1
        uow.commit()
        return Prompt(row.id, row.phone, row.amount, row.account)


def record_pushed(uow: UnitOfWork, request_id: int, checkout_request_id: str,
                  now: datetime) -> None:
    """The provider is prompting the phone; its result comes by callback."""
    with uow:
        uow.session.execute(
            update(StkRequest).where(StkRequest.id == request_id,
                                     StkRequest.status == StkStatus.SENDING)
            .values(status=StkStatus.SENT, checkout_request_id=checkout_request_id[:64],
                    sent_at=now)
            .execution_options(synchronize_session=False))
        uow.commit()


def record_refused(uow: UnitOfWork, request_id: int, detail: str, now: datetime) -> None:
    """The provider would not prompt the phone (or may not have): the borrower is told
    nothing was taken, and may try again."""
    with uow:
        row = uow.session.get(StkRequest, request_id, with_for_update=True)
        if row is None or row.status not in (StkStatus.PENDING, StkStatus.SENDING):
            return
        _close(uow, row, StkStatus.FAILED, None, detail, now)
        uow.commit()


def result(uow: UnitOfWork, outcome: StkResult, now: datetime) -> StkRequest | None:
    """The prompt's result. Paid: the payment is recorded against what the prompt was
    for (once per M-Pesa receipt, whichever door it comes by). Cancelled or failed:
    the borrower hears that nothing was taken. A replay changes nothing; None when the
    prompt is none of ours."""
    settings = uow.settings
    with uow:
        row = uow.session.scalar(
            select(StkRequest).where(StkRequest.checkout_request_id
                                     == outcome.checkout_request_id).with_for_update())
        if row is None:
            return None
        if row.status in (StkStatus.PAID, StkStatus.CANCELLED, StkStatus.FAILED):
            return row
        if outcome.paid and outcome.receipt and outcome.amount:
            receipt = repayments.record_payment(
                uow, provider=row.provider, transaction_id=outcome.receipt,
                phone=outcome.phone or row.phone, amount=outcome.amount,
                currency=settings.app.currency, reference=row.account,
                occurred_at=outcome.paid_at or now, now=now)
            row.payment_id = receipt.payment.id
            row.receipt = outcome.receipt[:64]
            row.status, row.settled_at, row.result_code = StkStatus.PAID, now, outcome.code
        else:
            status = StkStatus.CANCELLED if outcome.cancelled else StkStatus.FAILED
            _close(uow, row, status, outcome.code, outcome.detail, now)
        uow.commit()
        return row


def _close(uow: UnitOfWork, row: StkRequest, status: StkStatus, code: str | None,
           detail: str, now: datetime) -> None:
    row.status, row.settled_at = status, now
    row.result_code = (code or "")[:20] or None
    row.last_error = detail[:200] or None
    member = get_member(uow, row.member_id)
    template = "sms.stk_cancelled" if status == StkStatus.CANCELLED else "sms.stk_failed"
    outbox.queue(uow, [outbox.sms_to(member, f"stk:{row.id}", template, Purpose.RECEIPT,
                                     amount=uow.settings.fmt(row.amount), loan=row.account,
                                     paybill=uow.settings.payments.paybill)], now)


def due(uow: UnitOfWork, now: datetime, *, limit: int = 100) -> list[int]:
    """Pending requests whose prompt no job has pushed (the job was lost)."""
    with uow:
        return list(uow.session.scalars(
            select(StkRequest.id).where(StkRequest.status == StkStatus.PENDING,
                                        StkRequest.next_attempt_at <= now)
            .order_by(StkRequest.id).limit(limit)))


def stale(uow: UnitOfWork, before: datetime, now: datetime) -> int:
    """Prompts with no result long after they were pushed (or whose pushing job died):
    they are over for the customer, so the borrower is told nothing was taken. Should
    the money have moved after all, its receipt still arrives by the paybill door or
    the statement, and is recorded then."""
    with uow:
        rows = list(uow.session.scalars(
            select(StkRequest).where(StkRequest.status.in_([StkStatus.SENT,
                                                            StkStatus.SENDING]),
                                     StkRequest.created_at <= before)
            .with_for_update(skip_locked=True).limit(100)))
        for row in rows:
            _close(uow, row, StkStatus.FAILED, None, "no answer from the provider", now)
        uow.commit()
        return len(rows)
