"""Every console page renders for the roles that may open it, over a small world, as a
page and as CSV; a bad filter is ignored, never a 500."""
from __future__ import annotations

import pytest

from core import disputes, groups, pauses, privacy, repayments
from core.models import DataRequestKind
from tests.console_actions import ConsoleActions, make_operator
from tests.support import PIN


@pytest.fixture
def book(world, services):
    loan = world.disbursed_loan()
    world.pay(loan.number, 50_000)
    world.pay("nobody-we-know", 12_300, phone="+254700000999")
    case = disputes.open_dispute(services.uow(), member_id=loan.borrower_id,
                                 number=loan.number, reason="my payment is missing",
                                 now=services.now(), request_key="d1")
    return loan, case


@pytest.fixture
def trust(world, services, book):
    """A group of three (one of them the book's borrower), an erasure request, and a
    hardship pause waiting on the book's loan."""
    loan, _ = book
    people = [loan.borrower, world.member("Baraka Mwangi"), world.member("Chege Kamau")]
    group = groups.form_group(services.uow(), agent_id=world.agent().id, name="Umoja Women",
                              village="Nyalenda", phones=[m.phone for m in people], pin=PIN,
                              now=services.now(), request_key="g1")
    groups.answer_invitation(services.uow(), member_id=loan.borrower_id, group_id=group.id,
                             join=True, now=services.now())
    request = privacy.open_request(services.uow(), member_id=loan.borrower_id,
                                   kind=DataRequestKind.ERASE, text=None, now=services.now(),
                                   request_key="e1")
    pauses.ask(services.uow(), borrower_id=loan.borrower_id, number=loan.number, weeks=1,
               reason="sick", now=services.now())
    return group, request


@pytest.fixture
def admin(client, services):
    console = ConsoleActions(client, services)
    console.login(make_operator(services, "admin"))
    return console


def test_every_page_renders_as_a_page_and_as_csv(admin, book, trust, client):
    loan, case = book
    group, request = trust
    pages = ["/console/dashboard", "/console/loans", f"/console/loans/{loan.number}",
             "/console/members?q=Wanjiru", f"/console/members/{loan.borrower_id}",
             "/console/agents", "/console/disputes", "/console/disputes?all=1",
             f"/console/disputes/{case.id}", "/console/audit", "/console/operators",
             "/console/money/check", "/console/groups", f"/console/groups/{group.id}",
             "/console/stories", "/console/stories?all=1", "/console/data",
             "/console/data?all=1", "/console/pauses", "/console/pauses?all=1"]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "<main" in answer.get_data(as_text=True)
        sep = "&" if "?" in path else "?"
        exported = client.get(f"{path}{sep}format=csv")
        assert exported.status_code == 200, path
        assert exported.mimetype == "text/csv", path
    for path in ("/console/money", "/console/settings", f"/console/data/{request.number}"):
        assert client.get(path).status_code == 200, path
    for path in ("/console/money/suspense.csv", "/console/money/payouts.csv",
                 "/console/money/sms.csv"):
        answer = client.get(path)
        assert answer.status_code == 200 and answer.mimetype == "text/csv", path


def test_the_loan_page_puts_everything_on_one_timeline(admin, book, client):
    loan, _ = book
    html = client.get(f"/console/loans/{loan.number}").get_data(as_text=True)
    for kind in ("ev-loan", "ev-installment", "ev-pledge", "ev-payment", "ev-transfer",
                 "ev-payout", "ev-sms", "ev-dispute"):
        assert kind in html, kind
    assert "Otieno Lender" in html and "Ksh 500" in html


def test_bad_filters_are_ignored_not_a_500(admin, book, client):
    for path in ("/console/loans?state=nonsense&late_over=abc&agent=x&since=yesterday",
                 "/console/dashboard?agent=99999999999&since=2026-13-40",
                 "/console/audit?since=no&page=-3", "/console/loans/NOPE",
                 "/console/members/999999", "/console/disputes/99999",
                 "/console/members?q=%00", "/console/groups/99999", "/console/data/NOPE",
                 "/console/data/P1001%00", "/console/stories?all=%00",
                 "/console/pauses?all=%00"):
        assert client.get(path).status_code in (200, 404), path


def test_the_settings_page_shows_no_secret(admin, client, services):
    html = client.get("/console/settings").get_data(as_text=True)
    assert services.settings.security.webhook_key not in html
    assert services.settings.security.console_secret not in html
    assert "(set)" in html


def test_csv_cells_a_spreadsheet_would_run_are_quoted(admin, world, client):
    world.pay('=HYPERLINK("http://evil")', 10_000, phone="+254700000998")
    exported = client.get("/console/money/suspense.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in exported


def test_the_members_search_finds_by_phone_name_id_and_loan(admin, book, client, world):
    loan, _ = book
    borrower = world.loan(loan.number).borrower
    local = "0" + borrower.phone[4:]
    for query in (local, "wanjiru", borrower.national_id, loan.number.lower()):
        html = client.get(f"/console/members?q={query}").get_data(as_text=True)
        assert f"/console/members/{borrower.id}" in html, query
    _ = repayments  # the book paid through the real use case
