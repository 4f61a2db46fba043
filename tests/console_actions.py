"""`ConsoleActions`: log in to /console as an operator and post its forms with their CSRF
token, through Flask's test client (like the tutorial's AuthActions); and the readers the
console tests check a decision's effects with (audit rows, SMS written, a loan's lenders)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import select

from core import operators
from core.models import AuditEntry, Member, OutboxMessage, Pledge
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


def seed_par_book(world: Any) -> dict[str, int]:
    """Four loans of Ksh 3,000 (fee 5%, no interest: weekly installments of Ksh 787,
    787, 787 and 789), seen on day 60, worked out by hand:

    - A, paid out on day 0, nothing paid: oldest unpaid due day 7, 53 days late;
      principal outstanding Ksh 3,000.
    - B, paid out on day 0, Ksh 1,575 paid at once (two installments and 1): the fee takes
      1,575 x 150/3,150 = Ksh 75, the lenders Ksh 1,500, all principal; outstanding
      Ksh 1,500, oldest unpaid (the third) due day 21, 39 days late.
    - C, paid out on day 40, nothing paid: first due day 47, 13 days late; Ksh 3,000.
    - D, paid out on day 55: nothing due yet; Ksh 3,000.

    Outstanding 10,500; more than 30 days late: A + B = 4,500, so PAR30 = 42.857...%;
    more than 1 day: A + B + C = 7,500 (71.43%); more than 90: none.
    """
    a = world.disbursed_loan()
    b = world.disbursed_loan()
    world.pay(b.number, 157_500)
    world.services.clock.advance(days=40)
    world.disbursed_loan()
    world.services.clock.advance(days=15)
    world.disbursed_loan()
    world.services.clock.advance(days=5)
    assert a.number and b.number
    return {"outstanding": 1_050_000, "par1": 750_000, "par30": 450_000, "par90": 0}


def audit_rows(services: Services, action: str | None = None) -> list[AuditEntry]:
    with services.uow() as uow:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        return list(uow.session.scalars(query))


def sms_to(services: Services, phone: str) -> list[OutboxMessage]:
    with services.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage).where(OutboxMessage.phone == phone)
                                        .order_by(OutboxMessage.id)))


def lenders_of(services: Services, loan: Any) -> list[Member]:
    with services.uow() as uow:
        return list(uow.session.scalars(select(Member).join(
            Pledge, Pledge.lender_id == Member.id).where(Pledge.loan_id == loan.id)
            .order_by(Member.id)))
