"""The real port: each call runs core use cases or queries in one unit of work."""
from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, String, bindparam, select
from sqlalchemy.orm import aliased

from core import (
    choices,
    groups,
    guarantees,
    loans,
    members,
    pauses,
    pledges,
    queries,
    reputation,
    stk,
    waiting,
    withdrawals,
)
from core.choices import Choice
from core.config import Settings
from core.db import UnitOfWork
from core.errors import NotFound
from core.groups import GroupOverview, Invitation
from core.guarantees import Request
from core.models import Loan, Member, MemberStatus
from core.pauses import PauseView
from core.phones import local
from core.queries import AccountView, LoanView, PledgeView, first_name
from core.waiting import Waiting
from runtime.services import Services
from ussd.port import Listed, MemberCard
from ussd.state import Caller


def caller_of(member: Member, settings: Settings, agent: tuple[str, str] | None = None
              ) -> Caller:
    """The caller as the session keeps it; `agent` is their agent's name and phone."""
    region = settings.app.default_region
    helper, phone = ((agent[0].split()[0], local(agent[1], region)) if agent
                     else ("", local(settings.app.support_phone, region)))
    return Caller(id=member.id, first_name=member.first_name, roles=sorted(member.role_set),
                  language=member.language, status=member.status,
                  terms=member.terms_accepted_at is not None, pin=member.pin_hash is not None,
                  limit=member.credit_limit,
                  locked_until=member.pin_locked_until.isoformat()
                  if member.pin_locked_until else "", helper=helper, helper_phone=phone)


def card_of(member: Member) -> MemberCard:
    return MemberCard(name=member.name, phone=member.phone,
                      national_id=member.national_id or member.claimed_national_id,
                      status=member.status, place=member.place,
                      roles=tuple(sorted(member.role_set)),
                      terms=member.terms_accepted_at is not None, limit=member.credit_limit)


@cache
def _caller_statement() -> Select[Any]:
    """The caller by phone, with their agent's name and number, whether they have joined
    a group, and how many things wait for their answer: built once."""
    agent = aliased(Member)
    now = bindparam("now", type_=Loan.deadline.type)
    return (select(Member.id, Member.name, Member.roles, Member.language, Member.status,
                   Member.terms_accepted_at, Member.pin_hash, Member.credit_limit,
                   Member.loans_repaid, Member.pin_locked_until,
                   agent.name.label("agent_name"), agent.phone.label("agent_phone"),
                   waiting.in_group_of(Member.id).label("in_group"),
                   waiting.count_of(Member.id, now).label("waiting"))
            .outerjoin(agent, agent.id == Member.agent_id)
            .where(Member.phone == bindparam("phone", type_=String)))


class CorePort:
    """`Port` over the services of this process: each call is one core use case or
    query, which owns its transaction; `now` is read once per hop."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self._now: datetime | None = None
        self.looked_up: dict[str, Caller] = {}  # callers read from the database this hop

    def now(self) -> datetime:
        if self._now is None:
            self._now = self.services.now()
        return self._now

    def today(self) -> date:
        return self.now().astimezone(self.settings.zone).date()

    def _uow(self) -> UnitOfWork:
        return self.services.uow()

    # ------------------------------------------------------------ members

    def caller(self, phone: str) -> Caller | None:
        """The member on this phone, read in one statement outside a transaction (and
        noted in `looked_up`: the hop keeps it as the phone's card)."""
        with self._uow().reading() as conn:
            row = conn.execute(_caller_statement(), {"phone": phone, "now": self.now()}).first()
        if row is None:
            return None
        region = self.settings.app.default_region
        helper, helper_phone = (
            (first_name(row.agent_name), local(row.agent_phone, region)) if row.agent_name
            else ("", local(self.settings.app.support_phone, region)))
        found = Caller(id=row.id, first_name=first_name(row.name),
                       roles=sorted(r for r in row.roles.split(",") if r),
                       language=row.language, status=MemberStatus(row.status),
                       terms=row.terms_accepted_at is not None, pin=row.pin_hash is not None,
                       limit=loans.limit_for(self.settings, row.credit_limit,
                                             row.loans_repaid, in_group=row.in_group),
                       waiting=row.waiting,
                       locked_until=row.pin_locked_until.isoformat()
                       if row.pin_locked_until else "", helper=helper,
                       helper_phone=helper_phone)
        self.looked_up[phone] = found
        return found

    def register_self(self, *, phone: str, name: str, national_id: str, language: str,
                      pin: str) -> Caller:
        reg = members.register(self._uow(), phone=phone, name=name, national_id=national_id,
                               language=language, pin=pin, accept_terms=True, now=self.now())
        return caller_of(reg.member, self.settings)

    def send_terms(self, *, phone: str, language: str) -> None:
        """The full terms by SMS, once per phone per day."""
        members.send_terms(self._uow(), phone=phone, language=language, now=self.now())

    def accept_terms(self, member_id: int, pin: str | None) -> Caller:
        member = members.accept_terms(self._uow(), member_id, self.now(), pin=pin)
        found = self.caller(member.phone)
        assert found is not None
        return found

    def set_language(self, member_id: int, language: str) -> None:
        members.set_language(self._uow(), member_id, language)

    def check_pin(self, member_id: int, pin: str) -> None:
        members.check_pin(self._uow(), member_id, pin, self.now())

    def change_pin(self, member_id: int, new_pin: str) -> None:
        """After `check_pin` passed earlier in this session (the machine makes sure)."""
        members.replace_pin(self._uow(), member_id, new_pin)

    def find_member(self, phone: str) -> MemberCard | None:
        with self._uow() as uow:
            member = uow.session.scalar(select(Member).where(Member.phone == phone))
            return card_of(member) if member is not None else None

    def national_id_taken(self, national_id: str) -> bool:
        return members.national_id_in_use(self._uow(), national_id)

    def agent_register(self, *, agent_id: int, phone: str, name: str, national_id: str,
                       place: str, language: str, pin: str) -> MemberCard:
        reg = members.register(self._uow(), phone=phone, name=name, national_id=national_id,
                               language=language, place=place, agent_id=agent_id,
                               agent_pin=pin, now=self.now())
        return card_of(reg.member)

    def verify(self, *, agent_id: int, phone: str, pin: str) -> MemberCard:
        return card_of(members.verify(self._uow(), agent_id=agent_id, phone=phone,
                                      agent_pin=pin, now=self.now()))

    # ------------------------------------------------------------ borrowing

    def can_request(self, member_id: int) -> None:
        """Raise the reason a borrower cannot ask for a loan now, before any typing."""
        loans.check_may_borrow(self._uow(), member_id)

    def apply(self, *, member_id: int, amount: int, term_weeks: int, purpose: str, pin: str,
              key: str) -> Listed:
        loan = loans.apply(self._uow(), borrower_id=member_id, amount=amount,
                           term_weeks=term_weeks, purpose=purpose, pin=pin, now=self.now(),
                           request_key=key)
        return Listed(number=loan.number or "", deadline=loan.deadline)

    def cancel_loan(self, *, member_id: int, number: str) -> None:
        loans.cancel_loan(self._uow(), borrower_id=member_id, number=number, now=self.now())

    def loans_of(self, member_id: int, *, offset: int, limit: int) -> list[LoanView]:
        return queries.loans_of(self._uow(), member_id, self.now(), offset=offset,
                                limit=limit)

    def loan_of(self, member_id: int, number: str) -> LoanView:
        return queries.loan_of(self._uow(), member_id, number, self.now())

    def open_loan(self, member_id: int) -> LoanView | None:
        return queries.open_loan(self._uow(), member_id, self.now())

    def account(self, member_id: int) -> AccountView:
        return queries.account(self._uow(), member_id, self.now())

    # ------------------------------------------------------------ lending

    def listed(self, *, offset: int, limit: int, exclude: int | None) -> list[LoanView]:
        return queries.listed(self._uow(), self.now(), offset=offset, limit=limit,
                              exclude_borrower=exclude)

    def pledge_offer(self, member_id: int, number: str) -> tuple[LoanView, int]:
        return queries.pledge_offer(self._uow(), member_id, number, self.now())

    def pledge(self, *, member_id: int, number: str, amount: int, pin: str, key: str) -> None:
        pledges.propose_pledge(self._uow(), lender_id=member_id, number=number, amount=amount,
                               now=self.now(), request_key=key, pin=pin)

    def pledges_of(self, member_id: int, *, offset: int, limit: int) -> list[PledgeView]:
        return queries.pledges_of(self._uow(), member_id, offset=offset, limit=limit)

    def portfolio(self, member_id: int) -> reputation.Portfolio:
        return reputation.portfolio(self._uow(), member_id)

    def request_stk(self, *, member_id: int, amount: int, key: str) -> str:
        """An M-Pesa prompt on the borrower's phone; the loan number it pays."""
        return stk.request(self._uow(), member_id=member_id, amount=amount,
                           provider=self.services.stk.provider, key=key,
                           now=self.now()).account

    def withdraw(self, *, member_id: int, amount: int, pin: str, key: str) -> None:
        withdrawals.withdraw(self._uow(), member_id=member_id, amount=amount, pin=pin,
                             provider=self.services.payouts.provider, request_key=key,
                             now=self.now())

    # ------------------------------------------------------------ groups and requests

    def waiting(self, member_id: int) -> list[Waiting]:
        return waiting.waiting(self._uow(), member_id, self.now())

    def invitation(self, member_id: int, group_id: int) -> Invitation:
        for found in groups.invitations(self._uow(), member_id):
            if found.group_id == group_id:
                return found
        raise NotFound("group.not_found")

    def answer_invitation(self, member_id: int, group_id: int, join: bool) -> None:
        groups.answer_invitation(self._uow(), member_id=member_id, group_id=group_id,
                                 join=join, now=self.now())

    def form_group(self, *, agent_id: int, name: str, village: str, phones: list[str],
                   pin: str, key: str) -> str:
        return groups.form_group(self._uow(), agent_id=agent_id, name=name, village=village,
                                 phones=phones, pin=pin, now=self.now(),
                                 request_key=key).name

    def group_overview(self, member_id: int) -> GroupOverview:
        return groups.overview_for(self._uow(), member_id, self.now())

    def is_officer(self, member_id: int) -> bool:
        return groups.is_officer(self._uow(), member_id)

    def guarantee_request(self, member_id: int, guarantee_id: int) -> Request:
        for found in guarantees.requests_of(self._uow(), member_id):
            if found.id == guarantee_id:
                return found
        raise NotFound("guarantee.not_found")

    def consent_guarantee(self, member_id: int, guarantee_id: int, pin: str) -> int:
        return guarantees.consent(self._uow(), guarantor_id=member_id,
                                  guarantee_id=guarantee_id, pin=pin, now=self.now()).held

    def decline_guarantee(self, member_id: int, guarantee_id: int) -> None:
        guarantees.decline(self._uow(), guarantor_id=member_id, guarantee_id=guarantee_id,
                           now=self.now())

    def ask_guarantee(self, *, member_id: int, number: str, phone: str, amount: int) -> None:
        guarantees.ask(self._uow(), borrower_id=member_id, number=number, phone=phone,
                       amount=amount, now=self.now())

    # ------------------------------------------------------------ choices and pauses

    def choice(self, member_id: int, number: str) -> Choice:
        return choices.choice(self._uow(), member_id, number, self.now())

    def take_pledged(self, *, member_id: int, number: str, pin: str) -> int:
        return choices.take_pledged(self._uow(), borrower_id=member_id, number=number,
                                    pin=pin, now=self.now()).amount

    def extend(self, member_id: int, number: str) -> datetime:
        deadline = choices.extend(self._uow(), borrower_id=member_id, number=number,
                                  now=self.now()).deadline
        assert deadline is not None
        return deadline

    def ask_pause(self, *, member_id: int, number: str, weeks: int, reason: str) -> None:
        pauses.ask(self._uow(), borrower_id=member_id, number=number, weeks=weeks,
                   reason=reason, now=self.now())

    def pause_request(self, agent_id: int, pause_id: int) -> PauseView:
        return pauses.request_for(self._uow(), agent_id, pause_id)

    def answer_pause(self, *, agent_id: int, pause_id: int, approve: bool,
                     pin: str | None) -> None:
        pauses.decide(self._uow(), pause_id=pause_id, approve=approve, agent_id=agent_id,
                      pin=pin, now=self.now())
