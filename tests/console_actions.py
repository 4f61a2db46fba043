"""`ConsoleActions`: log in to /console as an operator and post its forms with their CSRF
token, through Flask's test client (like the tutorial's AuthActions)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyotp

from core import operators
from runtime.services import Services

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Operator:
    id: int
    email: str
    role: str
    secret: str | None

    def code(self, services: Services, *, steps_ahead: int = 0) -> str:
        if self.secret is None:
            return ""
        moment = services.now().timestamp() + steps_ahead * operators.TOTP_STEP
        return pyotp.TOTP(self.secret).at(int(moment))


def make_operator(services: Services, role: str, email: str | None = None) -> Operator:
    made = operators.add_operator(services.uow(), email=email or f"{role}@harambee.test",
                                  role=role, password=PASSWORD, now=services.now())
    return Operator(made.operator.id, made.operator.email, role, made.totp_secret)


def token_in(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class ConsoleActions:
    def __init__(self, client: Any, services: Services) -> None:
        self.client, self.services = client, services

    def login(self, who: Operator, *, password: str = PASSWORD, code: str | None = None,
              follow: bool = False) -> Any:
        page = self.client.get("/console/login")
        return self.client.post("/console/login", data={
            "csrf_token": token_in(page.get_data(as_text=True)), "email": who.email,
            "password": password, "code": who.code(self.services) if code is None else code},
            follow_redirects=follow)

    def token(self, path: str = "/console/members") -> str:
        return token_in(self.client.get(path).get_data(as_text=True))

    def post(self, path: str, data: dict[str, str], *, token_from: str = "/console/members",
             follow: bool = False) -> Any:
        return self.client.post(path, data={"csrf_token": self.token(token_from), **data},
                                follow_redirects=follow)
