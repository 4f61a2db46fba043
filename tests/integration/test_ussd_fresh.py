"""What a USSD screen shows is never older than the last committed change, whichever
channel made it: a top-up or a repayment by M-Pesa (C2B), a pledge by SMS, a PIN
locked by wrong tries, a language changed by SMS. Balances and loans are read on the
hop that shows them; what the dial keeps of the caller (the caller card in Redis) is
dropped by every commit that writes the member, and a card read before such a commit
is never kept after it. (A C2B confirmation is recorded by the payments worker: "at
once" is once it is recorded.)"""
from __future__ import annotations

from itertools import count

import pytest
from sqlalchemy import select

from core import members
from core.errors import WrongPin
from core.models import Pledge
from runtime import caller_cards
from tests.conftest import CALLBACK_TOKEN
from tests.sms_hook import answer, ask, send
from tests.support import NAIROBI, PIN, START, record_payments
from tests.ussd_phone import Phone
from ussd.adapter import CorePort

_receipts = count(1)


def c2b(client, services, account: str, shillings: int) -> None:
    """A paybill payment confirmed by Daraja (C2B) to `account`, stored at the door and
    recorded as the payments worker records it."""
    response = client.post(f"/hooks/c2b/{CALLBACK_TOKEN}/confirmation", json={
        "TransactionType": "Pay Bill", "TransID": f"SFR{next(_receipts):07d}",
        "TransTime": START.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"),
        "TransAmount": f"{shillings}.00", "BusinessShortCode": "174379",
        "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "",
        "ThirdPartyTransID": "", "MSISDN": "2547****0001", "FirstName": "Juma",
        "MiddleName": "", "LastName": "Hassan"})
    assert response.status_code == 200, response.get_data(as_text=True)
    record_payments(services)


@pytest.fixture
def juma(world):
    me = world.member("Juma Hassan", phone="+254711000001", roles="borrower,lender")
    world.top_up(me, 100_000)
    return me


def test_a_top_up_by_c2b_shows_at_once_in_the_wallet(services, client, juma):
    phone = Phone(client, juma.phone)
    assert "Wallet Ksh 1,000\n" in phone.run("6", PIN)
    c2b(client, services, "0711000001", 500)
    phone.press("0")
    assert "Wallet Ksh 1,500\n" in phone.press("6")  # the same session, PIN already typed
    assert "Wallet Ksh 1,500\n" in Phone(client, juma.phone).run("6", PIN)  # a new one
    assert "Wallet Ksh 1,500;" in Phone(client, juma.phone).run("7", PIN)  # my account


def test_a_pledge_by_sms_shows_at_once_as_held(world, client, juma):
    loan = world.listed_loan()
    phone = Phone(client, juma.phone)
    assert "Held in pledges Ksh 0" in phone.run("6", PIN)
    send(client, juma.phone, f"LEND {loan.number} 400")  # core texts the code back
    answer(world.services)
    with world.uow() as uow:
        code = uow.session.scalar(select(Pledge.code).where(Pledge.lender_id == juma.id))
    send(client, juma.phone, f"YES {code}")
    answer(world.services)
    phone.press("0")
    said = phone.press("6")
    assert "Free to lend or withdraw Ksh 600\nHeld in pledges Ksh 400" in said
    said = Phone(client, juma.phone).run("6", PIN)
    assert "Free to lend or withdraw Ksh 600\nHeld in pledges Ksh 400" in said
    assert f"{loan.number}: Ksh 400" in Phone(client, juma.phone).run("5")  # my pledges


def test_a_repayment_by_c2b_shows_at_once_in_my_loans(services, world, client, juma):
    loan = world.disbursed_loan(borrower=juma)
    first, second = loan.installments[0], loan.installments[1]
    phone = Phone(client, juma.phone)
    assert f"pay Ksh {first.amount // 100:,} by {first.due_on:%d/%m}" in phone.run("2")
    c2b(client, services, loan.number or "", first.amount // 100)
    phone.press("0")
    due = f"pay Ksh {second.amount // 100:,} by {second.due_on:%d/%m}"
    assert due in phone.press("2")  # the same session
    assert due in Phone(client, juma.phone).run("2")  # a new one
    left = (loan.total_due - first.amount) // 100
    assert f"Left to repay in all: Ksh {left:,}" in Phone(client, juma.phone).run("3")


def test_a_pin_locked_elsewhere_is_said_on_the_next_dial(world, client, clock, juma):
    assert Phone(client, juma.phone).dial().startswith("CON Harambee: Juma")  # card kept
    for _ in range(world.settings.pin.max_tries):
        with pytest.raises(WrongPin):
            members.check_pin(world.uow(), juma.id, "0000", world.now)
    assert "Your PIN is locked until 12:30" in Phone(client, juma.phone).dial()
    clock.advance(minutes=world.settings.pin.lock_minutes + 1)
    assert Phone(client, juma.phone).dial().startswith("CON Harambee: Juma")


def test_a_language_changed_by_sms_is_spoken_on_the_next_dial(world, client, juma):
    english = Phone(client, juma.phone).dial()
    assert "My account" in english
    ask(world, client, juma.phone, "LUGHA SW")
    swahili = Phone(client, juma.phone).dial()
    assert swahili != english and "Akaunti yangu" in swahili


def test_a_caller_read_before_a_commit_is_not_kept_after_it(world, client, monkeypatch, juma):
    """The dial reads the member, another channel commits a change to them, then the
    dial's hop ends: the card it read is refused, so the next dial reads the change."""
    read = CorePort.caller

    def read_then_changed_elsewhere(self, phone):
        found = read(self, phone)
        members.set_language(world.uow(), juma.id, "sw")  # committed before the fill
        return found

    monkeypatch.setattr(CorePort, "caller", read_then_changed_elsewhere)
    assert "My account" in Phone(client, juma.phone).dial()  # read before the change
    monkeypatch.setattr(CorePort, "caller", read)
    assert "Akaunti yangu" in Phone(client, juma.phone).dial()


def test_a_fill_is_refused_once_the_member_or_an_agent_changed(services):
    client = services.redis.client
    phone = "+254711000009"
    assert caller_cards.fill(client, phone, "{}", "0", "0") == 1
    caller_cards.forget(client, [phone])
    assert client.get(caller_cards.card_key(phone)) is None
    assert caller_cards.fill(client, phone, "{}", "0", "0") == 0  # seen before the bump
    assert caller_cards.fill(client, phone, "{}", "1", "0") == 1
    caller_cards.forget(client, [], agents=True)
    assert caller_cards.fill(client, phone, "{}", "1", "0") == 0
