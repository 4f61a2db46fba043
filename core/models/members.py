"""Members: the people on the phones, with their roles, PIN and credit standing."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, EnumText, Money


class Role(StrEnum):
    BORROWER = "borrower"
    LENDER = "lender"
    AGENT = "agent"
    ADMIN = "admin"


class MemberStatus(StrEnum):
    PENDING = "pending"  # self-registered, awaiting an agent's visit
    VERIFIED = "verified"
    SUSPENDED = "suspended"
    ERASED = "erased"  # anonymised at their request; the ledger keeps its rows (core/privacy.py)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    # The ID an agent or operator saw: one member each. A self-registered member's own
    # word is only a claim (`claimed_national_id`), so no stranger can take an ID first.
    national_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    claimed_national_id: Mapped[str | None] = mapped_column(String(20), index=True)
    roles: Mapped[str] = mapped_column(String(40), default="")  # comma-separated Role values
    status: Mapped[MemberStatus] = mapped_column(EnumText(MemberStatus, 12),
                                                 default=MemberStatus.PENDING)
    language: Mapped[str] = mapped_column(String(2), default="en")
    place: Mapped[str | None] = mapped_column(String(40), index=True)
    # indexed: an agent's record is read over their members' loans (core/reputation.py)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    verified_at: Mapped[datetime | None]
    terms_accepted_at: Mapped[datetime | None]
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    pin_failures: Mapped[int] = mapped_column(default=0)
    pin_locked_until: Mapped[datetime | None]
    credit_limit: Mapped[int] = mapped_column(Money)
    limit_frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    loans_repaid: Mapped[int] = mapped_column(default=0)
    loans_repaid_on_time: Mapped[int] = mapped_column(default=0)
    tips_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)  # STOP: none, ever
    tips_wanted: Mapped[bool] = mapped_column(Boolean, default=False)  # TIPS ON (core/tips.py)
    last_tip_week: Mapped[str | None] = mapped_column(String(8))  # e.g. 2026-W10
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
