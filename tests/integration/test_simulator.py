"""`/simulator` through Flask's test client: the phones reach the service only through
its real hooks, the simulator gateway delivers the outbox to them, money moves by
Daraja's own bodies, and the clock moves the duties. (The whole loan in a real browser
is tests/e2e/test_simulator_browser.py.)"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cli.demo_world import AGENT, BORROWERS, LENDERS, PIN, seed
from core.config import load_settings, production_gaps
from core.models import Loan, LoanStatus, OutboxMessage, Payment
from runtime import clock as clock_module
from runtime.clock import ShiftedClock
from runtime.redis import client_for
from runtime.services import Services
from tests.live import live_daraja
from tests.support import NAIROBI, run_worker
from web.app import create_app
from web.simulator import network

CAST = [AGENT[0], BORROWERS[0][0], BORROWERS[1][0], LENDERS[0][0], LENDERS[1][0]]


@pytest.fixture
def sim(services: Services) -> Services:
    """The test's services as the demo runs them: the simulator on, its SMS gateway."""
    s = services.settings
    settings = replace(s, gateway=replace(s.gateway, sms="simulator"),
                       simulator=replace(s.simulator, enabled=True, phones=tuple(CAST),
                                         known_pin=PIN, hop_timeout_seconds=30,
                                         session_seconds=120))
    svc = Services(settings=settings, db=services.db, redis=services.redis,
                   clock=services.clock)
    seed(svc, svc.now())
    run_worker(svc)
    return svc


@pytest.fixture
def page(sim: Services) -> Any:
    app = create_app(services=sim)
    app.testing = True
    return app.test_client()


class Handset:
    """One phone on the page, driven through the simulator's JSON calls."""

    def __init__(self, page: Any, number: str) -> None:
        self.page, self.number = page, number

    def call(self, path: str, **body: Any) -> Any:
        response = self.page.post(f"/simulator/api/{path}", json={"phone": self.number, **body})
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()

    def dial(self, code: str = "*384*123#") -> dict[str, Any]:
        return self.call("ussd", action="dial", code=code)

    def reply(self, *typed: str) -> dict[str, Any]:
        screen: dict[str, Any] = {}
        for answer in typed:
            screen = self.call("ussd", action="reply", input=answer)
        return screen

    def sms(self, text: str) -> dict[str, Any]:
        return self.call("sms", text=text)

    def state(self) -> dict[str, Any]:
        phones = self.page.get("/simulator/api/state").get_json()["phones"]
        return next(p for p in phones if p["phone"] == self.number)

    def inbox(self) -> list[str]:
        return [m["text"] for m in self.state()["inbox"]]


def test_the_page_opens_with_the_demos_people_named_with_role_and_pin(page):
    assert b"Harambee simulator" in page.get("/simulator/").data
    phones = page.get("/simulator/api/state").get_json()["phones"]
    assert [p["phone"] for p in phones] == CAST
    agent = phones[0]
    assert (agent["name"], agent["pin"]) == ("Grace Wanjiku", PIN)
    assert "agent" in agent["roles"] and "lender" in phones[3]["roles"]


def test_the_simulator_is_off_unless_enabled_and_production_refuses_it(services, settings):
    off = create_app(services=services).test_client()
    assert off.get("/simulator/").status_code == 404
    assert off.get("/simulator/api/state").status_code == 404
    production = load_settings(env={}, overrides={"app": {"environment": "production"},
                                                  "simulator": {"enabled": True}})
    assert any(gap.startswith("simulator.enabled") for gap in production_gaps(production))


def test_a_whole_loan_played_from_the_phones(page, sim):
    agent = Handset(page, AGENT[0])
    assert agent.dial()["kind"] == "CON"
    agent.reply("1", "1", "0733 000 222", "Halima Njoroge", "34567890", "Kibera Group", "1",
                "1")
    done = agent.reply(PIN)
    assert done["kind"] == "END" and "Halima Njoroge" in done["text"]
    added = page.post("/simulator/api/phones", json={"phone": "0733 000 222"})
    assert added.status_code == 201 and added.get_json() == {"phone": "+254733000222"}
    halima = Handset(page, "+254733000222")
    assert halima.state()["name"] == "Halima Njoroge" and halima.state()["pin"] == ""
    halima.dial()
    menu = halima.reply("1", "4826", "4826")
    assert menu["kind"] == "CON" and "Request a loan" in menu["text"]
    halima.reply("1", "3000", "1", "1", "1")
    listed = halima.reply("4826")
    assert listed["kind"] == "END" and "open to lenders" in listed["text"]
    number = re.search(r"L\d+", listed["text"]).group(0)
    for lender, amount in ((LENDERS[0][0], "1000"), (LENDERS[1][0], "2000")):
        phone = Handset(page, lender)
        phone.sms(f"LEND {number} {amount}")
        run_worker(sim)
        code = next(re.search(r"YES (\d+)", text).group(1) for text in reversed(phone.inbox())
                    if number in text and "YES" in text)
        phone.sms(f"YES {code}")
        run_worker(sim)
    assert _loan(sim, number).status == LoanStatus.FUNDED
    ran = page.post("/simulator/api/clock", json={"to": "now"}).get_json()
    assert ran["done"]["disburse_funded"] == 1
    run_worker(sim)
    inbox = halima.inbox()
    assert any(text.startswith(("Ksh 3,000 sent", "Ksh 3,000")) or "sent for loan" in text
               for text in inbox), inbox
    assert any("You have received Ksh3,000.00 from HARAMBEE" in text for text in halima.inbox())
    loan = _loan(sim, number)
    installment = loan.installments[0].amount // 100
    paid = halima.call("paybill", business="247247", account=number, amount=str(installment),
                       pin="1234")
    assert paid["ok"], paid
    with sim.uow() as uow:
        assert uow.session.scalar(select(Payment.amount).where(
            Payment.reference == number)) == installment * 100
    run_worker(sim)
    assert any(f"sent to HARAMBEE for account {number}" in t for t in halima.inbox())
    assert _loan(sim, number).status == LoanStatus.REPAYING
    second_due = loan.installments[1].due_on
    for _ in range(3):  # the demo's other loans fall due first
        moved = page.post("/simulator/api/clock", json={"to": "due"}).get_json()
        if datetime.fromisoformat(moved["clock"]["now"]).astimezone(NAIROBI).date() >= second_due:
            break
    assert moved["clock"]["local"] == second_due.strftime("%a %d %b %Y 09:00")
    assert moved["done"]["reminders"] >= 1
    run_worker(sim)
    assert any("due today" in text and number in text for text in halima.inbox())
    states = {m["state"] for m in halima.state()["inbox"]}
    assert states == {"Success"}  # each shown on the handset and reported delivered
    with sim.uow() as uow:
        reported = uow.session.scalars(select(OutboxMessage.status).where(
            OutboxMessage.phone == halima.number)).all()
    assert set(reported) == {"delivered"}, reported
    log = page.get("/simulator/api/state?since=0").get_json()["log"]
    assert {entry["kind"] for entry in log} >= {"ussd", "sms", "mpesa", "clock"}
    assert not any(PIN in entry["what"] or "4826" in entry["what"] for entry in log)


def test_a_screen_left_too_long_is_dropped_and_a_redial_resumes(page, sim, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(network, "wall", lambda: now[0])
    agent = Handset(page, AGENT[0])
    agent.dial()
    asked = agent.reply("1", "1", "0733 000 333")  # registering someone: the name asked
    assert asked["kind"] == "CON"
    now[0] += 31  # past the hop timeout
    state = agent.state()
    assert state["ussd"] is None  # the network dropped it, and told the service
    log = page.get("/simulator/api/state").get_json()["log"]
    assert any("dropped: no answer within 30 s" in entry["what"] for entry in log)
    again = agent.dial()
    assert again["kind"] == "CON" and ("Continue" in again["text"]
                                       or "Endelea" in again["text"]), again


def test_a_late_reply_finds_the_session_gone(page, sim, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(network, "wall", lambda: now[0])
    agent = Handset(page, AGENT[0])
    agent.dial()
    now[0] += 31
    late = agent.reply("1")
    assert late == {"kind": "DROPPED", "text": network.MMI_ERROR, "ms": 0.0}


def test_a_code_the_network_does_not_know_and_bad_input_change_nothing(page, sim):
    agent = Handset(page, AGENT[0])
    assert agent.dial("*100#")["kind"] == "ERROR"
    assert agent.dial("*384*123*1#")["kind"] == "CON"  # answers typed with the code
    refused = page.post("/simulator/api/phones", json={"phone": "hello"})
    assert refused.status_code == 400 and "not a phone number" in refused.get_json()["error"]
    stranger = page.post("/simulator/api/ussd", json={"phone": "+254799999999",
                                                      "action": "dial", "code": "*384*123#"})
    assert stranger.status_code == 400
    assert page.post("/simulator/api/clock", json={"to": "yesterday"}).status_code == 400
    assert page.post("/simulator/api/sms", data="not json").status_code == 400
    empty = page.post("/simulator/api/sms", json={"phone": AGENT[0], "text": "  "})
    assert empty.status_code == 400
    bad_pay = Handset(page, BORROWERS[0][0]).call("paybill", business="999999",
                                                  account="L1", amount="10", pin="1234")
    assert not bad_pay["ok"] and "not known" in bad_pay["text"]


def test_a_stranger_can_be_added_and_dials_registration(page, sim):
    page.post("/simulator/api/phones", json={"phone": "+254799000111"})
    stranger = Handset(page, "+254799000111")
    assert stranger.state()["name"] == "" and stranger.state()["roles"] == ""
    assert "Register" in stranger.dial()["text"]


def _loan(svc: Services, number: str) -> Loan:
    with svc.uow() as uow:
        loan = uow.session.scalar(select(Loan).where(Loan.number == number))
        assert loan is not None
        _ = list(loan.installments)
        uow.session.expunge_all()
        return loan


def test_the_pay_now_prompt_pops_up_and_cancel_rejects_it(sim):
    with live_daraja(sim) as live:
        page = create_app(services=live.services).test_client()
        amina = Handset(page, BORROWERS[0][0])
        menu = amina.dial()["text"]
        repay = next(line.split(".")[0] for line in menu.splitlines() if "How to repay" in line)
        assert "Repay now" in amina.reply(repay)["text"]
        amina.reply("1")
        assert "M-Pesa prompt" in amina.reply("500")["text"]
        for _ in range(2):
            run_worker(live.services)
            assert live.fake.wait_idle(10)
        prompts = amina.state()["prompts"]
        assert [(p["amount"], p["account"]) for p in prompts] == [(500, "L1001")]
        others = Handset(page, BORROWERS[1][0]).state()["prompts"]
        assert others == []  # only the borrower's own phone shows it
        wrong = page.post("/simulator/api/prompt", json={
            "phone": BORROWERS[1][0], "id": prompts[0]["id"], "accept": False})
        assert wrong.status_code == 400  # another phone cannot answer it
        done = amina.call("prompt", id=prompts[0]["id"], accept=False)
        assert done == {"ok": True, "text": "Cancelled."}
        assert live.fake.wait_idle(10)
        run_worker(live.services)
        assert amina.state()["prompts"] == []
        assert any("You cancelled the M-Pesa prompt for Ksh 500" in t for t in amina.inbox())
        log = [entry["what"] for entry in page.get("/simulator/api/state").get_json()["log"]]
        assert any(what.startswith("Daraja callback stk_callback -> 200") for what in log), log
        with live.services.uow() as uow:
            assert uow.session.scalar(select(Payment.id).where(
                Payment.reference == "L1001", Payment.amount == 50_000)) is None


def test_the_clock_the_simulator_moves_is_shared_and_only_goes_forward(redis_handle,
                                                                       monkeypatch):
    monkeypatch.setattr(clock_module, "FRESH_FOR", 0.0)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    web, worker = (ShiftedClock(redis_handle.client, wall=lambda: start) for _ in range(2))
    assert web() == worker() == start
    assert web.advance(days=1) == start + timedelta(days=1)
    assert worker() == start + timedelta(days=1)  # another process sees the same time
    with pytest.raises(ValueError):
        web.advance(hours=-1)
    cut_off = ShiftedClock(client_for("redis://127.0.0.1:1/0"), wall=lambda: start)
    assert cut_off() == start  # Redis gone: the last offset known (none), not an error


def test_money_waits_plainly_for_a_fake_daraja_that_is_down_and_never_goes_elsewhere(sim):
    with live_daraja(sim) as live:
        page = create_app(services=live.services).test_client()
        live.fake.stop()
        paid = page.post("/simulator/api/paybill", json={
            "phone": BORROWERS[0][0], "business": "247247", "account": "L1001",
            "amount": "100", "pin": "1234"})
        assert paid.status_code == 503 and "fake Daraja" in paid.get_json()["error"]
        assert page.get("/simulator/api/state").status_code == 200  # the phones carry on
        s = live.services.settings
        real = Services(settings=replace(s, mpesa=replace(
            s.mpesa, base_url="https://api.safaricom.co.ke")), db=sim.db, redis=sim.redis,
            clock=sim.clock)
        refused = create_app(services=real).test_client().post("/simulator/api/paybill", json={
            "phone": BORROWERS[0][0], "business": "247247", "account": "L1001",
            "amount": "100", "pin": "1234"})
        assert refused.status_code == 400 and "no real money" in refused.get_json()["error"]
    with sim.uow() as uow:
        assert uow.session.scalar(select(Payment.id).where(Payment.amount == 10_000)) is None
