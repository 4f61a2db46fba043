"""A phone texting the SMS hook as Africa's Talking posts it, the handler run as its
jobs would run it, and the replies read back from the outbox."""
from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select

from core.models import InboundSms, InboundStatus, OutboxMessage
from runtime.services import Services
from workers import duties

KEY = "test-webhook-key"
_ids = itertools.count(1)


def send(client: Any, phone: str, text: str, sms_id: str | None = None) -> Any:
    return client.post(f"/hooks/sms?key={KEY}", data={
        "from": phone, "to": "22384", "text": text, "id": sms_id or f"ATsms{next(_ids)}",
        "date": "2026-03-02 12:00:00", "linkId": "", "networkCode": "63902"})


def answer(services: Services) -> None:
    """Handle every stored message, as the handler jobs would."""
    with services.uow() as uow:
        ids = list(uow.session.scalars(select(InboundSms.id).where(
            InboundSms.status == InboundStatus.RECEIVED)))
    for inbound_id in ids:
        assert duties.answer_sms(services, inbound_id) == "handled"


def replies(world: Any, phone: str) -> list[str]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage.text).where(
            OutboxMessage.phone == phone, OutboxMessage.key.like("reply:%"))
            .order_by(OutboxMessage.id)))


def ask(world: Any, client: Any, phone: str, text: str) -> str:
    send(client, phone, text)
    answer(world.services)
    return replies(world, phone)[-1]
