"""#16 in the console, through the real Flask app: the group page (who is in a group,
their open loans and who is behind), stories approved or rejected (the SMS to lenders
in each one's language, the share with members who want stories), and data-rights
cases closed or erased. Every action is audited once; every form needs its CSRF token;
a role that may not act is refused; no address is a 500."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from core import checks, groups, members, privacy, stories
from core.db import UnitOfWork
from core.models import (
    DataRequestKind,
    DataRequestStatus,
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    OutboxMessage,
    Story,
    StoryStatus,
)
from tests.console_actions import audit_rows, lenders_of, make_operator, sms_to
from tests.round_trips import counting
from tests.support import PIN, run_worker

STORY = "The loan bought a sewing machine; now I sew uniforms."


def _group_of_three(world, services):
    """An agent forms Umoja Women; all three say yes on their own phone. Amina and Baraka
    borrow; ten days on, Baraka has paid his first installment and Amina has not."""
    agent = world.agent()
    amina, baraka, chege = (world.member(name) for name in
                            ("Amina Otieno", "Baraka Mwangi", "Chege Kamau"))
    group = groups.form_group(services.uow(), agent_id=agent.id, name="Umoja Women",
                              village="Nyalenda", phones=[amina.phone, baraka.phone, chege.phone],
                              pin=PIN, now=services.now(), request_key="g1")
    for member in (amina, baraka, chege):
        groups.answer_invitation(services.uow(), member_id=member.id, group_id=group.id,
                                 join=True, now=services.now())
    owes = world.disbursed_loan(borrower=amina)
    pays = world.disbursed_loan(borrower=baraka)
    services.clock.advance(days=10)
    world.pay(pays.number, pays.installments[0].amount)
    return group, (amina, baraka, chege), owes, pays


def _repaid_loan(world, services, *, lender_languages=("en", "sw")):
    loan = world.disbursed_loan(lenders=len(lender_languages))
    for lender, lang in zip(lenders_of(services, loan), lender_languages, strict=True):
        members.set_language(services.uow(), lender.id, lang)
    world.pay(loan.number, loan.total_due)
    loan = world.loan(loan.number)
    assert loan.status == LoanStatus.REPAID
    return loan


def _story(world, services, key="s1"):
    loan = _repaid_loan(world, services)
    story = stories.submit(services.uow(), member_id=loan.borrower_id, text=STORY,
                           now=services.now(), request_key=key)
    return loan, story


def _erasure(services, member, key="e1"):
    return privacy.open_request(services.uow(), member_id=member.id, kind=DataRequestKind.ERASE,
                                text=None, now=services.now(), request_key=key)


# ---------------------------------------------------------------- groups

def test_the_group_page_shows_each_members_loan_and_who_is_behind(console, world, services,
                                                                   client):
    group, (amina, baraka, chege), owes, pays = _group_of_three(world, services)
    console.login(make_operator(services, "finance"))  # any role reads groups
    listed = client.get("/console/groups").get_data(as_text=True)
    assert "Umoja Women" in listed and "Nyalenda" in listed and "Grace Agent" in listed
    row = client.get("/console/groups?format=csv").get_data(as_text=True).splitlines()
    assert row[1].split(",")[1:] == ["Umoja Women", "Nyalenda", "Grace Agent", "Amina Otieno",
                                     "3", "0", "2", "1"]
    html = client.get(f"/console/groups/{group.id}").get_data(as_text=True)
    for member in (amina, baraka, chege):
        assert member.name in html and f"/console/members/{member.id}" in html
    assert owes.number in html and pays.number in html
    behind = services.settings.fmt(owes.installments[0].amount)
    assert f"{behind} (late)" in html and "1 of 3" in html
    exported = client.get(f"/console/groups/{group.id}?format=csv").get_data(as_text=True)
    lines = {line.split(",")[0]: line.split(",") for line in exported.splitlines()[1:]}
    assert lines["Amina Otieno"][3:] == [owes.number, str(world.loan(owes.number).status),
                                         str(owes.installments[0].amount)]
    assert lines["Baraka Mwangi"][3:] == [pays.number, str(world.loan(pays.number).status),
                                          "0"]
    assert lines["Chege Kamau"][3:] == ["", "", "0"]
    # the member page links the group they joined
    assert f"/console/groups/{group.id}" in client.get(
        f"/console/members/{amina.id}").get_data(as_text=True)
    assert client.get("/console/groups/999999").status_code == 404


def test_the_group_list_is_one_statement(world, services):
    _group_of_three(world, services)
    with counting(services.db) as spent:
        [row] = groups.group_list(services.uow(), services.now())
    assert (row.members, row.invited, row.open_loans, row.behind) == (3, 0, 2, 1)
    assert len(spent.sql) == 1


FIRST_NAMES = ("Akinyi", "Baraka", "Chebet", "Dalila", "Esther", "Faith", "Gitau", "Hawa",
               "Imani", "Jabari", "Kioko", "Lulu")


def _group_of(world, services, size, *, borrowers, name):
    """A group of `size` who all joined; the first `borrowers` of them borrow, and ten
    days on every other borrower has paid their first installment."""
    people = [world.member(f"{first} {name.split()[0]}") for first in FIRST_NAMES[:size]]
    group = groups.form_group(services.uow(), agent_id=world.agent().id, name=name,
                              village="Nyalenda", phones=[m.phone for m in people], pin=PIN,
                              now=services.now(), request_key=f"g-{name}")
    for member in people:
        groups.answer_invitation(services.uow(), member_id=member.id, group_id=group.id,
                                 join=True, now=services.now())
    return group, [world.disbursed_loan(borrower=m) for m in people[:borrowers]]


def test_the_group_page_is_one_statement_whatever_the_groups_size(world, services):
    small, small_loans = _group_of(world, services, 3, borrowers=2, name="Umoja Women")
    large, large_loans = _group_of(world, services, 12, borrowers=8, name="Tumaini Traders")
    services.clock.advance(days=10)
    for loan in small_loans[1::2] + large_loans[1::2]:
        world.pay(loan.number, loan.installments[0].amount)
    counts = {}
    for group, size in ((small, 3), (large, 12)):
        with counting(services.db) as seen:
            view = groups.overview(services.uow(), group.id, services.now())
        assert len(view.members) == size
        counts[size] = len(seen.sql)
    assert counts[3] == counts[12] == 1, (counts, seen.sql)
    # and what it says is what it said before: the open loan, who is behind and by how much
    behind = {m.name: m.behind for m in view.members if m.loan}
    assert len(behind) == 8 and sum(1 for late in behind.values() if late) == 4
    late = [m for m in view.members if m.behind]
    assert {m.loan for m in late} == {loan.number for loan in large_loans[0::2]}
    assert all(m.behind == large_loans[0].installments[0].amount for m in late)
    assert view.behind == tuple(late)


# ---------------------------------------------------------------- roles and doors

def test_finance_reads_groups_but_may_not_open_or_act_on_stories_or_data(console, world,
                                                                         services, client):
    _, story = _story(world, services)
    case = _erasure(services, world.member("Halima Ali"))
    console.login(make_operator(services, "finance"))
    assert client.get("/console/groups").status_code == 200
    for path in ("/console/stories", "/console/data", f"/console/data/{case.number}"):
        assert client.get(path).status_code == 403, path
    token = console.token()
    for path in (f"/console/stories/{story.id}/approve", f"/console/stories/{story.id}/reject",
                 f"/console/data/{case.number}/close", f"/console/data/{case.number}/erase"):
        answer = client.post(path, data={"csrf_token": token, "reason": "r", "note": "n",
                                         "outcome": "refused", "confirm": case.number})
        assert answer.status_code == 403, path
    assert stories.list_stories(services.uow())[0].status == StoryStatus.PENDING
    assert privacy.list_requests(services.uow(), services.now())[0].status == "open"
    assert audit_rows(services) == []
    html = client.get("/console/members").get_data(as_text=True)
    assert "/console/groups" in html and "/console/stories" not in html  # the menu too


def test_nobody_logged_in_is_sent_to_the_login(client):
    for path in ("/console/groups", "/console/groups/1", "/console/stories", "/console/data",
                 "/console/data/P1001"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/console/login?next=")


def test_every_post_without_its_csrf_token_is_refused_and_changes_nothing(support, world,
                                                                          services, client):
    _, story = _story(world, services)
    member = world.member("Halima Ali")
    case = _erasure(services, member)
    for path in (f"/console/stories/{story.id}/approve", f"/console/stories/{story.id}/reject",
                 f"/console/data/{case.number}/close", f"/console/data/{case.number}/erase"):
        for forged in ({}, {"csrf_token": "forged"}):
            answer = client.post(path, data={**forged, "reason": "r", "note": "n",
                                             "outcome": "refused", "confirm": case.number})
            assert answer.status_code == 400, path
            assert "CSRF" in answer.get_data(as_text=True)
    assert stories.list_stories(services.uow())[0].status == StoryStatus.PENDING
    with services.uow() as uow:
        assert uow.session.get(Member, member.id).status == MemberStatus.VERIFIED
    assert privacy.list_requests(services.uow(), services.now())[0].status == "open"
    assert audit_rows(services) == []


def test_no_address_is_a_500(support, client):
    for path in ("/console/groups/999999", "/console/data/P9999", "/console/data/%00",
                 "/console/data/" + "X" * 300, "/console/groups?format=csv&all=x",
                 "/console/stories?all=2", "/console/data?all=1&format=csv"):
        assert client.get(path).status_code in (200, 404), path
    for path, words in (("/console/stories/999999/approve", "No story 999999."),
                        ("/console/stories/999999/reject", "No story 999999."),
                        ("/console/data/P9999/close", "No request P9999."),
                        ("/console/data/P9999/erase", "No request P9999."),
                        ("/console/data/P9999%00/close", "No request P9999.")):
        answer = support.post(path, {"reason": "r", "note": "n", "confirm": "P9999"})
        assert answer.status_code == 303, path
        with client.session_transaction() as session:
            assert [m for _, m in session.pop("_flashes", [])] == [words], path


# ---------------------------------------------------------------- stories

def test_a_story_approved_in_the_console_reaches_the_lenders_in_their_language(
        support, world, services, client):
    loan, story = _story(world, services)
    english, swahili = lenders_of(services, loan)
    wants = world.member("Neema Wafula", roles="lender")
    members.set_tips(services.uow(), wants.id, wanted=True)
    before = {m.id: len(sms_to(services, m.phone)) for m in (english, swahili, wants)}
    html = client.get("/console/stories").get_data(as_text=True)
    assert STORY in html and loan.number in html
    answer = support.post(f"/console/stories/{story.id}/approve", {}, follow=True)
    assert "approved" in answer.get_data(as_text=True)
    [en] = sms_to(services, english.phone)[before[english.id]:]
    [sw] = sms_to(services, swahili.phone)[before[swahili.id]:]
    assert (en.template, en.language) == ("sms.story_lender", "en")
    assert en.text.startswith(f"Wanjiru repaid {loan.number} and says:") and STORY in en.text
    assert (sw.template, sw.language) == ("sms.story_lender", "sw")
    assert sw.text.startswith(f"Wanjiru amemaliza mkopo {loan.number} na anasema:")
    assert sms_to(services, loan.borrower.phone)[-1].template == "sms.story_approved"
    # members who want stories get it from the job the approval enqueued after commit,
    # as `harambee stories approve` writes them itself
    assert sms_to(services, wants.phone)[before[wants.id]:] == []
    run_worker(services)
    [shared] = sms_to(services, wants.phone)[before[wants.id]:]
    assert shared.template == "sms.story_member" and STORY in shared.text
    with services.uow() as uow:
        assert uow.session.get(Story, story.id).shared_at is not None
    [row] = audit_rows(services)
    assert (row.action, row.subject, row.operator_email) == (
        "story.approve", f"story:{story.id}", "support@harambee.test")
    assert json.loads(row.after) == {"status": "approved", "lenders": 2}
    # decided once: a second approval is refused in words and writes nothing
    again = support.post(f"/console/stories/{story.id}/approve", {}, follow=True)
    assert f"Story {story.id} is already approved." in again.get_data(as_text=True)
    assert len(audit_rows(services)) == 1
    history = client.get("/console/stories?all=1").get_data(as_text=True)
    assert STORY in history and "support@harambee.test" in history
    assert STORY not in client.get("/console/stories").get_data(as_text=True)


def test_a_rejected_story_reaches_no_lender_and_needs_a_reason(support, world, services,
                                                               client):
    loan, story = _story(world, services)
    lenders = lenders_of(services, loan)
    before = {m.id: len(sms_to(services, m.phone)) for m in lenders}
    empty = support.post(f"/console/stories/{story.id}/reject", {"reason": "  "}, follow=True)
    assert "Please write a reason." in empty.get_data(as_text=True)
    assert stories.list_stories(services.uow())[0].status == StoryStatus.PENDING
    support.post(f"/console/stories/{story.id}/reject", {"reason": "names another person"})
    for lender in lenders:
        assert sms_to(services, lender.phone)[before[lender.id]:] == []
    told = sms_to(services, loan.borrower.phone)[-1]
    assert told.template == "sms.story_declined" and "another person" not in told.text
    run_worker(services)
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.template == "sms.story_member")) == 0
    [row] = audit_rows(services)
    assert (row.action, row.reason) == ("story.reject", "names another person")
    history = client.get("/console/stories?all=1").get_data(as_text=True)
    assert "names another person" in history and "rejected" in history


# ---------------------------------------------------------------- data requests

def test_a_correction_is_closed_as_done_and_the_member_told_in_swahili(support, world,
                                                                       services, client):
    member = world.member("Halima Ali", language="sw")
    case = privacy.open_request(services.uow(), member_id=member.id,
                                kind=DataRequestKind.CORRECT, text="Jina ni Halima Alii",
                                now=services.now(), request_key="c1")
    services.clock.advance(days=8)
    listed = client.get("/console/data").get_data(as_text=True)
    assert case.number in listed and "(late)" in listed and "overdue" in listed
    page = client.get(f"/console/data/{case.number}").get_data(as_text=True)
    assert "Jina ni Halima Alii" in page and "erase-form" not in page
    empty = support.post(f"/console/data/{case.number}/close",
                         {"outcome": "done", "note": ""}, follow=True)
    assert "Please write a reason." in empty.get_data(as_text=True)
    support.post(f"/console/data/{case.number}/close",
                 {"outcome": "done", "note": "name corrected after a call"})
    [view] = privacy.list_requests(services.uow(), services.now(), status=None)
    assert view.status == DataRequestStatus.DONE and view.closed_by == "support@harambee.test"
    told = sms_to(services, member.phone)[-1]
    assert (told.template, told.language) == ("sms.data_fixed", "sw")
    [row] = audit_rows(services)
    assert (row.action, row.subject, row.reason) == (
        "data.close", f"data:{case.number}", "name corrected after a call")
    link = f'href="/console/data/{case.number}"'
    assert link not in client.get("/console/data").get_data(as_text=True)
    assert link in client.get("/console/data?all=1").get_data(as_text=True)


def test_an_erasure_is_refused_in_words_while_money_is_owed(support, world, services, client):
    loan = world.disbursed_loan(lenders=1)
    case = _erasure(services, loan.borrower)
    page = client.get(f"/console/data/{case.number}").get_data(as_text=True)
    assert f"Loan {loan.number} is still open" in page and "erase-form" not in page
    answer = support.post(f"/console/data/{case.number}/erase", {"confirm": case.number},
                          follow=True)
    assert f"Loan {loan.number} is still open" in answer.get_data(as_text=True)
    with services.uow() as uow:
        assert uow.session.get(Member, loan.borrower_id).status != MemberStatus.ERASED
    assert privacy.list_requests(services.uow(), services.now())[0].status == "open"
    assert audit_rows(services) == []


def test_an_erasure_needs_its_number_typed_then_anonymises_the_member(support, world,
                                                                      services, client):
    loan = _repaid_loan(world, services)
    borrower = loan.borrower
    case = _erasure(services, borrower)
    page = client.get(f"/console/data/{case.number}").get_data(as_text=True)
    assert "erase-form" in page and "cannot be undone" in page
    for typed in ("", "P1", "yes"):
        answer = support.post(f"/console/data/{case.number}/erase", {"confirm": typed},
                              follow=True)
        assert f"Type the case number {case.number} to confirm" in answer.get_data(as_text=True)
    with services.uow() as uow:
        assert uow.session.get(Member, borrower.id).status != MemberStatus.ERASED
    answer = support.post(f"/console/data/{case.number}/erase",
                          {"confirm": case.number.lower()}, follow=True)
    assert "the member is erased" in answer.get_data(as_text=True)
    with services.uow() as uow:
        member = uow.session.get(Member, borrower.id)
        assert (member.name, member.phone, member.national_id, member.status) == (
            "Erased member", f"erased:{borrower.id}", None, MemberStatus.ERASED)
        assert uow.session.get(Loan, loan.id).status == LoanStatus.REPAID  # the books stay
    assert sms_to(services, borrower.phone)[-1].template == "sms.data_erased"
    [row] = audit_rows(services)
    assert (row.action, row.subject) == ("data.erase", f"data:{case.number}")
    assert json.loads(row.after)["member"] == borrower.id
    assert checks.check(UnitOfWork(services.db), services.now()) == []
    # done once: erasing again is refused in words
    again = support.post(f"/console/data/{case.number}/erase", {"confirm": case.number},
                         follow=True)
    assert f"Request {case.number} is already done." in again.get_data(as_text=True)
    assert len(audit_rows(services)) == 1
