"""Hardship pauses in the console (#16 item 4), through the real Flask app: a pause a
borrower asked for by USSD is approved (the unpaid installments move by the pause, the
borrower gets the new dates in their language, the lenders are told) or declined with
a note (nothing moves; the borrower is told, never the note). Each decision is one
audit row written by `pauses.decide` in its own transaction; a second decision is
refused in words; finance may not; every form needs its CSRF token."""
from __future__ import annotations

import json
from datetime import timedelta

from core import members, pauses
from core.messages import format_date
from core.models import Pause, PauseStatus
from tests.console_actions import audit_rows, lenders_of, make_operator, sms_to
from tests.support import PIN
from tests.ussd_phone import Phone

ASK_TWO_WEEKS_SICK = ("2", "1", "2", "2", "1", "1")  # My loans, the loan, pause, 2 weeks,
# illness, ask (the e2e test's walk, with 2 weeks)


def _pause(services, pause_id):
    with services.uow() as uow:
        return uow.session.get(Pause, pause_id)


def _asked(world, services, client):
    """Halima (Swahili) borrows from two lenders, one English, one Swahili, and asks by
    USSD for a pause of two weeks because she is ill."""
    borrower = world.member("Halima Ali", language="sw")
    loan = world.disbursed_loan(borrower=borrower, lenders=2)
    for lender, lang in zip(lenders_of(services, loan), ("en", "sw"), strict=True):
        members.set_language(services.uow(), lender.id, lang)
    body = Phone(client, borrower.phone).run(*ASK_TWO_WEEKS_SICK)
    assert body.startswith("END") and "Ombi lako liko kwa Grace" in body, body
    [waiting] = pauses.list_pauses(services.uow())
    assert (waiting.loan, waiting.weeks, waiting.reason) == (loan.number, 2, "sick")
    return loan, waiting.id


def test_an_operator_approves_a_pause_and_the_schedule_moves(support, world, services,
                                                             client):
    loan, pause_id = _asked(world, services, client)
    english, swahili = lenders_of(services, loan)
    before = [i.due_on for i in loan.installments]
    told = {m.id: len(sms_to(services, m.phone)) for m in (english, swahili)}
    html = client.get("/console/pauses").get_data(as_text=True)
    for seen in (loan.number, "Halima Ali", "Grace Agent", "illness", f"/console/pauses/"
                 f"{pause_id}/approve", f"/console/members/{loan.borrower_id}"):
        assert seen in html, seen
    answer = support.post(f"/console/pauses/{pause_id}/approve", {}, follow=True)
    assert f"Pause {pause_id} approved" in answer.get_data(as_text=True)
    after = [i.due_on for i in world.loan(loan.number).installments]
    assert after == [d + timedelta(weeks=2) for d in before]
    assert _pause(services, pause_id).status == PauseStatus.APPROVED
    sms = sms_to(services, loan.borrower.phone)[-1]
    assert (sms.template, sms.language) == ("sms.pause_approved", "sw")
    assert sms.text.startswith("Ombi limekubaliwa, bila ada ya ziada")
    assert format_date(after[0]) in sms.text and format_date(after[-1]) in sms.text
    [en] = sms_to(services, english.phone)[told[english.id]:]
    [sw] = sms_to(services, swahili.phone)[told[swahili.id]:]
    assert (en.template, en.language) == ("sms.pause_lender", "en")
    assert (sw.template, sw.language) == ("sms.pause_lender", "sw")
    assert format_date(after[-1]) in en.text and format_date(after[-1]) in sw.text
    [row] = audit_rows(services)
    assert (row.action, row.subject, row.operator_email) == (
        "pause.approve", f"pause:{pause_id}", "support@harambee.test")
    assert json.loads(row.after) == {"status": "approved", "weeks": 2, "moved": len(after),
                                     "last_due": after[-1].isoformat()}
    assert json.loads(row.before) == {"status": "asked", "last_due": before[-1].isoformat()}
    # decided once: either answer again is refused in words, writes nothing, moves nothing
    for action in ("approve", "decline"):
        again = support.post(f"/console/pauses/{pause_id}/{action}", {"note": "n"},
                             follow=True)
        assert again.status_code == 200
        assert f"Pause {pause_id} is already approved." in again.get_data(as_text=True)
    assert len(audit_rows(services)) == 1
    assert [i.due_on for i in world.loan(loan.number).installments] == after
    assert f"/console/pauses/{pause_id}/approve" not in client.get(
        "/console/pauses").get_data(as_text=True)
    history = client.get("/console/pauses?all=1").get_data(as_text=True)
    assert loan.number in history and "approved" in history and "an operator" in history
    exported = client.get("/console/pauses?all=1&format=csv").get_data(as_text=True)
    assert exported.splitlines()[1].split(",")[:7] == [
        str(pause_id), "approved", loan.number, "Halima Ali", "Grace Agent", "2", "sick"]


def test_a_declined_pause_moves_nothing_needs_a_note_and_the_borrower_is_told(
        support, world, services, client):
    loan, pause_id = _asked(world, services, client)
    lenders = lenders_of(services, loan)
    before = [i.due_on for i in loan.installments]
    told = {m.id: len(sms_to(services, m.phone)) for m in lenders}
    empty = support.post(f"/console/pauses/{pause_id}/decline", {"note": "  "}, follow=True)
    assert "Please write a reason." in empty.get_data(as_text=True)
    assert _pause(services, pause_id).status == PauseStatus.ASKED
    assert audit_rows(services) == []
    answer = support.post(f"/console/pauses/{pause_id}/decline",
                          {"note": "paid in full last week, called her"}, follow=True)
    assert f"Pause {pause_id} declined" in answer.get_data(as_text=True)
    assert _pause(services, pause_id).status == PauseStatus.DECLINED
    assert [i.due_on for i in world.loan(loan.number).installments] == before
    sms = sms_to(services, loan.borrower.phone)[-1]
    assert (sms.template, sms.language) == ("sms.pause_declined", "sw")
    assert "called her" not in sms.text
    for lender in lenders:
        assert sms_to(services, lender.phone)[told[lender.id]:] == []
    [row] = audit_rows(services)
    assert (row.action, row.subject, row.reason) == (
        "pause.decline", f"pause:{pause_id}", "paid in full last week, called her")
    again = support.post(f"/console/pauses/{pause_id}/approve", {}, follow=True)
    assert f"Pause {pause_id} is already declined." in again.get_data(as_text=True)
    assert [i.due_on for i in world.loan(loan.number).installments] == before
    assert len(audit_rows(services)) == 1


def test_the_agents_and_the_clis_decisions_are_not_audited_and_show_in_the_history(
        support, world, services, client):
    loan, pause_id = _asked(world, services, client)
    agent = world.agent()
    pauses.decide(services.uow(), pause_id=pause_id, approve=False, agent_id=agent.id,
                  pin=PIN, now=services.now())
    # the same answer again, as the USSD or the CLI would send it, is still a no-op
    assert pauses.decide(services.uow(), pause_id=pause_id, approve=False,
                         now=services.now()).status == PauseStatus.DECLINED
    assert audit_rows(services) == []
    assert "No pauses waiting." in client.get("/console/pauses").get_data(as_text=True)
    history = client.get("/console/pauses?all=1").get_data(as_text=True)
    assert loan.number in history and "declined" in history and "agent Grace Agent" in history


def test_finance_may_not_open_or_decide_pauses(console, world, services, client):
    loan, pause_id = _asked(world, services, client)
    console.login(make_operator(services, "finance"))
    for path in ("/console/pauses", "/console/pauses?all=1&format=csv"):
        assert client.get(path).status_code == 403, path
    token = console.token()
    for action in ("approve", "decline"):
        answer = client.post(f"/console/pauses/{pause_id}/{action}",
                             data={"csrf_token": token, "note": "n"})
        assert answer.status_code == 403, action
    assert _pause(services, pause_id).status == PauseStatus.ASKED
    assert audit_rows(services) == []
    assert "/console/pauses" not in client.get("/console/members").get_data(as_text=True)


def test_a_decision_without_its_csrf_token_is_refused_and_changes_nothing(support, world,
                                                                          services, client):
    loan, pause_id = _asked(world, services, client)
    before = [i.due_on for i in loan.installments]
    for action in ("approve", "decline"):
        for forged in ({}, {"csrf_token": "forged"}):
            answer = client.post(f"/console/pauses/{pause_id}/{action}",
                                 data={**forged, "note": "n"})
            assert answer.status_code == 400, action
            assert "CSRF" in answer.get_data(as_text=True)
    assert _pause(services, pause_id).status == PauseStatus.ASKED
    assert [i.due_on for i in world.loan(loan.number).installments] == before
    assert audit_rows(services) == []


def test_no_pause_address_is_a_500(support, client):
    for path in ("/console/pauses?all=2", "/console/pauses?all=%00&format=csv"):
        assert client.get(path).status_code == 200, path
    for action in ("approve", "decline"):
        answer = support.post(f"/console/pauses/999999/{action}", {"note": "n"})
        assert answer.status_code == 303, action
        with client.session_transaction() as session:
            assert [m for _, m in session.pop("_flashes", [])] == [
                "That pause request was not found."], action
    assert client.post("/console/pauses/x/approve").status_code in (400, 404)
