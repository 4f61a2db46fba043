"""Disputes members open about a loan, and what support writes on them."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, EnumText


class DisputeStatus(StrEnum):
    OPEN = "open"  # opened by the member; nobody has answered yet
    ACKNOWLEDGED = "acknowledged"  # support told the member it is looking into it
    RESOLVED = "resolved"  # settled in the member's favour or explained
    REJECTED = "rejected"  # looked into and refused, with the reason told


OPEN_DISPUTES = (DisputeStatus.OPEN, DisputeStatus.ACKNOWLEDGED)
"""Cases still running against their clocks."""


class Dispute(Base):
    """A case a member opened about a loan (`DISPUTE L1042 ...`), with a number to quote.

    Its service-level clocks are set when it is opened: acknowledged by `ack_by` and
    settled (resolved or rejected) by `resolve_by` (migration 0008)."""

    __tablename__ = "disputes"
    __table_args__ = (Index("ix_disputes_status_resolve_by", "status", "resolve_by"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(12), unique=True)
    request_key: Mapped[str] = mapped_column(String(120), unique=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[DisputeStatus] = mapped_column(EnumText(DisputeStatus, 12),
                                                  default=DisputeStatus.OPEN)
    created_at: Mapped[datetime]
    ack_by: Mapped[datetime | None]
    resolve_by: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)  # what the member was told at the end


class DisputeNote(Base):
    """One step on a case, by an operator: what they wrote, and whether the member was
    sent it."""

    __tablename__ = "dispute_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"), index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    step: Mapped[str] = mapped_column(String(12))  # acknowledge, note, resolve, reject
    text: Mapped[str] = mapped_column(Text)
    told_member: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
