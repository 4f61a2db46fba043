"""SMS in and out: the outbox, the inbox of incoming messages, delivery reports."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, EnumText


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
