"""What every SMS command function gets (`Context`) and gives back (`Reply`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.db import UnitOfWork
from core.models import Member


@dataclass(frozen=True)
class Reply:
    """A reply to write to the outbox: a message key and its values."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    uow: UnitOfWork
    inbound_id: int
    phone: str
    member: Member | None
    language: str
    now: datetime

    def fmt(self, minor: int) -> str:
        return self.uow.settings.fmt(minor)
