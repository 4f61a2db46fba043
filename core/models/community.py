"""Community and data rights: borrowers' stories, and members' requests about the data
Harambee holds on them (a correction or an erasure, each with a 7-day clock)."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, EnumText


class StoryStatus(StrEnum):
    PENDING = "pending"  # waiting for an operator
    APPROVED = "approved"  # sent to the loan's lenders and to members who want tips
    REJECTED = "rejected"


class Story(Base):
    """A few words from a borrower who repaid (`STORY ...`), about one repaid loan. An
    operator approves it before anyone else reads it (core/stories.py)."""

    __tablename__ = "stories"
    __table_args__ = (Index("ix_stories_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_key: Mapped[str] = mapped_column(String(120), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[StoryStatus] = mapped_column(EnumText(StoryStatus, 10),
                                                default=StoryStatus.PENDING)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(String(200))  # why it was turned down
    # Sharing with members who want stories, after approval, a batch at a time: the
    # last member id written, and when every one was (core/stories.py share_with_members).
    share_cursor: Mapped[int] = mapped_column(default=0)
    shared_at: Mapped[datetime | None]


class DataRequestKind(StrEnum):
    CORRECT = "correct"  # DATA FIX <what is wrong>
    ERASE = "erase"  # DATA DELETE


class DataRequestStatus(StrEnum):
    OPEN = "open"
    DONE = "done"  # corrected, or the person anonymised
    REFUSED = "refused"  # with the reason told to the member (e.g. a loan still owed)


class DataRequest(Base):
    """A member's request about their personal data (Kenya's Data Protection Act, 2019):
    a correction or an erasure, answered within `due_at` (7 days)."""

    __tablename__ = "data_requests"
    __table_args__ = (Index("ix_data_requests_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(12), unique=True)
    request_key: Mapped[str] = mapped_column(String(120), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[DataRequestKind] = mapped_column(EnumText(DataRequestKind, 10))
    text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[DataRequestStatus] = mapped_column(EnumText(DataRequestStatus, 10),
                                                      default=DataRequestStatus.OPEN)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(String(200))
