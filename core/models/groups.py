"""Trust between neighbours: groups (chamas) that members join by consent, guarantees
of a loan by members of the borrower's group, and hardship pauses of a loan's schedule."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, EnumText, Money
from core.models.members import Member


class Group(Base):
    """A chama an agent formed: a name, a village, an officer who sees its loans."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    village: Mapped[str] = mapped_column(String(30))
    agent_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    request_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime]

    agent: Mapped[Member] = relationship(foreign_keys=[agent_id])
    officer: Mapped[Member] = relationship(foreign_keys=[officer_id])


class MembershipStatus(StrEnum):
    INVITED = "invited"  # the agent named them; they have not answered on their phone
    JOINED = "joined"  # they said yes on their own phone
    DECLINED = "declined"


class GroupMember(Base):
    """A member's place in a group: invited by the agent, joined only by their own yes.
    A member belongs to one group at a time."""

    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "member_id"),
                      Index("ix_group_members_member_status", "member_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    status: Mapped[MembershipStatus] = mapped_column(EnumText(MembershipStatus, 10),
                                                     default=MembershipStatus.INVITED)
    invited_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]

    group: Mapped[Group] = relationship()
    member: Mapped[Member] = relationship()


class GuaranteeStatus(StrEnum):
    ASKED = "asked"  # the borrower named them; no answer yet
    HELD = "held"  # consented: a hold on their wallet covers what is still exposed
    DECLINED = "declined"  # said no; nothing was held
    LAPSED = "lapsed"  # never answered before the loan closed or was paid out
    RELEASED = "released"  # the loan was repaid or closed: the last hold voided
    CALLED = "called"  # the loan defaulted: the hold was posted to the lenders


class Guarantee(Base):
    """A member of the borrower's group vouching for part of a loan with their wallet.

    While `held`, exactly one pending transfer (`hold_id`, `held` minor units, never
    more than `amount`) sits on their wallet towards the loan's escrow. As the loan is
    repaid the hold is voided and a smaller one placed (`holds` counts them; each one's
    key is `guarantee:<id>:<n>`), so what stays held falls with what is owed. Released
    (voided) or called (posted) exactly once at the end."""

    __tablename__ = "guarantees"
    __table_args__ = (UniqueConstraint("loan_id", "guarantor_id"),
                      Index("ix_guarantees_guarantor_status", "guarantor_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    guarantor_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    amount: Mapped[int] = mapped_column(Money)  # what they agreed to cover, at most
    code: Mapped[str] = mapped_column(String(8))  # answered by SMS: YES <code> / NO <code>
    status: Mapped[GuaranteeStatus] = mapped_column(EnumText(GuaranteeStatus, 10),
                                                    default=GuaranteeStatus.ASKED)
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    held: Mapped[int] = mapped_column(Money, default=0)  # the current hold's amount
    holds: Mapped[int] = mapped_column(default=0)  # holds placed so far
    called: Mapped[int] = mapped_column(Money, default=0)  # posted to the lenders
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    guarantor: Mapped[Member] = relationship()


class PauseStatus(StrEnum):
    ASKED = "asked"
    APPROVED = "approved"
    DECLINED = "declined"


class Pause(Base):
    """A borrower's "I can't pay this week": a pause of the schedule, no fee, that their
    agent (with PIN) or an operator approves."""

    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    weeks: Mapped[int]
    reason: Mapped[str] = mapped_column(String(12))  # a key of PAUSE_REASONS
    status: Mapped[PauseStatus] = mapped_column(EnumText(PauseStatus, 10),
                                                default=PauseStatus.ASKED)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))  # None: operator
    asked_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
