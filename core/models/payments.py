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
    kind: Mapped[PaymentKind] = mapped_column(EnumText(PaymentKind, 10))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    fee_part: Mapped[int] = mapped_column(Money, default=0)
    lender_part: Mapped[int] = mapped_column(Money, default=0)
    refund_part: Mapped[int] = mapped_column(Money, default=0)  # overpayment back to the wallet
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]
    lenders_told_at: Mapped[datetime | None]


class PayoutPurpose(StrEnum):
    DISBURSEMENT = "disbursement"
    WITHDRAWAL = "withdrawal"

    @property
    def code(self) -> TransferCode:
        """The code of the transfer that records a payout of this purpose."""
        return TransferCode(self.value)


class Payout(Base):
    """Money sent out through a payout gateway; our key and the provider's reference
    are each unique, and exactly one transfer records it."""

    __tablename__ = "payouts"
    __table_args__ = (UniqueConstraint("provider", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[PayoutPurpose] = mapped_column(EnumText(PayoutPurpose, 12))
    phone: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Money)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    created_at: Mapped[datetime]
