"""Partial funding choices and hardship pauses through the USSD hook, in both
languages: at the deadline a loan more than half funded offers take, extend or cancel
(and 48 hours of silence cancel it); a borrower who cannot pay this week asks for a
pause, which their agent approves with their PIN."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import checks, loans
from core.models import LoanStatus, OutboxMessage, PledgeStatus
from tests.support import PIN
from tests.ussd_phone import Phone
from workers import duties

GROUP_ITEM = {"borrower": "6", "agent": "4"}  # the last item of each one's main menu
WORDS = {"en": {"taken": "is now Ksh 2,000", "until": "stays open", "cancelled": "is cancelled",
                "asked": "Your request is with Grace", "approved": "Approved"},
         "sw": {"taken": "sasa ni Ksh 2,000", "until": "utabaki wazi", "cancelled": "umefutwa",
                "asked": "Ombi lako liko kwa Grace", "approved": "Limekubaliwa"}}


def templates(world, phone: str) -> list[str]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage.template).where(
            OutboxMessage.phone == phone).order_by(OutboxMessage.id)))


def partly_funded(world, clock, lang: str):
    """A loan of Ksh 3,000 with Ksh 2,000 confirmed, at its deadline."""
    borrower = world.member("Amina Otieno", roles="borrower", language=lang)
    loan = world.listed_loan(borrower=borrower, amount=300_000)
    lenders = [world.lender(balance=300_000), world.lender(balance=300_000)]
    for lender in lenders:
        world.pledge(lender, loan, 100_000)
    clock.advance(days=15)
    assert loans.expire_loans(world.uow(), clock()) == []  # offered, not expired
    assert templates(world, borrower.phone)[-1] == "sms.choice_offer"
    return borrower, loan, lenders


def choose(client, borrower, *presses: str) -> str:
    return Phone(client, borrower.phone).run(GROUP_ITEM["borrower"], "1", *presses)


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_take_what_was_pledged_with_new_key_facts_and_pin(client, world, clock, lang):
    borrower, loan, lenders = partly_funded(world, clock, lang)
    facts = Phone(client, borrower.phone).run(GROUP_ITEM["borrower"], "1", "1")
    assert "Ksh 2,000" in facts and "Ksh 2,100" in facts  # the new amount and its total
    body = choose(client, borrower, "1", "1", PIN)
    assert body.startswith("END") and WORDS[lang]["taken"] in body
    taken = world.loan(loan.number)
    assert (taken.status, taken.amount, taken.funded, taken.fee) == (
        LoanStatus.FUNDED, 200_000, 200_000, 10_000)
    assert all(world.wallet(lender).balance == 200_000 for lender in lenders)
    with world.uow() as uow:
        assert checks.check(uow) == []


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_extend_once_then_cancel(client, world, clock, lang):
    borrower, loan, lenders = partly_funded(world, clock, lang)
    body = choose(client, borrower, "2")
    assert body.startswith("END") and WORDS[lang]["until"] in body
    extended = world.loan(loan.number)
    assert extended.extended and extended.choice_until is None
    assert extended.deadline == clock() + timedelta(days=7)
    clock.advance(days=8)
    loans.expire_loans(world.uow(), clock())
    assert templates(world, borrower.phone)[-1] == "sms.choice_offer_final"
    body = choose(client, borrower, "2")  # no more waiting: take (1) or cancel (2)
    assert body.startswith("END") and WORDS[lang]["cancelled"] in body
    assert world.loan(loan.number).status == LoanStatus.CANCELLED
    assert all(world.wallet(lender).debits_pending == 0 for lender in lenders)
    with world.uow() as uow:
        assert checks.check(uow) == []


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_no_answer_in_48_hours_cancels_and_releases_every_hold(client, world, clock, lang):
    borrower, loan, lenders = partly_funded(world, clock, lang)
    clock.advance(hours=47)
    assert duties.lapse_choices(world.services, clock()) == 0
    clock.advance(hours=2)
    assert duties.lapse_choices(world.services, clock()) == 1
    closed = world.loan(loan.number)
    assert closed.status == LoanStatus.CANCELLED
    assert all(world.wallet(lender).debits_pending == 0 for lender in lenders)
    assert templates(world, borrower.phone)[-1] == "sms.choice_lapsed"
    with world.uow() as uow:
        assert checks.check(uow) == []
        from core.models import Pledge
        assert {p.status for p in uow.session.scalars(select(Pledge))} == {PledgeStatus.VOIDED}


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_a_hardship_pause_approved_by_the_agent_moves_the_dates(client, world, clock, lang):
    agent = world.agent()
    loan = world.disbursed_loan(amount=300_000)
    borrower = loan.borrower
    with world.uow() as uow:
        from core.models import Member
        uow.session.get(Member, borrower.id).language = lang
        uow.session.get(Member, agent.id).language = lang
        uow.commit()
    before = [i.due_on for i in loan.installments]
    body = Phone(client, borrower.phone).run("2", "1", "2", "1", "2", "1")
    assert body.startswith("END") and WORDS[lang]["asked"] in body, body
    assert templates(world, agent.phone)[-1] == "sms.pause_asked"
    agent_phone = Phone(client, agent.phone)
    agent_phone.run(GROUP_ITEM["agent"], "1", "1")
    assert WORDS[lang]["approved"] in agent_phone.press(PIN)
    after = [i.due_on for i in world.loan(loan.number).installments]
    assert after == [d + timedelta(weeks=1) for d in before]
    assert templates(world, borrower.phone)[-1] == "sms.pause_approved"
    assert all("sms.pause_lender" in templates(world, p.lender.phone)
               for p in _posted(world, loan.id))
    again = Phone(client, borrower.phone).run("2", "1", "2", "1", "2", "1")
    assert "END" not in again[:3]  # refused: at most one pause per loan
    with world.uow() as uow:
        assert checks.check(uow) == []


def _posted(world, loan_id):
    from sqlalchemy.orm import selectinload

    from core.models import Pledge
    with world.uow() as uow:
        return list(uow.session.scalars(select(Pledge).options(selectinload(Pledge.lender))
                                        .where(Pledge.loan_id == loan_id,
                                               Pledge.status == PledgeStatus.POSTED)))
