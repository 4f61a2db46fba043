"""The phone experience through the real USSD hook, item by item: whole shillings, how
much and when, the dates the borrower accepted, balances behind the PIN, the lender's
list in whole words, no dead ends, the agent's PIN and summary."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from core import checks, members
from core.models import Installment, Loan, LoanStatus, Member, OutboxMessage, Pledge, PledgeStatus
from tests.support import PIN
from tests.ussd_phone import Phone, count, member

CENTS = re.compile(r"Ksh [\d,]+\.\d")


def item(screen: str, label: str) -> str:
    """The number of the menu line that says `label`."""
    return next(line.split(".")[0] for line in screen.splitlines() if line.endswith(label))


def test_the_key_facts_are_whole_shillings_and_the_dates_count_from_the_payout(
        client, world, clock):
    borrower = world.member("Amina Otieno", roles="borrower")
    phone = Phone(client, borrower.phone)
    phone.run("1", "3000", "1")
    terms = world.settings.loan.terms_weeks
    facts = phone.press(str(terms.index(4) + 1))  # 4 weeks
    # 3,000 + 5% = 3,150 in four weekly parts: whole shillings, the odd ones on the last.
    assert "Fee Ksh 150, total to repay Ksh 3,150" in facts
    assert "Pay Ksh 787 x 3, then Ksh 789, every week" in facts
    assert "First payment 1 week after you receive the money." in facts
    assert not CENTS.search(facts)
    assert phone.press("1").startswith("CON Enter your PIN to ask for this loan")
    assert "open to lenders" in phone.press(PIN)
    with world.uow() as uow:
        number = uow.session.scalar(select(Loan.number).where(Loan.borrower_id == borrower.id))
    loan = world.loan(number)
    for amount in (100_000, 100_000, 100_000):
        world.pledge(world.lender(balance=amount), loan, amount)
    paid_out = clock.advance(days=5)  # funding took days: the dates count from the payout
    world.disburse(world.loan(number))
    with world.uow() as uow:
        dues = list(uow.session.scalars(select(Installment).where(
            Installment.loan_id == loan.id).order_by(Installment.seq)))
        sms = uow.session.scalar(select(OutboxMessage.text).where(
            OutboxMessage.template == "sms.loan_disbursed"))
    local = paid_out.astimezone(world.settings.zone).date()
    assert [d.due_on for d in dues] == [local + timedelta(weeks=n) for n in (1, 2, 3, 4)]
    assert [d.amount for d in dues] == [78_700, 78_700, 78_700, 78_900]
    assert dues[0].due_on.strftime("%d/%m/%Y") in sms  # the exact dates, at payout


def test_how_to_repay_says_how_much_by_when_and_what_is_left(client, world, clock):
    loan = world.disbursed_loan(amount=300_000, term_weeks=4)
    borrower = world.loan(loan.number).borrower
    phone = Phone(client, borrower.phone)
    screen = phone.press(item(phone.dial(), "How to repay"))
    first = world.loan(loan.number).installments[0]
    due = first.due_on.strftime("%d/%m")
    paybill = world.settings.payments.paybill
    assert (f"Loan {loan.number}: pay Ksh 787 by {due}. Left to repay in all: Ksh 3,150."
            in screen)
    assert f"paybill {paybill}, account {loan.number}" in screen and "Repay now" in screen
    # A week and a day later, nothing paid: it says what is late, and to pay now.
    clock.advance(days=8)
    late = Phone(client, borrower.phone)
    screen = late.press(item(late.dial(), "How to repay"))
    assert f"Loan {loan.number}: Ksh 787 is late, please pay it now." in screen


def test_my_loans_opens_a_loan_and_a_listed_one_can_be_withdrawn(client, world):
    borrower = world.member("Amina Otieno", roles="borrower")
    loan = world.listed_loan(borrower, amount=300_000)
    lender = world.lender(balance=100_000)
    world.pledge(lender, loan, 100_000)
    phone = Phone(client, borrower.phone)
    mine = phone.press(item(phone.dial(), "My loans"))
    assert f"1. {loan.number}: 33% of Ksh 3,000 pledged" in mine
    detail = phone.press("1")
    assert f"Loan {loan.number}: Ksh 3,000, 33% pledged, Ksh 2,000 still needed." in detail
    assert "1. Withdraw this loan" in detail
    assert "you owe nothing" in phone.press("1")
    assert world.wallet(lender).available == 0  # not yet: the borrower must say yes
    done = phone.press("1")
    assert done.startswith(f"CON Loan {loan.number} is withdrawn.\n1. Request a loan")
    assert world.loan(loan.number).status == LoanStatus.CANCELLED
    assert world.wallet(lender).available == 100_000  # the pledge released
    with world.uow() as uow:
        assert checks.check(uow) == []


def test_balances_need_the_pin_once_a_session(client, world):
    lender = world.lender(balance=250_000, name="Otieno Lender")
    phone = Phone(client, lender.phone)
    menu = phone.dial()
    asked = phone.press(item(menu, "Wallet"))
    assert asked == "CON Enter your PIN to see your balances:" and "250" not in asked
    assert "Wrong PIN. 2 tries left." in phone.press("1357")
    wallet = phone.press(PIN)
    assert "Wallet Ksh 2,500" in wallet and "Free to lend or withdraw Ksh 2,500" in wallet
    phone.press("00")
    account = phone.press(item(menu, "My account"))  # the same session: no PIN again
    assert "Wallet Ksh 2,500; in pledges Ksh 0" in account
    again = Phone(client, lender.phone)  # a new session asks again
    assert again.press(item(again.dial(), "My account")).startswith("CON Enter your PIN")


def test_the_lenders_list_is_in_whole_words_and_the_detail_is_one_step_deeper(client, world):
    borrower = members.register(world.uow(), phone=world.next_phone(), name="Wanjiru Kamau",
                                national_id="30000001", place="Nyeri", roles="borrower",
                                pin=PIN, agent_id=world.agent().id, accept_terms=True,
                                now=world.now).member
    loan = world.listed_loan(borrower, amount=300_000, purpose="farm")
    lender = world.lender(balance=500_000)
    phone = Phone(client, lender.phone)
    listing = phone.press(item(phone.dial(), "Lend"))
    assert ("1. Wanjiru, Nyeri, farming, Ksh 3,000, 0% funded, first loan, "
            "agent: no record yet") in listing
    detail = phone.press("1")
    assert detail.startswith("CON Wanjiru, Nyeri, farming, Ksh 3,000, 0% funded, 4 weeks, "
                             "first loan, agent: no record yet\nKsh 3,000 still needed.\n"
                             "Amount to lend:")
    assert "5,000" not in detail  # the wallet's balance waits for the PIN
    assert "Lend Ksh 1,000 to Wanjiru" in phone.press("1000")
    assert phone.press(PIN).startswith(f"END You pledged Ksh 1,000 to loan {loan.number}")


def test_an_empty_wallet_leads_to_topping_up_not_out_of_the_session(client, world):
    world.listed_loan(world.member("Wanjiru Kamau", roles="borrower"))
    lender = world.lender(balance=0)
    phone = Phone(client, lender.phone)
    phone.press(item(phone.dial(), "Lend"))
    empty = phone.press("1")
    assert empty.startswith("CON You have no money free to lend. Top up by M-Pesa: paybill")
    assert "0. Back" in empty
    assert "1. Wanjiru" in phone.press("0")  # back to the loans, the session goes on


def test_a_pending_member_is_told_whom_to_call(client, world):
    pending = world.member("Halima Njoroge", roles="borrower", verified=False)
    phone = Phone(client, pending.phone)
    screen = phone.press(item(phone.dial(), "Request a loan"))
    assert screen.startswith("CON Before you borrow, an agent must meet you and see your ID."
                             " Call Harambee, 0709 000000.")
    assert count(world, Loan) == 0


def test_an_agent_hears_a_taken_id_at_once_and_saves_only_with_their_pin(client, world):
    taken = world.member("Amina Otieno", roles="borrower")
    agent = world.agent()
    phone = Phone(client, agent.phone)
    phone.run("1", "1", "0733 000 444", "Baraka Mwangi")
    said = phone.press(taken.national_id or "")
    assert "already" in said and "Member's national ID number" in said  # asked again here
    phone.press("34567891")
    phone.press("Machakos")
    assert "Register Baraka Mwangi, 0733 000444, ID 34567891, Machakos, English?" in \
        phone.press("1")
    phone.press("1")
    assert "Wrong PIN. 2 tries left." in phone.press("1357")
    assert member(world, "+254733000444") is None
    assert phone.press(PIN).startswith("END Baraka Mwangi (0733 000444) is registered")
    assert member(world, "+254733000444").agent_id == agent.id


def test_no_amount_a_person_reads_on_any_screen_has_cents(client, world):
    """Shares of an odd repayment stay exact in the ledger, and every screen shows whole
    shillings."""
    loan = world.disbursed_loan(amount=300_000, lenders=3)
    world.pay(loan.number, 100_100)  # Ksh 1,001 among three lenders
    borrower = world.loan(loan.number).borrower
    with world.uow() as uow:
        lenders = list(uow.session.scalars(select(Member).join(
            Pledge, Pledge.lender_id == Member.id).where(
            Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.POSTED)))
    screens = []
    for who in [borrower, *lenders]:
        phone = Phone(client, who.phone)
        menu = phone.dial()
        for label in ("My loans", "How to repay", "My pledges"):
            if label in menu:
                screens.append(phone.press(item(menu, label)))
                phone.press("00")
        gate = Phone(client, who.phone)
        gate.press(item(gate.dial(), "My account"))
        screens.append(gate.press(PIN))
    assert len(screens) >= 7
    for screen in screens:
        assert not CENTS.search(screen), screen
    with world.uow() as uow:
        assert checks.check(uow) == []
