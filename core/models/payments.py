"""Money crossing the edge: mobile-money receipts in, payouts out."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, EnumText, Money
from core.models.ledger import TransferCode


class PaymentKind(StrEnum):
    REPAYMENT = "repayment"
    TOPUP = "topup"
    UNMATCHED = "unmatched"


class Payment(Base):
    """A mobile-money receipt; (provider, transaction_id) is the idempotency key.

    `lenders_told_at` is NULL while the lenders of a repayment have still to be told
    their shares: those notices are written after the repayment, by a job and a sweep
    (core.repayments.tell_lenders), not in it.
    """

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("provider", "transaction_id"),
                      Index("ix_payments_untold", "id",
                            postgresql_where=text("lenders_told_at IS NULL"),
                            sqlite_where=text("lenders_told_at IS NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    transaction_id: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(64))
    kind: Mapped[PaymentKind] = mapped_column(EnumText(PaymentKind, 10), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    fee_part: Mapped[int] = mapped_column(Money, default=0)
    lender_part: Mapped[int] = mapped_column(Money, default=0)
    refund_part: Mapped[int] = mapped_column(Money, default=0)  # overpayment back to the wallet
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]
    lenders_told_at: Mapped[datetime | None]
    # A receipt held in suspense leaves it once: matched to a loan or a wallet by an
    # operator (its kind then says which), or marked to be refunded (migration 0008).
    matched_at: Mapped[datetime | None]
    refund_marked_at: Mapped[datetime | None]


class Confirmation(Base):
    """A paybill payment as the provider confirmed it (M-Pesa's C2B confirmation),
    stored at the door before anything else and recorded in the ledger behind
    (core/confirmations.py); (provider, trans_id) is the idempotency key.

    `recorded_at` and `payment_id` are set once the payment is recorded (a `Payment`
    of the same receipt, whichever door it came through); `refusal` names why it can
    never be recorded without a person (the same receipt recorded with other details).
    A row that stays unrecorded is found by the `confirmations` duty and by
    `harambee check`.
    """

    __tablename__ = "confirmations"
    __table_args__ = (UniqueConstraint("provider", "trans_id"),
                      Index("ix_confirmations_unrecorded", "received_at",
                            postgresql_where=text("recorded_at IS NULL"),
                            sqlite_where=text("recorded_at IS NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    trans_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(Money)
    bill_ref: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(16))  # E.164, None when masked
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    recorded_at: Mapped[datetime | None]
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    attempts: Mapped[int] = mapped_column(default=0)  # tries at recording it
    refusal: Mapped[str | None] = mapped_column(String(60))


class PayoutPurpose(StrEnum):
    DISBURSEMENT = "disbursement"
    WITHDRAWAL = "withdrawal"

    @property
    def code(self) -> TransferCode:
        """The code of the transfer that records a payout of this purpose."""
        return TransferCode(self.value)


class PayoutStatus(StrEnum):
    PENDING = "pending"  # held, waiting for a send job
    SENDING = "sending"  # a job holds it and may be calling the provider now
    SENT = "sent"  # the provider took the request; its result is awaited
    UNKNOWN = "unknown"  # no answer to trust: the provider is asked what became of it
    PAID = "paid"  # the provider paid it: the hold is posted
    FAILED = "failed"  # the provider refused or failed it: the hold is voided


PAYOUTS_IN_FLIGHT = (PayoutStatus.PENDING, PayoutStatus.SENDING, PayoutStatus.SENT,
                     PayoutStatus.UNKNOWN)
"""Held and not yet settled either way."""


class Payout(Base):
    """Money sent to a member's phone through a payout gateway (core/payouts.py).

    Its hold (`hold_id`, a pending transfer from the source to the provider's payout
    account) is placed when the payout is made and posted or voided, once, when the
    provider settles it. `key` is ours and unique; the provider's receipt, once paid,
    is unique per provider."""

    __tablename__ = "payouts"
    __table_args__ = (UniqueConstraint("provider", "receipt"),
                      Index("ix_payouts_status_next", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[PayoutPurpose] = mapped_column(EnumText(PayoutPurpose, 12))
    phone: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Money)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    hold_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    status: Mapped[PayoutStatus] = mapped_column(EnumText(PayoutStatus, 8),
                                                 default=PayoutStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)  # requests sent to the provider
    # when a pending one is due, a sending one's lease ends, or a sent one is asked after
    next_attempt_at: Mapped[datetime | None]
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    receipt: Mapped[str | None] = mapped_column(String(64))
    result_code: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]


class StkStatus(StrEnum):
    PENDING = "pending"  # asked for, waiting for a send job
    SENDING = "sending"  # a job is asking the provider to prompt the phone
    SENT = "sent"  # the prompt is on the phone; its result is awaited
    PAID = "paid"  # the customer paid: the payment is recorded
    CANCELLED = "cancelled"  # the customer cancelled the prompt: nothing was taken
    FAILED = "failed"  # it failed (timeout, wrong PIN, no balance): nothing was taken


class StkRequest(Base):
    """A "pay now" prompt pushed to a member's phone (M-Pesa STK push). Its result
    records the payment exactly once, by the receipt, whichever door it comes by."""

    __tablename__ = "stk_requests"
    __table_args__ = (Index("ix_stk_requests_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))
    phone: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Money)
    account: Mapped[str] = mapped_column(String(12))  # what the payment is for: a loan number
    status: Mapped[StkStatus] = mapped_column(EnumText(StkStatus, 10),
                                              default=StkStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    checkout_request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    receipt: Mapped[str | None] = mapped_column(String(64))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    result_code: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]


class ProviderFloat(Base):
    """What a payout provider last said its paying account holds (M-Pesa's working
    account, from an Account Balance result): payouts wait while it is too low."""

    __tablename__ = "provider_floats"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    available: Mapped[int] = mapped_column(Money)
    reported_at: Mapped[datetime]
