"""A port that needs no database: for unit tests of navigation and the state-graph
walk. Every view it returns carries the longest values the product allows, so a
screen that fits here fits for everyone."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from core.choices import Choice
from core.config import Settings
from core.errors import NotAllowed, PinLocked, WrongPin
from core.groups import GroupOverview, Invitation, MemberLine
from core.guarantees import Request
from core.loans import quote
from core.members import clean_name
from core.pauses import PauseView
from core.queries import AccountView, LoanView, PledgeView
from core.repayments import Standing
from core.reputation import AgentRecord, Portfolio
from core.waiting import Waiting
from ussd.port import Listed, MemberCard
from ussd.state import Caller

PIN = "2580"
LOCKED_PIN = "0007"  # the fake answers this PIN with "locked"
LONG_NAME = "Wanjiru Achieng Mwangi Otieno Kamau Bara"  # 40 characters: the most allowed
LONG_FIRST = "Wanjiruachiengmwangiotienokamaubarakazaw"  # a one-word 40-character name
LONG_PLACE = "Kisumu Ndogo Mwembe Tayari Gro"  # 30 characters
LONG_GROUP = "Akina Mama Wa Nyalenda Umoja Na Maendele"  # 40 characters: a group's longest
KNOWN_PHONE = "+254711000001"
OTHER_KNOWN, THIRD_KNOWN = "+254711000002", "+254711000003"  # enough for a group
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakePort:
    settings: Settings
    caller_: Caller | None = None
    calls: list[str] = field(default_factory=list)
    loans: int = 7  # how many loans each list holds
    open_status: str | None = "in_arrears"  # the status of the caller's open loan

    def now(self) -> datetime:
        return NOW

    def today(self) -> date:
        return NOW.date()

    # members
    def caller(self, phone: str) -> Caller | None:
        self.calls.append("caller")
        return self.caller_

    def register_self(self, *, phone: str, name: str, national_id: str, language: str,
                      pin: str) -> Caller:
        self.calls.append("register_self")
        return Caller(id=99, first_name=clean_name(name).split()[0], roles=["borrower"],
                      language=language, status="pending", terms=True, pin=True,
                      limit=self.settings.minor(self.settings.credit.first_loan_limit),
                      helper_phone="0709 000000")

    def send_terms(self, *, phone: str, language: str) -> None:
        self.calls.append("send_terms")

    def accept_terms(self, member_id: int, pin: str | None) -> Caller:
        self.calls.append("accept_terms")
        assert self.caller_ is not None
        return replace(self.caller_, terms=True, pin=True)

    def set_language(self, member_id: int, language: str) -> None:
        self.calls.append("set_language")

    def _pin(self, pin: str) -> None:
        if pin == LOCKED_PIN:
            raise PinLocked(until="23:59")
        if pin != PIN:
            raise WrongPin(tries_left=2)

    def check_pin(self, member_id: int, pin: str) -> None:
        self.calls.append("check_pin")
        self._pin(pin)

    def change_pin(self, member_id: int, new_pin: str) -> None:
        self.calls.append("change_pin")

    def find_member(self, phone: str) -> MemberCard | None:
        if phone not in (KNOWN_PHONE, OTHER_KNOWN, THIRD_KNOWN):
            return None
        return MemberCard(name=LONG_NAME, phone=phone, national_id="1234567890",
                          status="pending", place=LONG_PLACE,
                          roles=("agent", "borrower", "lender"), terms=False,
                          limit=self.settings.minor(self.settings.credit.cap))

    def national_id_taken(self, national_id: str) -> bool:
        return national_id == "11111111"

    def agent_register(self, *, agent_id: int, phone: str, name: str, national_id: str,
                       place: str, language: str, pin: str) -> MemberCard:
        self.calls.append("agent_register")
        self._pin(pin)
        return MemberCard(name=name, phone=phone, national_id=national_id, status="verified",
                          place=place, roles=("borrower", "lender"), terms=False, limit=0)

    def verify(self, *, agent_id: int, phone: str, pin: str) -> MemberCard:
        self.calls.append("verify")
        self._pin(pin)
        card = self.find_member(phone)
        assert card is not None
        return replace(card, status="verified")

    # borrowing
    def can_request(self, member_id: int) -> None:
        self.calls.append("can_request")
        if self.caller_ is not None and self.caller_.status == "pending":
            raise NotAllowed("member.not_verified")

    def apply(self, *, member_id: int, amount: int, term_weeks: int, purpose: str, pin: str,
              key: str) -> Listed:
        self.calls.append(f"apply:{key}")
        self._pin(pin)
        return Listed(number="L1000099", deadline=NOW + timedelta(days=14))

    def cancel_loan(self, *, member_id: int, number: str) -> None:
        self.calls.append("cancel_loan")

    def _loan(self, i: int, status: str) -> LoanView:
        big = self.settings.minor(self.settings.loan.max_amount - 1)
        standing = Standing(next_due=date(2026, 12, 28), next_amount=big, behind=big)
        return LoanView(
            number=f"L10000{i:02d}", status=status, amount=big, pledged=big - 100,
            funded_percent=99, outstanding=big, total_due=big, deadline=NOW,
            purpose="transport" if i % 2 else "school", term_weeks=12,
            borrower_first_name=LONG_FIRST,
            borrower_place=LONG_PLACE, borrower_on_time=99, borrower_repaid=100,
            standing=standing if status in ("repaying", "in_arrears", "disbursed") else None,
            agent=(AgentRecord(ended=0, on_time=0) if i % 3 == 2
                   else AgentRecord(ended=123_456, on_time=123_455)))

    STATUSES = ("in_arrears", "listed", "funded", "repaid", "expired", "cancelled",
                "defaulted", "disbursed", "repaying")

    def loans_of(self, member_id: int, *, offset: int, limit: int) -> list[LoanView]:
        rows = [self._loan(i, self.STATUSES[i % len(self.STATUSES)])
                for i in range(self.loans)]
        return rows[offset:offset + limit]

    def loan_of(self, member_id: int, number: str) -> LoanView:
        i = int(number[-2:])
        return self._loan(i, self.STATUSES[i % len(self.STATUSES)])

    def open_loan(self, member_id: int) -> LoanView | None:
        return self._loan(1, self.open_status) if self.open_status else None

    def account(self, member_id: int) -> AccountView:
        huge = 10**11 - 100  # a wallet of nearly a billion shillings
        return AccountView(wallet_balance=huge, wallet_available=huge, held=huge,
                           credit_limit=self.settings.minor(self.settings.credit.cap),
                           limit_frozen=True, loans_repaid=100, loans_repaid_on_time=99,
                           open_loan=self._loan(1, "in_arrears"), active_pledges=9)

    # lending
    def listed(self, *, offset: int, limit: int, exclude: int | None) -> list[LoanView]:
        rows = [self._loan(i, "listed") for i in range(self.loans)]
        return rows[offset:offset + limit]

    def pledge_offer(self, member_id: int, number: str) -> tuple[LoanView, int]:
        if number.endswith("03"):
            raise NotAllowed("loan.not_listed", number=number)
        view = self._loan(int(number[-2:]), "listed")
        if number.endswith("05"):  # a wallet with nothing free
            return view, 0
        if number.endswith("06"):  # fully pledged meanwhile
            return replace(view, pledged=view.amount, funded_percent=100), 10**11 - 100
        return view, 10**11 - 100

    def pledge(self, *, member_id: int, number: str, amount: int, pin: str, key: str) -> None:
        self.calls.append(f"pledge:{key}")
        self._pin(pin)

    def pledges_of(self, member_id: int, *, offset: int, limit: int) -> list[PledgeView]:
        big = self.settings.minor(self.settings.loan.max_amount)
        statuses = ["posted", "proposed", "confirmed", "voided", "lapsed", "cancelled"]
        rows = [PledgeView(loan_number=f"L10000{i:02d}", amount=big,
                           status=statuses[i % len(statuses)], code="1234",
                           entitled=big * 2, repaid=big * 2 - 100) for i in range(self.loans)]
        return rows[offset:offset + limit]

    def portfolio(self, member_id: int) -> Portfolio:
        huge = 10**11 - 100  # nearly a billion shillings in each figure
        return Portfolio(loans=99_999, lent=huge, got_back=huge, late=huge, lost=huge,
                         to_come=huge)

    def request_stk(self, *, member_id: int, amount: int, key: str) -> str:
        self.calls.append(f"stk:{key}")
        return "L1000099"

    def withdraw(self, *, member_id: int, amount: int, pin: str, key: str) -> None:
        self.calls.append(f"withdraw:{key}")
        self._pin(pin)

    # groups, guarantees, choices and pauses: the longest values everywhere
    def waiting(self, member_id: int) -> list[Waiting]:
        big = self.settings.minor(self.settings.loan.max_amount)
        return [Waiting("invite", "7", name=LONG_GROUP),
                Waiting("guarantee", "8", name=LONG_FIRST, loan="L1000008", amount=big),
                Waiting("choice", "L1000009", loan="L1000009", amount=big),
                Waiting("pause", "9", name=LONG_FIRST, loan="L1000010", amount=2),
                Waiting("group", "3", name=LONG_GROUP)]

    def invitation(self, member_id: int, group_id: int) -> Invitation:
        return Invitation(group_id, LONG_GROUP, LONG_PLACE, LONG_FIRST)

    def answer_invitation(self, member_id: int, group_id: int, join: bool) -> None:
        self.calls.append(f"invitation:{join}")

    def form_group(self, *, agent_id: int, name: str, village: str, phones: list[str],
                   pin: str, key: str) -> str:
        self.calls.append(f"form_group:{key}")
        self._pin(pin)
        return name

    def group_overview(self, member_id: int) -> GroupOverview:
        big = self.settings.minor(self.settings.loan.max_amount)
        lines = tuple(MemberLine(LONG_NAME, KNOWN_PHONE, status, loan, None, behind)
                      for status, loan, behind in (("joined", "L1000001", big),
                                                   ("joined", "L1000002", 0),
                                                   ("joined", "", 0), ("invited", "", 0)))
        return GroupOverview(3, LONG_GROUP, LONG_PLACE, LONG_NAME, LONG_NAME, lines * 3)

    def is_officer(self, member_id: int) -> bool:
        return True

    def guarantee_request(self, member_id: int, guarantee_id: int) -> Request:
        big = self.settings.minor(self.settings.loan.max_amount)
        return Request(guarantee_id, LONG_FIRST, "L1000008", big, big, 12, "asked")

    def consent_guarantee(self, member_id: int, guarantee_id: int, pin: str) -> int:
        self.calls.append("consent")
        self._pin(pin)
        return self.settings.minor(self.settings.loan.max_amount)

    def decline_guarantee(self, member_id: int, guarantee_id: int) -> None:
        self.calls.append("decline_guarantee")

    def ask_guarantee(self, *, member_id: int, number: str, phone: str, amount: int) -> None:
        self.calls.append("ask_guarantee")

    def choice(self, member_id: int, number: str) -> Choice:
        big = self.settings.minor(self.settings.loan.max_amount)
        facts = quote(self.settings, big - 100, 12, NOW.date())
        return Choice(number, big, big - 100, True, NOW + timedelta(hours=48), facts)

    def take_pledged(self, *, member_id: int, number: str, pin: str) -> int:
        self.calls.append("take_pledged")
        self._pin(pin)
        return self.settings.minor(self.settings.loan.max_amount) - 100

    def extend(self, member_id: int, number: str) -> datetime:
        self.calls.append("extend")
        return NOW + timedelta(days=7)

    def ask_pause(self, *, member_id: int, number: str, weeks: int, reason: str) -> None:
        self.calls.append("ask_pause")

    def pause_request(self, agent_id: int, pause_id: int) -> PauseView:
        return PauseView(pause_id, LONG_FIRST, "L1000010", 2, "business")

    def answer_pause(self, *, agent_id: int, pause_id: int, approve: bool,
                     pin: str | None) -> None:
        self.calls.append(f"answer_pause:{approve}")
        if approve:
            self._pin(pin or "")
