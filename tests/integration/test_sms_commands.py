"""Incoming SMS commands, answered by the handler in the sender's language."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from core.models import (
    Dispute,
    InboundSms,
    LoanStatus,
    Member,
    OutboxMessage,
    Pledge,
    PledgeStatus,
)
from runtime.redis import RedisHandle, client_for
from runtime.services import Services
from tests.sms_hook import KEY, answer, ask, replies, send
from workers import duties


def test_help_in_both_languages(world, client):
    assert ask(world, client, world.member().phone, "help").startswith("Harambee: BAL")
    swahili = world.member("Juma Swahili", language="sw")
    assert ask(world, client, swahili.phone, "msaada").startswith("Harambee: SALIO")


def amounts_in(reply: str) -> list[str]:
    """Any money in a reply: the currency, or a number that is not a date, a loan
    number, a percentage or the USSD code."""
    rest = re.sub(r"\d\d/\d\d/\d{4}|L\d+|\d+%|\*384\*123#", "", reply)
    return re.findall(r"Ksh|KES|\d+", rest)


@pytest.mark.parametrize(("language", "command", "expected"), [
    ("en", "BAL", "You have no open loan. To see your wallet and pledges, dial *384*123# and "
                  "enter your PIN."),
    ("sw", "salio", "Huna mkopo unaoendelea. Ili kuona salio la pochi na ahadi zako, piga "
                    "*384*123# kisha uweke PIN yako.")])
def test_balance_of_a_lender_shows_no_amounts(world, client, language, command, expected):
    lender = world.member("Rich Lender", roles="lender", language=language)
    world.top_up(lender, 250_000)
    world.pledge(lender, world.listed_loan(), 50_000)
    reply = ask(world, client, lender.phone, command)
    assert reply == expected and amounts_in(reply) == []


def test_balance_of_a_borrower_names_the_loan_and_its_date_never_an_amount(
        world, services, client, clock):
    loan = world.listed_loan(amount=300_000)
    borrower = world.loan(loan.number).borrower
    world.pledge(world.lender(), loan, 100_000)
    dial = "To see amounts, dial *384*123# and enter your PIN."
    told = [ask(world, client, borrower.phone, "BAL")]
    assert told[-1] == f"Your loan {loan.number} is 33% funded and open to lenders until " \
                       f"{loan.deadline.astimezone(world.settings.zone):%d/%m/%Y}. {dial}"
    world.pledge(world.lender(), loan, 200_000)
    told.append(ask(world, client, borrower.phone, "BAL"))
    assert told[-1] == f"Your loan {loan.number} is funded. {dial}"
    world.disburse(world.loan(loan.number))
    told.append(ask(world, client, borrower.phone, "bal"))
    assert told[-1] == f"Your loan {loan.number}: next payment due 09/03/2026. {dial}"
    clock.advance(days=9)
    duties.tick(services, clock(), ["mark_arrears"])
    told.append(ask(world, client, borrower.phone, "BAL"))
    assert told[-1] == f"Your loan {loan.number}: the payment due 09/03/2026 is not paid yet. " \
                       + dial
    with world.uow() as uow:
        uow.session.get(Member, borrower.id).language = "sw"
        uow.commit()
    told.append(ask(world, client, borrower.phone, "SALIO"))
    assert told[-1] == (f"Mkopo wako {loan.number}: malipo ya tarehe 09/03/2026 bado "
                        "hayajalipwa. Ili kuona kiasi, piga *384*123# kisha uweke PIN yako.")
    assert [amounts_in(t) for t in told] == [[]] * len(told)


def test_unknown_sender_is_told_how_to_join_in_their_keyword_language(world, client):
    assert ask(world, client, "+254722000111", "BAL") == (
        "You are not registered. Dial *384*123# to join.")
    send(client, "0722000112", "msaada")  # any common form of the number
    answer(world.services)
    assert replies(world, "+254722000112") == ["Hujasajiliwa. Piga *384*123# kujiunga."]


def test_a_typo_gets_a_did_you_mean(world, client):
    member = world.member()
    assert "Did you mean BAL?" in ask(world, client, member.phone, "BALL")
    assert ask(world, client, member.phone, "xyz 123") == (
        "Sorry, we did not understand. Reply HELP for the list of commands.")


def test_bad_arguments_get_the_usage_and_change_nothing(world, client):
    lender = world.lender(100_000)
    world.listed_loan()
    assert "LEND <loan> <amount>" in ask(world, client, lender.phone, "LEND")
    too_large = ask(world, client, lender.phone, "LEND L1001 99999999999999999")
    assert too_large == "That amount is too large."
    assert "smallest pledge" in ask(world, client, lender.phone, "LEND L1001 0.5")
    assert "Your wallet has Ksh 1,000" in ask(world, client, lender.phone, "LEND L1001 2000")
    assert "No loan L9999" in ask(world, client, lender.phone, "LEND L9999 500")


def test_loans_and_status(world, client, clock):
    loan = world.listed_loan(amount=300_000, purpose="farm")
    lender = world.lender(100_000)
    listed = ask(world, client, lender.phone, "LOANS")
    assert listed.startswith("To lend: L1001 Ksh 3,000 open (Farming; agent: no record yet)")
    status = ask(world, client, lender.phone, f"status {loan.number}")
    assert status.startswith("L1001: Farming Ksh 3,000, 0% funded, Ksh 3,000 open until")
    assert "LOAN" not in ask(world, client, lender.phone, "status L1")  # no such loan
    assert ask(world, client, lender.phone, "status L1") == "No loan L1."


def late_loan(world, services, clock):
    """A loan paid out on 2 March with its first installment (9 March) unpaid, marked
    in arrears on 11 March."""
    loan = world.disbursed_loan(lenders=1, amount=300_000)
    clock.advance(days=9)
    assert duties.tick(services, clock(), ["mark_arrears"]).failed == {}
    assert world.loan(loan.number).status == LoanStatus.IN_ARREARS
    return world.loan(loan.number)


def lender_of(world, loan) -> Member:
    with world.uow() as uow:
        lender_id = uow.session.scalar(select(Pledge.lender_id).where(
            Pledge.loan_id == loan.id))
        return uow.session.get(Member, lender_id)


@pytest.mark.parametrize("language", ["en", "sw"])
def test_a_late_loan_is_told_to_its_parties_and_to_no_one_else(world, services, client,
                                                              clock, language):
    loan = late_loan(world, services, clock)
    stranger = world.member("Nosy Neighbour", language=language)
    nobody = f"L{int(loan.number[1:]) + 1}"  # the next number: no such loan
    told_stranger = ask(world, client, stranger.phone, f"STATUS {loan.number}")
    told_nobody = ask(world, client, stranger.phone, f"STATUS {nobody}")
    assert told_stranger == told_nobody.replace(nobody, loan.number)
    assert told_stranger == {"en": f"No loan {loan.number}.",
                             "sw": f"Hakuna mkopo {loan.number}."}[language]
    agent = world.agent()
    assert loan.borrower.agent_id == agent.id
    told = {"en": f"Loan {loan.number} is behind on payments: the payment due 09/03/2026 is "
                  "not paid yet.",
            "sw": f"Mkopo {loan.number} umechelewa kulipwa: malipo ya tarehe 09/03/2026 bado "
                  "hayajalipwa."}
    for party in (loan.borrower, lender_of(world, loan), agent):
        with world.uow() as uow:
            uow.session.get(Member, party.id).language = language
            uow.commit()
        assert ask(world, client, party.phone, f"status {loan.number}") == told[language], \
            party.name


def test_a_listed_loan_shows_its_funding_to_anyone(world, client):
    loan = world.listed_loan(amount=300_000, purpose="farm")
    lender = world.lender(200_000)
    world.pledge(lender, loan, 100_000)
    loan = world.loan(loan.number)
    stranger = world.member("Nosy Neighbour", roles="borrower")
    expected = f"{loan.number}: Farming Ksh 3,000, 33% funded, Ksh 2,000 open until"
    for who in (stranger, lender, loan.borrower, world.agent()):
        assert ask(world, client, who.phone, f"STATUS {loan.number}").startswith(expected)


def test_a_pledge_never_confirmed_does_not_make_a_party(world, services, client, clock):
    loan = world.listed_loan(amount=300_000)
    idle = world.lender(500_000, "Idle Lender")
    send(client, idle.phone, f"LEND {loan.number} 500")  # and never YES
    answer(services)
    with world.uow() as uow:
        assert uow.session.scalar(select(Pledge.status).where(
            Pledge.lender_id == idle.id)) == PledgeStatus.PROPOSED
    world.pledge(world.lender(500_000), loan, 300_000)  # another lender funds it all
    world.disburse(world.loan(loan.number))
    assert ask(world, client, idle.phone, f"STATUS {loan.number}") == f"No loan {loan.number}."


def test_lend_and_dispute_tell_a_stranger_nothing_of_a_loan_past_listing(
        world, services, client, clock):
    loan = late_loan(world, services, clock)
    stranger = world.lender(100_000, "Nosy Neighbour")
    nobody = f"L{int(loan.number[1:]) + 1}"
    assert ask(world, client, stranger.phone, f"LEND {loan.number} 500") == (
        f"No loan {loan.number}.")
    assert ask(world, client, stranger.phone, f"LEND {nobody} 500") == f"No loan {nobody}."
    lender = lender_of(world, loan)
    assert ask(world, client, lender.phone, f"LEND {loan.number} 500") == (
        f"Loan {loan.number} is not open for pledges.")
    about_loan = ask(world, client, stranger.phone, f"DISPUTE {loan.number} not paid")
    about_nothing = ask(world, client, stranger.phone, f"DISPUTE {nobody} not paid")
    assert about_loan == about_nothing == (
        "You can only raise a dispute about a loan you borrowed or lent to.")
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Dispute)) == 0
        assert uow.session.scalar(select(func.count()).select_from(Pledge).where(
            Pledge.lender_id == stranger.id)) == 0


def test_the_borrower_can_pay_by_sms(world, client):
    loan = world.disbursed_loan(lenders=1, amount=300_000)
    assert ask(world, client, loan.borrower.phone, "PAY").startswith(
        f"To repay {loan.number}: M-Pesa paybill 247247, account {loan.number}.")


def test_lang_switches_replies_and_later_messages(world, client):
    member = world.member()
    assert ask(world, client, member.phone, "LANG SW") == (
        "Sawa: Harambee itakuandikia kwa Kiswahili.")
    assert ask(world, client, member.phone, "help").startswith("Harambee: SALIO")
    assert ask(world, client, member.phone, "lugha english").endswith("in English.")


def test_stop_and_start_change_tips_only(world, client):
    member = world.member()
    assert "Reply START" in ask(world, client, member.phone, "STOP")
    with world.uow() as uow:
        assert uow.session.get(Member, member.id).tips_opt_out
        uow.session.get(Member, member.id).sms_unreachable = True
        uow.commit()
    ask(world, client, member.phone, "anza")
    with world.uow() as uow:
        fresh = uow.session.get(Member, member.id)
        assert not fresh.tips_opt_out and not fresh.sms_unreachable


def test_dispute_opens_a_numbered_case_for_a_party_only(world, client):
    loan = world.disbursed_loan(lenders=1)
    borrower = loan.borrower
    send(client, borrower.phone, f"DISPUTE {loan.number} my payment of 500 is missing")
    answer(world.services)
    with world.uow() as uow:
        case = uow.session.scalar(select(Dispute))
        ack = uow.session.scalar(select(OutboxMessage.text).where(
            OutboxMessage.key == f"dispute:{case.id}"))
    assert case.text == "my payment of 500 is missing" and case.number == "D1001"
    assert ack.startswith(f"We opened case D1001 about loan {loan.number}.")
    stranger = world.member("Nosy Neighbour")
    assert ask(world, client, stranger.phone, f"DISPUTE {loan.number} not paid").startswith(
        "You can only raise a dispute")
    assert "DISPUTE, the loan number" in ask(world, client, stranger.phone, "DISPUTE")


def test_a_redelivered_sms_is_stored_and_answered_once(world, client):
    member = world.member()
    for _ in range(3):
        assert send(client, member.phone, "BAL", sms_id="ATsame").status_code == 200
    answer(world.services)
    send(client, member.phone, "BAL", sms_id="ATsame")
    answer(world.services)
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(InboundSms)) == 1
    assert len(replies(world, member.phone)) == 1


def test_a_second_handler_run_replies_nothing_more(world, services, client):
    member = world.member()
    send(client, member.phone, "BAL")
    with world.uow() as uow:
        inbound_id = uow.session.scalar(select(InboundSms.id))
    assert duties.answer_sms(services, inbound_id) == "handled"
    assert duties.answer_sms(services, inbound_id) == "done"
    assert len(replies(world, member.phone)) == 1


def test_with_the_queue_down_the_sweep_answers(world, services, clock):
    from web.app import create_app

    dead = RedisHandle(client_for("redis://127.0.0.1:1/0"), "redis://127.0.0.1:1/0")
    offline = Services(settings=services.settings, db=services.db, redis=dead, clock=clock)
    member = world.member()
    response = send(create_app(services=offline).test_client(), member.phone, "BAL")
    assert response.status_code == 200
    assert replies(world, member.phone) == []
    clock.advance(minutes=2)
    assert duties.tick(services, clock(), ["inbound_sweep"]).done == {"inbound_sweep": 1}
    assert replies(world, member.phone)[0].startswith("You have no open loan.")


@pytest.mark.parametrize("form", [{}, {"text": "BAL"}, {"from": "", "text": "BAL"}])
def test_malformed_hooks_get_400_not_500(client, form):
    assert client.post(f"/hooks/sms?key={KEY}", data=form).status_code == 400


def test_the_sms_hook_needs_the_key(world, client):
    response = client.post("/hooks/sms?key=nope", data={"from": "+254711000001", "text": "BAL",
                                                       "id": "x"})
    assert response.status_code == 403
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(InboundSms)) == 0


def test_an_unusable_sender_is_stored_and_not_answered(world, client):
    assert send(client, "SAFARICOM", "Your bundle expires").status_code == 200
    answer(world.services)
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
