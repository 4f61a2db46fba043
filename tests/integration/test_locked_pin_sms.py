"""A locked PIN stops every money step on every channel: LEND and YES by SMS too, with
when the lock ends; once it ends they work again."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core import members
from core.errors import WrongPin
from core.models import Pledge, PledgeStatus
from tests.sms_hook import ask


def lock(world, member) -> None:
    for _ in range(world.settings.pin.max_tries):
        with pytest.raises(WrongPin):
            members.check_pin(world.uow(), member.id, "0000", world.now)


def pledges_of(world, lender) -> list[Pledge]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(Pledge).where(Pledge.lender_id == lender.id)))


def test_lend_by_sms_is_refused_while_the_pin_is_locked(world, client):
    loan = world.listed_loan()
    lender = world.lender(balance=500_000)
    lock(world, lender)
    said = ask(world, client, lender.phone, f"LEND {loan.number} 500")
    assert "PIN locked" in said and "12:30" in said  # 12:00 Nairobi + pin.lock_minutes
    assert pledges_of(world, lender) == []


def test_yes_by_sms_is_refused_while_the_pin_is_locked_and_works_after(world, client, clock):
    loan = world.listed_loan()
    lender = world.lender(balance=500_000)
    pledge = world.pledge(lender, loan, 50_000, confirm=False)
    lock(world, lender)
    said = ask(world, client, lender.phone, f"YES {pledge.code}")
    assert "PIN locked" in said
    assert [p.status for p in pledges_of(world, lender)] == [PledgeStatus.PROPOSED]
    assert world.wallet(lender).available == 500_000  # nothing held
    clock.advance(minutes=world.settings.pin.lock_minutes + 1)
    ask(world, client, lender.phone, f"YES {pledge.code}")
    assert [p.status for p in pledges_of(world, lender)] == [PledgeStatus.CONFIRMED]
