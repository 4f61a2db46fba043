"""Each lender hears of their share of a repayment: once, one SMS per lender, with what
they had received up to that repayment. The notices are written after the repayment
commits (a job it enqueues, or the sweep when that job is lost), not inside it."""
from __future__ import annotations

from sqlalchemy import select

from core import repayments
from core.models import OutboxMessage, Payment, Pledge
from workers import duties


def notices(world):
    with world.uow() as uow:
        return list(uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.template == "sms.lender_repaid")
            .order_by(OutboxMessage.id)))


def tell(world, payment):
    with world.uow() as uow:
        told = repayments.tell_lenders(uow, payment.id, world.now)
        uow.commit()
    return told


def received(world, loan):
    """Each lender's wallet balance (all they have: the loan was their only use of it),
    and their pledge's entitlement, by member id."""
    with world.uow() as uow:
        rows = uow.session.execute(select(Pledge.lender_id, Pledge.entitled)
                                   .where(Pledge.loan_id == loan.id)).all()
    return {lender: (world.wallet_of(lender).balance, entitled) for lender, entitled in rows}


def test_each_notice_says_what_was_received_up_to_its_own_repayment(world):
    loan = world.disbursed_loan(lenders=2, amount=200_000)
    start = received(world, loan)
    first = world.pay(loan.number, 50_000)
    after_first = received(world, loan)
    second = world.pay(loan.number, 60_000)  # before anyone was told of the first
    after_second = received(world, loan)
    assert notices(world) == []
    assert (tell(world, second), tell(world, first)) == (2, 2)  # told out of order
    fmt = world.settings.fmt
    texts = {(row.key, row.member_id): row.text for row in notices(world)}
    for lender, (total, entitled) in after_first.items():
        got = total - start[lender][0]
        assert got > 0
        assert texts[(f"lender_repaid:{first.id}:{lender}", lender)] == (
            f"Wanjiru repaid {loan.number}: {fmt(got)} to your wallet. Received so far "
            f"{fmt(got)} of {fmt(entitled)}.")
    for lender, (total, entitled) in after_second.items():
        got = total - after_first[lender][0]
        assert texts[(f"lender_repaid:{second.id}:{lender}", lender)] == (
            f"Wanjiru repaid {loan.number}: {fmt(got)} to your wallet. Received so far "
            f"{fmt(total - start[lender][0])} of {fmt(entitled)}.")


def test_a_lender_with_two_pledges_gets_one_notice_for_both(world):
    loan = world.listed_loan(amount=300_000)
    twice = world.lender(balance=500_000)
    world.pledge(twice, loan, 100_000)
    world.pledge(world.lender(balance=500_000), loan, 100_000)
    world.pledge(twice, loan, 100_000)
    world.disburse(loan)
    payment = world.pay(loan.number, 90_000)
    assert tell(world, payment) == 2
    rows = notices(world)
    mine = [r for r in rows if r.member_id == twice.id]
    assert len(rows) == 2 and len(mine) == 1
    with world.uow() as uow:
        pledged = uow.session.execute(select(Pledge.repaid, Pledge.entitled).where(
            Pledge.loan_id == loan.id, Pledge.lender_id == twice.id)).all()
    assert len(pledged) == 2
    got, due = sum(r for r, _ in pledged), sum(e for _, e in pledged)
    fmt = world.settings.fmt
    assert mine[0].text.endswith(f": {fmt(got)} to your wallet. Received so far {fmt(got)} "
                                 f"of {fmt(due)}.")


def test_telling_twice_writes_nothing_more(world):
    loan = world.disbursed_loan(lenders=3)
    payment = world.pay(loan.number, 30_000)
    assert tell(world, payment) == 3
    assert tell(world, payment) == 0
    assert len(notices(world)) == 3


def test_payments_with_nothing_for_lenders_need_no_telling(world):
    member = world.member()
    topup = world.pay(member.phone, 5_000)
    unmatched = world.pay("L9999", 700, phone="+254700000999")
    with world.uow() as uow:
        assert repayments.untold_payments(uow, world.now) == []
        assert all(uow.session.get(Payment, p.id).lenders_told_at is not None
                   for p in (topup, unmatched))


def test_the_sweep_tells_lenders_whose_job_was_lost(world, services, clock):
    loan = world.disbursed_loan(lenders=2)
    payment = world.pay(loan.number, 20_000)  # its job sits in Redis; no worker runs here
    with world.uow() as uow:
        assert repayments.untold_payments(uow, clock()) == [payment.id]
    assert duties.tick(services, clock(), ["tell_lenders"]).done == {"tell_lenders": 0}
    assert notices(world) == []  # too fresh: its own job may still be on the way
    clock.advance(minutes=1)
    assert duties.tick(services, clock(), ["tell_lenders"]).done == {"tell_lenders": 1}
    assert len(notices(world)) == 2
    with world.uow() as uow:
        assert repayments.untold_payments(uow, clock()) == []
    assert duties.tick(services, clock(), ["tell_lenders"]).done == {"tell_lenders": 0}
