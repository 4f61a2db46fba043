"""What people read, in both languages, through the real doors: a receipt carries the
M-Pesa transaction code; Swahili says NDIYO and reads as Swahili; every text comes out
of the outbox as the hooks and duties write it."""
from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from core.messages import CATALOG
from core.models import InboundSms, InboundStatus, Member, OutboxMessage, Pledge, PledgeStatus
from tests.conftest import AIRTEL_SECRET
from tests.support import paybill, post_signed, record_payments, run_worker
from workers import duties

KEY = "test-webhook-key"
_ids = itertools.count(1)


def sms(world, client, phone: str, text: str) -> None:
    """An SMS in at the webhook, answered as the handler job would."""
    assert client.post(f"/hooks/sms?key={KEY}", data={
        "from": phone, "to": "22384", "text": text, "id": f"ATtexts{next(_ids)}",
        "date": "2026-03-02 12:00:00"}).status_code == 200
    with world.uow() as uow:
        waiting = list(uow.session.scalars(select(InboundSms.id).where(
            InboundSms.status == InboundStatus.RECEIVED)))
    for inbound_id in waiting:
        assert duties.answer_sms(world.services, inbound_id) == "handled"


def last_to(world, phone: str, template: str | None = None) -> str:
    with world.uow() as uow:
        query = select(OutboxMessage.text).where(OutboxMessage.phone == phone)
        if template:
            query = query.where(OutboxMessage.template == template)
        return uow.session.scalars(query.order_by(OutboxMessage.id.desc())).first() or ""


def speak(world, member: Member, language: str) -> None:
    with world.uow() as uow:
        uow.session.get(Member, member.id).language = language
        uow.commit()


@pytest.mark.parametrize(("language", "repaid", "topped_up"), [
    ("en", "Received Ksh 1,000 for L1001, ref QK12ABC3DE. Left to pay: Ksh 2,150. Thank you!",
     "Received Ksh 500, ref QK34DEF5GH. Your Harambee wallet now has Ksh 500."),
    ("sw", "Tumepokea Ksh 1,000 za mkopo L1001, kumb. QK12ABC3DE. Deni lililobaki: Ksh 2,150. "
           "Asante!",
     "Tumepokea Ksh 500, kumb. QK34DEF5GH. Salio la pochi yako ya Harambee sasa ni Ksh 500."),
])
def test_receipts_carry_the_mpesa_code(world, client, clock, language, repaid, topped_up):
    loan = world.disbursed_loan(lenders=1, amount=300_000)
    borrower = world.loan(loan.number).borrower
    speak(world, borrower, language)
    assert paybill(client, trans_id="QK12ABC3DE", amount=100_000, account=loan.number,
                   when=clock()).status_code == 200
    run_worker(world.services)  # records the confirmation stored at the door
    assert last_to(world, borrower.phone, "sms.repayment_receipt") == repaid
    assert paybill(client, trans_id="QK34DEF5GH", amount=50_000, account=borrower.phone,
                   when=clock()).status_code == 200
    run_worker(world.services)
    assert last_to(world, borrower.phone, "sms.topup_receipt") == topped_up


def test_an_overpayment_and_an_unmatched_payment_carry_the_code_too(world, client, clock):
    loan = world.disbursed_loan(lenders=1, amount=300_000)
    borrower = world.loan(loan.number).borrower
    speak(world, borrower, "sw")
    paybill(client, trans_id="QK56GHI7JK", amount=320_000, account=loan.number, when=clock())
    run_worker(world.services)
    assert last_to(world, borrower.phone, "sms.repayment_overpaid") == (
        "Tumepokea Ksh 3,200 za mkopo L1001, kumb. QK56GHI7JK. Mkopo umelipwa kikamilifu; "
        "Ksh 50 za ziada zimeingia kwenye pochi yako.")
    response = post_signed(client, {
        "provider": "airtel", "transaction_id": "AT9XYZ", "amount": 70_000, "currency": "KES",
        "reference": "NOBODY", "phone": "+254722000999"}, secret=AIRTEL_SECRET)
    assert response.status_code == 200, response.json
    assert last_to(world, "+254722000999") == (
        "We received Ksh 700, ref AT9XYZ, for account NOBODY but could not match it. Our "
        "team will contact you.")


def test_swahili_says_ndiyo_and_takes_ndiyo_ndio_and_yes(world, client):
    loan = world.listed_loan(amount=300_000)
    lenders = [world.lender(500_000, name) for name in ("Juma One", "Juma Two", "Juma Three")]
    for lender, word in zip(lenders, ("NDIYO", "ndio", "Yes"), strict=True):
        speak(world, lender, "sw")
        sms(world, client, lender.phone, f"KOPESHA {loan.number} 500")
        with world.uow() as uow:
            code = uow.session.scalar(select(Pledge.code).where(Pledge.lender_id == lender.id))
        assert last_to(world, lender.phone, "sms.pledge_code") == (
            f"Ili kumkopesha Wanjiru Ksh 500 ({loan.number}), jibu NDIYO {code} ndani ya saa "
            f"24. Ili kughairi, jibu HAPANA {code}.")
        sms(world, client, lender.phone, f"{word} {code}")
        with world.uow() as uow:
            assert uow.session.scalar(select(Pledge.status).where(
                Pledge.lender_id == lender.id)) == PledgeStatus.CONFIRMED, word
    sms(world, client, lenders[0].phone, "NDIYO")
    assert last_to(world, lenders[0].phone) == (
        "Ili kuthibitisha ahadi, tuma NDIYO na nambari tuliyokutumia, mfano NDIYO 4821.")


def test_a_listed_loan_a_repaid_share_and_a_closed_pledge_in_swahili(world, client, clock):
    loan = world.listed_loan(amount=300_000, purpose="farm")
    juma = world.lender(500_000, "Juma Lender")
    speak(world, juma, "sw")
    sms(world, client, juma.phone, "MIKOPO")
    assert last_to(world, juma.phone) == (
        f"Mikopo ya kukopesha: {loan.number} (Kilimo; wakala: hana rekodi bado): "
        "kinachohitajika Ksh 3,000. Jibu "
        "KOPESHA, nambari ya mkopo na kiasi.")
    sms(world, client, juma.phone, f"HALI {loan.number}")
    deadline = loan.deadline.astimezone(world.settings.zone).strftime("%d/%m/%Y")
    assert last_to(world, juma.phone) == (
        f"Mkopo {loan.number} (Kilimo) wa Ksh 3,000: umefadhiliwa 0%, kinachohitajika "
        f"Ksh 3,000, hadi {deadline}.")
    sms(world, client, juma.phone, f"KOPESHA {loan.number} 3000")
    with world.uow() as uow:
        code = uow.session.scalar(select(Pledge.code).where(Pledge.lender_id == juma.id))
    sms(world, client, juma.phone, f"HAPANA {code}")
    sms(world, client, juma.phone, f"NDIYO {code}")
    assert last_to(world, juma.phone) == (
        f"Ahadi {code} imeshafungwa; haiwezi kubadilishwa tena.")
    world.pledge(juma, loan, 300_000)
    world.disburse(world.loan(loan.number))
    paybill(client, trans_id="QK78LMN9OP", amount=105_000, account=loan.number, when=clock())
    record_payments(world.services)
    clock.advance(minutes=10)  # the lenders' notices, as the sweep writes them
    assert duties.tick(world.services, clock(), ["tell_lenders"]).done == {"tell_lenders": 1}
    share = last_to(world, juma.phone, "sms.lender_repaid")
    assert share.startswith(f"Wanjiru amelipa mkopo {loan.number}: Ksh ")
    assert "zimeingia kwenye pochi yako. Kufikia sasa umepokea" in share
    sms(world, client, juma.phone, f"HALI {loan.number}")
    assert last_to(world, juma.phone) == (
        f"Mkopo {loan.number} unaendelea kulipwa. Malipo yajayo ni tarehe 16/03/2026.")


def test_a_lender_of_a_loan_that_closed_unfunded_is_told_in_swahili(world, clock):
    loan = world.listed_loan(amount=300_000)
    juma = world.lender(500_000, "Juma Lender")
    speak(world, juma, "sw")
    world.pledge(juma, loan, 100_000)
    clock.advance(days=30)
    assert duties.tick(world.services, clock(), ["expire_loans"]).done["expire_loans"] == 1
    assert last_to(world, juma.phone, "sms.loan_expired_lender") == (
        f"Mkopo {loan.number} umefungwa bila kufadhiliwa. Umerudishiwa Ksh 1,000 zako kwenye "
        "pochi yako.")


def test_an_english_borrower_is_told_they_hear_when_it_is_funded(world):
    loan = world.listed_loan(amount=300_000)
    assert last_to(world, world.loan(loan.number).borrower.phone, "sms.loan_listed").endswith(
        "We will SMS you when it is funded.")


# The phrases of the Swahili review, and what replaced them: none of the old may come back
# in any SMS or core text (USSD's own texts are edited with the USSD menus).
REPLACED = {
    "NDIO ": "NDIYO", "Kipindi chako kilikatika": "Muunganisho ulikatika",
    "ukitimia unapokea": "mkopo ukikamilika, utapokea", "uko unalipwa": "unaendelea kulipwa",
    " wazi (": "kinachohitajika", "huru,": "Salio la pochi", "baki ": "deni lililobaki",
    "ijayo ": "malipo yajayo", "kabla ya {next_due}": "kufikia", " imerudi": "umerudishiwa",
    "pochini": "kwenye pochi yako", "imetumwa": "imetolewa",
    "SMS ukifadhiliwa": "SMS mkopo ukifadhiliwa", "wazi.": "ambao haujakamilika",
    "Gharama": "Ada", "Kwanza {": "Malipo ya kwanza",
}


def test_no_swahili_sms_or_core_text_says_it_the_old_way():
    from core.messages.sw import core
    from core.messages.sw import sms as sms_texts

    found = {(key, old) for module in (core, sms_texts) for key, value in module.TEXTS.items()
             for old in REPLACED if old in value}
    assert found == set()
    assert "NDIYO" in CATALOG["sw"]["sms.pledge_code"]
    assert CATALOG["sw"]["loan.one_open"] == "Tayari una mkopo {number} ambao haujakamilika."
