"""The narrow port the state machine talks through: every read and use case a menu
needs, with plain values in and small views out. `adapter.CorePort` is the real one
(one unit of work per call); unit tests of navigation may pass a small fake."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from core.config import Settings
from core.models import MemberStatus
from core.queries import AccountView, LoanView, PledgeView
from core.reputation import Portfolio
from ussd.state import Caller


@dataclass(frozen=True)
class MemberCard:
    """A member as a field agent sees them."""

    name: str
    phone: str
    national_id: str | None
    status: MemberStatus
    place: str | None
    roles: tuple[str, ...]
    terms: bool
    limit: int


@dataclass(frozen=True)
class Listed:
    number: str
    deadline: datetime | None


class Port(Protocol):
    """What a menu may ask of the rest of the system. Raises core DomainErrors."""

    settings: Settings

    def now(self) -> datetime: ...

    def today(self) -> date: ...

    def caller(self, phone: str) -> Caller | None: ...

    def register_self(self, *, phone: str, name: str, national_id: str, language: str,
                      pin: str) -> Caller: ...

    def send_terms(self, *, phone: str, language: str) -> None: ...

    def accept_terms(self, member_id: int, pin: str | None) -> Caller: ...

    def can_request(self, member_id: int) -> None: ...

    def apply(self, *, member_id: int, amount: int, term_weeks: int, purpose: str, pin: str,
              key: str) -> Listed: ...

    def cancel_loan(self, *, member_id: int, number: str) -> None: ...

    def loans_of(self, member_id: int, *, offset: int, limit: int) -> list[LoanView]: ...

    def loan_of(self, member_id: int, number: str) -> LoanView: ...

    def open_loan(self, member_id: int) -> LoanView | None: ...

    def account(self, member_id: int) -> AccountView: ...

    def listed(self, *, offset: int, limit: int, exclude: int | None) -> list[LoanView]: ...

    def pledge_offer(self, member_id: int, number: str) -> tuple[LoanView, int]: ...

    def pledge(self, *, member_id: int, number: str, amount: int, pin: str, key: str) -> None: ...

    def pledges_of(self, member_id: int, *, offset: int, limit: int) -> list[PledgeView]: ...

    def portfolio(self, member_id: int) -> Portfolio: ...

    def withdraw(self, *, member_id: int, amount: int, pin: str, key: str) -> None: ...

    def request_stk(self, *, member_id: int, amount: int, key: str) -> str: ...

    def find_member(self, phone: str) -> MemberCard | None: ...

    def national_id_taken(self, national_id: str) -> bool: ...

    def agent_register(self, *, agent_id: int, phone: str, name: str, national_id: str,
                       place: str, language: str, pin: str) -> MemberCard: ...

    def verify(self, *, agent_id: int, phone: str, pin: str) -> MemberCard: ...

    def set_language(self, member_id: int, language: str) -> None: ...

    def check_pin(self, member_id: int, pin: str) -> None: ...

    def change_pin(self, member_id: int, new_pin: str) -> None: ...
