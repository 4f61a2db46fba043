"""A small demo world so a newcomer sees something real at once: an agent, borrowers
and lenders with wallet money, and loans listed, funded, repaying and repaid."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from core import disbursements, disputes, loans, members, pledges, repayments
from core.models import Member
from runtime.services import Services
from workers.payouts import send_payout

PIN = "2580"
AGENT = ("+254700000001", "Grace Wanjiku", "agent")
BORROWERS = [
    ("+254711000001", "Amina Otieno", "Kisumu"),
    ("+254711000002", "Wanjiru Kamau", "Nyeri"),
    ("+254711000003", "Baraka Mwangi", "Machakos"),
    ("+254711000004", "Zawadi Achieng", "Kakamega"),
]
LENDERS = [
    ("+254722000001", "Otieno Ochieng", 2_000_000),
    ("+254722000002", "Njeri Diaspora", 5_000_000),
    ("+254722000003", "Juma Hassan", 1_000_000),
]


def cast() -> list[tuple[str, str, str]]:
    """The people the simulator's page opens with: (phone, name, role)."""
    return [(AGENT[0], AGENT[1], "agent"),
            *((phone, name, "borrower") for phone, name, _ in BORROWERS[:2]),
            *((phone, name, "lender") for phone, name, _ in LENDERS[:2])]


def seed(svc: Services, now: datetime) -> bool:
    """Seed once; returns False when members already exist. Every step goes through
    the real use cases, each its own transaction; payouts go through the configured
    gateway as a worker would send them."""
    uow = svc.uow
    with uow() as u:
        if u.session.scalar(select(func.count()).select_from(Member)):
            return False
    currency = svc.settings.app.currency
    agent = members.register(uow(), phone=AGENT[0], name=AGENT[1], national_id="10000001",
                             roles="agent,admin", pin=PIN, accept_terms=True, now=now).member
    borrowers = [members.register(
        uow(), phone=phone, name=name, national_id=f"2000000{i}", roles="borrower,lender",
        language="sw" if i % 2 else "en", pin=PIN, agent_id=agent.id, place=place,
        accept_terms=True, now=now).member for i, (phone, name, place) in enumerate(BORROWERS)]
    lenders = [members.register(
        uow(), phone=phone, name=name, national_id=f"3000000{i}", roles="lender", pin=PIN,
        accept_terms=True, now=now).member for i, (phone, name, _) in enumerate(LENDERS)]
    for i, (phone, _, balance) in enumerate(LENDERS):
        repayments.record_payment(uow(), provider="mpesa", transaction_id=f"DEMO-TOPUP-{i}",
                                  phone=phone, amount=balance, currency=currency,
                                  reference=phone, occurred_at=now, now=now)
    earlier = now - timedelta(days=21)

    def listed(borrower: Member, amount: int, weeks: int, purpose: str, at: datetime) -> str:
        loan, _ = loans.request_loan(uow(), borrower_id=borrower.id, amount=amount,
                                     term_weeks=weeks, purpose=purpose, now=at)
        loans.list_loan(uow(), borrower_id=borrower.id, number=loan.number or "", pin=PIN,
                        now=at)
        return loan.number or ""

    def pledge(lender: Member, number: str, amount: int, at: datetime) -> None:
        p = pledges.propose_pledge(uow(), lender_id=lender.id, number=number, amount=amount,
                                   now=at)
        pledges.confirm_pledge(uow(), phone=lender.phone, code=p.code, now=at)

    def disburse(number: str, at: datetime) -> None:
        with uow() as u:
            loan_id = loans.find_loan(u, number).id
        payout = disbursements.disburse(uow(), loan_id=loan_id, provider=svc.payouts.provider,
                                        now=at)
        assert payout is not None
        send_payout(svc.uow, svc.payouts, payout.id, at)

    # Repaying: funded three weeks ago, two installments paid.
    repaying = listed(borrowers[0], 400_000, 4, "stock", earlier)
    pledge(lenders[0], repaying, 150_000, earlier)
    pledge(lenders[1], repaying, 250_000, earlier)
    disburse(repaying, earlier)
    with uow() as u:
        installment = loans.find_loan(u, repaying).installments[0].amount
    paid_at = earlier + timedelta(days=13)
    repayments.record_payment(uow(), provider="mpesa", transaction_id="DEMO-REPAY-1",
                              phone=borrowers[0].phone, amount=2 * installment,
                              currency=currency, reference=repaying, occurred_at=paid_at,
                              now=paid_at)
    # Listed, partly funded; another listed and untouched.
    partly = listed(borrowers[1], 300_000, 8, "farm", now - timedelta(days=2))
    pledge(lenders[2], partly, 100_000, now - timedelta(days=1))
    listed(borrowers[2], 200_000, 4, "school", now)
    # Funded and disbursed today.
    fresh = listed(borrowers[3], 150_000, 4, "health", now - timedelta(days=3))
    pledge(lenders[1], fresh, 150_000, now)
    disburse(fresh, now)
    # For the operator console: a receipt in suspense (a mistyped account) and a case
    # the borrower opened by SMS, waiting to be acknowledged.
    repayments.record_payment(uow(), provider="mpesa", transaction_id="DEMO-SUSPENSE-1",
                              phone=borrowers[0].phone, amount=50_000, currency=currency,
                              reference="L10O1", occurred_at=now, now=now)
    disputes.open_dispute(uow(), member_id=borrowers[0].id, number=repaying,
                          reason="I paid 500 on Monday and it is not counted", now=now,
                          request_key="demo-dispute-1")
    return True
