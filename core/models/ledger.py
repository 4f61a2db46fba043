"""The ledger's tables: accounts with four counters and immutable transfers."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, EnumText, Money


class AccountKind(StrEnum):
    WALLET = "wallet"  # a member's money held by Harambee; never negative
    LOAN = "loan"  # escrow of one loan: holds, disbursement, repayments in transit
    FEES = "fees"  # the platform's income
    MOBILE_MONEY = "mobile_money"  # money that came in from a provider (its mirror)
    PAYOUT = "payout"  # money that left to a provider
    SUSPENSE = "suspense"  # receipts we could not match yet


class Account(Base):
    """A ledger account after TigerBeetle: four counters, changed only by transfers.

    On PostgreSQL the table is kept half empty (fillfactor 50, migration 0003): counter
    updates then stay on their page and touch no index (HOT updates), which made crediting
    10,000 wallets about six times faster.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[AccountKind] = mapped_column(EnumText(AccountKind, 16))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    no_overdraft: Mapped[bool] = mapped_column(Boolean, default=False)
    debits_pending: Mapped[int] = mapped_column(Money, default=0)
    debits_posted: Mapped[int] = mapped_column(Money, default=0)
    credits_pending: Mapped[int] = mapped_column(Money, default=0)
    credits_posted: Mapped[int] = mapped_column(Money, default=0)

    @property
    def balance(self) -> int:
        """Posted credits less posted debits."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What can still be held or moved out: balance less pending debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending


class TransferKind(StrEnum):
    POSTED = "posted"  # a single-phase transfer
    PENDING = "pending"  # a hold: reserves, moves nothing yet
    POST = "post"  # posts a pending transfer
    VOID = "void"  # voids (or expires) a pending transfer


class TransferCode(StrEnum):
    """Why money moved: every transfer carries one."""

    RECEIPT = "receipt"  # mobile money in: a repayment, a top-up, or suspense
    PLEDGE_HOLD = "pledge_hold"  # a lender's pledge held on their wallet
    GUARANTEE_HOLD = "guarantee_hold"  # a guarantor's cover held on their wallet
    FEE = "fee"  # the platform's share of a repayment
    ALLOCATION = "allocation"  # a lender's share of a repayment
    REFUND = "refund"  # a repayment beyond what was owed, back to the wallet
    DISBURSEMENT = "disbursement"  # a funded loan paid out to its borrower
    WITHDRAWAL = "withdrawal"  # wallet money paid out to its owner
    SUSPENSE_MATCH = "suspense_match"  # a receipt in suspense, matched by an operator


class HoldState(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class Transfer(Base):
    """Immutable: only a PENDING transfer's `hold_state` changes, and only once.

    The journal has no foreign keys (migration 0003): core/ledger.py, its only writer,
    proves both accounts exist by changing their counters in the same transaction, and
    takes `pending_id`, `loan_id` and `payment_id` from rows it has just read. On
    PostgreSQL the five foreign-key triggers cost two thirds of writing a repayment's
    10,000 transfers. `harambee check` reports a transfer naming a missing row.
    """

    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    debit_account_id: Mapped[int] = mapped_column(index=True)  # accounts.id
    credit_account_id: Mapped[int] = mapped_column(index=True)  # accounts.id
    amount: Mapped[int] = mapped_column(Money)
    kind: Mapped[TransferKind] = mapped_column(EnumText(TransferKind, 8))
    code: Mapped[TransferCode] = mapped_column(EnumText(TransferCode, 20))
    pending_id: Mapped[int | None] = mapped_column(unique=True)  # the hold, transfers.id
    hold_state: Mapped[HoldState | None] = mapped_column(EnumText(HoldState, 8))
    expires_at: Mapped[datetime | None]
    payment_id: Mapped[int | None] = mapped_column(index=True)  # payments.id
    loan_id: Mapped[int | None] = mapped_column(index=True)  # loans.id
    created_at: Mapped[datetime]
