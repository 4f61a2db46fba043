"""Disputes members open about a loan."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, EnumText


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
