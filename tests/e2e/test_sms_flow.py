"""A loan's life over HTTP with SMS: pledge by SMS, confirm by code, fund, pay out,
repay on the payment hook; every message goes through the real worker and the real
Africa's Talking SDK to a local fake of AT."""
from __future__ import annotations

import itertools
import re

from sqlalchemy import select

from core import checks
from core.models import LoanStatus, OutboxMessage, OutboxStatus, Payment, Pledge, PledgeStatus
from tests.support import paybill, run_worker
from web.app import create_app
from workers import duties

KEY = "test-webhook-key"
_ids = itertools.count(1)


def sms(client, phone: str, text: str, sms_id: str | None = None):
    return client.post(f"/hooks/sms?key={KEY}", data={
        "from": phone, "to": "22384", "text": text, "id": sms_id or f"ATin{next(_ids)}",
        "date": "2026-03-02 12:00:00", "linkId": "", "networkCode": "63902"})


def code_in(message: str) -> str:
    match = re.search(r"YES (\d{4})", message)
    assert match, message
    return match.group(1)


def test_pledge_by_sms_fund_disburse_and_repay(world, at_services, fake_at, clock):
    client = create_app(services=at_services).test_client()
    world.listed_loan(amount=300_000)  # Ksh 3,000
    amina, baraka = world.lender(500_000, "Amina Lender"), world.lender(500_000, "Baraka Lender")
    run_worker(at_services)  # the welcomes and top-up receipts go first

    response = sms(client, amina.phone, "LEND L1001 1500")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    run_worker(at_services)
    amina_code = code_in(fake_at.delivered_to(amina.phone)[-1])
    assert "Ksh 1,500" in fake_at.delivered_to(amina.phone)[-1]
    assert world.wallet(amina).available == 500_000  # nothing held before YES

    assert sms(client, amina.phone, f"yes {amina_code}").status_code == 200
    run_worker(at_services)
    assert world.wallet(amina).available == 350_000  # the hold is placed
    assert "is held" in fake_at.delivered_to(amina.phone)[-1]
    assert world.loan("L1001").pledged == 150_000

    sms(client, baraka.phone, "kopesha 1001 1,500/=")
    run_worker(at_services)
    baraka_code = code_in(fake_at.delivered_to(baraka.phone)[-1])
    sms(client, baraka.phone, f"NDIO {baraka_code}")
    run_worker(at_services)
    assert world.loan("L1001").status == LoanStatus.FUNDED
    borrower_phone = world.loan("L1001").borrower.phone
    assert any("fully funded" in m for m in fake_at.delivered_to(borrower_phone))
    for lender in (amina, baraka):
        assert any("fully funded" in m for m in fake_at.delivered_to(lender.phone))

    report = duties.tick(at_services, clock())  # pays the funded loan out
    assert report.failed == {} and report.done["disburse_funded"] == 1
    run_worker(at_services)
    assert world.loan("L1001").status == LoanStatus.DISBURSED
    assert any("sent for loan L1001" in m for m in fake_at.delivered_to(borrower_phone))

    clock.advance(days=6)
    response = paybill(client, trans_id="QKR1", amount=105_000, account="L1001", when=clock())
    assert response.status_code == 200
    run_worker(at_services)
    # Ksh 1,050 repaid: split by what each is owed (fee, then two equal lenders)
    shares = [re.search(r"L1001: (Ksh [\d,]+) to your wallet", fake_at.delivered_to(p)[-1])
              for p in (amina.phone, baraka.phone)]
    assert all(shares), [fake_at.delivered_to(p)[-1] for p in (amina.phone, baraka.phone)]
    with world.uow() as uow:
        lender_part = uow.session.scalar(select(Payment.lender_part).where(
                Payment.transaction_id == "QKR1"))
    assert shares[0].group(1) == shares[1].group(1) == world.settings.fmt(lender_part // 2)
    assert any("Received Ksh 1,050 for L1001" in m for m in fake_at.delivered_to(borrower_phone))
    with world.uow() as uow:
        statuses = set(uow.session.scalars(select(OutboxMessage.status)))
        assert statuses == {OutboxStatus.SENT}
        assert checks.check(uow) == []


def test_a_code_works_once_only_from_the_pledging_phone(world, at_services, fake_at, clock):
    client = create_app(services=at_services).test_client()
    world.listed_loan(amount=300_000)
    lender, other = world.lender(500_000), world.lender(500_000, "Other Lender")
    run_worker(at_services)  # the welcomes and top-up receipts go first
    sms(client, lender.phone, "LEND L1001 500")
    run_worker(at_services)
    code = code_in(fake_at.delivered_to(lender.phone)[-1])

    sms(client, other.phone, f"YES {code}")  # someone else's phone
    run_worker(at_services)
    assert f"Code {code} is not valid" in fake_at.delivered_to(other.phone)[-1]
    assert world.wallet(lender).available == 500_000

    sms(client, lender.phone, f"YES {code}")
    sms(client, lender.phone, f"YES {code}")  # again: nothing more is held
    run_worker(at_services)
    assert world.wallet(lender).available == 450_000
    assert "already confirmed" in fake_at.delivered_to(lender.phone)[-1]


def test_a_code_does_not_work_after_the_pledge_lapses(world, at_services, fake_at, clock):
    client = create_app(services=at_services).test_client()
    world.listed_loan(amount=300_000)
    lender = world.lender(500_000)
    run_worker(at_services)  # the welcome and top-up receipt go first
    sms(client, lender.phone, "LEND L1001 500")
    run_worker(at_services)
    code = code_in(fake_at.delivered_to(lender.phone)[-1])
    clock.advance(hours=25)
    sms(client, lender.phone, f"YES {code}")
    run_worker(at_services)
    assert f"Code {code} has expired" in fake_at.delivered_to(lender.phone)[-1]
    assert world.wallet(lender).available == 500_000
    duties.tick(at_services, clock())
    with world.uow() as uow:
        assert uow.session.scalar(select(Pledge.status)) == PledgeStatus.LAPSED
