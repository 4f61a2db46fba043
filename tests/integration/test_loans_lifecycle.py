"""A loan's life off the happy path: PIN lock, limits, over-pledging, expiry, lapse,
cancellation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import checks, loans, members, pledges
from core.errors import InsufficientFunds, InvalidInput, NotAllowed, NotFound, PinLocked, WrongPin
from core.models import LoanStatus, Member, OutboxMessage, Pledge, PledgeStatus
from tests.support import PIN


def books_clean(world):
    with world.uow() as uow:
        assert checks.check(uow) == []


def draft(world, borrower, amount=100_000):
    with world.uow() as uow:
        loan, _ = loans.request_loan(uow, borrower_id=borrower.id, amount=amount, term_weeks=4,
                                     purpose="farm", now=world.now)
        uow.commit()
        return loan


def list_with(world, borrower, loan, pin):
    loans.list_loan(world.uow(), borrower_id=borrower.id, number=loan.number, pin=pin,
                    now=world.now)


def test_three_wrong_pins_lock_for_thirty_minutes_and_the_lock_survives_rollback(world, clock):
    borrower = world.member("Wanjiru Kamau", roles="borrower")
    loan = draft(world, borrower)
    for left in (2, 1, 0):
        with pytest.raises(WrongPin) as err:
            list_with(world, borrower, loan, "9137")
        assert err.value.params["tries_left"] == left
    assert err.value.key == "pin.wrong_locked"
    with pytest.raises(PinLocked):
        list_with(world, borrower, loan, "9137")
    with world.uow() as uow:  # the use case rolled back, the count of tries did not
        member = uow.session.get(Member, borrower.id)
        assert member.pin_locked_until == clock() + timedelta(minutes=30)
    clock.advance(minutes=29)
    with pytest.raises(PinLocked):  # even the right PIN waits
        list_with(world, borrower, loan, PIN)
    assert world.loan(loan.number).status == LoanStatus.DRAFT
    clock.advance(minutes=2)
    list_with(world, borrower, loan, PIN)
    assert world.loan(loan.number).status == LoanStatus.LISTED
    with world.uow() as uow:
        member = uow.session.get(Member, borrower.id)
        assert (member.pin_failures, member.pin_locked_until) == (0, None)


def test_a_locked_pin_blocks_withdrawals(world, clock):
    lender = world.lender(balance=50_000)
    for i in range(3):
        with pytest.raises(WrongPin):
            world.withdraw(lender, 1_000, pin="9137", key=f"w{i}")
    with pytest.raises(PinLocked):
        world.withdraw(lender, 1_000, key="w-right")
    assert world.wallet(lender).available == 50_000


def test_requests_respect_the_limit_the_product_and_one_open_loan(world):
    borrower = world.member("Wanjiru Kamau", roles="borrower")
    with pytest.raises(InvalidInput) as err:
        draft(world, borrower, amount=500_100)
    assert err.value.key == "loan.over_limit"
    first = draft(world, borrower)
    second = draft(world, borrower)  # an unsent draft is replaced
    assert world.loan(first.number).status == LoanStatus.CANCELLED
    list_with(world, borrower, second, PIN)
    with pytest.raises(NotAllowed) as err:
        draft(world, borrower)
    assert err.value.key == "loan.one_open"
    pending = world.member("Self Registered", roles="borrower", verified=False)
    with pytest.raises(NotAllowed):
        draft(world, pending)


def test_over_pledging_is_refused_at_proposal_and_at_confirmation(world):
    loan = world.listed_loan(amount=100_000)
    first, second = world.lender(), world.lender(name="Second Lender")
    a = world.pledge(first, loan, 70_000, confirm=False)
    b = world.pledge(second, loan, 60_000, confirm=False)  # both fit while unconfirmed
    with pytest.raises(InvalidInput):
        world.pledge(first, loan, 100_001, confirm=False)
    with world.uow() as uow:
        pledges.confirm_pledge(uow, phone=first.phone, code=a.code, now=world.now)
        uow.commit()
    with pytest.raises(InvalidInput) as err, world.uow() as uow:
        pledges.confirm_pledge(uow, phone=second.phone, code=b.code, now=world.now)
    assert err.value.key == "pledge.over_open"
    assert world.wallet(second).available == 1_000_000
    poor = world.lender(balance=10_000, name="Poor Lender")
    with pytest.raises(InsufficientFunds):
        world.pledge(poor, loan, 20_000, confirm=False)
    books_clean(world)


def test_unconfirmed_pledges_lapse_and_cannot_be_confirmed_after(world, clock):
    loan = world.listed_loan()
    lender = world.lender()
    pledge = world.pledge(lender, loan, 50_000, confirm=False)
    clock.advance(hours=24)
    with world.uow() as uow:
        assert pledges.lapse_pledges(uow, clock()) == 1
        uow.commit()
    with pytest.raises(NotAllowed) as err, world.uow() as uow:
        pledges.confirm_pledge(uow, phone=lender.phone, code=pledge.code, now=clock())
    assert err.value.key == "pledge.code_expired"
    with world.uow() as uow:
        assert uow.session.get(Pledge, pledge.id).status == PledgeStatus.LAPSED
        assert "sms.pledge_lapsed" in uow.session.scalars(select(OutboxMessage.template)).all()


def test_expiry_at_the_deadline_voids_holds_and_lapses_proposals(world, clock):
    loan = world.listed_loan()
    held, proposing = world.lender(balance=80_000), world.lender(name="Second Lender")
    world.pledge(held, loan, 80_000)
    world.pledge(proposing, loan, 10_000, confirm=False)
    clock.advance(days=14, seconds=-1)
    with world.uow() as uow:
        assert loans.expire_loans(uow, clock()) == []
    clock.advance(seconds=1)
    with world.uow() as uow:
        assert loans.expire_loans(uow, clock()) == [loan.number]
        uow.commit()
    fresh = world.loan(loan.number)
    assert fresh.status == LoanStatus.EXPIRED and fresh.pledged == 0
    assert world.wallet(held).available == 80_000
    with world.uow() as uow:
        statuses = sorted(uow.session.scalars(select(Pledge.status)))
        templates = uow.session.scalars(select(OutboxMessage.template)).all()
    assert statuses == ["lapsed", "voided"]
    assert {"sms.loan_expired_borrower", "sms.loan_expired_lender"} <= set(templates)
    books_clean(world)


def test_cancel_releases_every_hold_and_only_the_borrower_may(world):
    loan = world.listed_loan()
    lender = world.lender(balance=50_000)
    world.pledge(lender, loan, 50_000)
    with pytest.raises(NotFound), world.uow() as uow:
        loans.cancel_loan(uow, borrower_id=lender.id, number=loan.number, now=world.now)
    with world.uow() as uow:
        loans.cancel_loan(uow, borrower_id=loan.borrower_id, number=loan.number, now=world.now)
        uow.commit()
    assert world.loan(loan.number).status == LoanStatus.CANCELLED
    assert world.wallet(lender).available == 50_000
    books_clean(world)
    funded = world.funded_loan()
    with pytest.raises(NotAllowed), world.uow() as uow:
        loans.cancel_loan(uow, borrower_id=funded.borrower_id, number=funded.number,
                          now=world.now)


def test_registration_by_an_agent_is_verified_and_self_registration_waits(world):
    agent = world.agent()
    with world.uow() as uow:
        mine = members.register(uow, phone="0712 111 222", name="Self Made", now=world.now)
        theirs = members.register(uow, phone="0712 111 333", name="Agent Made",
                                  agent_id=agent.id, now=world.now)
        uow.commit()
    assert mine.member.status == "pending" and mine.member.agent_id is None
    assert theirs.member.status == "verified" and theirs.member.agent_id == agent.id
    with world.uow() as uow:
        verified = members.verify(uow, agent_id=agent.id, phone="+254712111222", now=world.now)
        uow.commit()
    assert verified.status == "verified"
