"""A handset dialling the USSD hook over HTTP, as Africa's Talking drives it, and small
readers of the database for the tests that use it."""
from __future__ import annotations

import itertools

from sqlalchemy import func, select

from core.models import Member

KEY = "test-webhook-key"
_sessions = itertools.count(1)


class Phone:
    """A handset dialling the service: keeps `text` as the gateway accumulates it."""

    def __init__(self, client, number: str) -> None:
        self.client, self.number = client, number
        self.session, self.text = "", ""

    def dial(self) -> str:
        self.session, self.text = f"ATUid_{next(_sessions)}", ""
        return self._send()

    def press(self, typed: str) -> str:
        self.text = typed if not self.text else f"{self.text}*{typed}"
        return self._send()

    def resend(self) -> str:
        return self._send()

    def _send(self) -> str:
        response = self.client.post(f"/hooks/ussd?key={KEY}", data={
            "sessionId": self.session, "serviceCode": "*384*123#",
            "phoneNumber": self.number, "networkCode": "63902", "text": self.text})
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        body = response.get_data(as_text=True)
        assert body.startswith(("CON ", "END ")) and len(body) <= 182
        return body

    def run(self, *inputs: str) -> str:
        body = self.dial()
        for typed in inputs:
            body = self.press(typed)
        return body


def count(world, model, *where) -> int:
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where))


def member(world, phone) -> Member:
    with world.uow() as uow:
        return uow.session.scalar(select(Member).where(Member.phone == phone))
