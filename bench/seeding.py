"""Big worlds, fast: thousands of lenders and one loan they fund, for the benchmark and
the 10,000-lender allocation test.

Members, wallets and top-up receipts are written in bulk (Core statements through the
ledger's own bulk transfer, so every counter and receipt is as the use cases leave them);
the last pledge is confirmed, and the loan disbursed, through the real use cases.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, bindparam, insert, select, update

from core import disbursements, ledger, loans, members, pledges
from core.db import UnitOfWork
from core.models import (
    Account,
    AccountKind,
    Loan,
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
