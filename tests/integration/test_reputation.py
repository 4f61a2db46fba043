"""An agent's record and a lender's portfolio, read from the database as lenders see
them (core/reputation.py); a payment to an erased member's closed loan."""
from __future__ import annotations

from sqlalchemy import select

from core import members, privacy, reputation
from core.models import DataRequestKind, LoanStatus, Payment, PaymentKind
from tests.support import PIN
from workers import duties


def vouched_by(world, agent_id: int, name: str):
    return members.register(world.uow(), phone=world.next_phone(), name=name,
                            national_id=str(next(world._ids)), roles="borrower", pin=PIN,
                            agent_id=agent_id, accept_terms=True, now=world.now).member


def paid_out(world, borrower, amount: int = 200_000):
    loan = world.listed_loan(borrower, amount=amount)
    world.pledge(world.lender(), loan, amount)
    return world.disburse(world.loan(loan.number))


def test_an_agents_record_counts_ended_loans_and_those_repaid_on_time(world, clock):
    grace = world.agent()
    other = members.register(world.uow(), phone=world.next_phone(), name="Otieno Agent",
                             national_id="40000001", roles="agent", pin=PIN,
                             accept_terms=True, now=world.now).member
    on_time, late, defaulted = (paid_out(world, vouched_by(world, grace.id, name))
                                for name in ("Amina Ontime", "Baraka Late", "Chebet Default"))
    elsewhere = paid_out(world, vouched_by(world, other.id, "Daudi Elsewhere"))
    world.pay(on_time.number, on_time.total_due)
    world.pay(elsewhere.number, elsewhere.total_due)
    clock.advance(days=9)  # the first installment was due on day 7
    world.pay(late.number, late.total_due)
    clock.advance(days=100)
    duties.tick(world.services, clock(), ["mark_arrears"])
    repaying = paid_out(world, vouched_by(world, grace.id, "Eunice Repaying"))
    assert [world.loan(n).status for n in (on_time.number, late.number, defaulted.number,
                                           repaying.number)] == [
        LoanStatus.REPAID, LoanStatus.REPAID, LoanStatus.DEFAULTED, LoanStatus.DISBURSED]
    with world.uow() as uow:
        records = reputation.agent_records(uow, [grace.id, other.id, 999])
    assert records == {grace.id: reputation.AgentRecord(ended=3, on_time=1),
                       other.id: reputation.AgentRecord(ended=1, on_time=1)}
    assert reputation.agent_words(records[grace.id], "en") == "agent: 1 of 3 on time"
    assert reputation.agent_words(records[grace.id], "sw") == "wakala: 1 kati ya 3 kwa wakati"
    assert reputation.agent_words(reputation.AgentRecord(0, 0), "en") == "agent: no record yet"
    assert reputation.agent_words(None, "en") == ""


def test_a_payment_to_an_erased_members_closed_loan_waits_in_suspense(world):
    loan = world.disbursed_loan(lenders=1)
    world.pay(loan.number, loan.total_due)
    case = privacy.open_request(world.uow(), member_id=loan.borrower.id,
                                kind=DataRequestKind.ERASE, text=None, now=world.now,
                                request_key="t:1")
    privacy.erase(world.uow(), number=case.number, operator="test", now=world.now)
    payment = world.pay(loan.number, 50_000, phone="+254700999888")
    assert payment.kind == PaymentKind.UNMATCHED and payment.member_id is None
    assert world.wallet(loan.borrower).balance == 0
    with world.uow() as uow:
        kinds = list(uow.session.scalars(select(Payment.kind).order_by(Payment.id)))
    assert kinds[-1] == PaymentKind.UNMATCHED


def test_an_approved_story_reaches_every_member_who_wants_it_once_in_batches(
        world, services, clock, monkeypatch):
    from core import stories, tips
    from core.models import OutboxMessage, Story
    from workers import duties as worker_duties

    monkeypatch.setattr(stories, "SHARE_BATCH", 2)
    loan = world.disbursed_loan(lenders=1)
    world.pay(loan.number, loan.total_due)
    keen = [world.member(f"Keen Member{chr(65 + i)}", roles="lender") for i in range(5)]
    for member in keen:
        tips.set_wanted(world.uow(), member.id, wanted=True)
    story = stories.submit(world.uow(), member_id=loan.borrower.id, text="It helped",
                           now=world.now, request_key="t:story")
    assert stories.approve(world.uow(), story_id=story.id, operator="ops",
                           now=world.now).lenders == 1
    clock.advance(minutes=1)  # the share job was lost: the sweep finds the story
    assert worker_duties.tick(services, clock(), ["share_stories"]).done["share_stories"] == 5
    assert worker_duties.tick(services, clock(), ["share_stories"]).done["share_stories"] == 0
    with world.uow() as uow:
        assert uow.session.get(Story, story.id).shared_at is not None
        told = list(uow.session.scalars(select(OutboxMessage.member_id).where(
            OutboxMessage.template == "sms.story_member")))
    assert sorted(told) == sorted(m.id for m in keen)
