"""Big worlds, fast: thousands of lenders and one loan they fund, for the benchmark and
the 10,000-lender allocation test; and a whole loan book for the console's dashboard.

Members, wallets and top-up receipts are written in bulk (Core statements through the
ledger's own bulk transfer, so every counter and receipt is as the use cases leave them);
the last pledge is confirmed, and the loan disbursed, through the real use cases.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, insert, select, update

from core import disbursements, ledger, loans, members, pledges
from core.bulk import insert_rows
from core.db import UnitOfWork
from core.models import (
    PAID_OUT,
    Account,
    AccountKind,
    Installment,
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    Payment,
    PaymentKind,
    Pledge,
    PledgeStatus,
    Transfer,
    TransferCode,
)
from core.payouts import PayoutGateway
from workers.payouts import send_payout

PIN = "2580"
_PLEDGES = Pledge.__table__


@dataclass(frozen=True)
class Crowd:
    """What `crowd_funded_loan` made."""

    loan_id: int
    number: str
    lender_ids: list[int]
    pledges: list[int]  # amounts, in pledge id order


def bulk_lenders(uow: UnitOfWork, count: int, balance: int, now: datetime,
                 first_phone: int = 730_000_000) -> list[int]:
    """`count` verified lenders, each with `balance` in the wallet from a top-up receipt."""
    s = uow.session
    limit = uow.settings.minor(uow.settings.credit.first_loan_limit)
    ids = list(s.scalars(insert(Member).returning(Member.id, sort_by_parameter_order=True), [
        {"phone": f"+254{first_phone + i}", "name": f"Lender {i}", "roles": "lender",
         "status": MemberStatus.VERIFIED, "language": "en", "credit_limit": limit,
         "created_at": now, "verified_at": now, "terms_accepted_at": now}
        for i in range(count)]))
    wallets = list(s.scalars(insert(Account).returning(Account.id, sort_by_parameter_order=True), [
        {"code": ledger.wallet_code(mid), "kind": AccountKind.WALLET, "member_id": mid,
         "no_overdraft": True, "debits_pending": 0, "debits_posted": 0, "credits_pending": 0,
         "credits_posted": 0} for mid in ids]))
    if balance:
        payments = list(s.scalars(
            insert(Payment).returning(Payment.id, sort_by_parameter_order=True), [
                {"provider": "mpesa", "transaction_id": f"SEED{first_phone + i}",
                 "phone": f"+254{first_phone + i}", "amount": balance, "currency":
                 uow.settings.app.currency, "reference": f"+254{first_phone + i}",
                 "kind": PaymentKind.TOPUP, "member_id": mid, "fee_part": 0, "lender_part": 0,
                 "refund_part": 0, "occurred_at": now, "created_at": now}
                for i, mid in enumerate(ids)]))
        mobile = ledger.system_account(uow, ledger.mobile_money_code("mpesa")).id
        ledger.transfer_many(uow, [
            ledger.Movement(key=f"receipt:mpesa:SEED{first_phone + i}", debit_id=mobile,
                            credit_id=wallet, amount=balance, code="receipt", payment_id=pid)
            for i, (wallet, pid) in enumerate(zip(wallets, payments, strict=True))], now)
    return ids


def borrower_with_listed_loan(uow_factory: Callable[[], UnitOfWork], amount: int,
                              now: datetime, phone: str) -> tuple[int, str]:
    """A verified borrower (limit raised to `amount`) and their listed loan."""
    with uow_factory() as uow:
        member = members.register(uow, phone=phone, name="Bench Borrower", roles="borrower",
                                  pin=PIN, accept_terms=True, now=now).member
        member.status = MemberStatus.VERIFIED
        member.credit_limit = max(member.credit_limit, amount)
        loan, _ = loans.request_loan(uow, borrower_id=member.id, amount=amount,
                                     term_weeks=uow.settings.loan.terms_weeks[0],
                                     purpose="stock", now=now)
        uow.commit()
        number, borrower_id = loan.number or "", member.id
    loans.list_loan(uow_factory(), borrower_id=borrower_id, number=number, pin=PIN, now=now)
    return borrower_id, number


def crowd_funded_loan(uow_factory: Callable[[], UnitOfWork], payouts: PayoutGateway,
                      lenders: int | Sequence[int], pledge: int, now: datetime, *,
                      disburse: bool = True, borrower_phone: str = "+254711999999") -> Crowd:
    """One loan pledged by `lenders` new lenders, or by these existing lenders (each
    wallet holding at least `pledge`), `pledge` each; funded by confirming the last
    pledge, and disbursed."""
    count = lenders if isinstance(lenders, int) else len(lenders)
    amount = count * pledge
    _, number = borrower_with_listed_loan(uow_factory, amount, now, borrower_phone)
    with uow_factory() as uow:
        lender_ids = (bulk_lenders(uow, lenders, pledge, now) if isinstance(lenders, int)
                      else list(lenders))
        loan = loans.find_loan(uow, number, lock=True)
        confirm_by = now + timedelta(hours=uow.settings.loan.pledge_confirm_hours)
        pledge_ids = list(uow.session.scalars(
            insert(Pledge).returning(Pledge.id, sort_by_parameter_order=True), [
                {"loan_id": loan.id, "lender_id": mid, "amount": pledge,
                 "code": f"{1000 + i % 9000}", "status": PledgeStatus.PROPOSED,
                 "repaid": 0, "entitled": 0, "created_at": now, "confirm_by": confirm_by}
                for i, mid in enumerate(lender_ids)]))
        wallets = dict(uow.session.execute(select(Account.member_id, Account.id).where(
            Account.member_id.in_(lender_ids), Account.kind == AccountKind.WALLET)).tuples().all())
        assert loan.account_id is not None
        held = list(zip(pledge_ids[:-1], lender_ids[:-1], strict=True))
        ledger.transfer_many(uow, [
            ledger.Movement(key=f"hold:{pid}", debit_id=wallets[mid], credit_id=loan.account_id,
                            amount=pledge, code=TransferCode.PLEDGE_HOLD, loan_id=loan.id)
            for pid, mid in held], now, pending=True, expires_at=loan.deadline)
        hold_ids = dict(uow.session.execute(select(Transfer.key, Transfer.id).where(
            Transfer.loan_id == loan.id, Transfer.code == TransferCode.PLEDGE_HOLD)).tuples().all())
        if held:
            uow.session.execute(
                update(_PLEDGES).where(_PLEDGES.c.id == bindparam("pid", type_=Integer))
                .values(status=PledgeStatus.CONFIRMED, confirmed_at=now,
                        hold_id=bindparam("hid", type_=Integer)),
                [{"pid": pid, "hid": hold_ids[f"hold:{pid}"]} for pid, _ in held])
        loan.pledged = pledge * len(held)
        last_code = f"{1000 + (count - 1) % 9000}"
        last_phone = uow.session.scalar(select(Member.phone).where(
            Member.id == lender_ids[-1]))
        uow.commit()
        loan_id = loan.id
    with uow_factory() as uow:  # the real use case funds it: every hold posted at once
        done = pledges.confirm_pledge(uow, phone=last_phone or "", code=last_code, now=now)
        assert done.funded
        uow.commit()
    if disburse:
        payout = disbursements.disburse(uow_factory(), loan_id=loan_id,
                                        provider=payouts.provider, now=now)
        assert payout is not None
        send_payout(uow_factory, payouts, payout.id, now)
    return Crowd(loan_id, number, lender_ids, [pledge] * count)


def loan_total(uow: UnitOfWork, loan_id: int) -> int:
    loan = uow.session.get(Loan, loan_id)
    assert loan is not None
    return loan.total_due


# ---------------------------------------------------------------- a whole loan book

@dataclass(frozen=True)
class Book:
    """What `bulk_loan_book` made."""

    loans: int
    agents: int
    places: int


def _chunks(rows: list[dict[str, Any]], size: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def bulk_loan_book(uow: UnitOfWork, loans: int, today: date, *, seed: int = 14,
                   agents: int = 200, places: int = 50, lenders: int = 2_000) -> Book:
    """`loans` loans, one borrower each, spread over a year and every state, written in
    bulk (`core.bulk.insert_rows`: one statement per 20,000 rows): agents who registered
    the borrowers, villages, four weekly installments for every loan paid out (paid on
    time, or some late by days to months), and one posted pledge each from `lenders`
    lenders (`bulk_lenders`).

    Only the dashboard's tables are filled, not the ledger: a benchmark of reads. The
    books would not pass `harambee check`; the benchmark's database is dropped after."""
    rng = random.Random(seed)
    s = uow.session
    now = datetime.combine(today, datetime.min.time(), UTC)
    limit = uow.settings.minor(uow.settings.credit.first_loan_limit)
    lender_ids = bulk_lenders(uow, lenders, 0, now, first_phone=760_000_000)
    members_table, loans_table = Member.__table__, Loan.__table__

    def person(phone: str, name: str, roles: str, agent_id: int | None,
               place: str) -> dict[str, Any]:
        return {"phone": phone, "name": name, "roles": roles, "agent_id": agent_id,
                "place": place, "status": MemberStatus.VERIFIED, "language": "en",
                "credit_limit": limit, "created_at": now - timedelta(days=rng.randrange(30, 400)),
                "verified_at": now - timedelta(days=rng.randrange(0, 30)),
                "terms_accepted_at": now, "pin_failures": 0, "limit_frozen": False,
                "loans_repaid": 0, "loans_repaid_on_time": 0, "tips_opt_out": False,
                "sms_unreachable": False}

    insert_rows(s, members_table, [person(f"+254750{i:06d}", f"Agent {i}", "agent", None,
                                          f"Village {i % places}") for i in range(agents)])
    agent_ids = list(s.scalars(select(Member.id).where(Member.phone.like("+254750%"))))
    for chunk in _chunks([person(f"+254720{i:06d}", f"Borrower {i}", "borrower",
                                 rng.choice(agent_ids), f"Village {rng.randrange(places)}")
                          for i in range(loans)]):
        insert_rows(s, members_table, chunk)
    borrower_ids = list(s.scalars(select(Member.id).where(Member.phone.like("+254720%"))
                                  .order_by(Member.id)))
    states = ([LoanStatus.LISTED] * 8 + [LoanStatus.FUNDED] * 2 + [LoanStatus.EXPIRED] * 3
              + [LoanStatus.REPAYING] * 45 + [LoanStatus.IN_ARREARS] * 12
              + [LoanStatus.DISBURSED] * 5 + [LoanStatus.REPAID] * 20
              + [LoanStatus.DEFAULTED] * 5)
    # How long ago a loan was asked for, by where it stands now: loans being repaid on
    # time are recent, loans in arrears older, defaulted and repaid ones older still.
    ages = {LoanStatus.LISTED: (1, 14), LoanStatus.FUNDED: (2, 10),
            LoanStatus.EXPIRED: (20, 365), LoanStatus.DISBURSED: (2, 8),
            LoanStatus.REPAYING: (8, 30), LoanStatus.IN_ARREARS: (12, 130),
            LoanStatus.DEFAULTED: (130, 365), LoanStatus.REPAID: (30, 365)}
    loan_rows: list[dict[str, Any]] = []
    schedules: dict[str, list[dict[str, Any]]] = {}
    for i, borrower_id in enumerate(borrower_ids):
        state = rng.choice(states)
        amount = rng.randrange(5, 50) * 10_000
        fee = amount // 20 // 100 * 100
        created = now - timedelta(days=rng.randrange(*ages[state]), hours=rng.randrange(24))
        listed = created + timedelta(minutes=5)
        funded = listed + timedelta(days=rng.randrange(0, 2), hours=rng.randrange(24))
        paid_out = state in PAID_OUT
        number = f"L{1000 + i}"
        row: dict[str, Any] = {"number": number, "borrower_id": borrower_id, "status": state,
               "amount": amount, "fee": fee, "interest": 0, "term_weeks": 4,
               "installment_count": 4, "purpose": "stock",
               "pledged": amount if paid_out else 0, "funded": amount if paid_out else 0,
               "repaid": 0, "fee_paid": 0, "created_at": created, "listed_at": listed,
               "funded_at": funded if paid_out or state == LoanStatus.FUNDED else None,
               "disbursed_at": funded + timedelta(hours=1) if paid_out else None,
               "deadline": listed + timedelta(days=14)}
        loan_rows.append(row)
        if paid_out:
            schedules[number] = _schedule(rng, row, state, today)
    for chunk in _chunks(loan_rows):
        insert_rows(s, loans_table, chunk)
    loan_ids = dict(s.execute(select(Loan.number, Loan.id)).tuples().all())
    installments, pledge_rows = [], []
    for row in loan_rows:
        plan = schedules.get(row["number"])
        if plan is None:
            continue
        loan_id = loan_ids[row["number"]]
        installments += [{**inst, "loan_id": loan_id} for inst in plan]
        pledge_rows.append({"loan_id": loan_id, "lender_id": rng.choice(lender_ids),
                            "amount": row["amount"], "code": "1000",
                            "status": PledgeStatus.POSTED, "entitled": row["amount"],
                            "repaid": row["repaid"] - row["fee_paid"],
                            "created_at": row["listed_at"],
                            "confirm_by": row["listed_at"] + timedelta(days=1)})
    for chunk in _chunks(installments):
        insert_rows(s, Installment.__table__, chunk)
    for chunk in _chunks(pledge_rows):
        insert_rows(s, _PLEDGES, chunk)
    return Book(loans=loans, agents=agents, places=places)


def _schedule(rng: random.Random, loan: dict[str, Any], state: LoanStatus,
              today: date) -> list[dict[str, Any]]:
    """Four weekly installments from the payout, paid as the state says (a loan in
    arrears or defaulted stops paying at a random installment already due); sets the
    loan's `repaid` and `fee_paid` to match."""
    total = loan["amount"] + loan["fee"]
    parts = [total // 4 // 100 * 100] * 3
    parts.append(total - sum(parts))
    start = loan["disbursed_at"].date()
    dues = [start + timedelta(weeks=k + 1) for k in range(4)]
    due_so_far = sum(1 for d in dues if d < today)
    stops = (rng.randrange(max(due_so_far, 1))
             if state in (LoanStatus.IN_ARREARS, LoanStatus.DEFAULTED) else 4)
    rows, paid_total = [], 0
    for seq, (due_on, part) in enumerate(zip(dues, parts, strict=True), start=1):
        paid = part if state == LoanStatus.REPAID or (due_on <= today and seq <= stops) else 0
        paid_total += paid
        rows.append({"seq": seq, "due_on": due_on, "amount": part, "paid": paid,
                     "late": False, "paid_at": loan["disbursed_at"] if paid else None})
    loan["repaid"], loan["fee_paid"] = paid_total, paid_total * loan["fee"] // total
    return rows
