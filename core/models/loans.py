"""Loans, their installments, and the pledges that fund them."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, EnumText, Money

if TYPE_CHECKING:
    from core.models.members import Member


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
    __table_args__ = (Index("ix_loans_status_deadline", "status", "deadline", "id"),
                      Index("ix_loans_disbursed_at", "disbursed_at"))

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
    # Guarantees (core/guarantees.py): what the borrower's group must cover before
    # lenders may pledge (a guaranteed first loan above the borrower's own limit), and
    # what consenting guarantors cover.
    guarantee_needed: Mapped[int] = mapped_column(Money, default=0)
    guaranteed: Mapped[int] = mapped_column(Money, default=0)
    # Partial funding (core/choices.py): until when the borrower may choose, and
    # whether the one extension was used.
    choice_until: Mapped[datetime | None]
    extended: Mapped[bool] = mapped_column(Boolean, default=False)

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
    __table_args__ = (UniqueConstraint("loan_id", "seq"), Index("ix_installments_due", "due_on",
                            # the repayment rate reads due and paid from the index alone
                            postgresql_include=["amount", "paid"]),
                      # Unpaid installments only: what days late and PAR read (migration 0008).
                      Index("ix_installments_unpaid", "due_on", "loan_id",
                            postgresql_where=text("paid < amount"),
                            sqlite_where=text("paid < amount")))

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
