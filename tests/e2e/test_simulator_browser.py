"""A whole loan played from `/simulator` in a real Chromium: the agent registers a
member, the member accepts the terms and borrows, two lenders pledge (one by USSD, one by
SMS) and reply YES in their inboxes, the loan pays out through the fake Daraja, the
borrower repays by paybill and by the M-Pesa prompt, the clock moves to a due date and a
reminder arrives, and `harambee check` is clean. Screenshots at three moments."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from cli.demo_world import AGENT, BORROWERS, LENDERS, PIN, seed
from core.models import Loan, LoanStatus, Payment, PaymentKind
from runtime.services import Services
from tests.browser import chromium, screenshot
from tests.live import Live, live_daraja
from tests.support import Clock, run_worker

CAST = [AGENT[0], BORROWERS[0][0], BORROWERS[1][0], LENDERS[0][0], LENDERS[1][0]]
NEW = "+254733000222"
NEW_PIN = "4826"
WAIT = 15_000  # ms


def drain(live: Live) -> None:
    """What the demo's worker does: every queued job, and the fake's callbacks."""
    for _ in range(3):
        run_worker(live.services)
        assert live.fake.wait_idle(10)
    run_worker(live.services)


class PagePhone:
    """One handset on the page, used as a person would: keys, Enter, the SMS box."""

    def __init__(self, page: Any, number: str) -> None:
        self.page, self.number = page, number
        self.card = page.locator(f'article[data-phone="{number}"]')

    def screen(self) -> str:
        return str(self.card.locator(".screen .text").inner_text())

    def _hops(self) -> int:
        return int(self.card.get_attribute("data-hops") or 0)

    def dial_by_clicks(self, code: str = "*384*123#") -> str:
        hops = self._hops()
        for key in code:
            self.card.locator(f'[data-key="{key}"]').click()
        self.card.locator(".call").click()
        return self._after(hops)

    def send(self, typed: str) -> str:
        """Type on the keyboard and press Enter (call, or send the answer)."""
        hops = self._hops()
        self.card.locator(".label .number").click()
        self.page.keyboard.type(typed)
        self.page.keyboard.press("Enter")
        return self._after(hops)

    def _after(self, hops: int) -> str:
        self.page.wait_for_function(
            f'document.querySelector(\'article[data-phone="{self.number}"]\')'
            f'.dataset.hops == "{hops + 1}"', timeout=WAIT)
        return self.screen()

    def sms(self, text: str) -> None:
        self.card.locator(".sms-text").fill(text)
        self.card.locator(".sms-send").click()
        self.page.wait_for_function(
            f'[...document.querySelectorAll(\'article[data-phone="{self.number}"] .outbox li\')]'
            f'.some(li => li.textContent.includes({text!r}))', timeout=WAIT)

    def wait_inbox(self, pattern: str) -> str:
        """The newest inbox message matching `pattern`, once the page shows it."""
        found = self.card.locator(".inbox li", has_text=re.compile(pattern)).first
        found.wait_for(timeout=WAIT)
        return str(found.inner_text())


@pytest.fixture
def sim(services: Services, clock: Clock) -> Services:
    clock.set(datetime.now(UTC).replace(microsecond=0))  # the fake Daraja stamps real times
    s = services.settings
    settings = replace(s, gateway=replace(s.gateway, sms="simulator"),
                       simulator=replace(s.simulator, enabled=True, phones=tuple(CAST),
                                         known_pin=PIN))
    svc = Services(settings=settings, db=services.db, redis=services.redis,
                   clock=services.clock)
    seed(svc, svc.now())  # the demo's history, on the console rail as the demo writes it
    run_worker(svc)
    return svc


def test_a_whole_loan_played_from_the_page(sim: Services) -> None:
    shots = []
    with live_daraja(sim) as live, chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{live.base_url}/simulator/")
        for number in CAST:
            page.locator(f'article[data-phone="{number}"] .name').filter(
                has_text=re.compile(r"\w")).wait_for(timeout=WAIT)
        agent_card = page.locator(f'article[data-phone="{AGENT[0]}"]')
        assert "Grace Wanjiku" in agent_card.inner_text()
        assert f"PIN {PIN}" in agent_card.inner_text()

        # The agent registers a member.
        agent = PagePhone(page, AGENT[0])
        assert "Agent services" in agent.dial_by_clicks()
        for typed in ("1", "1", "0733 000 222", "Halima Njoroge", "34567890", "Kibera Group",
                      "1"):
            agent.send(typed)
        assert "Enter your PIN" in agent.send("1")
        assert "is registered" in agent.send(PIN)
        page.fill("#add-phone", "0733 000 222")
        page.press("#add-phone", "Enter")
        halima = PagePhone(page, NEW)
        halima.card.locator(".name", has_text="Halima Njoroge").wait_for(timeout=WAIT)
        shots.append(screenshot(page, "simulator-1-registered"))

        # The member accepts the terms, sets a PIN and borrows.
        halima.send("*384*123#")
        halima.send("1")
        halima.send(NEW_PIN)
        assert "Request a loan" in halima.send(NEW_PIN)
        for typed in ("1", "3000", "1", "1", "1"):
            halima.send(typed)
        listed = halima.send(NEW_PIN)
        assert "open to lenders" in listed
        number = re.search(r"L\d+", listed).group(0)  # type: ignore[union-attr]

        # Two lenders pledge, one by USSD and one by SMS, and reply YES in their inboxes.
        otieno = PagePhone(page, LENDERS[0][0])
        listing = otieno.send("*384*123*1#")
        while "Halima" not in listing:  # further down the list: "98. More"
            listing = otieno.send("98")
        choice = next(line.split(".")[0] for line in listing.splitlines() if "Halima" in line)
        assert "Amount to lend" in otieno.send(choice)
        assert "Enter your PIN" in otieno.send("1000")
        assert "You pledged" in otieno.send(PIN)
        njeri = PagePhone(page, LENDERS[1][0])
        njeri.sms(f"LEND {number} 2000")
        drain(live)
        for lender in (otieno, njeri):
            code = re.search(r"YES (\d+)", lender.wait_inbox(rf"{number}.*YES \d+|YES \d+.*"
                                                             rf"{number}")).group(1)  # type: ignore[union-attr]
            lender.sms(f"YES {code}")
        drain(live)
        assert _loan(sim, number).status == LoanStatus.FUNDED

        # The loan pays out: the duties run, B2C goes through the fake Daraja.
        page.click('[data-clock="now"]')
        page.locator("#log li", has_text="clock now").first.wait_for(timeout=WAIT)
        drain(live)
        halima.wait_inbox(r"You have received Ksh3,000\.00 from HARAMBEE")
        halima.wait_inbox(r"sent for loan " + number)
        shots.append(screenshot(page, "simulator-2-paid-out"))

        # The borrower repays by paybill, then by the M-Pesa prompt.
        installment = _loan(sim, number).installments[0].amount // 100
        halima.card.locator(".mpesa summary").click()
        halima.card.locator(".pay-account").fill(number)
        halima.card.locator(".pay-amount").fill(str(installment))
        halima.card.locator(".pay-pin").fill("1234")
        halima.card.locator(".pay-send").click()
        page.wait_for_function(f'!document.querySelector(\'article[data-phone="{NEW}"] '
                               f'.pay-result\').textContent.startsWith("Sending")')
        paid = halima.card.locator(".pay-result").inner_text()
        assert paid.startswith("Paid"), paid
        halima.wait_inbox(rf"Confirmed\. Ksh{installment:,}\.00 sent to HARAMBEE for account "
                          rf"{number}")
        menu = halima.send("*384*123#")
        repay = next(line.split(".")[0] for line in menu.splitlines() if "How to repay" in line)
        assert "Repay now" in halima.send(repay)
        halima.send("1")
        assert "M-Pesa prompt" in halima.send(str(installment))
        drain(live)
        halima.card.locator(".prompt:not([hidden])").wait_for(timeout=WAIT)
        halima.card.locator(".prompt-pin").fill("1234")
        halima.card.locator(".prompt-ok").click()
        drain(live)
        halima.wait_inbox(r"Confirmed\. .* sent to HARAMBEE")
        with sim.uow() as uow:
            kinds = uow.session.scalars(select(Payment.kind).where(
                Payment.reference == number)).all()
        assert len(kinds) == 2 and set(kinds) == {PaymentKind.REPAYMENT}, kinds

        # The clock moves to the next due dates until this loan's reminder arrives.
        for _ in range(4):
            page.click('[data-clock="due"]')
            page.locator("#notice", has_text="Duties ran").wait_for(timeout=WAIT)
            page.evaluate("document.getElementById('notice').textContent = ''")
            drain(live)
            if halima.card.locator(".inbox li", has_text="due today").count():
                break
            page.wait_for_timeout(1500)  # a poll or two
            if halima.card.locator(".inbox li", has_text="due today").count():
                break
        reminder = halima.wait_inbox(rf"{number} is due today")
        assert "Pay to paybill" in reminder
        shots.append(screenshot(page, "simulator-3-reminder"))
        page.close()

    result = CliRunner().invoke(main, ["check"], env={
        "DATABASE_URL": sim.settings.database_url, "HARAMBEE_ENV": "development"})
    assert result.exit_code == 0 and "ledger ok" in result.output, result.output
    assert len(shots) == 3
    print("screenshots:", *shots)


def _loan(svc: Services, number: str) -> Loan:
    with svc.uow() as uow:
        loan = uow.session.scalar(select(Loan).where(Loan.number == number))
        assert loan is not None
        _ = list(loan.installments)
        uow.session.expunge_all()
        return loan
