"""A whole loan moved only by Daraja-format calls: lenders top up by paybill (C2B), the
borrower is paid by B2C and repays by an M-Pesa prompt (STK push), lenders withdraw by
B2C; B2C failures, a queue timeout and a lost result; every callback replayed changes
nothing. The app is served over HTTP and a fake Daraja calls it back, as in production."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core import checks, stk
from core.models import (
    Account,
    Loan,
    LoanStatus,
    OutboxMessage,
    Payment,
    PaymentKind,
    Payout,
    PayoutStatus,
    StkRequest,
    StkStatus,
)
from tests.live import Live, live_daraja
from tests.support import World, run_worker
from workers import duties


def drain(live: Live) -> None:
    """Run every queued job, let the fake's callbacks land, and run what they queued."""
    for _ in range(4):
        run_worker(live.services)
        assert live.fake.wait_idle(10), "the fake Daraja's callbacks did not all go"
    run_worker(live.services)


def tick(live: Live, *names: str) -> None:
    report = duties.tick(live.services, live.services.now(), list(names))
    assert report.failed == {}
    drain(live)


def payout_of(world: World, payout_id: int) -> Payout:
    with world.uow() as uow:
        payout = uow.session.get(Payout, payout_id)
        assert payout is not None
        return payout


def books(world: World) -> tuple:
    """Everything money: counters of every account, payments, payouts and prompts."""
    with world.uow() as uow:
        s = uow.session
        return (sorted(s.execute(select(Account.code, Account.debits_pending,
                                        Account.debits_posted, Account.credits_pending,
                                        Account.credits_posted)).tuples()),
                s.scalar(select(func.count()).select_from(Payment)),
                sorted(s.execute(select(Payout.id, Payout.status, Payout.receipt)).tuples()),
                sorted(s.execute(select(StkRequest.id, StkRequest.status)).tuples()),
                s.scalar(select(func.count()).select_from(OutboxMessage)))


def texts_to(world: World, phone: str) -> list[str]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage.text).where(
            OutboxMessage.phone == phone).order_by(OutboxMessage.id)))


@pytest.fixture
def live(services, clock):
    clock.set(datetime.now(UTC).replace(microsecond=0))  # the fake stamps real times
    with live_daraja(services) as running:
        yield running


def test_a_whole_loan_moves_only_by_daraja_calls(live: Live, clock):
    fake = live.fake
    w = World(live.services)
    borrower = w.member("Wanjiru Kamau", roles="borrower")
    amina, baraka = (w.lender(balance=0, name=name) for name in ("Amina Lender", "Baraka Lender"))

    # Lenders top up by paybill, their phone as the account; an unknown account is refused.
    for lender in (amina, baraka):
        paid = fake.pay_bill(lender.phone, 3000, account=lender.phone)
        assert paid["accepted"] and paid["confirmation_status"] == 200
    refused = fake.pay_bill(amina.phone, 100, account="NOT-A-LOAN")
    assert not refused["accepted"] and refused["result_code"] == "C2B00012"
    drain(live)  # the payments queue's jobs record the confirmations stored at the door
    assert [w.wallet(m).balance for m in (amina, baraka)] == [300_000, 300_000]

    # The loan is funded by both, then paid to the borrower by B2C.
    loan = w.listed_loan(borrower, amount=400_000)
    for lender in (amina, baraka):
        w.pledge(lender, loan, 200_000)
    assert w.loan(loan.number).status == LoanStatus.FUNDED
    tick(live, "disburse_funded")
    loan = w.loan(loan.number)
    assert loan.status == LoanStatus.DISBURSED
    assert [(p.phone, p.amount) for p in fake.payments] == [(borrower.phone[1:], 4000)]
    assert loan.payout_reference == fake.payments[0].receipt
    assert any(fake.payments[0].receipt in t for t in texts_to(w, borrower.phone))

    # The borrower repays the first installment by a prompt on their own phone.
    due = loan.installments[0].amount
    asked = stk.request(live.services.uow(), member_id=borrower.id, amount=due,
                        provider=live.services.stk.provider, key="pay-now-1", now=clock())
    drain(live)
    [prompt] = fake.pending_stk(borrower.phone)
    assert (prompt.amount, prompt.account_reference) == (due // 100, loan.number)
    fake.accept_stk(prompt.checkout_request_id)
    drain(live)
    with w.uow() as uow:
        request = uow.session.get(StkRequest, asked.id)
        assert request.status == StkStatus.PAID
        payment = uow.session.get(Payment, request.payment_id)
        assert (payment.kind, payment.amount) == (PaymentKind.REPAYMENT, due)
    assert w.loan(loan.number).repaid == due

    # A cancelled prompt takes nothing and says so.
    stk.request(live.services.uow(), member_id=borrower.id, amount=10_000,
                provider=live.services.stk.provider, key="pay-now-2", now=clock())
    drain(live)
    [second] = fake.pending_stk(borrower.phone)
    fake.cancel_stk(second.checkout_request_id)
    drain(live)
    assert w.loan(loan.number).repaid == due
    assert "Nothing was taken" in texts_to(w, borrower.phone)[-1]

    # A lender withdraws by B2C.
    before = w.wallet(amina).available
    out = w.withdraw(amina, 50_000, key="w-amina", send=False)
    drain(live)
    paid_out = payout_of(w, out.id)
    assert paid_out.status == PayoutStatus.PAID and paid_out.receipt
    assert w.wallet(amina).balance == before - 50_000
    assert f"ref {paid_out.receipt}" in texts_to(w, amina.phone)[-1]

    # B2C fails for lack of float: the money goes back and the lender is told.
    fake.fail_b2c("insufficient", phone=baraka.phone)
    failed = w.withdraw(baraka, 20_000, key="w-baraka-1", send=False)
    drain(live)
    assert payout_of(w, failed.id).status == PayoutStatus.FAILED
    assert w.wallet(baraka).available == w.wallet(baraka).balance
    assert "back in your wallet" in texts_to(w, baraka.phone)[-1]

    # A queue timeout: unknown, asked about, failed only once old enough to be sure.
    fake.fail_b2c("timeout", phone=baraka.phone, notify=True)
    timed_out = w.withdraw(baraka, 20_000, key="w-baraka-2", send=False)
    drain(live)
    assert payout_of(w, timed_out.id).status == PayoutStatus.UNKNOWN
    clock.advance(minutes=1)
    tick(live, "payouts")  # asked: no record yet, and it is young: still unknown
    assert payout_of(w, timed_out.id).status == PayoutStatus.UNKNOWN
    clock.advance(hours=25)
    tick(live, "payouts")
    assert payout_of(w, timed_out.id).status == PayoutStatus.FAILED

    # A result lost on the way: paid by M-Pesa, found by Transaction Status.
    fake.clear_failures()
    fake.fail_b2c("lost", phone=baraka.phone)
    lost = w.withdraw(baraka, 30_000, key="w-baraka-3", send=False)
    drain(live)
    assert payout_of(w, lost.id).status == PayoutStatus.SENT
    clock.advance(minutes=live.services.settings.payouts.result_wait_minutes + 1)
    tick(live, "payouts")
    found = payout_of(w, lost.id)
    assert found.status == PayoutStatus.PAID and found.receipt == fake.payments[-1].receipt

    # Every callback again: nothing changes; nothing was ever paid twice.
    settled = books(w)
    for delivery in list(fake.deliveries):
        fake.redeliver(delivery.id)
    drain(live)
    assert books(w) == settled
    assert not [ocid for ocid, n in Counter(fake.paid_ocids()).items() if n > 1]
    with w.uow() as uow:
        assert checks.check(uow) == []
        assert uow.session.scalar(select(func.count()).select_from(Loan)) == 1


def test_a_failed_disbursement_is_tried_again_as_a_new_payout(live: Live, clock):
    fake = live.fake
    w = World(live.services)
    loan = w.funded_loan(amount=200_000)
    borrower = w.loan(loan.number).borrower
    fake.fail_b2c("invalid", phone=borrower.phone)
    tick(live, "disburse_funded")
    assert w.loan(loan.number).status == LoanStatus.FUNDED
    assert "try again" in texts_to(w, borrower.phone)[-1]
    fake.clear_failures()
    tick(live, "disburse_funded")
    assert w.loan(loan.number).status == LoanStatus.DISBURSED
    with w.uow() as uow:
        tries = uow.session.execute(select(Payout.key, Payout.status).order_by(Payout.id)).all()
        assert checks.check(uow) == []
    assert [status for _, status in tries] == [PayoutStatus.FAILED, PayoutStatus.PAID]
    assert tries[0][0] != tries[1][0]
