"""Whole flows over HTTP, as Africa's Talking drives them: register, list, pledge, fund;
duplicate hops, a dropped session resumed, Redis gone, a wrong webhook key."""
from __future__ import annotations

import time

from sqlalchemy import select

from core import checks, pledges
from core.models import (
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    OutboxMessage,
    Pledge,
    StkRequest,
)
from runtime.redis import RedisHandle, client_for
from runtime.services import Services
from tests.support import PIN
from tests.ussd_phone import KEY, Phone, count, member
from web.app import create_app


def test_a_stranger_registers_with_pin_and_terms(client, world):
    phone = Phone(client, "+254733000111")
    assert "Register" in phone.dial()
    phone.press("1")
    phone.press("Halima Njoroge")
    phone.press("23456789")
    phone.press("1")
    assert "Full terms by SMS" in phone.press("2")  # the language chosen, terms shown
    assert "sent by SMS" in phone.press("2")
    phone.press("1")
    assert "PIN again" in phone.press("4826")
    body = phone.press("4826")
    assert body.startswith("END Welcome, Halima")
    joined = member(world, "+254733000111")
    assert joined.status == MemberStatus.PENDING and joined.terms_accepted_at is not None
    assert joined.pin_hash is not None and joined.national_id is None  # a claim, until verified
    assert joined.claimed_national_id == "23456789"
    with world.uow() as uow:
        templates = set(uow.session.scalars(select(OutboxMessage.template).where(
            OutboxMessage.phone == "+254733000111")))
    assert {"sms.terms", "sms.welcome"} <= templates


def test_a_pin_typed_twice_differently_is_asked_again_and_nothing_is_made(client, world):
    phone = Phone(client, "+254733000112")
    phone.run("1", "Halima Njoroge", "23456780", "1", "1", "4826")
    body = phone.press("4827")
    assert "differ" in body and body.startswith("CON ")
    assert member(world, "+254733000112") is None


def test_an_agent_registers_a_member_who_accepts_terms_then_is_verified(client, world):
    agent = world.member("Grace Wanjiku", roles="agent", phone="+254700000009")
    agent_phone = Phone(client, agent.phone)
    main = agent_phone.dial()
    assert "Agent services" in main and "Request a loan" not in main
    agent_phone.press("1")  # Agent services
    agent_phone.press("1")  # Register a member
    agent_phone.press("0733 000 222")
    agent_phone.press("Baraka Mwangi")
    agent_phone.press("34567890")
    agent_phone.press("Machakos Youth Group")
    summary = agent_phone.press("2")
    assert summary.startswith("CON Register Baraka Mwangi, 0733 000222, ID 34567890, "
                              "Machakos Youth Group, Kiswahili?")
    assert member(world, "+254733000222") is None  # nothing saved before the agent's PIN
    assert "Enter your PIN to register Baraka Mwangi" in agent_phone.press("1")
    body = agent_phone.press(PIN)
    assert body.startswith("END Baraka Mwangi (0733 000222) is registered")
    new = member(world, "+254733000222")
    assert new.status == MemberStatus.VERIFIED and new.agent_id == agent.id
    assert new.terms_accepted_at is None and new.language == "sw"
    # On their own phone they must accept the terms and set a PIN before borrowing.
    own = Phone(client, "+254733000222")
    assert "Masharti" in own.dial()
    own.press("1")
    own.press("7391")
    accepted = own.press("7391")  # on to the main menu, no redial
    assert accepted.startswith("CON Masharti na PIN vimekamilika.\n1. Omba mkopo")
    again = member(world, "+254733000222")
    assert again.terms_accepted_at is not None and again.pin_hash is not None
    assert "Omba mkopo" in Phone(client, "+254733000222").dial()
    # A self-registered member is verified by the agent.
    Phone(client, "+254733000333").run("1", "Zawadi Achieng", "45678901", "1", "1", "4826",
                                       "4826")
    assert member(world, "+254733000333").status == MemberStatus.PENDING
    body = agent_phone.run("1", "2", "0733000333")
    assert "Zawadi Achieng" in body and "45678901" in body
    assert "Enter your PIN to verify Zawadi Achieng" in agent_phone.press("1")
    assert member(world, "+254733000333").status == MemberStatus.PENDING
    assert agent_phone.press(PIN).startswith("END Zawadi Achieng is verified")
    assert member(world, "+254733000333").status == MemberStatus.VERIFIED
    card = agent_phone.run("1", "3", "+254733000333")
    assert "verified" in card and "terms accepted" in card


def borrow(client, phone: str, amount: str = "3000") -> str:
    p = Phone(client, phone)
    p.run("1", amount, "1", "1")
    facts = p.text and p.resend()
    assert "Total to repay" in facts or "total to repay" in facts
    p.press("1")
    return p.press(PIN)


def test_a_loan_listed_by_ussd_is_funded_by_two_lenders_pledging_by_ussd(client, world):
    borrower = world.member("Amina Otieno", roles="borrower", phone="+254711000001")
    body = borrow(client, borrower.phone)
    assert body.startswith("END Loan L") and "is open to lenders until" in body
    with world.uow() as uow:
        loan = uow.session.scalar(select(Loan).where(Loan.borrower_id == borrower.id))
        assert loan.status == LoanStatus.LISTED and loan.amount == 300_000
    lenders = [world.lender(balance=500_000, name=f"Lender {n}") for n in ("Otieno", "Njeri")]
    for lender, amount in zip(lenders, ("1,000", "2000"), strict=True):
        phone = Phone(client, lender.phone)
        listing = phone.run("1")  # Lend (a lender's first item)
        assert "Amina" in listing and "Ksh 3,000" in listing
        offer = phone.press("1")
        assert "Amount to lend" in offer
        assert "Enter your PIN" in phone.press(amount)
        assert phone.press(PIN).startswith("END You pledged")
        with world.uow() as uow:
            pledge = uow.session.scalar(select(Pledge).where(Pledge.lender_id == lender.id))
            code = uow.session.scalar(select(OutboxMessage.text).where(
                OutboxMessage.template == "sms.pledge_code", OutboxMessage.phone == lender.phone))
            assert pledge.code in code
        with world.uow() as uow:
            pledges.confirm_pledge(uow, phone=lender.phone, code=pledge.code, now=world.now)
            uow.commit()
    funded = world.loan(loan.number)
    assert funded.status == LoanStatus.FUNDED and funded.funded == 300_000
    mine = Phone(client, borrower.phone).run("2")
    assert loan.number in mine and "funded" in mine
    with world.uow() as uow:
        assert checks.check(uow) == []


def test_a_resent_hop_gets_the_same_answer_and_moves_money_once(client, world):
    borrower = world.member("Amina Otieno", roles="borrower")
    world.listed_loan(borrower)
    lender = world.lender(balance=500_000)
    phone = Phone(client, lender.phone)
    phone.run("1", "1", "500")
    first = phone.press(PIN)
    for _ in range(3):
        assert phone.resend() == first
    assert count(world, Pledge) == 1
    assert count(world, OutboxMessage, OutboxMessage.template == "sms.pledge_code") == 1


def test_a_dropped_session_is_offered_again_and_continuing_does_not_repeat_a_pledge(
        client, world):
    world.listed_loan(world.member("Amina Otieno", roles="borrower"))
    lender = world.lender(balance=500_000)
    phone = Phone(client, lender.phone)
    assert "Enter your PIN" in phone.run("1", "1", "700")
    dropped = phone.session
    client.post(f"/hooks/ussd/events?key={KEY}", data={
        "sessionId": dropped, "phoneNumber": lender.phone, "status": "Failed",
        "hopsCount": "4", "input": "700", "errorMessage": "Timeout"})
    offer = phone.dial()
    assert "Continue where you left off" in offer
    assert "Enter your PIN" in phone.press("1")
    assert phone.press(PIN).startswith("END You pledged Ksh 700")
    # The END was lost and the caller redials: nothing to resume, the pledge made once.
    assert "Continue" not in phone.dial()
    assert count(world, Pledge) == 1
    # Start again throws the saved place away.
    phone.run("1", "1")
    restart = phone.dial()
    assert "Continue" in restart
    assert "Lend" in phone.press("2")
    assert "Continue" not in phone.dial()


def test_a_completed_session_event_clears_the_resume_offer(client, world):
    lender = world.lender(balance=500_000)
    world.listed_loan(world.member("Amina Otieno", roles="borrower"))
    phone = Phone(client, lender.phone)
    phone.run("1", "1")
    client.post(f"/hooks/ussd/events?key={KEY}", data={
        "sessionId": phone.session, "phoneNumber": lender.phone, "status": "Success"})
    assert "Continue" not in phone.dial()


def test_redis_stopped_mid_session_answers_end_within_a_second(services, world, client):
    borrower = world.member("Amina Otieno", roles="borrower")
    phone = Phone(client, borrower.phone)
    phone.run("1")
    dead = RedisHandle(client_for("redis://127.0.0.1:1/0"), "redis://127.0.0.1:1/0")
    broken = Services(settings=services.settings, db=services.db, redis=dead,
                      clock=services.clock)
    down = Phone(create_app(services=broken).test_client(), borrower.phone)
    down.session, down.text = phone.session, phone.text
    started = time.perf_counter()
    body = down.press("1500")
    assert time.perf_counter() - started < 5.0  # long before the network drops the session
    assert body.startswith("END ") and "busy" in body
    assert count(world, Loan) == 0


def test_a_database_outage_ends_with_an_apology_in_the_callers_language(services, world):
    from core.config import load_settings
    from core.db import Database

    world.member("Amina Otieno", roles="borrower", language="sw", phone="+254711000001")
    app = create_app(services=services)
    phone = Phone(app.test_client(), "+254711000001")
    phone.dial()
    settings = load_settings(env={}, overrides={
        "database": {"url": "postgresql://nobody@127.0.0.1:1/none"},
        "security": {"webhook_key": KEY}})
    broken = Services(settings=services.settings, db=Database(settings),
                      redis=services.redis, clock=services.clock)
    down = Phone(create_app(services=broken).test_client(), "+254711000001")
    down.session, down.text = phone.session, phone.text
    started = time.perf_counter()
    body = down.press("2")  # My loans needs the database
    assert time.perf_counter() - started < 5.0  # long before the network drops the session
    assert body == "END Samahani, kuna hitilafu. Tafadhali piga tena baadaye."


def test_a_wrong_webhook_key_is_403_and_changes_nothing(client, world):
    for key in ("", "wrong-key"):
        response = client.post(f"/hooks/ussd?key={key}", data={
            "sessionId": "s", "phoneNumber": "+254733000999", "text": ""})
        assert response.status_code == 403
        response = client.post(f"/hooks/ussd/events?key={key}", data={
            "sessionId": "s", "phoneNumber": "+254733000999", "status": "Failed"})
        assert response.status_code == 403
    assert world.services.redis.client.dbsize() == 0
    assert count(world, Member) == 0


def test_a_wrong_pin_says_how_many_tries_are_left_and_a_locked_pin_when_it_unlocks(
        client, world):
    borrower = world.member("Amina Otieno", roles="borrower")
    p = Phone(client, borrower.phone)
    p.run("1", "3000", "1", "1", "1")
    assert "2 tries left" in p.press("1357")
    assert "1 try left" in p.press("1357")
    last = p.press("1357")
    assert last.startswith("END Wrong PIN") and "locked until 12:30" in last
    # The lock is said on the first screen, with who can help, and no typing is wasted.
    first = p.dial()
    assert first.startswith("CON Your PIN is locked until 12:30") and "Help: Grace, 07" in first
    assert "Request a loan" in p.press("1")  # on to the main menu, where borrowing says it again
    assert "locked until 12:30" in p.press("1")
    # Wrong tries left nothing behind: no draft, no listed loan.
    assert count(world, Loan) == 0


def test_repay_now_by_ussd_prompts_the_phone_once(client, world, services):
    loan = world.disbursed_loan(amount=100_000)
    borrower = world.loan(loan.number).borrower
    p = Phone(client, borrower.phone)
    menu = p.dial()
    repay = next(line.split(".")[0] for line in menu.splitlines() if "How to repay" in line)
    screen = p.press(repay)
    assert loan.number in screen and "Repay now" in screen
    assert loan.number in p.press("1")
    done = p.press("1050")
    assert done.startswith("END") and "Ksh 1,050" in done
    assert p.resend() == done  # a resent hop asks for nothing twice
    with world.uow() as uow:
        requests = uow.session.execute(select(StkRequest.amount, StkRequest.account)).all()
    assert requests == [(105_000, loan.number)]
