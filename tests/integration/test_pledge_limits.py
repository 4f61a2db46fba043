"""A lender's pledges waiting for YES are capped, and their codes never collide nor
take unbounded time to draw."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.codes import CODES, new_code
from core.errors import Conflict
from core.models import OutboxMessage, Pledge, PledgeStatus
from tests.sms_hook import answer, replies, send


def test_thirty_lends_from_one_lender_make_only_the_allowed_proposals(world, client):
    loan = world.listed_loan(amount=500_000)
    lender = world.lender(balance=1_000_000)
    cap = world.settings.loan.max_open_proposals
    for _ in range(30):
        send(client, lender.phone, f"LEND {loan.number} 50")
    answer(world.services)
    with world.uow() as uow:
        waiting = uow.session.scalar(select(func.count()).select_from(Pledge).where(
            Pledge.lender_id == lender.id, Pledge.status == PledgeStatus.PROPOSED))
        codes = uow.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.phone == lender.phone, OutboxMessage.template == "sms.pledge_code"))
    assert waiting == cap and codes == cap
    said = replies(world, lender.phone)
    assert len(said) == 30 - cap
    assert all(f"You have {cap} pledges waiting for your YES" in r for r in said)


def test_a_new_code_never_collides_and_is_drawn_in_bounded_time():
    """The chance that a new code equals one of the lender's waiting codes is zero: it
    is drawn from the free ones, even when all but one are taken."""
    every = {str(n) for n in CODES}
    for taken_count in (0, 4, 4_500, 8_999):
        taken = set(sorted(every)[:taken_count])
        for _ in range(200):
            assert new_code(taken) not in taken
    assert new_code(every - {"4321"}) == "4321"  # the last free one, found at once
    with pytest.raises(Conflict):
        new_code(every)  # none free: refused, never a spin

