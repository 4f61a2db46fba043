"""The console in a real browser: Debian's Chromium driven by Playwright (tests/browser.py;
nothing is downloaded), one browser for the module, the app served over HTTP in a
thread on the test's database and clock. Screenshots of the dashboard and a loan page
are saved under ./screenshots/ (HARAMBEE_SCREENSHOTS moves them)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from core import checks, disputes, members, stories
from core.models import AuditEntry, Dispute, DisputeStatus, OutboxMessage, Payment
from tests.browser import chromium, screenshot, serve
from tests.console_actions import PASSWORD, Operator, make_operator, seed_par_book


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def site(app: Any) -> Iterator[str]:
    with serve(app) as base:
        yield base


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def log_in(page: Any, site: str, who: Operator, services: Any, *, go_to: str) -> Any:
    """Open a console page, get sent to the login, and log in as `who`."""
    page.goto(f"{site}{go_to}")
    assert "/console/login" in page.url
    page.fill("input[name=email]", who.email)
    page.fill("input[name=password]", PASSWORD)
    if who.secret:
        page.fill("input[name=code]", who.code(services))
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page


def test_finance_logs_in_with_totp_and_reads_par30_as_worked_by_hand(page, site, world,
                                                                    services):
    expected = seed_par_book(world)
    finance = make_operator(services, "finance")
    log_in(page, site, finance, services, go_to="/console/dashboard")
    assert page.url.endswith("/console/dashboard")
    hand_worked = expected["par30"] / expected["outstanding"]  # 4,500 / 10,500
    assert page.inner_text("#fig-par30 .figure") == f"{hand_worked * 100:.1f}%" == "42.9%"
    assert "Ksh 4,500" in page.inner_text("#fig-par30 .label")
    assert page.inner_text("#fig-outstanding .figure") == "Ksh 10,500"
    assert page.locator("figure.chart svg").count() == 3  # drawn on the server
    print("screenshot:", screenshot(page, "console-dashboard"))
    # the figure leads to the loans behind it
    with page.expect_navigation():
        page.click("#fig-par30")
    assert sorted(int(cell) for cell in page.locator("tbody td.num.late").all_inner_texts()) \
        == [39, 53]


def test_a_post_without_the_csrf_token_is_refused(page, site, world, services):
    member = world.member("Halima Ali")
    log_in(page, site, make_operator(services, "support"), services, go_to="/console/members")
    answer = page.request.post(f"{site}/console/members/{member.id}/suspend",
                               form={"reason": "no token"})
    assert answer.status == 400
    with services.uow() as uow:
        assert uow.session.scalar(select(AuditEntry.id)) is None
        assert members.find_by_phone(uow, member.phone).status == "verified"


def test_support_cannot_open_finance_pages(page, site, services):
    log_in(page, site, make_operator(services, "support"), services, go_to="/console/members")
    for path in ("/console/money", "/console/dashboard"):
        answer = page.goto(f"{site}{path}")
        assert answer.status == 403, path
        assert "Not for your role" in page.inner_text("h1")
    assert "Money desk" not in page.inner_text("header")


def test_resolving_a_dispute_sends_the_member_an_sms_and_is_audited(page, site, world,
                                                                    services):
    loan = world.disbursed_loan()
    borrower = world.loan(loan.number).borrower
    members.set_language(services.uow(), borrower.id, "sw")
    case = disputes.open_dispute(services.uow(), member_id=borrower.id, number=loan.number,
                                 reason="malipo yangu hayajaonekana", now=services.now(),
                                 request_key="browser-1")
    log_in(page, site, make_operator(services, "support"), services, go_to="/console/disputes")
    with page.expect_navigation():
        page.click(f"text={case.number}")
    page.select_option("select[name=step]", "resolve")
    page.fill("textarea[name=text]", "Malipo yako yamepatikana na kuhesabiwa.")
    with page.expect_navigation():
        page.click("#step-form button[type=submit]")
    assert "Done: resolve." in page.inner_text("main")
    with services.uow() as uow:
        assert uow.session.get(Dispute, case.id).status == DisputeStatus.RESOLVED
        sms = uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.phone == borrower.phone).order_by(OutboxMessage.id.desc())).first()
        assert sms.template == "sms.dispute_resolved" and sms.language == "sw"
        assert sms.text == (f"Lalamiko {case.number} ({loan.number}) limetatuliwa: "
                            "Malipo yako yamepatikana na kuhesabiwa.")
        (row,) = uow.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "dispute.resolve"))
        assert row.subject == f"dispute:{case.number}" and row.operator_email.startswith("support")


def test_matching_a_suspense_receipt_moves_the_money_and_check_stays_clean(page, site, world,
                                                                           services):
    loan = world.disbursed_loan()
    world.pay("my loan", 100_000, phone="+254700000555")
    log_in(page, site, make_operator(services, "finance"), services, go_to="/console/money")
    row = page.locator("#suspense tbody tr", has_text="my loan")
    row.locator("input[name=target]").fill(loan.number)
    row.locator("form").first.locator("input[name=reason]").fill("payer sent the loan number")
    with page.expect_navigation():
        row.locator("button", has_text="Match").click()
    assert "Matched" in page.inner_text("main")
    assert world.loan(loan.number).repaid == 100_000
    with services.uow() as uow:
        assert uow.session.scalar(select(Payment.kind).where(
            Payment.reference == "my loan")) == "repayment"
    assert checks.check(services.uow()) == []
    with page.expect_navigation():
        page.click("text=Run the ledger check now")
    assert "The books are sound" in page.inner_text("#check-result")
    page.goto(f"{site}/console/loans/{loan.number}")
    assert "suspense_match" in page.inner_text("#timeline")
    print("screenshot:", screenshot(page, "console-loan"))


def test_approving_a_story_sends_it_to_the_lenders_and_is_audited(page, site, world,
                                                                  services):
    loan = world.disbursed_loan(lenders=2)
    world.pay(loan.number, loan.total_due)
    story = stories.submit(services.uow(), member_id=loan.borrower_id,
                           text="I bought a second sewing machine.", now=services.now(),
                           request_key="browser-story")
    log_in(page, site, make_operator(services, "support"), services, go_to="/console/stories")
    assert "I bought a second sewing machine." in page.inner_text("#stories")
    with page.expect_navigation():
        page.click(f"button[aria-label='Approve story {story.id}']")
    assert f"Story {story.id} approved" in page.inner_text("main")
    assert "No stories waiting." in page.inner_text("#stories")
    with services.uow() as uow:
        sent = list(uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == "sms.story_lender")))
        assert len(sent) == 2 and all(loan.number in m.text for m in sent)
        (row,) = uow.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "story.approve"))
        assert row.subject == f"story:{story.id}"
