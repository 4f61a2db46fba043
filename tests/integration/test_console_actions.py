"""What operators do from the console, through the test client: each action goes
through its core use case, tells the member by SMS in their language, writes one audit
row, and leaves the books sound (the `services` fixture runs `harambee check` after)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import disputes, members, settlement
from core.errors import PinLocked, WrongPin
from core.models import (
    AuditEntry,
    Dispute,
    DisputeStatus,
    Member,
    MemberStatus,
    Operator,
    OutboxMessage,
    Payment,
    PaymentKind,
    Payout,
    PayoutStatus,
)
from core.payouts import Outcome, originator_id
from tests.console_actions import make_operator
from tests.support import PIN


def _audit(services, action):
    with services.uow() as uow:
        return list(uow.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _sms(services, phone):
    with services.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage).where(OutboxMessage.phone == phone)
                                        .order_by(OutboxMessage.id)))


def _case(world, services, *, language="en", key="d1"):
    loan = world.disbursed_loan()
    borrower = world.loan(loan.number).borrower
    if language != "en":
        members.set_language(services.uow(), borrower.id, language)
    return disputes.open_dispute(services.uow(), member_id=borrower.id, number=loan.number,
                                 reason="my payment is not counted", now=services.now(),
                                 request_key=key), borrower


# ---------------------------------------------------------------- disputes

def test_acknowledging_and_resolving_a_case_tells_the_member_in_swahili(console, world,
                                                                         services):
    case, borrower = _case(world, services, language="sw")
    console.login(make_operator(services, "support"))
    before = len(_sms(services, borrower.phone))
    answer = console.post(f"/console/disputes/{case.id}/step",
                          {"step": "acknowledge", "text": "Tunaangalia malipo yako."})
    assert answer.status_code == 303
    console.post(f"/console/disputes/{case.id}/step",
                 {"step": "resolve", "text": "Malipo yamepatikana na kuhesabiwa."})
    sent = _sms(services, borrower.phone)[before:]
    assert [m.template for m in sent] == ["sms.dispute_acknowledged", "sms.dispute_resolved"]
    assert all(m.language == "sw" for m in sent)
    number = world.loan_number_for(case.loan_id)
    assert sent[1].text == (f"Lalamiko {case.number} ({number}) "
                            "limetatuliwa: Malipo yamepatikana na kuhesabiwa.")
    with services.uow() as uow:
        settled = uow.session.get(Dispute, case.id)
        assert settled.status == DisputeStatus.RESOLVED
        assert settled.acknowledged_at is not None and settled.closed_at is not None
    rows = _audit(services, "dispute.resolve")
    assert len(rows) == 1 and rows[0].operator_email == "support@harambee.test"
    assert json.loads(rows[0].before) == {"status": "acknowledged"}
    assert rows[0].reason == "Malipo yamepatikana na kuhesabiwa."
    # a settled case takes no more steps, and nothing is sent
    console.post(f"/console/disputes/{case.id}/step", {"step": "note", "text": "again"})
    assert len(_sms(services, borrower.phone)) == before + 2


def test_a_note_reaches_the_member_only_when_asked(console, world, services):
    case, borrower = _case(world, services)
    console.login(make_operator(services, "support"))
    before = len(_sms(services, borrower.phone))
    console.post(f"/console/disputes/{case.id}/step", {"step": "note", "text": "internal"})
    assert len(_sms(services, borrower.phone)) == before
    console.post(f"/console/disputes/{case.id}/step",
                 {"step": "note", "text": "We called M-Pesa.", "tell": "1"})
    assert _sms(services, borrower.phone)[-1].text == f"Case {case.number}: We called M-Pesa."
    assert len(_audit(services, "dispute.note")) == 2


def test_an_empty_step_is_refused_in_words_and_changes_nothing(console, world, services):
    case, _ = _case(world, services)
    console.login(make_operator(services, "support"))
    answer = console.post(f"/console/disputes/{case.id}/step",
                          {"step": "reject", "text": "   "}, follow=True)
    assert "Please write a reason." in answer.get_data(as_text=True)
    with services.uow() as uow:
        assert uow.session.get(Dispute, case.id).status == DisputeStatus.OPEN
    assert _audit(services, "dispute.reject") == []


def test_cases_nearest_their_deadline_come_first(console, world, services, client):
    old, _ = _case(world, services, key="old")
    services.clock.advance(days=1)
    new, _ = _case(world, services, key="new")
    console.login(make_operator(services, "support"))
    # acknowledging the old one moves its deadline to settling, 7 days from opening
    console.post(f"/console/disputes/{old.id}/step", {"step": "acknowledge", "text": "On it."})
    rows = disputes.cases(services.uow())
    assert [r.dispute.id for r in rows] == [new.id, old.id]
    assert rows[0].due == new.created_at + timedelta(days=2)
    assert rows[1].due == old.created_at + timedelta(days=7)
    services.clock.advance(days=3)  # the new one is now past its acknowledgement
    html = client.get("/console/disputes").get_data(as_text=True)
    assert html.index(new.number) < html.index(old.number) and "(late)" in html


# ---------------------------------------------------------------- members

def test_unlocking_a_pin_needs_a_reason_tells_the_member_and_is_audited(console, world,
                                                                        services):
    member = world.member("Halima Ali", language="sw")
    for _ in range(services.settings.pin.max_tries):
        with pytest.raises((WrongPin, PinLocked)):
            members.check_pin(services.uow(), member.id, "0000", services.now())
    console.login(make_operator(services, "support"))
    refused = console.post(f"/console/members/{member.id}/unlock_pin", {"reason": ""},
                           follow=True)
    assert "Please write a reason." in refused.get_data(as_text=True)
    with services.uow() as uow:
        assert uow.session.get(Member, member.id).pin_locked_until is not None
    console.post(f"/console/members/{member.id}/unlock_pin",
                 {"reason": "called from her phone, answered the questions"})
    with services.uow() as uow:
        unlocked = uow.session.get(Member, member.id)
        assert unlocked.pin_locked_until is None and unlocked.pin_failures == 0
    members.check_pin(services.uow(), member.id, PIN, services.now())  # works again
    last = _sms(services, member.phone)[-1]
    assert last.template == "sms.pin_unlocked" and last.language == "sw"
    (row,) = _audit(services, "member.unlock_pin")
    assert row.subject == f"member:{member.id}" and json.loads(row.after)["pin_failures"] == 0


def test_suspend_then_reinstate(console, world, services):
    member = world.member("Halima Ali")
    console.login(make_operator(services, "support"))
    console.post(f"/console/members/{member.id}/suspend", {"reason": "ID looks forged"})
    with services.uow() as uow:
        assert uow.session.get(Member, member.id).status == MemberStatus.SUSPENDED
    assert _sms(services, member.phone)[-1].template == "sms.account_suspended"
    console.post(f"/console/members/{member.id}/reinstate", {"reason": "agent saw the ID"})
    with services.uow() as uow:
        assert uow.session.get(Member, member.id).status == MemberStatus.VERIFIED
    assert [r.action for r in _audit(services, "member.suspend")
            + _audit(services, "member.reinstate")] == ["member.suspend", "member.reinstate"]


def test_an_operator_verifies_a_self_registered_member(console, world, services):
    member = world.member("Halima Ali", verified=False)
    console.login(make_operator(services, "support"))
    console.post(f"/console/members/{member.id}/verify", {"reason": "saw the ID at the office"})
    with services.uow() as uow:
        assert uow.session.get(Member, member.id).status == MemberStatus.VERIFIED
    assert _sms(services, member.phone)[-1].template == "sms.verified"


# ---------------------------------------------------------------- the money desk

def test_matching_a_suspense_receipt_to_a_loan_repays_it(console, world, services):
    loan = world.disbursed_loan()
    world.pay("L-typo", 100_000, phone="+254700000777")
    with services.uow() as uow:
        payment = uow.session.scalar(select(Payment).where(Payment.reference == "L-typo"))
    console.login(make_operator(services, "finance"))
    console.post(f"/console/money/suspense/{payment.id}/match",
                 {"target": loan.number.lower(), "reason": "payer called with the number"},
                 token_from="/console/money")
    after = world.loan(loan.number)
    assert after.repaid == 100_000
    with services.uow() as uow:
        matched = uow.session.get(Payment, payment.id)
        assert matched.kind == PaymentKind.REPAYMENT and matched.matched_at is not None
        assert matched.fee_part + matched.lender_part == 100_000
    receipt = _sms(services, after.borrower.phone)[-1]
    assert receipt.template == "sms.repayment_receipt"
    # twice is refused, and nothing moves again
    again = console.post(f"/console/money/suspense/{payment.id}/match",
                         {"target": loan.number, "reason": "again"},
                         token_from="/console/money", follow=True)
    assert "already left suspense" in again.get_data(as_text=True)
    assert world.loan(loan.number).repaid == 100_000
    assert len(_audit(services, "suspense.match")) == 1


def test_matching_to_a_phone_tops_up_and_a_refund_mark_moves_nothing(console, world,
                                                                      services):
    member = world.member("Halima Ali")
    world.pay("pay for Halima", 50_000, phone="+254700000778")
    world.pay("wrong number", 20_000, phone="+254700000779")
    with services.uow() as uow:
        first, second = uow.session.scalars(select(Payment).where(
            Payment.kind == PaymentKind.UNMATCHED).order_by(Payment.id)).all()
    console.login(make_operator(services, "finance"))
    local = "0" + member.phone[4:]
    console.post(f"/console/money/suspense/{first.id}/match",
                 {"target": local, "reason": "she called"}, token_from="/console/money")
    assert world.wallet(member).available == 50_000
    unknown = console.post(f"/console/money/suspense/{second.id}/match",
                           {"target": "L99999", "reason": "guess"},
                           token_from="/console/money", follow=True)
    assert "L99999 names no loan and no member." in unknown.get_data(as_text=True)
    console.post(f"/console/money/suspense/{second.id}/refund", {"reason": "payer asked"},
                 token_from="/console/money")
    with services.uow() as uow:
        assert uow.session.get(Payment, second.id).refund_marked_at is not None
        assert uow.session.get(Payment, second.id).kind == PaymentKind.UNMATCHED


def test_a_pending_payout_is_cancelled_and_a_failed_one_retried(console, world, services):
    member = world.lender(balance=500_000)
    pending = world.withdraw(member, 100_000, key="w1", send=False)
    console.login(make_operator(services, "finance"))
    refused = console.post(f"/console/money/payouts/{pending.id}/cancel", {"reason": ""},
                           token_from="/console/money", follow=True)
    assert "Please write a reason." in refused.get_data(as_text=True)
    console.post(f"/console/money/payouts/{pending.id}/cancel",
                 {"reason": "member asked to stop it"}, token_from="/console/money")
    with services.uow() as uow:
        assert uow.session.get(Payout, pending.id).status == PayoutStatus.FAILED
    assert world.wallet(member).available == 500_000  # the hold was voided
    assert _sms(services, member.phone)[-1].template == "sms.withdrawal_failed"
    # a failed one, sent and refused by the provider, is tried again from the wallet
    sent = world.withdraw(member, 200_000, key="w2", send=False)
    settlement.settle(services.uow(), provider=sent.provider, originator=originator_id(sent.id),
                      outcome=Outcome(paid=False, detail="the phone is off"),
                      now=services.now())
    console.post(f"/console/money/payouts/{sent.id}/retry", {"reason": "phone is on now"},
                 token_from="/console/money")
    with services.uow() as uow:
        retried = uow.session.scalar(select(Payout).where(Payout.key == f"retry:{sent.id}"))
        assert retried.status == PayoutStatus.PENDING and retried.amount == 200_000
    assert world.wallet(member).available == 300_000
    # a payout is retried once: the second click is refused and changes nothing
    again = console.post(f"/console/money/payouts/{sent.id}/retry", {"reason": "again"},
                         token_from="/console/money", follow=True)
    assert "already been tried again" in again.get_data(as_text=True)
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payout)) == 3
    assert len(_audit(services, "payout.retry")) == 1


def test_the_check_page_says_the_books_are_sound(console, world, services, client):
    world.disbursed_loan()
    console.login(make_operator(services, "finance"))
    html = client.get("/console/money/check").get_data(as_text=True)
    assert "The books are sound" in html


# ---------------------------------------------------------------- audit log

def test_the_audit_log_filters_by_operator_action_and_subject(console, world, services,
                                                              client):
    member = world.member("Halima Ali")
    support = make_operator(services, "support")
    console.login(support)
    console.post(f"/console/members/{member.id}/suspend", {"reason": "checking"})
    console.post(f"/console/members/{member.id}/reinstate", {"reason": "all fine"})
    client.post("/console/logout", data={"csrf_token": console.token()})
    console.login(make_operator(services, "admin"))
    html = client.get("/console/audit?action=member.suspend").get_data(as_text=True)
    assert "checking" in html and "all fine" not in html
    html = client.get(f"/console/audit?subject=member:{member.id}&operator=support@")\
        .get_data(as_text=True)
    assert "checking" in html and "all fine" in html
    assert "Nothing matches" in client.get("/console/audit?operator=finance@")\
        .get_data(as_text=True)
    exported = client.get("/console/audit?format=csv").get_data(as_text=True).splitlines()
    assert exported[0] == "id,at,operator,action,subject,before,after,reason"
    assert len(exported) == 3


def test_the_audit_log_is_append_only(services, world):
    from sqlalchemy.exc import DatabaseError

    from core import audit

    actor = audit.Actor(make_operator(services, "admin").id, "admin@harambee.test")
    with services.uow() as uow:
        audit.record(uow, actor, "test.action", "member:1", now=services.now(), reason="r")
        uow.commit()
    with pytest.raises(DatabaseError):
        with services.uow() as uow:
            uow.session.execute(AuditEntry.__table__.update().values(reason="rewritten"))
            uow.commit()
    assert _audit(services, "test.action")[0].reason == "r"


def test_a_disbursement_out_of_tries_is_tried_once_more_by_an_operator(console, world,
                                                                       services):
    from core import disbursements

    loan = world.funded_loan()
    for _ in range(services.settings.payouts.max_attempts):
        payout = disbursements.disburse(services.uow(), loan_id=loan.id,
                                        provider=services.payouts.provider, now=services.now())
        settlement.settle(services.uow(), provider=payout.provider,
                          originator=originator_id(payout.id),
                          outcome=Outcome(paid=False, detail="the phone is off"),
                          now=services.now())
    assert disbursements.awaiting_attention(services.uow()) == [loan.id]
    console.login(make_operator(services, "finance"))
    console.post(f"/console/money/payouts/{payout.id}/retry", {"reason": "borrower called"},
                 token_from="/console/money")
    with services.uow() as uow:
        tried = uow.session.scalars(select(Payout).where(Payout.loan_id == loan.id)
                                    .order_by(Payout.id.desc())).first()
        assert tried.status == PayoutStatus.PENDING and tried.id != payout.id
    assert disbursements.awaiting_attention(services.uow()) == []


def test_an_admin_adds_and_disables_operators_but_not_themselves(console, services, client):
    admin = make_operator(services, "admin")
    console.login(admin)
    added = console.post("/console/operators", {"email": "new@harambee.test", "role": "finance",
                                                "password": "twelve chars ok"},
                         token_from="/console/operators")
    html = added.get_data(as_text=True)
    assert "new@harambee.test" in html and "otpauth://totp/" in html
    with services.uow() as uow:
        new = uow.session.scalar(select(Operator).where(Operator.email == "new@harambee.test"))
    console.post(f"/console/operators/{new.id}/disable", {"reason": "left the company"},
                 token_from="/console/operators")
    refused = console.post(f"/console/operators/{admin.id}/disable", {"reason": "oops"},
                           token_from="/console/operators", follow=True)
    assert "cannot disable your own account" in refused.get_data(as_text=True)
    with services.uow() as uow:
        assert uow.session.get(Operator, new.id).active is False
        assert uow.session.get(Operator, admin.id).active is True
    assert [r.action for r in _audit(services, "operator.add")] == ["operator.add"]
    assert _audit(services, "operator.disable")[0].reason == "left the company"


def test_a_step_longer_than_one_sms_is_refused(console, world, services):
    case, borrower = _case(world, services)
    console.login(make_operator(services, "support"))
    before = len(_sms(services, borrower.phone))
    answer = console.post(f"/console/disputes/{case.id}/step",
                          {"step": "acknowledge", "text": "x" * 81}, follow=True)
    assert "Keep it to 80 characters" in answer.get_data(as_text=True)
    assert len(_sms(services, borrower.phone)) == before
