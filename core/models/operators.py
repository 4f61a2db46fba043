"""The people who run Harambee: operator accounts and the append-only audit log of
everything they change (the console, `console/`)."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, EnumText


class OperatorRole(StrEnum):
    SUPPORT = "support"  # members, disputes, PIN unlocks
    FINANCE = "finance"  # portfolio, suspense, payouts, reconciliation, exports
    ADMIN = "admin"  # everything, and operator accounts, agents, settings


class Operator(Base):
    """An operator account: an argon2 password hash, a TOTP secret (required for finance
    and admin), and a lockout after too many failed logins."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[OperatorRole] = mapped_column(EnumText(OperatorRole, 10))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The TOTP time step last used: a code is good once (no replay within its window).
    last_totp_step: Mapped[int | None]
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One change an operator made: who, what, to what, when, before and after (JSON
    text), and the reason they typed. Append-only: nothing updates a row, and on
    PostgreSQL a trigger refuses UPDATE and DELETE (migration 0008)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created", "created_at"),
                      Index("ix_audit_log_subject", "subject"))

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"), index=True)
    operator_email: Mapped[str] = mapped_column(String(254))  # as it was at the time
    action: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(60))  # e.g. "dispute:C1004", "member:12"
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
