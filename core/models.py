"""SQLAlchemy 2 typed models: the domain objects and their tables.

Money columns are BigInteger minor units. Times are timezone-aware UTC; `UtcDateTime`
stores them naive-UTC on SQLite and `timestamptz` on PostgreSQL and always hands back
aware datetimes.
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Harambee stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E], Generic[E]):
    """A StrEnum stored as its text: a value outside the enum is refused on the way in
    (ValueError) and every row comes back as the enum, so code compares members, not
    literals. A plain VARCHAR in the database: no native enum type to migrate."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), int: Integer(), date: Date()}


Money = BigInteger


class Role(StrEnum):
    BORROWER = "borrower"
    LENDER = "lender"
    AGENT = "agent"
    ADMIN = "admin"


class MemberStatus(StrEnum):
    PENDING = "pending"  # self-registered, awaiting an agent's visit
    VERIFIED = "verified"
    SUSPENDED = "suspended"


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    national_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    roles: Mapped[str] = mapped_column(String(40), default="")  # comma-separated Role values
    status: Mapped[MemberStatus] = mapped_column(EnumText(MemberStatus, 12),
                                                 default=MemberStatus.PENDING)
    language: Mapped[str] = mapped_column(String(2), default="en")
    place: Mapped[str | None] = mapped_column(String(40))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    verified_at: Mapped[datetime | None]
    terms_accepted_at: Mapped[datetime | None]
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    pin_failures: Mapped[int] = mapped_column(default=0)
    pin_locked_until: Mapped[datetime | None]
    credit_limit: Mapped[int] = mapped_column(Money)
    limit_frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    loans_repaid: Mapped[int] = mapped_column(default=0)
    loans_repaid_on_time: Mapped[int] = mapped_column(default=0)
    tips_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]

    agent: Mapped[Member | None] = relationship(remote_side=[id])

    def has_role(self, role: Role | str) -> bool:
        return str(role) in self.roles.split(",")

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else self.name


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
    FEE = "fee"  # the platform's share of a repayment
    ALLOCATION = "allocation"  # a lender's share of a repayment
    REFUND = "refund"  # a repayment beyond what was owed, back to the wallet
    DISBURSEMENT = "disbursement"  # a funded loan paid out to its borrower
    WITHDRAWAL = "withdrawal"  # wallet money paid out to its owner


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


class LoanStatus(StrEnum):
    DRAFT = "draft"
    LISTED = "listed"
    FUNDED = "funded"
    DISBURSED = "disbursed"
    REPAYING = "repaying"
    IN_ARREARS = "in_arrears"
    REPAID = "repaid"
    DEFAULTED = "defaulted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# Named groups of loan states, each defined here only.
BEING_REPAID = (LoanStatus.DISBURSED, LoanStatus.REPAYING, LoanStatus.IN_ARREARS)
"""Paid out, and the borrower is expected to pay: reminders go out, arrears are marked."""
OWING = (*BEING_REPAID, LoanStatus.DEFAULTED)
"""The borrower owes money on it: repayments are applied to it."""
PAID_OUT = (*OWING, LoanStatus.REPAID)
"""The money reached the borrower: it has a schedule."""
OPEN_LOAN_STATES = (LoanStatus.DRAFT, LoanStatus.LISTED, LoanStatus.FUNDED, *OWING)
"""Not closed: a borrower has at most one."""


class Loan(Base):
    __tablename__ = "loans"
    __table_args__ = (Index("ix_loans_status_deadline", "status", "deadline"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(12), unique=True)
    request_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[LoanStatus] = mapped_column(EnumText(LoanStatus, 12),
                                               default=LoanStatus.DRAFT)
    amount: Mapped[int] = mapped_column(Money)
    fee: Mapped[int] = mapped_column(Money)
    interest: Mapped[int] = mapped_column(Money)
    term_weeks: Mapped[int]
    installment_count: Mapped[int]
    purpose: Mapped[str] = mapped_column(String(20))
    pledged: Mapped[int] = mapped_column(Money, default=0)  # confirmed holds + posted
    funded: Mapped[int] = mapped_column(Money, default=0)  # posted holds
    repaid: Mapped[int] = mapped_column(Money, default=0)
    fee_paid: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime]
    listed_at: Mapped[datetime | None]
    deadline: Mapped[datetime | None]
    funded_at: Mapped[datetime | None]
    disbursed_at: Mapped[datetime | None]
    payout_reference: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None]

    borrower: Mapped[Member] = relationship()
    installments: Mapped[list[Installment]] = relationship(
        order_by="Installment.seq", back_populates="loan"
    )

    @property
    def total_due(self) -> int:
        return self.amount + self.fee + self.interest

    @property
    def open_amount(self) -> int:
        """What lenders can still pledge."""
        return self.amount - self.pledged

    @property
    def outstanding(self) -> int:
        return self.total_due - self.repaid


class Installment(Base):
    __tablename__ = "installments"
    __table_args__ = (UniqueConstraint("loan_id", "seq"), Index("ix_installments_due", "due_on"))

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    seq: Mapped[int]
    due_on: Mapped[date]
    amount: Mapped[int] = mapped_column(Money)
    paid: Mapped[int] = mapped_column(Money, default=0)
    paid_at: Mapped[datetime | None]  # when it became fully paid
    late: Mapped[bool] = mapped_column(Boolean, default=False)

    loan: Mapped[Loan] = relationship(back_populates="installments")

    @property
    def remaining(self) -> int:
        return self.amount - self.paid


class PledgeStatus(StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    POSTED = "posted"
    VOIDED = "voided"
    LAPSED = "lapsed"
    CANCELLED = "cancelled"  # the lender said NO before confirming


class Pledge(Base):
    """A lender's offer to one loan; once posted, `entitled` is what it earns back and
    `repaid` what it has received. Fillfactor 70 on PostgreSQL (migration 0003) keeps
    the `repaid` updates of a repayment HOT, as for accounts. `YES <code>` finds a
    pledge by its lender and code (migration 0004), however many pledges the lender
    has made."""

    __tablename__ = "pledges"
    __table_args__ = (Index("ix_pledges_status_expires", "status", "confirm_by"),
                      Index("ix_pledges_lender_code", "lender_id", "code"))

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    lender_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    amount: Mapped[int] = mapped_column(Money)
    code: Mapped[str] = mapped_column(String(8))
    status: Mapped[PledgeStatus] = mapped_column(EnumText(PledgeStatus, 10),
                                                 default=PledgeStatus.PROPOSED)
    request_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    # the lender's share of principal + interest, fixed at funding
    entitled: Mapped[int] = mapped_column(Money, default=0)
    repaid: Mapped[int] = mapped_column(Money, default=0)  # what the lender has received back
    created_at: Mapped[datetime]
    confirm_by: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    loan: Mapped[Loan] = relationship()
    lender: Mapped[Member] = relationship()


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


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"
    SKIPPED = "skipped"  # a tip to a member who sent STOP; never sent


class Purpose(StrEnum):
    RECEIPT = "receipt"
    REMINDER = "reminder"
    CODE = "code"
    NOTICE = "notice"
    TIP = "tip"


class OutboxMessage(Base):
    """One SMS to send, written in the same transaction as the change it tells of."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    language: Mapped[str] = mapped_column(String(2))
    purpose: Mapped[Purpose] = mapped_column(EnumText(Purpose, 10))
    template: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(EnumText(OutboxStatus, 14),
                                                 default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime | None]  # quiet hours: hold until then
    next_attempt_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    cost: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


# ---------------------------------------------------------------- the SMS inbox

class InboundStatus(StrEnum):
    RECEIVED = "received"  # stored, awaiting its handler job
    HANDLED = "handled"  # answered (the reply, if any, is in the outbox)
    FAILED = "failed"  # the handler kept failing; support looks at it


class InboundSms(Base):
    """An incoming SMS, stored before it is answered; AT's id makes redelivery harmless."""

    __tablename__ = "sms_inbox"
    __table_args__ = (Index("ix_sms_inbox_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(80), unique=True)
    phone: Mapped[str] = mapped_column(String(32))
    short_code: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    link_id: Mapped[str | None] = mapped_column(String(80))
    network_code: Mapped[str | None] = mapped_column(String(10))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    command: Mapped[str | None] = mapped_column(String(12))
    status: Mapped[InboundStatus] = mapped_column(EnumText(InboundStatus, 10),
                                                  default=InboundStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]


class DeliveryReport(Base):
    """A delivery report from the gateway; applied to the outbox row with its message id,
    now or (when it came before our send job recorded the id) later."""

    __tablename__ = "sms_delivery_reports"
    __table_args__ = (UniqueConstraint("provider_message_id", "status"),
                      Index("ix_sms_delivery_reports_pending", "applied_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20))
    failure_reason: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]


class DisputeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Dispute(Base):
    """A case a member opened about a loan (`DISPUTE L1042 ...`), with a number to quote."""

    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(12), unique=True)
    request_key: Mapped[str] = mapped_column(String(120), unique=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[DisputeStatus] = mapped_column(EnumText(DisputeStatus, 10),
                                                  default=DisputeStatus.OPEN)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
