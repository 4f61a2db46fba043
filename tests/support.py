"""Test helpers: a clock tests can move, and `World`, which builds members, wallets and
loans through the real use cases (like Flask's tutorial AuthActions)."""
from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rq import Queue, SimpleWorker
from sqlalchemy import text

from core import disbursements, ledger, loans, members, pledges, repayments, withdrawals
from core.db import Database
from core.models import Base, Loan, Member, Pledge
from runtime.jobs import PAYMENTS, QUEUES
from runtime.services import Services
from web.payments import SIGNATURE, sign
from workers import jobs
from workers.payouts import send_payout

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAIROBI = ZoneInfo("Africa/Nairobi")  # a Monday, 12:00 in Nairobi
PIN = "2580"


def run_worker(svc: Services, queues: tuple[str, ...] = QUEUES) -> None:
    """What `harambee worker --burst` does, in this process, with these services: every
    queued job, and the jobs those enqueue, until the queues are empty (only `queues`,
    as `--queue` does)."""
    jobs.bind(svc)
    try:
        connection = svc.redis.client
        SimpleWorker([Queue(n, connection=connection) for n in queues],
                     connection=connection).work(burst=True, logging_level="WARNING")
    finally:
        jobs.bind(None)


def record_payments(svc: Services) -> None:
    """Record the paybill confirmations stored at the door (the payments queue only)."""
    run_worker(svc, (PAYMENTS,))


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released together by a barrier; return each
    call's result or the exception it raised, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - reported back to the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a call hung"
    return results


def post_signed(client: Any, body: Any, *, secret: str, key: str = "test-webhook-key",
                moment: int | None = None) -> Any:
    """POST a normalised receipt to /hooks/payments, signed as its provider signs it."""
    raw = json.dumps(body).encode()
    return client.post(f"/hooks/payments?key={key}", data=raw, content_type="application/json",
                       headers={SIGNATURE: sign(secret, raw, moment)})


def paybill(client: Any, *, trans_id: str, amount: int, account: str,
            when: datetime, msisdn: str = "2547****0001",
            token: str = "test-callback-token-0123") -> Any:
    """A customer's paybill payment, as Daraja confirms it to our C2B hook (`amount` in
    minor units, sent as Daraja does: a decimal string of shillings)."""
    local = when.astimezone(NAIROBI)
    body = {"TransactionType": "Pay Bill", "TransID": trans_id,
            "TransTime": local.strftime("%Y%m%d%H%M%S"),
            "TransAmount": f"{amount // 100}.{amount % 100:02d}", "BusinessShortCode": "174379",
            "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "",
            "ThirdPartyTransID": "", "MSISDN": msisdn, "FirstName": "Amina",
            "MiddleName": "", "LastName": "Otieno"}
    return client.post(f"/hooks/c2b/{token}/confirmation", json=body)


class Clock:
    """Injectable time: starts at START, moves only when told."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return self.now


@dataclass
class World:
    services: Services
    _phones: Any = None
    _ids: Any = None
    _tx: Any = None

    def __post_init__(self) -> None:
        self._phones = itertools.count(10_000)
        self._ids = itertools.count(20_000_001)
        self._tx = itertools.count(1)

    @property
    def settings(self) -> Any:
        return self.services.settings

    @property
    def now(self) -> datetime:
        return self.services.now()

    def uow(self) -> Any:
        return self.services.uow()

    def next_phone(self) -> str:
        return f"+2547{next(self._phones):08d}"

    def member(self, name: str = "Amina Otieno", *, roles: str = "borrower,lender",
               verified: bool = True, language: str = "en", phone: str | None = None,
               pin: str | None = PIN, terms: bool = True) -> Member:
        agent_id = self.agent().id if verified else None
        return members.register(self.uow(), phone=phone or self.next_phone(), name=name,
                                national_id=str(next(self._ids)), language=language,
                                roles=roles, pin=pin, agent_id=agent_id, accept_terms=terms,
                                now=self.now).member

    _agent: Member | None = None

    def agent(self) -> Member:
        if self._agent is None:
            self._agent = members.register(
                self.uow(), phone=self.next_phone(), name="Grace Agent",
                national_id=str(next(self._ids)), roles="agent", pin=PIN, accept_terms=True,
                now=self.now).member
        return self._agent

    def top_up(self, member: Member, amount: int) -> None:
        self.pay(member.phone, amount)

    def pay(self, reference: str, amount: int, *, phone: str | None = None,
            transaction_id: str | None = None) -> Any:
        return repayments.record_payment(
            self.uow(), provider="mpesa", transaction_id=transaction_id or f"TX{next(self._tx)}",
            phone=phone or reference, amount=amount, currency=self.settings.app.currency,
            reference=reference, occurred_at=self.now, now=self.now).payment

    def listed_loan(self, borrower: Member | None = None, amount: int = 300_000,
                    term_weeks: int = 4, purpose: str = "stock") -> Loan:
        borrower = borrower or self.member("Wanjiru Kamau", roles="borrower")
        loan, _ = loans.request_loan(self.uow(), borrower_id=borrower.id, amount=amount,
                                     term_weeks=term_weeks, purpose=purpose, now=self.now)
        return loans.list_loan(self.uow(), borrower_id=borrower.id, number=loan.number or "",
                               pin=PIN, now=self.now)

    def lender(self, balance: int = 1_000_000, name: str = "Otieno Lender") -> Member:
        lender = self.member(name, roles="lender")
        if balance:
            self.top_up(lender, balance)
        return lender

    def pledge(self, lender: Member, loan: Loan, amount: int, *, confirm: bool = True) -> Pledge:
        pledge = pledges.propose_pledge(self.uow(), lender_id=lender.id,
                                        number=loan.number or "", amount=amount, now=self.now)
        if confirm:
            pledges.confirm_pledge(self.uow(), phone=lender.phone, code=pledge.code,
                                   now=self.now)
        return pledge

    def funded_loan(self, lenders: int = 2, amount: int = 300_000, **kw: Any) -> Loan:
        loan = self.listed_loan(amount=amount, **kw)
        unit = self.settings.app.minor_scale  # pledges are whole shillings
        share = amount // lenders // unit * unit
        rest = amount - share * lenders
        for i in range(lenders):
            self.pledge(self.lender(balance=amount), loan, share + (rest if i == 0 else 0))
        return self.loan(loan.number or "")

    def disbursed_loan(self, **kw: Any) -> Loan:
        return self.disburse(self.funded_loan(**kw))

    def disburse(self, loan: Loan) -> Loan:
        """Pay a funded loan out and run its payout as a worker would."""
        payout = disbursements.disburse(self.uow(), loan_id=loan.id,
                                        provider=self.services.payouts.provider, now=self.now)
        assert payout is not None
        send_payout(self.services.uow, self.services.payouts, payout.id, self.now)
        return self.loan(loan.number or "")

    def withdraw(self, member: Member, amount: int, *, key: str, pin: str = PIN,
                 send: bool = True) -> Any:
        """A withdrawal from the member's wallet, and (unless `send` is False) its payout
        run as a worker would."""
        payout = withdrawals.withdraw(self.uow(), member_id=member.id, amount=amount, pin=pin,
                                      provider=self.services.payouts.provider,
                                      request_key=key, now=self.now)
        if send:
            send_payout(self.services.uow, self.services.payouts, payout.id, self.now)
        return payout

    def loan(self, number: str) -> Loan:
        with self.uow() as uow:
            loan = loans.find_loan(uow, number)
            _ = loan.installments, loan.borrower
            return loan

    def loan_number_for(self, loan_id: int) -> str:
        with self.uow() as uow:
            loan = uow.session.get(Loan, loan_id)
            assert loan is not None and loan.number is not None
            return loan.number

    def wallet(self, member: Member) -> Any:
        return self.wallet_of(member.id)

    def wallet_of(self, member_id: int) -> Any:
        with self.uow() as uow:
            account = ledger.wallet(uow, member_id)
            uow.commit()
            return account


def clean_database(db: Database) -> None:
    """Empty every table (tests and benchmarks start from nothing)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.is_postgres:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            has_sequence = conn.execute(text(
                "SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first()
            if has_sequence:
                conn.execute(text("DELETE FROM sqlite_sequence"))
