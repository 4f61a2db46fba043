"""Random walks through the use cases, checked against a model and the six invariants.

Many lenders and loans; top-ups by phone in any common form; requests, pledges (some
beyond what is open or what the wallet holds), confirmations, declines, funding,
disbursement, payments of any size and order (overpayments, unmatched references,
replays), cancellations, expiry, lapses, arrears, withdrawals with right and wrong PINs.
After every step `core.checks.check` must find nothing, and every wallet, loan and
pledge must be what the model predicts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from core import (
    checks,
    choices,
    disbursements,
    groups,
    guarantees,
    ledger,
    loans,
    members,
    pauses,
    pledges,
    privacy,
    repayments,
    withdrawals,
)
from core.allocation import largest_remainder_whole
from core.db import Database
from core.errors import (
    Conflict,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    NotAllowed,
    NotFound,
    PinLocked,
    WrongPin,
)
from core.models import (
    Account,
    DataRequestKind,
    Installment,
    Loan,
    Member,
    MemberStatus,
    Pledge,
)
from runtime.services import Services
from tests.conftest import make_settings
from tests.support import PIN, START, Clock, clean_database
from workers.payouts import send_payout

FEE, INTEREST = 5, 3  # percent, as configured below


def whole_percent(amount: int, percent: int) -> int:
    """`percent`% of `amount`, rounded down to the shilling (fees are whole shillings)."""
    return amount * percent // 100 // 100 * 100
REPAYABLE = {"disbursed", "repaying", "in_arrears", "defaulted"}
OPEN = REPAYABLE | {"draft", "listed", "funded"}


@dataclass
class MMember:
    id: int
    phone: str
    borrower: bool
    balance: int = 0  # posted credits - posted debits
    held: int = 0  # pending debits (confirmed pledges)
    failures: int = 0
    locked_until: datetime | None = None
    limit: int = 500_000
    frozen: bool = False
    loans_repaid: int = 0


@dataclass
class MLoan:
    id: int
    number: str
    borrower: int
    amount: int
    deadline: datetime
    count: int
    status: str = "listed"
    pledged: int = 0
    funded: int = 0
    repaid: int = 0
    fee_paid: int = 0
    pledges: list[int] = field(default_factory=list)
    installments: list[list] = field(default_factory=list)  # [due_on, amount, paid, late]
    needed: int = 0  # what guarantors must cover before lenders may pledge
    guaranteed: int = 0
    choice_until: datetime | None = None
    extended: bool = False

    @property
    def total_due(self) -> int:
        return self.amount + self.fee + whole_percent(self.amount, INTEREST)

    @property
    def fee(self) -> int:
        return whole_percent(self.amount, FEE)

    @property
    def outstanding(self) -> int:
        return self.amount + self.fee + whole_percent(self.amount, INTEREST) - self.repaid


@dataclass
class MPledge:
    id: int
    code: str
    lender: int
    loan: str
    amount: int
    confirm_by: datetime
    status: str = "proposed"
    entitled: int = 0
    repaid: int = 0


@dataclass
class MGuarantee:
    id: int
    loan: str
    guarantor: int
    amount: int
    status: str = "asked"
    held: int = 0
    called: int = 0


@dataclass
class MPause:
    id: int
    loan: str
    weeks: int
    status: str = "asked"


ASKABLE = {"listed", "funded", "disbursed", "repaying", "in_arrears"}
BEING_REPAID = {"disbursed", "repaying", "in_arrears"}


def variants(phone: str) -> list[str]:
    """One Kenyan number as people type it."""
    local = phone[4:]
    return [phone, "0" + local, "254" + local, f"+254 {local[:3]} {local[3:6]} {local[6:]}",
            local, f"0{local[:3]}-{local[3:6]}-{local[6:]}"]


class LedgerMachine(RuleBasedStateMachine):
    svc: Services  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        clean_database(self.svc.db)
        self.clock: Clock = self.svc.clock  # type: ignore[assignment]
        self.clock.set(START)
        self.members: dict[int, MMember] = {}
        self.erased: dict[int, MMember] = {}  # anonymised at their request (core/privacy.py)
        self.registered = 0
        self.loans: dict[str, MLoan] = {}
        self.pledges: dict[int, MPledge] = {}
        self.payments: list[tuple[str, int, str]] = []  # (txid, amount, reference)
        self.fees = self.suspense = self.paid_out = 0
        self.tx = 0
        self.group: dict[int, str] = {}  # member id -> invited | joined | declined
        self.guarantees: dict[int, MGuarantee] = {}
        self.pauses: dict[int, MPause] = {}
        with self.svc.uow() as uow:
            self.agent = members.register(uow, phone="+254711000000", name="Grace Agent",
                                          national_id="11000000", roles="agent", pin=PIN,
                                          accept_terms=True, now=START).member.id
            uow.commit()

    # ------------------------------------------------------------ helpers
    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.now().astimezone(self.svc.settings.zone).date()

    def run(self, use_case, **kw):
        """One use case in its own transaction, as every channel calls it."""
        return use_case(self.svc.uow(), **kw)

    def send(self, payout_id: int) -> str:
        """A held payout sent as a worker sends it (the console gateway pays at once)."""
        return send_payout(self.svc.uow, self.svc.payouts, payout_id, self.now())

    def svc_loan(self, number: str):
        with self.svc.uow() as uow:
            return loans.find_loan(uow, number)

    def pick(self, items: list, index: int):
        return items[index % len(items)]

    def pledges_of_members(self) -> list[MPledge]:
        """Pledges of members not erased (an erased lender's phone is no one's now)."""
        return [p for p in self.pledges.values() if p.lender in self.members]

    def lenders(self) -> list[MMember]:
        return [m for m in self.members.values() if not m.borrower]

    def loans_in(self, *states: str) -> list[MLoan]:
        return [loan for loan in self.loans.values() if loan.status in states]

    def release(self, loan: MLoan, status: str) -> None:
        for pid in loan.pledges:
            pledge = self.pledges[pid]
            if pledge.status == "confirmed":
                pledge.status = "voided"
                self.members[pledge.lender].held -= pledge.amount
            elif pledge.status == "proposed":
                pledge.status = "lapsed"
        loan.status, loan.pledged, loan.choice_until = status, 0, None
        self.release_guarantees(loan)

    def guarantees_of(self, loan: MLoan, status: str) -> list[MGuarantee]:
        return [g for g in sorted(self.guarantees.values(), key=lambda g: g.id)
                if g.loan == loan.number and g.status == status]

    def release_guarantees(self, loan: MLoan) -> None:
        for g in self.guarantees_of(loan, "held"):
            self.members[g.guarantor].held -= g.held
            g.status, g.held = "released", 0
        for g in self.guarantees_of(loan, "asked"):
            g.status = "lapsed"

    def exposure(self, g: MGuarantee, loan: MLoan) -> int:
        if loan.status not in REPAYABLE | {"repaid"}:
            return g.amount
        if loan.outstanding <= 0:
            return 0
        share = -(-g.amount * loan.outstanding // loan.total_due)
        return min(g.amount, -(-share // 100) * 100)

    def limit_of(self, member: MMember) -> int:
        if member.loans_repaid == 0 and self.group.get(member.id) == "joined":
            return max(member.limit, 1_000_000)
        return member.limit

    def eligible(self, loan: MLoan) -> bool:
        return (loan.pledged * 100 >= loan.amount * 50 and loan.pledged >= 50_000
                and loan.guaranteed >= loan.needed)

    # ------------------------------------------------------------ members and money
    @initialize(lenders=st.integers(2, 5), borrowers=st.integers(1, 3))
    def populate(self, lenders: int, borrowers: int) -> None:
        for _ in range(lenders):
            self.register(borrower=False)
        for _ in range(borrowers):
            self.register(borrower=True)
        for member in self.members.values():  # money to guarantee and lend with
            self.pay(member.phone, 400_000)
            member.balance += 400_000
        self.form_group()
        for member_id in list(self.group)[1:]:  # all but one join, on their own phones
            assert self.run(groups.answer_invitation, member_id=member_id, group_id=1,
                            join=True, now=self.now()) == "joined"
            self.group[member_id] = "joined"
        self.request_and_list(who=0, amount=200_000, term=4)  # a loan from the first step

    @precondition(lambda self: len(self.members) < 12)
    @rule(borrower=st.booleans())
    def register(self, borrower: bool) -> None:
        self.registered += 1
        n = self.registered
        phone = f"+25472{n:07d}"
        reg = self.run(members.register, phone=phone, name=f"Member {chr(64 + n)}",
                       national_id=f"{30_000_000 + n}", roles="borrower" if borrower else "lender",
                       pin=PIN, agent_id=self.agent, accept_terms=True, now=self.now())
        assert reg.created
        self.members[reg.member.id] = MMember(reg.member.id, phone, borrower)

    @precondition(lambda self: self.members)
    @rule(who=st.integers(0, 99), amount=st.integers(1, 400_000), form=st.integers(0, 5))
    def top_up(self, who: int, amount: int, form: int) -> None:
        member = self.pick(list(self.members.values()), who)
        self.pay(self.pick(variants(member.phone), form), amount)
        member.balance += amount

    def pay(self, reference: str, amount: int) -> repayments.Receipt:
        self.tx += 1
        txid = f"QX{self.tx:05d}"
        self.payments.append((txid, amount, reference))
        return self.run(repayments.record_payment, provider="mpesa", transaction_id=txid,
                        phone="+254799000001", amount=amount, currency="KES",
                        reference=reference, occurred_at=self.now(), now=self.now())

    @rule(amount=st.integers(1, 100_000),
          reference=st.sampled_from(["L9999", "HELLO", "0799 999 999", "", "L0"]))
    def unmatched_receipt(self, amount: int, reference: str) -> None:
        receipt = self.pay(reference or "nothing", amount)
        assert receipt.payment.kind == "unmatched"
        self.suspense += amount

    @precondition(lambda self: self.payments)
    @rule(which=st.integers(0, 999), differently=st.booleans())
    def replay_payment(self, which: int, differently: bool) -> None:
        txid, amount, reference = self.pick(self.payments, which)
        kw = dict(provider="mpesa", transaction_id=txid, phone=None, currency="KES",
                  reference=reference, occurred_at=self.now(), now=self.now())
        if differently:
            with pytest.raises(Conflict):
                self.run(repayments.record_payment, amount=amount + 1, **kw)
        else:
            assert not self.run(repayments.record_payment, amount=amount, **kw).created

    @precondition(lambda self: self.members)
    @rule(who=st.integers(0, 99), right_pin=st.booleans(),
          amount=st.one_of(st.integers(1, 3_000).map(lambda n: n * 100),
                           st.integers(1, 300_000)))
    def withdraw(self, who: int, amount: int, right_pin: bool) -> None:
        member = self.pick(list(self.members.values()), who)
        self.tx += 1
        kw = dict(member_id=member.id, amount=amount, pin=PIN if right_pin else "9137",
                  provider=self.svc.payouts.provider, request_key=f"w{self.tx}",
                  now=self.now())
        locked = member.locked_until is not None and member.locked_until > self.now()
        if locked:
            with pytest.raises(PinLocked):
                self.run(withdrawals.withdraw, **kw)
        elif not right_pin:
            member.failures += 1
            if member.failures >= 3:
                member.failures, member.locked_until = 0, self.now() + timedelta(minutes=30)
            with pytest.raises(WrongPin):  # the last try says it is now locked
                self.run(withdrawals.withdraw, **kw)
        elif amount < 5_000:
            with pytest.raises(InvalidInput):  # below the smallest withdrawal, Ksh 50
                self.run(withdrawals.withdraw, **kw)
            member.failures = 0
        elif amount > member.balance - member.held:
            with pytest.raises(InsufficientFunds):
                self.run(withdrawals.withdraw, **kw)
            member.failures = 0  # the right PIN counts even when the wallet is short
        elif amount % 100:
            with pytest.raises(InvalidInput):  # M-Pesa pays whole shillings only
                self.run(withdrawals.withdraw, **kw)
            member.failures = 0
        else:
            payout = self.run(withdrawals.withdraw, **kw)
            assert payout.amount == amount
            assert self.send(payout.id) == "settled"
            member.balance -= amount
            member.failures, member.locked_until = 0, None
            self.paid_out += amount

    # ------------------------------------------------------------ loans and pledges
    @precondition(lambda self: any(m.borrower for m in self.members.values()))
    @rule(who=st.integers(0, 99), term=st.sampled_from([4, 8, 5]),
          amount=st.one_of(st.integers(400, 8_000).map(lambda n: n * 100),
                           st.integers(40_000, 800_000)))
    def request_and_list(self, who: int, amount: int, term: int) -> None:
        borrower = self.pick([m for m in self.members.values() if m.borrower], who)
        current = [loan for loan in self.loans_in(*OPEN) if loan.borrower == borrower.id]
        kw = dict(borrower_id=borrower.id, amount=amount, term_weeks=term, purpose="stock",
                  now=self.now())
        if current and current[0].status != "draft":  # may they borrow at all, first
            with pytest.raises(NotAllowed):
                self.run(loans.request_loan, **kw)
            return
        if not 50_000 <= amount <= self.limit_of(borrower) or term == 5 or amount % 100:
            with pytest.raises(InvalidInput):
                self.run(loans.request_loan, **kw)
            return
        loan, facts = self.run(loans.request_loan, **kw)
        assert (facts.fee, facts.interest) == (whole_percent(amount, FEE),
                                               whole_percent(amount, INTEREST))
        for draft in current:  # a newer request replaces an unsent draft
            draft.status = "cancelled"
        model = MLoan(loan.id, loan.number, borrower.id, amount,
                      self.now() + timedelta(days=14), facts.count, status="draft",
                      needed=max(0, amount - borrower.limit))
        self.loans[loan.number] = model
        list_kw = dict(borrower_id=borrower.id, number=loan.number, pin=PIN, now=self.now())
        if borrower.locked_until is not None and borrower.locked_until > self.now():
            with pytest.raises(PinLocked):
                self.run(loans.list_loan, **list_kw)
            return
        assert self.run(loans.list_loan, **list_kw).status == "listed"
        model.status = "listed"
        borrower.failures, borrower.locked_until = 0, None

    @precondition(lambda self: self.lenders() and self.loans)
    @rule(who=st.integers(0, 99), which=st.integers(0, 99),
          size=st.sampled_from(["all", "half", "third", "min", "tiny", "over", "odd"]),
          odd=st.integers(1, 300_000))
    def propose(self, who: int, which: int, size: str, odd: int) -> None:
        lender = self.pick(self.lenders(), who)
        loan = self.pick(list(self.loans.values()), which)
        open_ = loan.amount - loan.pledged
        amount = {"all": open_, "half": open_ // 200 * 100, "third": open_ // 300 * 100,
                  "min": 5_000, "tiny": 4_900, "over": open_ + 100, "odd": odd}[size]
        kw = dict(lender_id=lender.id, number=loan.number, amount=amount, now=self.now())
        waiting = sum(1 for p in self.pledges.values()
                      if p.lender == lender.id and p.status == "proposed")
        if lender.locked_until is not None and lender.locked_until > self.now():
            with pytest.raises(PinLocked):  # a locked PIN stops a pledge, even by SMS
                self.run(pledges.propose_pledge, **kw)
        elif waiting >= 5:  # loan.max_open_proposals
            with pytest.raises(NotAllowed):
                self.run(pledges.propose_pledge, **kw)
        elif loan.status != "listed" or loan.deadline <= self.now():
            # a loan past listing is not found but by its parties (here: its lenders)
            party = any(self.pledges[p].lender == lender.id and self.pledges[p].status in (
                "confirmed", "posted", "voided") for p in loan.pledges)
            with pytest.raises(NotAllowed if loan.status == "listed" or party else NotFound):
                self.run(pledges.propose_pledge, **kw)
        elif loan.guaranteed < loan.needed:  # a guaranteed first loan waits for its guarantors
            with pytest.raises(NotAllowed):
                self.run(pledges.propose_pledge, **kw)
        elif amount < min(5_000, open_) or amount <= 0 or amount % 100:  # whole shillings
            with pytest.raises(InvalidInput):
                self.run(pledges.propose_pledge, **kw)
        elif amount > min(open_, lender.balance - lender.held):
            # the bound that binds is named: the wallet when it holds less than is open
            short = lender.balance - lender.held < open_
            with pytest.raises(InsufficientFunds if short else InvalidInput):
                self.run(pledges.propose_pledge, **kw)
        else:
            pledge = self.run(pledges.propose_pledge, **kw)
            assert pledge.status == "proposed"
            self.pledges[pledge.id] = MPledge(pledge.id, pledge.code, lender.id, loan.number,
                                              amount, min(self.now() + timedelta(hours=24),
                                                          loan.deadline))
            loan.pledges.append(pledge.id)

    @precondition(lambda self: self.pledges_of_members())
    @rule(which=st.integers(0, 999))
    def confirm(self, which: int) -> None:
        pledge = self.pick(self.pledges_of_members(), which)
        lender, loan = self.members[pledge.lender], self.loans[pledge.loan]
        kw = dict(phone=lender.phone, code=pledge.code, now=self.now())
        if pledge.status in ("confirmed", "posted"):  # a replay
            assert self.run(pledges.confirm_pledge, **kw).pledge_id == pledge.id
            return
        if pledge.status != "proposed" or pledge.confirm_by <= self.now() or \
                loan.status != "listed":
            with pytest.raises(NotAllowed):
                self.run(pledges.confirm_pledge, **kw)
            return
        if loan.pledged + pledge.amount > loan.amount:
            with pytest.raises(InvalidInput):
                self.run(pledges.confirm_pledge, **kw)
            return
        if pledge.amount > lender.balance - lender.held:
            with pytest.raises(InsufficientFunds):
                self.run(pledges.confirm_pledge, **kw)
            return
        done = self.run(pledges.confirm_pledge, **kw)
        pledge.status, lender.held, loan.pledged = "confirmed", lender.held + pledge.amount, \
            loan.pledged + pledge.amount
        assert done.funded == (loan.pledged == loan.amount)
        if done.funded:
            self.fund(loan)

    def fund(self, loan: MLoan) -> None:
        posted = [self.pledges[pid] for pid in sorted(loan.pledges)
                  if self.pledges[pid].status == "confirmed"]
        shares = largest_remainder_whole(loan.amount + whole_percent(loan.amount, INTEREST),
                                         [p.amount for p in posted], 100)
        for pledge, share in zip(posted, shares, strict=True):
            lender = self.members[pledge.lender]
            pledge.status, pledge.entitled = "posted", share
            lender.held -= pledge.amount
            lender.balance -= pledge.amount
        loan.status, loan.funded = "funded", loan.amount

    @precondition(lambda self: self.pledges_of_members())
    @rule(which=st.integers(0, 999))
    def decline(self, which: int) -> None:
        pledge = self.pick(self.pledges_of_members(), which)
        kw = dict(phone=self.members[pledge.lender].phone, code=pledge.code, now=self.now())
        if pledge.status in ("proposed", "cancelled"):
            assert self.run(pledges.decline_pledge, **kw).status == "cancelled"
            pledge.status = "cancelled"
        else:
            with pytest.raises(NotAllowed):
                self.run(pledges.decline_pledge, **kw)

    @precondition(lambda self: self.loans)
    @rule(which=st.integers(0, 99))
    def cancel(self, which: int) -> None:
        loan = self.pick(list(self.loans.values()), which)
        kw = dict(borrower_id=loan.borrower, number=loan.number, now=self.now())
        if loan.status in ("draft", "listed", "cancelled"):
            assert self.run(loans.cancel_loan, **kw).status == "cancelled"
            if loan.status != "cancelled":
                self.release(loan, "cancelled")
        else:
            with pytest.raises(NotAllowed):
                self.run(loans.cancel_loan, **kw)

    @precondition(lambda self: self.loans)
    @rule(which=st.integers(0, 99))
    def disburse(self, which: int) -> None:
        loan = self.pick(list(self.loans.values()), which)
        kw = dict(loan_id=loan.id, provider=self.svc.payouts.provider, now=self.now())
        if loan.status == "funded":
            payout = self.run(disbursements.disburse, **kw)
            assert self.send(payout.id) == "settled"
            assert self.svc_loan(loan.number).status == "disbursed"
            total = loan.amount + loan.fee + whole_percent(loan.amount, INTEREST)
            start = self.today()
            each = total // loan.count // 100 * 100  # whole shillings
            loan.installments = [[start + timedelta(weeks=i + 1), each, 0, False]
                                 for i in range(loan.count)]
            loan.installments[-1][1] = total - each * (loan.count - 1)
            loan.status = "disbursed"
            self.paid_out += loan.amount
        elif loan.status in REPAYABLE or loan.status == "repaid":
            assert self.run(disbursements.disburse, **kw).status == "paid"  # a replay
        else:
            with pytest.raises(DomainError):
                self.run(disbursements.disburse, **kw)

    # ------------------------------------------------------------ repayments and time
    @precondition(lambda self: self.loans)
    @rule(which=st.integers(0, 99), size=st.sampled_from(["one", "installment", "rest",
                                                           "over", "odd"]),
          odd=st.integers(1, 600_000), form=st.sampled_from(["{}", "{} ", "#{}", "l{}"]))
    def repay(self, which: int, size: str, odd: int, form: str) -> None:
        loan = self.pick(list(self.loans.values()), which)
        upcoming = next((i for i in loan.installments if i[2] < i[1]), None)
        amount = {"one": 1, "installment": upcoming[1] - upcoming[2] if upcoming else 1_000,
                  "rest": max(loan.outstanding, 1), "over": loan.outstanding + 777,
                  "odd": odd}[size]
        reference = form.format(loan.number if form != "l{}" else loan.number[1:])
        receipt = self.pay(reference, amount)
        if loan.status not in REPAYABLE and loan.borrower in self.erased:
            assert receipt.payment.kind == "unmatched"  # no wallet for an erased member
            self.suspense += amount
            return
        borrower = self.members[loan.borrower]
        if loan.status not in REPAYABLE:
            assert receipt.payment.kind == "topup"
            borrower.balance += amount
            return
        assert receipt.payment.kind == "repayment"
        applied = min(amount, loan.outstanding)
        borrower.balance += amount - applied
        posted = [self.pledges[pid] for pid in sorted(loan.pledges)
                  if self.pledges[pid].status == "posted"]
        shares = largest_remainder_whole(applied, [loan.fee - loan.fee_paid]
                                         + [p.entitled - p.repaid for p in posted], 100)
        self.fees += shares[0]
        loan.fee_paid += shares[0]
        for pledge, share in zip(posted, shares[1:], strict=True):
            pledge.repaid += share
            self.members[pledge.lender].balance += share
        loan.repaid += applied
        assert (receipt.payment.fee_part, receipt.payment.lender_part,
                receipt.payment.refund_part) == (shares[0], applied - shares[0], amount - applied)
        left, today = applied, self.today()
        for inst in loan.installments:
            take = min(left, inst[1] - inst[2])
            if take:
                inst[2] += take
                left -= take
                if inst[2] == inst[1] and today > inst[0]:
                    inst[3] = True
        if loan.outstanding == 0:
            loan.status = "repaid"
            assert all(p.repaid == p.entitled for p in posted)
            self.ladder(borrower, on_time=not any(i[3] for i in loan.installments))
            self.release_guarantees(loan)
        else:
            overdue = any(i[2] < i[1] and i[0] < today for i in loan.installments)
            loan.status = "in_arrears" if overdue else "repaying"
            for g in self.guarantees_of(loan, "held"):  # each hold falls pro rata
                left = self.exposure(g, loan)
                if left < g.held:
                    event("a guarantee hold fell pro rata")
                    self.members[g.guarantor].held -= g.held - left
                    g.held = left
                    if not left:
                        g.status = "released"

    def ladder(self, member: MMember, *, on_time: bool) -> None:
        member.loans_repaid += 1
        if not on_time:
            member.frozen = True
        elif member.frozen:
            member.frozen = False
        else:
            member.limit = min(member.limit * 3 // 2 // 100 * 100, 10_000_000)

    @rule(hours=st.sampled_from([1, 5, 11, 25, 24 * 3, 24 * 8, 24 * 15, 24 * 100]))
    def time_passes(self, hours: int) -> None:
        now = self.clock.advance(hours=hours)
        expired = self.run(loans.expire_loans, now=now)
        cancelled = self.run(choices.lapse, now=now)
        lapsed = self.run(pledges.lapse_pledges, now=now)
        arrears = self.run(repayments.mark_arrears, now=now)
        due = [loan for loan in self.loans_in("listed")
               if loan.deadline <= now and loan.choice_until is None]
        offered = [loan for loan in due if self.eligible(loan)]
        assert sorted(expired) == sorted(loan.number for loan in due if loan not in offered)
        for loan in due:
            if loan in offered:  # the borrower chooses within 48 hours
                event("a partly funded loan offered a choice")
                loan.choice_until = now + timedelta(hours=48)
            else:
                self.release(loan, "expired")
        unanswered = [loan for loan in self.loans_in("listed")
                      if loan.choice_until is not None and loan.choice_until <= now]
        assert sorted(cancelled) == sorted(loan.number for loan in unanswered)
        for loan in unanswered:
            self.release(loan, "cancelled")
        stale = [p for p in self.pledges.values()
                 if p.status == "proposed" and p.confirm_by <= now]
        assert lapsed == len(stale)
        for pledge in stale:
            pledge.status = "lapsed"
        today, changed = self.today(), []
        for loan in self.loans_in("disbursed", "repaying", "in_arrears"):
            late = [i for i in loan.installments if i[0] < today and i[2] < i[1]]
            for inst in late:
                inst[3] = True
            if late:
                target = ("defaulted" if (today - late[0][0]).days > 90 else "in_arrears")
                if loan.status != target:
                    loan.status = target
                    self.members[loan.borrower].frozen = True
                    changed.append(loan.number)
                    if target == "defaulted":
                        self.call(loan)
        assert sorted(arrears) == sorted(changed)

    # ------------------------------------------------------------ data rights
    def owes_or_is_owed(self, member: MMember) -> bool:
        """What keeps a member from being erased: an open loan, a pledge not settled, a
        loan lent to and not repaid in full, or money in the wallet."""
        return (any(loan.borrower == member.id and loan.status in OPEN
                    for loan in self.loans.values())
                or any(p.lender == member.id and (
                    p.status in ("proposed", "confirmed")
                    or (p.status == "posted" and self.loans[p.loan].status != "repaid"))
                    for p in self.pledges.values())
                or member.balance != 0 or member.held != 0)

    @precondition(lambda self: self.members)
    @rule(who=st.integers(0, 99))
    def erase(self, who: int) -> None:
        """DATA DELETE, then the operator's erasure: refused while money is owed or held;
        otherwise the person is anonymised and the books are untouched."""
        member = self.pick(list(self.members.values()), who)
        self.tx += 1
        case = self.run(privacy.open_request, member_id=member.id, kind=DataRequestKind.ERASE,
                        text=None, now=self.now(), request_key=f"erase:{self.tx}")
        blocked = self.owes_or_is_owed(member)
        try:
            self.run(privacy.erase, number=case.number or "", operator="machine",
                     now=self.now())
        except NotAllowed:
            assert blocked, member
            return
        assert not blocked, member
        self.erased[member.id] = self.members.pop(member.id)

    def call(self, loan: MLoan) -> None:
        """A default calls the held guarantees and pays the lenders pro rata."""
        held = self.guarantees_of(loan, "held")
        if not held:
            return
        owed = [p for p in (self.pledges[pid] for pid in sorted(loan.pledges))
                if p.status == "posted" and p.entitled > p.repaid]
        take = min(sum(p.entitled - p.repaid for p in owed), sum(g.held for g in held))
        for g, share in zip(held, largest_remainder_whole(take, [g.held for g in held], 100),
                            strict=True):
            guarantor = self.members[g.guarantor]
            guarantor.held -= g.held
            guarantor.balance -= share
            g.status, g.held, g.called = ("called" if share else "released"), 0, share
            event("a guarantee called")
        for p, part in zip(owed, largest_remainder_whole(
                take, [p.entitled - p.repaid for p in owed], 100), strict=True):
            p.repaid += part
            self.members[p.lender].balance += part
        loan.repaid += take
        left = take
        for inst in loan.installments:
            part = min(left, inst[1] - inst[2])
            inst[2] += part
            left -= part

    # ------------------------------------------------------------ groups and guarantees
    def form_group(self) -> None:
        everyone = list(self.members.values())
        self.run(groups.form_group, agent_id=self.agent, name="Umoja", village="Nyalenda",
                 phones=[m.phone for m in everyone], pin=PIN, now=self.now(),
                 request_key=f"group{len(everyone)}")
        self.group = {m.id: "invited" for m in everyone}

    @precondition(lambda self: self.group)
    @rule(who=st.integers(0, 99), join=st.booleans())
    def answer_invitation(self, who: int, join: bool) -> None:
        member = self.pick(list(self.members.values()), who)
        status = self.group.get(member.id)
        kw = dict(member_id=member.id, group_id=1, join=join, now=self.now())
        wanted = "joined" if join else "declined"
        if status is None:
            with pytest.raises(NotFound):
                self.run(groups.answer_invitation, **kw)
        elif status in ("invited", wanted):
            assert self.run(groups.answer_invitation, **kw) == wanted
            self.group[member.id] = wanted
        else:
            with pytest.raises(Conflict):
                self.run(groups.answer_invitation, **kw)

    @precondition(lambda self: self.loans and self.group)
    @rule(which=st.integers(0, 99), who=st.integers(0, 99),
          amount=st.sampled_from([5_000, 20_000, 100_000, 500_000, 4_900, 10_050]),
          then=st.sampled_from([None, True, False]))
    def ask_guarantee(self, which: int, who: int, amount: int, then: bool | None) -> None:
        loan = self.pick(list(self.loans.values()), which)
        guarantor = self.pick(list(self.members.values()), who)
        kw = dict(borrower_id=loan.borrower, number=loan.number, phone=guarantor.phone,
                  amount=amount, now=self.now())
        joined = {mid for mid, status in self.group.items() if status == "joined"}
        asked = any(g.loan == loan.number and g.guarantor == guarantor.id
                    for g in self.guarantees.values())
        if loan.status not in ASKABLE or loan.borrower not in joined \
                or guarantor.id not in joined or guarantor.id == loan.borrower:
            with pytest.raises(NotAllowed):
                self.run(guarantees.ask, **kw)
        elif amount % 100 or not 5_000 <= amount <= loan.amount:
            with pytest.raises(InvalidInput):
                self.run(guarantees.ask, **kw)
        elif asked:
            with pytest.raises(Conflict):
                self.run(guarantees.ask, **kw)
        else:
            made = self.run(guarantees.ask, **kw)
            self.guarantees[made.id] = MGuarantee(made.id, loan.number, guarantor.id, amount)
            if then is not None:  # answered at once, as many guarantors do
                self.answer_guarantee(list(self.guarantees).index(made.id), then)

    @precondition(lambda self: self.guarantees)
    @rule(which=st.integers(0, 999), agree=st.booleans())
    def answer_guarantee(self, which: int, agree: bool) -> None:
        g = self.pick(list(self.guarantees.values()), which)
        guarantor, loan = self.members[g.guarantor], self.loans[g.loan]
        kw = dict(guarantor_id=guarantor.id, guarantee_id=g.id, now=self.now())
        if not agree:
            if g.status in ("asked", "declined"):
                assert self.run(guarantees.decline, **kw).status == "declined"
                g.status = "declined"
            else:
                with pytest.raises(NotAllowed):
                    self.run(guarantees.decline, **kw)
            return
        if guarantor.locked_until is not None and guarantor.locked_until > self.now():
            with pytest.raises(PinLocked):
                self.run(guarantees.consent, pin=PIN, **kw)
            return
        guarantor.failures, guarantor.locked_until = 0, None  # the right PIN
        if g.status == "held":
            assert self.run(guarantees.consent, pin=PIN, **kw).status == "held"
            return
        exposure = self.exposure(g, loan)
        if g.status != "asked" or loan.status not in ASKABLE or exposure <= 0:
            with pytest.raises(NotAllowed):
                self.run(guarantees.consent, pin=PIN, **kw)
        elif exposure > guarantor.balance - guarantor.held:
            with pytest.raises(InsufficientFunds):
                self.run(guarantees.consent, pin=PIN, **kw)
        else:
            assert self.run(guarantees.consent, pin=PIN, **kw).held == exposure
            g.status, g.held = "held", exposure
            guarantor.held += exposure
            event("a guarantee held")
            loan.guaranteed += g.amount

    @precondition(lambda self: self.loans)
    @rule(which=st.integers(0, 99), guaranteed_first=st.booleans())
    def fund_and_pay_out(self, which: int, guaranteed_first: bool) -> None:
        """A lender pledges all that is open on a listed loan and confirms; it is paid
        out: the short way to the states repayments, arrears and defaults need."""
        listed = [loan for loan in self.loans_in("listed") if loan.deadline > self.now()
                  and loan.choice_until is None and loan.guaranteed >= loan.needed]
        backed = [loan for loan in listed if self.guarantees_of(loan, "held")]
        if guaranteed_first and backed:  # the loans whose default calls a guarantee
            listed = backed
        if not listed:
            return
        loan = self.pick(listed, which)
        open_ = loan.amount - loan.pledged
        waiting = {p.lender for p in self.pledges.values() if p.status == "proposed"}
        able = [m for m in self.lenders() if m.balance - m.held >= open_
                and not (m.locked_until and m.locked_until > self.now()) and m.id not in waiting]
        if not able:
            return
        lender = able[0]
        pledge = self.run(pledges.propose_pledge, lender_id=lender.id, number=loan.number,
                          amount=open_, now=self.now())
        self.pledges[pledge.id] = MPledge(pledge.id, pledge.code, lender.id, loan.number,
                                          open_, min(self.now() + timedelta(hours=24),
                                                     loan.deadline))
        loan.pledges.append(pledge.id)
        self.confirm(list(self.pledges).index(pledge.id))
        assert loan.status == "funded"
        self.disburse(list(self.loans).index(loan.number))

    @precondition(lambda self: self.loans and self.group)
    @rule(which=st.integers(0, 99), who=st.integers(0, 99))
    def guaranteed_loan_defaults(self, which: int, who: int) -> None:
        """The chain random walks seldom finish on their own, through the rules above: a
        group member's listed loan, another member's consent, funding and payout, then
        100 days with nothing repaid, so the default calls the guarantee."""
        joined = [mid for mid, status in self.group.items()
                  if status == "joined" and mid in self.members]
        listed = [loan for loan in self.loans_in("listed")
                  if loan.borrower in joined and loan.deadline > self.now()
                  and loan.choice_until is None]
        if not listed or len(joined) < 2:
            return
        loan = self.pick(listed, which)
        guarantors = [mid for mid in joined if mid != loan.borrower]
        guarantor = self.members[self.pick(guarantors, who)]
        if not self.guarantees_of(loan, "held"):
            self.ask_guarantee(list(self.loans).index(loan.number),
                               list(self.members).index(guarantor.id), 5_000, True)
        self.fund_and_pay_out(which, guaranteed_first=True)
        if loan.status in BEING_REPAID:
            self.time_passes(24 * 100)

    # ------------------------------------------------------------ choices and pauses
    @precondition(lambda self: self.loans)
    @rule(which=st.integers(0, 99), action=st.sampled_from(["take", "extend"]))
    def choose(self, which: int, action: str) -> None:
        loan = self.pick(list(self.loans.values()), which)
        borrower = self.members[loan.borrower]
        open_choice = (loan.status == "listed" and loan.choice_until is not None
                       and loan.choice_until > self.now())
        kw = dict(borrower_id=loan.borrower, number=loan.number, now=self.now())
        if action == "extend":
            if not open_choice or loan.extended:
                with pytest.raises(NotAllowed):
                    self.run(choices.extend, **kw)
                return
            self.run(choices.extend, **kw)
            loan.extended, loan.choice_until = True, None
            loan.deadline = self.now() + timedelta(days=7)
            return
        if borrower.locked_until is not None and borrower.locked_until > self.now():
            with pytest.raises(PinLocked):
                self.run(choices.take_pledged, pin=PIN, **kw)
            return
        borrower.failures, borrower.locked_until = 0, None
        if loan.status == "funded":  # a replay
            assert self.run(choices.take_pledged, pin=PIN, **kw).status == "funded"
            return
        if not open_choice:
            with pytest.raises(NotAllowed):
                self.run(choices.take_pledged, pin=PIN, **kw)
            return
        taken = self.run(choices.take_pledged, pin=PIN, **kw)
        event("what was pledged taken")
        loan.amount, loan.choice_until = loan.pledged, None
        assert (taken.amount, taken.fee) == (loan.amount, loan.fee)
        for pid in loan.pledges:
            if self.pledges[pid].status == "proposed":
                self.pledges[pid].status = "lapsed"
        self.fund(loan)

    @precondition(lambda self: self.loans)
    @rule(which=st.integers(0, 99), weeks=st.sampled_from([1, 2, 3]),
          reason=st.sampled_from(["sick", "other"]), then=st.sampled_from([None, True, False]))
    def ask_pause(self, which: int, weeks: int, reason: str, then: bool | None) -> None:
        loan = self.pick(list(self.loans.values()), which)
        kw = dict(borrower_id=loan.borrower, number=loan.number, weeks=weeks, reason=reason,
                  now=self.now())
        mine = [p for p in self.pauses.values() if p.loan == loan.number]
        if weeks not in (1, 2):
            with pytest.raises(InvalidInput):
                self.run(pauses.ask, **kw)
        elif loan.status not in BEING_REPAID or any(p.status == "asked" for p in mine) \
                or any(p.status == "approved" for p in mine):
            with pytest.raises(NotAllowed):
                self.run(pauses.ask, **kw)
        else:
            made = self.run(pauses.ask, **kw)
            self.pauses[made.id] = MPause(made.id, loan.number, weeks)
            if then is not None:  # answered at once
                self.decide_pause(list(self.pauses).index(made.id), then)

    @precondition(lambda self: self.pauses)
    @rule(which=st.integers(0, 99), approve=st.booleans())
    def decide_pause(self, which: int, approve: bool) -> None:
        pause = self.pick(list(self.pauses.values()), which)
        loan = self.loans[pause.loan]
        wanted = "approved" if approve else "declined"
        kw = dict(pause_id=pause.id, approve=approve, now=self.now())
        if pause.status == wanted:
            assert self.run(pauses.decide, **kw).status == wanted
        elif pause.status != "asked" or (approve and loan.status not in BEING_REPAID):
            with pytest.raises(NotAllowed):
                self.run(pauses.decide, **kw)
        else:
            self.run(pauses.decide, **kw)
            pause.status = wanted
            event(f"a pause {wanted}")
            if approve:
                for inst in loan.installments:
                    if inst[2] < inst[1]:
                        inst[0] += timedelta(weeks=pause.weeks)
                today = self.today()
                if loan.status == "in_arrears" and not any(
                        i[2] < i[1] and i[0] < today for i in loan.installments):
                    loan.status = "repaying"

    # ------------------------------------------------------------ what must always hold
    @invariant()
    def books_are_sound_and_match_the_model(self) -> None:
        with self.svc.uow() as uow:
            assert checks.check(uow) == []
            s = uow.session
            accounts = {a.code: a for a in s.scalars(select(Account))}
            for member in self.members.values():
                wallet = accounts.get(ledger.wallet_code(member.id))
                got = (wallet.balance, wallet.debits_pending) if wallet else (0, 0)
                assert got == (member.balance, member.held), member
                row = s.get(Member, member.id)
                assert (row.pin_failures, row.pin_locked_until, row.credit_limit,
                        row.limit_frozen) == (member.failures, member.locked_until,
                                              member.limit, member.frozen), member
            for member in self.erased.values():
                row = s.get(Member, member.id)
                assert (row.status, row.phone, row.national_id, row.pin_hash) == (
                    MemberStatus.ERASED, privacy.erased_phone(member.id), None, None)
                wallet = accounts.get(ledger.wallet_code(member.id))
                assert (wallet.balance, wallet.debits_pending) == (0, 0) if wallet else True
            for code, expected in ((ledger.FEES, self.fees), (ledger.SUSPENSE, self.suspense)):
                got = accounts[code].balance if code in accounts else 0
                assert got == expected, code
            out = sum(a.debits_posted - a.credits_posted for a in accounts.values()
                      if a.kind == "mobile_money")
            payouts = sum(a.balance for a in accounts.values() if a.kind == "payout")
            assert payouts == self.paid_out
            assert out == sum(a for _, a, _ in self.payments)
            for loan in self.loans.values():
                row = s.get(Loan, loan.id)
                assert (row.status, row.pledged, row.funded, row.repaid, row.fee_paid) == (
                    loan.status, loan.pledged, loan.funded if row.status != "expired" else 0,
                    loan.repaid, loan.fee_paid), loan
                got = [[i.due_on, i.amount, i.paid, i.late] for i in s.scalars(
                    select(Installment).where(Installment.loan_id == loan.id)
                    .order_by(Installment.seq))]
                assert got == loan.installments, loan
            for pledge in self.pledges.values():
                row = s.get(Pledge, pledge.id)
                assert (row.status, row.entitled, row.repaid) == (
                    pledge.status, pledge.entitled, pledge.repaid), pledge


def run_machine(services, redis_handle, database_url, tmp_root, examples: int) -> None:
    config = make_settings(database_url, redis_url="", tmp_root=tmp_root,
                           loan={"fee_percent": str(FEE), "lender_interest_percent": str(INTEREST)})
    db = Database(config)
    try:
        LedgerMachine.svc = Services(settings=config, db=db, redis=redis_handle,
                                     clock=Clock())
        run_state_machine_as_test(LedgerMachine, settings=settings(
            max_examples=examples, stateful_step_count=30, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    finally:
        clean_database(db)
        db.dispose()


def test_random_walks_keep_the_books(services, redis_handle, database_url, tmp_root):
    examples = int(os.environ.get("HARAMBEE_STATE_EXAMPLES", "30"))  # raise it to dig deeper
    run_machine(services, redis_handle, database_url, tmp_root, examples=examples)
