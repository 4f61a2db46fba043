"""Replaying any use case with the same idempotency key changes nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import checks, disbursements, ledger, loans, members, pledges, withdrawals
from core.errors import Conflict, InvalidInput
from core.models import (
    Account,
    Installment,
    Loan,
    LoanStatus,
    Member,
    OutboxMessage,
    Payment,
    Payout,
    PayoutStatus,
    Pledge,
    PledgeStatus,
    Transfer,
    TransferCode,
)
from tests.support import PIN

TABLES = (Member, Account, Transfer, Loan, Installment, Pledge, Payment, Payout, OutboxMessage)


def snapshot(world):
    """Every row count and every account's counters: what a replay must not change."""
    with world.uow() as uow:
        s = uow.session
        counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}
        accounts = s.execute(select(Account.code, Account.debits_pending, Account.debits_posted,
                                    Account.credits_pending, Account.credits_posted)
                             .order_by(Account.code)).all()
        loan_rows = s.execute(select(Loan.id, Loan.status, Loan.pledged, Loan.funded,
                                     Loan.repaid).order_by(Loan.id)).all()
        pledges = s.execute(select(Pledge.id, Pledge.status, Pledge.repaid)
                            .order_by(Pledge.id)).all()
        assert checks.check(uow) == []
    return counts, accounts, loan_rows, pledges


def run(world, use_case, **kw):
    """One use case in its own transaction, as every channel calls it."""
    return use_case(world.uow(), **kw)


def ledger_transfer(world, **kw):
    """The ledger's primitive inside a transaction of the test's own."""
    with world.uow() as uow:
        done = ledger.transfer(uow, **kw)
        uow.commit()
        return done


def test_record_payment_same_txid_is_one_receipt(world):
    loan = world.disbursed_loan()
    first = world.pay(loan.number, 10_000, transaction_id="QF1")
    before = snapshot(world)
    again = world.pay(loan.number, 10_000, transaction_id="QF1")
    assert again.id == first.id
    assert snapshot(world) == before


def test_record_payment_same_txid_other_amount_or_reference_conflicts(world):
    lender = world.lender(balance=0)
    world.pay(lender.phone, 10_000, transaction_id="QF2")
    before = snapshot(world)
    with pytest.raises(Conflict):
        world.pay(lender.phone, 10_001, transaction_id="QF2")
    with pytest.raises(Conflict):
        world.pay("L1001", 10_000, transaction_id="QF2")
    assert snapshot(world) == before


def test_top_up_replay_with_the_phone_written_differently_is_the_same_receipt(world):
    lender = world.lender(balance=0)
    local = "0" + lender.phone[4:]
    world.pay(lender.phone, 5_000, transaction_id="QF3")
    before = snapshot(world)
    with pytest.raises(Conflict):  # a different reference is a different receipt
        world.pay(local, 5_000, transaction_id="QF3")
    world.pay(lender.phone, 5_000, transaction_id="QF3")
    assert snapshot(world) == before
    assert world.wallet(lender).available == 5_000


def test_request_loan_with_a_request_key(world):
    borrower = world.member("Wanjiru Kamau", roles="borrower")
    kw = dict(borrower_id=borrower.id, amount=100_000, term_weeks=4, purpose="farm",
              now=world.now, request_key="ussd:abc:1")
    first, facts = run(world, loans.request_loan, **kw)
    before = snapshot(world)
    again, again_facts = run(world, loans.request_loan, **kw)
    assert again.id == first.id and again_facts == facts
    assert snapshot(world) == before


def test_request_key_reused_for_another_loan_or_borrower_conflicts(world):
    borrower = world.member("Wanjiru Kamau", roles="borrower")
    other = world.member("Achieng Odhiambo", roles="borrower")
    kw = dict(borrower_id=borrower.id, amount=100_000, term_weeks=4, purpose="farm",
              now=world.now, request_key="ussd:abc:2")
    run(world, loans.request_loan, **kw)
    before = snapshot(world)
    with pytest.raises(Conflict):
        run(world, loans.request_loan, **{**kw, "borrower_id": other.id})
    with pytest.raises(Conflict):
        run(world, loans.request_loan, **{**kw, "amount": 200_000})
    assert snapshot(world) == before


def test_propose_pledge_with_a_request_key(world):
    loan = world.listed_loan()
    lender = world.lender()
    kw = dict(lender_id=lender.id, number=loan.number, amount=50_000, now=world.now,
              request_key="sms:ATX1")
    first = run(world, pledges.propose_pledge, **kw)
    before = snapshot(world)
    again = run(world, pledges.propose_pledge, **kw)
    assert (again.id, again.code) == (first.id, first.code)
    assert snapshot(world) == before
    other = world.lender(name="Other Lender")
    before = snapshot(world)
    with pytest.raises(Conflict):
        run(world, pledges.propose_pledge, **{**kw, "lender_id": other.id})
    with pytest.raises(Conflict):
        run(world, pledges.propose_pledge, **{**kw, "amount": 60_000})
    assert snapshot(world) == before


def test_confirm_pledge_twice_holds_once(world):
    loan = world.listed_loan(amount=300_000)
    lender = world.lender()
    pledge = world.pledge(lender, loan, 100_000, confirm=False)
    first = run(world, pledges.confirm_pledge, phone=lender.phone, code=pledge.code, now=world.now)
    assert first.status == PledgeStatus.CONFIRMED and not first.funded
    before = snapshot(world)
    again = run(world, pledges.confirm_pledge, phone=lender.phone, code=pledge.code, now=world.now)
    assert again.pledge_id == pledge.id and not again.funded
    assert snapshot(world) == before
    assert world.wallet(lender).available == 900_000


def test_confirm_of_the_funding_pledge_twice_funds_once(world):
    loan = world.listed_loan(amount=300_000)
    lender = world.lender()
    pledge = world.pledge(lender, loan, 300_000, confirm=False)
    assert run(world, pledges.confirm_pledge, phone=lender.phone, code=pledge.code,
               now=world.now).funded
    before = snapshot(world)
    again = run(world, pledges.confirm_pledge, phone=lender.phone, code=pledge.code, now=world.now)
    assert again.funded and again.loan_status == LoanStatus.FUNDED
    assert snapshot(world) == before


def test_disburse_twice_pays_once(world):
    loan = world.funded_loan()
    provider = world.services.payouts.provider
    first = run(world, disbursements.disburse, loan_id=loan.id, provider=provider,
                now=world.now)
    before = snapshot(world)
    again = run(world, disbursements.disburse, loan_id=loan.id, provider=provider,
                now=world.now + timedelta(hours=1))
    assert again.id == first.id and snapshot(world) == before  # in flight: the same payout
    world.disburse(loan)
    paid = run(world, disbursements.disburse, loan_id=loan.id, provider=provider,
               now=world.now + timedelta(hours=2))
    assert paid.id == first.id and paid.status == PayoutStatus.PAID
    assert world.loan(loan.number).status == LoanStatus.DISBURSED
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payout)) == 1


def test_withdraw_with_the_same_request_key_pays_once(world):
    lender = world.lender(balance=100_000)
    kw = dict(member_id=lender.id, amount=30_000, pin=PIN,
              provider=world.services.payouts.provider, request_key="ussd:s1:withdraw",
              now=world.now)
    first = run(world, withdrawals.withdraw, **kw)
    before = snapshot(world)
    again = run(world, withdrawals.withdraw, **kw)
    assert again.id == first.id and again.hold_id == first.hold_id
    assert snapshot(world) == before
    assert world.wallet(lender).available == 70_000


def test_withdraw_key_reused_for_another_amount_conflicts(world):
    lender = world.lender(balance=100_000)
    kw = dict(member_id=lender.id, amount=30_000, pin=PIN,
              provider=world.services.payouts.provider, request_key="ussd:s2:withdraw",
              now=world.now)
    run(world, withdrawals.withdraw, **kw)
    before = snapshot(world)
    with pytest.raises(Conflict):
        run(world, withdrawals.withdraw, **{**kw, "amount": 40_000})
    assert snapshot(world) == before


def test_ledger_transfer_same_key_same_fields_and_different_fields(world):
    a, b = world.lender(balance=50_000), world.lender(balance=0, name="Second Lender")
    with world.uow() as uow:
        wa, wb = ledger.wallet(uow, a.id), ledger.wallet(uow, b.id)
        uow.commit()
    move = ledger.Movement(key="gift:1", debit_id=wa.id, credit_id=wb.id, amount=1_000,
                           code=TransferCode.REFUND)
    first = ledger_transfer(world, move=move, now=world.now)
    before = snapshot(world)
    again = ledger_transfer(world, move=move, now=world.now)
    assert again.id == first.id
    assert snapshot(world) == before
    for changed in (dict(amount=1_001), dict(credit_id=wa.id, debit_id=wb.id),
                    dict(code=TransferCode.FEE)):
        with pytest.raises(Conflict) as err:
            ledger_transfer(world, move=ledger.Movement(**{**move.__dict__, **changed}),
                            now=world.now)
        assert err.value.key == "ledger.key_reused"
    with pytest.raises(Conflict):  # the same key as a hold instead of a posted transfer
        ledger_transfer(world, move=move, now=world.now, pending=True)
    assert snapshot(world) == before


def test_register_twice(world):
    kw = dict(phone="0712 345 678", name="Amina Otieno", national_id="12345678",
              now=world.now)
    first = run(world, members.register, **kw)
    assert first.created
    before = snapshot(world)
    again = run(world, members.register, **{**kw, "phone": "+254712345678"})
    assert not again.created and again.member.id == first.member.id
    assert snapshot(world) == before
    with pytest.raises(Conflict):
        run(world, members.register, **{**kw, "national_id": "87654321"})
    assert snapshot(world) == before
    # Another phone with the same ID: a self-registered ID is only a claim, taken with
    # the same answer whether or not someone holds it; operators see the clash.
    other = run(world, members.register, **{**kw, "phone": "0712 000 111"})
    assert other.created and other.member.national_id is None
    with world.uow() as uow:
        assert [(a.id, b.id) for a, b in members.id_clashes(uow)] == [
            (other.member.id, first.member.id)]


def test_payment_with_zero_amount_changes_nothing(world):
    lender = world.lender(balance=0)
    before = snapshot(world)
    with pytest.raises(InvalidInput):
        world.pay(lender.phone, 0)
    assert snapshot(world) == before
