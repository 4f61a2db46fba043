"""The real port: each call runs core use cases or queries in one unit of work."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from core import ledger, loans, members, outbox, pledges, queries, repayments
from core.errors import NotAllowed
from core.loans import Quote
from core.models import LoanStatus, Member, MemberStatus, Purpose
from core.queries import AccountView, LoanView, PledgeView
from runtime.services import Services
from ussd.port import Listed, MemberCard
from ussd.state import Caller


def caller_of(member: Member) -> Caller:
    return Caller(id=member.id, first_name=member.first_name, roles=sorted(member.role_set),
                  language=member.language, status=member.status,
                  terms=member.terms_accepted_at is not None, pin=member.pin_hash is not None,
                  limit=member.credit_limit)


def card_of(member: Member) -> MemberCard:
    return MemberCard(name=member.name, phone=member.phone, national_id=member.national_id,
                      status=member.status, place=member.place,
                      roles=tuple(sorted(member.role_set)),
                      terms=member.terms_accepted_at is not None, limit=member.credit_limit)


class CorePort:
    """`Port` over the services of this process; `now` is read once per hop."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self._now: datetime | None = None

    def now(self) -> datetime:
        if self._now is None:
            self._now = self.services.now()
        return self._now

    def today(self) -> date:
        return self.now().astimezone(self.settings.zone).date()

    # ------------------------------------------------------------ members

    def caller(self, phone: str) -> Caller | None:
        with self.services.uow() as uow:
            member = uow.session.scalar(select(Member).where(Member.phone == phone))
            return caller_of(member) if member is not None else None

    def register_self(self, *, phone: str, name: str, national_id: str, language: str,
                      pin: str) -> Caller:
        with self.services.uow() as uow:
            reg = members.register(uow, phone=phone, name=name, national_id=national_id,
                                   language=language, pin=pin, accept_terms=True,
                                   now=self.now())
            uow.commit()
            return caller_of(reg.member)

    def send_terms(self, *, phone: str, language: str) -> None:
        """The full terms by SMS, once per phone per day (the key makes it idempotent)."""
        with self.services.uow() as uow:
            sms = outbox.Sms(key=f"terms:{phone}:{self.today().isoformat()}", phone=phone,
                             language=language, template="sms.terms", purpose=Purpose.NOTICE,
                             params={"fee": self.settings.loan.fee_percent})
            outbox.queue(uow, [sms], self.now())
            uow.commit()

    def accept_terms(self, member_id: int, pin: str | None) -> Caller:
        with self.services.uow() as uow:
            member = members.accept_terms(uow, member_id, self.now())
            if pin is not None:
                member = members.set_pin(uow, member_id, pin, now=self.now())
            uow.commit()
            return caller_of(member)

    def set_language(self, member_id: int, language: str) -> None:
        with self.services.uow() as uow:
            members.set_language(uow, member_id, language)
            uow.commit()

    def check_pin(self, member_id: int, pin: str) -> None:
        with self.services.uow() as uow:
            members.check_pin(uow, members.get_member(uow, member_id), pin, self.now())
            uow.commit()

    def change_pin(self, member_id: int, new_pin: str) -> None:
        """After `check_pin` passed earlier in this session (the machine makes sure)."""
        with self.services.uow() as uow:
            members.replace_pin(uow, member_id, new_pin)
            uow.commit()

    def find_member(self, phone: str) -> MemberCard | None:
        with self.services.uow() as uow:
            member = uow.session.scalar(select(Member).where(Member.phone == phone))
            return card_of(member) if member is not None else None

    def agent_register(self, *, agent_id: int, phone: str, name: str, national_id: str,
                       place: str, language: str) -> MemberCard:
        with self.services.uow() as uow:
            reg = members.register(uow, phone=phone, name=name, national_id=national_id,
                                   language=language, place=place, agent_id=agent_id,
                                   now=self.now())
            uow.commit()
            return card_of(reg.member)

    def verify(self, *, agent_id: int, phone: str) -> MemberCard:
        with self.services.uow() as uow:
            member = members.verify(uow, agent_id=agent_id, phone=phone, now=self.now())
            uow.commit()
            return card_of(member)

    # ------------------------------------------------------------ borrowing

    def can_request(self, member_id: int) -> None:
        """Raise the reason a borrower cannot ask for a loan now, before any typing."""
        with self.services.uow() as uow:
            member = members.get_member(uow, member_id)
            if member.status == MemberStatus.SUSPENDED:
                raise NotAllowed("member.suspended")
            if member.status != MemberStatus.VERIFIED:
                raise NotAllowed("member.not_verified")
            current = loans.open_loan_of(uow, member_id)
            if current is not None and current.status != LoanStatus.DRAFT:
                raise NotAllowed("loan.one_open", number=current.number)

    def request_loan(self, *, member_id: int, amount: int, term_weeks: int, purpose: str,
                     key: str) -> tuple[str, Quote]:
        with self.services.uow() as uow:
            loan, facts = loans.request_loan(uow, borrower_id=member_id, amount=amount,
                                             term_weeks=term_weeks, purpose=purpose,
                                             now=self.now(), request_key=key)
            uow.commit()
            return loan.number or "", facts

    def list_loan(self, *, member_id: int, number: str, pin: str) -> Listed:
        with self.services.uow() as uow:
            loan = loans.list_loan(uow, borrower_id=member_id, number=number, pin=pin,
                                   now=self.now())
            uow.commit()
            return Listed(number=loan.number or number, deadline=loan.deadline)

    def cancel_loan(self, *, member_id: int, number: str) -> None:
        with self.services.uow() as uow:
            loans.cancel_loan(uow, borrower_id=member_id, number=number, now=self.now())
            uow.commit()

    def loans_of(self, member_id: int, *, offset: int, limit: int) -> list[LoanView]:
        with self.services.uow() as uow:
            return queries.loans_of(uow, member_id, self.now(), limit=offset + limit)[offset:]

    def open_loan_number(self, member_id: int) -> str | None:
        with self.services.uow() as uow:
            loan = loans.open_loan_of(uow, member_id)
            return loan.number if loan is not None and loan.status != LoanStatus.DRAFT else None

    def account(self, member_id: int) -> AccountView:
        with self.services.uow() as uow:
            return queries.account(uow, members.get_member(uow, member_id), self.now())

    # ------------------------------------------------------------ lending

    def listed(self, *, offset: int, limit: int, exclude: int | None) -> list[LoanView]:
        with self.services.uow() as uow:
            return queries.listed(uow, self.now(), offset=offset, limit=limit,
                                  exclude_borrower=exclude)

    def pledge_offer(self, member_id: int, number: str) -> tuple[LoanView, int]:
        with self.services.uow() as uow:
            view = queries.loan_status(uow, number, self.now())
            if view.status != LoanStatus.LISTED:
                raise NotAllowed("loan.not_listed", number=view.number)
            account = ledger.find_account(uow, ledger.wallet_code(member_id))
            return view, account.available if account is not None else 0

    def pledge(self, *, member_id: int, number: str, amount: int, pin: str, key: str) -> None:
        with self.services.uow() as uow:
            members.check_pin(uow, members.get_member(uow, member_id), pin, self.now())
            pledges.propose_pledge(uow, lender_id=member_id, number=number, amount=amount,
                                 now=self.now(), request_key=key)
            uow.commit()

    def pledges_of(self, member_id: int, *, offset: int, limit: int) -> list[PledgeView]:
        with self.services.uow() as uow:
            return queries.pledges_of(uow, member_id, offset=offset, limit=limit)

    def withdraw(self, *, member_id: int, amount: int, pin: str, key: str) -> None:
        with self.services.uow() as uow:
            repayments.withdraw(uow, member_id=member_id, amount=amount, pin=pin,
                                payout=self.services.payouts, request_key=key, now=self.now())
            uow.commit()
