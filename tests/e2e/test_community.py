"""#16 items 5-7 through the real hooks, in English and Swahili: stories, tips,
thanks, the agent's record, a lender's portfolio, statements and data rights."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import main
from core import checks, members, stories, tips
from core.db import UnitOfWork
from core.models import (
    DataRequest,
    DataRequestStatus,
    InboundSms,
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    OutboxMessage,
    OutboxStatus,
    Payment,
    Pledge,
    Story,
    StoryStatus,
    Transfer,
)
from tests.sms_hook import answer, ask, send
from tests.support import PIN
from tests.ussd_phone import Phone
from workers import duties

WORDS = {  # what each language says, where the tests look for it
    "en": {"story": "STORY", "tips_on": "TIPS ON", "tips_off": "TIPS OFF", "stop": "STOP",
           "thanks": "THANKS", "portfolio": "PORTFOLIO", "statement": "STATEMENT",
           "data": "DATA", "fix": "DATA FIX", "delete": "DATA DELETE"},
    "sw": {"story": "HADITHI", "tips_on": "VIDOKEZO WASHA", "tips_off": "VIDOKEZO ZIMA",
           "stop": "ACHA", "thanks": "ASANTE", "portfolio": "UWEKEZAJI",
           "statement": "TAARIFA", "data": "KUMBUKUMBU", "fix": "DATA REKEBISHA",
           "delete": "DATA FUTA"},
}


def speak(world, member, lang: str) -> None:
    members.set_language(world.uow(), member.id, lang)


def to(world, phone: str) -> list[str]:
    """Every SMS written to a phone, replies and notices alike, oldest first."""
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage.text).where(
            OutboxMessage.phone == phone).order_by(OutboxMessage.id)))


def texted(world, client, phone: str, message: str) -> str:
    """Send an SMS and return the last SMS written to that phone (core writes some
    answers itself, such as the acknowledgement of a data request)."""
    send(client, phone, message)
    answer(world.services)
    return to(world, phone)[-1]


def cli(world, *args: str):
    settings = world.settings
    env = {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url,
           "HARAMBEE_INSTANCE": settings.app.instance_dir}
    return CliRunner().invoke(main, list(args), env=env)


def repaid_loan(world, lenders: int = 2, amount: int = 300_000, lang: str = "en") -> Loan:
    """A loan paid out, then repaid in full at once (so on time); its borrower and
    lenders speak `lang`."""
    loan = world.disbursed_loan(lenders=lenders, amount=amount)
    for who in (loan.borrower, *lenders_of(world, loan)):
        speak(world, who, lang)
    world.pay(loan.number, loan.total_due)
    loan = world.loan(loan.number)
    assert loan.status == LoanStatus.REPAID
    return loan


def lenders_of(world, loan: Loan) -> list[Member]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(Member).join(
            Pledge, Pledge.lender_id == Member.id).where(Pledge.loan_id == loan.id)
            .order_by(Member.id)))


# ---------------------------------------------------------------- stories

@pytest.mark.parametrize("lang", ["en", "sw"])
def test_a_story_is_sent_approved_and_reaches_lenders_and_an_opted_in_member(
        world, client, lang):
    w = WORDS[lang]
    loan = repaid_loan(world, lang=lang)
    borrower = loan.borrower
    invited = to(world, borrower.phone)[-1]  # the SMS after the last payment invites a story
    assert invited.startswith(f"Loan {loan.number} is fully repaid. Well done!" if lang == "en"
                              else f"Mkopo {loan.number} umelipwa kikamilifu. Hongera!")
    assert invited.endswith("send STORY and a few words." if lang == "en"
                            else "tuma HADITHI na maneno machache.")
    neema = world.member("Neema Wafula", roles="lender", language=lang)
    quiet = world.member("Baraka Kimani", roles="lender", language=lang)
    on = ask(world, client, neema.phone, w["tips_on"])
    assert on.startswith("Done: you will get one money tip a week" if lang == "en"
                         else "Sawa: utapokea kidokezo kimoja")

    story = "The loan bought a sewing machine; now I sew school uniforms."
    received = ask(world, client, borrower.phone, f"{w['story']} {story}")
    assert received.startswith("Thank you! We will read your story" if lang == "en"
                               else "Asante! Tutasoma hadithi yako")
    listed = cli(world, "stories", "list")
    assert listed.exit_code == 0 and story in listed.output and loan.number in listed.output
    story_id = listed.output.split("\t")[0]
    lenders = lenders_of(world, loan)
    before = {m.id: len(to(world, m.phone)) for m in [*lenders, neema, quiet]}
    assert all(story not in " ".join(to(world, m.phone)) for m in lenders)  # not before approval

    approved = cli(world, "stories", "approve", story_id, "--by", "ops@harambee")
    assert approved.exit_code == 0, approved.output
    assert "2 lenders and 1 members" in approved.output
    for lender in lenders:
        [news] = to(world, lender.phone)[before[lender.id]:]
        assert news == (f'Wanjiru repaid {loan.number} and says: "{story}" Reply THANKS '
                        f"{loan.number} to thank them." if lang == "en" else
                        f'Wanjiru amemaliza mkopo {loan.number} na anasema: "{story}" Jibu '
                        f"ASANTE {loan.number} kumshukuru.")
    [shared] = to(world, neema.phone)[before[neema.id]:]
    assert shared.startswith("A Harambee story: Wanjiru" if lang == "en"
                             else "Hadithi ya Harambee: Wanjiru") and story in shared
    assert to(world, quiet.phone)[before[quiet.id]:] == []  # did not opt in
    assert ("has gone to your lenders" if lang == "en" else "imetumwa kwa wakopeshaji"
            ) in to(world, borrower.phone)[-1]
    again = cli(world, "stories", "approve", story_id)
    assert again.exit_code != 0 and "already approved" in again.output


def test_a_story_needs_a_repaid_loan_fits_one_sms_and_a_rejection_is_kind(world, client):
    newcomer = world.member("Zawadi Otieno", roles="borrower")
    assert "Once yours is repaid" in ask(world, client, newcomer.phone, "STORY hello")
    assert "Send STORY and a few words" in ask(world, client, newcomer.phone, "STORY")
    loan = repaid_loan(world, lenders=1)
    too_long = ask(world, client, loan.borrower.phone, "STORY " + "word " * 30)
    assert "Please keep it to 80" in too_long
    assert "plain letters" in ask(world, client, loan.borrower.phone, "STORY asante 😀")
    ask(world, client, loan.borrower.phone, "STORY first words")
    ask(world, client, loan.borrower.phone, "STORY Better words, written again")
    waiting = stories.list_stories(world.uow())
    assert [s.text for s in waiting] == ["Better words, written again"]  # the newer replaces
    stories.reject(world.uow(), story_id=waiting[0].id, operator="ops", reason="test",
                   now=world.now)
    declined = to(world, loan.borrower.phone)[-1]
    assert declined.startswith("Thank you for your story") and "test" not in declined
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Story).where(
            Story.status == StoryStatus.REJECTED)) == 2


# ---------------------------------------------------------------- tips

WEDNESDAY_MORNING = datetime(2026, 3, 4, 7, 30, tzinfo=UTC)  # 10:30 in Nairobi


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_tips_opt_in_opt_out_and_stop(world, client, services, clock, lang):
    w = WORDS[lang]
    keen, changed, stopped, silent = (world.member(name, roles="lender", language=lang)
                                      for name in ("Asha Keen", "Baraka Change", "Chebet Stop",
                                                   "Daudi Silent"))
    for member in (keen, changed, stopped):
        ask(world, client, member.phone, w["tips_on"])
    off = ask(world, client, changed.phone, w["tips_off"])
    assert off.startswith("Done: no more tips" if lang == "en" else "Sawa: hutapokea vidokezo")
    ask(world, client, stopped.phone, w["stop"])
    usage = ask(world, client, silent.phone, w["tips_on"].split()[0])
    assert ("TIPS ON" if lang == "en" else "VIDOKEZO WASHA") in usage

    assert duties.tick(services, clock(), ["tips"]).done["tips"] == 0  # Monday: not yet
    clock.set(WEDNESDAY_MORNING + timedelta(hours=12))  # 22:30 in Nairobi: quiet hours
    assert duties.tick(services, clock(), ["tips"]).done["tips"] == 0
    clock.set(WEDNESDAY_MORNING)
    assert duties.tick(services, clock(), ["tips"]).done["tips"] == 1
    assert duties.tick(services, clock(), ["tips"]).done["tips"] == 0  # never twice a week
    clock.advance(days=1)
    assert duties.tick(services, clock(), ["tips"]).done["tips"] == 0
    week_tip = tips.tip_for_week("2026-W10").texts[lang]
    assert to(world, keen.phone)[-1] == (
        f"Harambee tip: {week_tip} Reply TIPS OFF to stop." if lang == "en"
        else f"Kidokezo cha Harambee: {week_tip} Jibu VIDOKEZO ZIMA kusimamisha.")
    for member in (changed, stopped, silent):
        assert not any(week_tip in sms for sms in to(world, member.phone))

    clock.set(WEDNESDAY_MORNING + timedelta(days=7))  # next week: the next tip
    assert duties.tick(services, clock(), ["tips"]).done["tips"] == 1
    ask(world, client, keen.phone, w["stop"])  # STOP after the tip was written, before it left
    with world.uow() as uow:
        tip_id = uow.session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.phone == keen.phone, OutboxMessage.key.like("tip:%"))
            .order_by(OutboxMessage.id.desc()).limit(1))
    duties.send_outbox(services, [tip_id])
    with world.uow() as uow:
        assert uow.session.get(OutboxMessage, tip_id).status == OutboxStatus.SKIPPED


def test_every_tip_fits_one_sms_in_gsm7_in_both_languages():
    from core.messages import is_gsm7, sms_parts, text

    assert len(tips.tips()) >= 8
    for tip in tips.tips():
        for lang in ("en", "sw"):
            assert len(tip.texts[lang]) <= tips.MAX_TIP, tip.texts[lang]
            message = text("sms.tip", lang, tip=tip.texts[lang])
            assert is_gsm7(message) and sms_parts(message) == 1, message


# ---------------------------------------------------------------- thanks

@pytest.mark.parametrize("lang", ["en", "sw"])
def test_thanks_reach_the_borrower_once_and_a_non_lender_hears_of_no_such_loan(
        world, client, lang):
    w = WORDS[lang]
    loan = world.disbursed_loan(lenders=2)
    speak(world, loan.borrower, lang)
    lender = lenders_of(world, loan)[0]
    speak(world, lender, lang)
    sent = ask(world, client, lender.phone, f"{w['thanks']} {loan.number}")
    assert sent == (f"Your thanks went to the borrower of {loan.number}." if lang == "en"
                    else f"Shukrani zako zimemfikia mkopaji wa {loan.number}.")
    assert to(world, loan.borrower.phone)[-1].startswith(
        f"A lender of your loan {loan.number} says thank you" if lang == "en"
        else f"Mmoja wa wakopeshaji wa mkopo wako {loan.number} anakushukuru")
    count = len(to(world, loan.borrower.phone))
    assert ask(world, client, lender.phone, f"{w['thanks']} {loan.number}") == (
        f"You have already thanked the borrower of {loan.number}." if lang == "en"
        else f"Ulishamshukuru mkopaji wa {loan.number}.")
    assert len(to(world, loan.borrower.phone)) == count  # once per lender and loan

    stranger = world.member("Pendo Mgeni", roles="lender", language=lang)
    refused = ask(world, client, stranger.phone, f"{w['thanks']} {loan.number}")
    unknown = ask(world, client, stranger.phone, f"{w['thanks']} L9999")
    assert refused == unknown.replace("L9999", loan.number)
    assert refused == (f"No loan {loan.number}." if lang == "en"
                       else f"Hakuna mkopo {loan.number}.")
    assert len(to(world, loan.borrower.phone)) == count


# ---------------------------------------------------------------- portfolio and agents

def seed_portfolio(world, clock):
    """One lender with four loans: repaid, repaying on time, in arrears, defaulted."""
    lender = world.lender(balance=2_000_000, name="Otieno Lender")
    repaid = world.listed_loan(amount=200_000)
    defaulted = world.listed_loan(amount=500_000)
    for loan in (repaid, defaulted):
        world.pledge(lender, loan, loan.amount)
        world.disburse(world.loan(loan.number))
    world.pay(repaid.number, world.loan(repaid.number).total_due)
    clock.advance(days=100)
    duties.tick(world.services, clock(), ["mark_arrears"])
    repaying = world.listed_loan(amount=300_000)
    late = world.listed_loan(amount=400_000)
    for loan in (repaying, late):
        world.pledge(lender, loan, loan.amount)
        world.disburse(world.loan(loan.number))
    clock.advance(days=1)
    world.pay(repaying.number, world.loan(repaying.number).installments[0].amount)
    clock.advance(days=9)
    duties.tick(world.services, clock(), ["mark_arrears"])
    states = {n: world.loan(n).status for n in (repaid.number, repaying.number, late.number,
                                                 defaulted.number)}
    assert list(states.values()) == [LoanStatus.REPAID, LoanStatus.REPAYING,
                                     LoanStatus.IN_ARREARS, LoanStatus.DEFAULTED]
    return lender


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_portfolio_says_what_was_lent_got_back_late_and_lost(world, client, clock, lang):
    lender = seed_portfolio(world, clock)
    speak(world, lender, lang)
    # What came back, read from the wallet: top-up less what was lent, plus repayments.
    got_back = world.wallet(lender).balance - (2_000_000 - 1_400_000)
    assert 200_000 < got_back < 300_000  # the repaid loan, and part of one installment
    fmt = world.settings.fmt
    reply = ask(world, client, lender.phone, WORDS[lang]["portfolio"])
    if lang == "en":
        assert reply == (f"Your lending, 4 loans: lent Ksh 14,000, got back {fmt(got_back)}, "
                         f"still to come {fmt(500_000 - got_back)}, late Ksh 4,000, "
                         "lost in default Ksh 5,000.")
    else:
        assert reply == (f"Ukopeshaji wako, mikopo 4: umekopesha Ksh 14,000, umerudishiwa "
                         f"{fmt(got_back)}, inayotarajiwa {fmt(500_000 - got_back)}, "
                         "iliyochelewa Ksh 4,000, iliyopotea Ksh 5,000.")
    phone = Phone(client, lender.phone)
    menu = phone.dial()
    wallet = phone.press(menu_item(menu, "Wallet" if lang == "en" else "Pochi"))
    wallet = phone.press(PIN)
    screen = phone.press(menu_item(wallet, "My lending" if lang == "en" else "Ukopeshaji wangu"))
    if lang == "en":
        assert screen == (f"CON Lent Ksh 14,000 on 4 loans\nGot back {fmt(got_back)}\n"
                          f"Still to come {fmt(500_000 - got_back)}\nLate Ksh 4,000\n"
                          "Lost in default Ksh 5,000\n0. Back")
    else:
        assert screen.startswith("CON Umekopesha Ksh 14,000, mikopo 4\nUmerudishiwa")
        assert "Iliyochelewa Ksh 4,000\nIliyopotea Ksh 5,000" in screen
    newcomer = world.member("Amani Mpya", roles="lender")
    assert ask(world, client, newcomer.phone, "PORTFOLIO").startswith("You have not lent yet")


def menu_item(screen: str, label: str) -> str:
    for line in screen.splitlines():
        number, _, text = line.partition(". ")
        if text == label:
            return number.removeprefix("CON ")
    raise AssertionError(f"{label!r} not in {screen!r}")


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_the_lending_screens_show_the_agents_record(world, client, clock, lang):
    seed_portfolio(world, clock)  # the agent's members: one loan on time, one defaulted
    open_loan = world.listed_loan(amount=100_000)  # the same agent vouched for this borrower
    lender = world.lender(balance=500_000, name="Juma Lender")
    speak(world, lender, lang)
    record = "agent: 1 of 2 on time" if lang == "en" else "wakala: 1 kati ya 2 kwa wakati"
    phone = Phone(client, lender.phone)
    listing = phone.press(menu_item(phone.dial(), "Lend" if lang == "en" else "Kopesha"))
    assert listing.startswith("CON 1. Wanjiru, ") and record in listing.splitlines()[0]
    detail = phone.press("1")
    assert record in detail.splitlines()[0]
    listed = ask(world, client, lender.phone, "LOANS")
    assert f"{open_loan.number}" in listed and record in listed


# ---------------------------------------------------------------- statements and data

@pytest.mark.parametrize("lang", ["en", "sw"])
def test_statement_gives_the_wallet_and_loans_in_at_most_two_sms(world, client, clock, lang):
    from core.messages import sms_parts

    w = WORDS[lang]
    old = repaid_loan(world, lenders=1, amount=200_000, lang=lang)
    borrower = old.borrower
    members.add_roles(world.uow(), borrower.id, "lender")
    world.top_up(borrower, 150_000)
    new = world.listed_loan(borrower, amount=300_000)
    world.pledge(world.lender(), new, 300_000)
    world.disburse(world.loan(new.number))
    statement = ask(world, client, borrower.phone, w["statement"])
    assert sms_parts(statement) <= 2
    if lang == "en":
        assert statement.startswith("Statement 02/03/2026: wallet Ksh 1,500 (Ksh 0 held for "
                                    f"pledges). Loans: {new.number} Ksh 3,000 paid out, "
                                    "Ksh 3,150 left to pay; ")
        assert f"{old.number} Ksh 2,000 fully repaid." in statement
    else:
        assert statement.startswith("Taarifa 02/03/2026: pochi Ksh 1,500 (Ksh 0 imeshikiliwa "
                                    f"kwa ahadi). Mikopo: {new.number} Ksh 3,000 umetolewa, "
                                    "bado Ksh 3,150; ")
        assert f"{old.number} Ksh 2,000 umelipwa kikamilifu." in statement
    nobody = world.member("Furaha Mpya", roles="lender", language=lang)
    empty = ask(world, client, nobody.phone, w["statement"])
    assert ("You have no loans" if lang == "en" else "Huna mkopo") in empty


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_data_says_what_is_held_and_a_fix_opens_a_case_with_seven_days(world, client, lang):
    w = WORDS[lang]
    member = world.member("Amina Otieno", roles="borrower,lender", language=lang)
    held = ask(world, client, member.phone, w["data"])
    if lang == "en":
        assert held.startswith(f"Harambee holds: Amina Otieno, phone 0{member.phone[4:7]} "
                               f"{member.phone[7:]}, ID ending {member.national_id[-3:]}, "
                               "English, agent Grace; 0 loans, 0 pledges")
        assert held.endswith("To correct: DATA FIX <what>. To erase: DATA DELETE.")
    else:
        assert held.startswith("Tunahifadhi: Amina Otieno, simu 0")
        assert "kitambulisho kinachoishia" in held and "Kiswahili, wakala Grace" in held
    assert member.national_id not in held  # only its last three digits
    send(client, member.phone, f"{w['fix']} my name is Amina Atieno")
    answer(world.services)
    opened = to(world, member.phone)[-1]
    due = "09/03/2026"
    assert opened == (
        f"We opened request P1001 to correct your details. We will answer by {due}."
        if lang == "en" else
        f"Tumefungua ombi P1001 la kurekebisha taarifa zako. Tutakujibu kufikia {due}.")
    listed = cli(world, "data", "list")
    assert "P1001\tcorrect\topen" in listed.output and "my name is Amina Atieno" in listed.output
    closed = cli(world, "data", "close", "P1001", "--done", "--note", "name corrected")
    assert closed.exit_code == 0, closed.output
    assert "P1001" in to(world, member.phone)[-1]
    assert (("Send DATA FIX and what is wrong" if lang == "en" else "Tuma DATA REKEBISHA na kosa")
            in ask(world, client, member.phone, w["fix"]))


def test_an_open_case_is_overdue_after_seven_days(world, client, clock):
    member = world.member()
    first = texted(world, client, member.phone, "DATA DELETE")
    again = texted(world, client, member.phone, "data erase")  # the same case, told again
    assert "P1001" in first and first == again
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(DataRequest)) == 1
    six_days = (clock() + timedelta(days=6)).isoformat()
    assert "OVERDUE" not in cli(world, "data", "list", "--now", six_days).output
    eight_days = (clock() + timedelta(days=8)).isoformat()
    assert "P1001\terase\topen" in cli(world, "data", "list", "--now", eight_days).output
    assert "OVERDUE" in cli(world, "data", "list", "--now", eight_days).output


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_deletion_anonymises_the_member_keeps_the_ledger_and_check_stays_clean(
        world, client, services, lang):
    w = WORDS[lang]
    loan = repaid_loan(world, lenders=2, lang=lang)
    borrower = loan.borrower
    old_phone, old_id = borrower.phone, borrower.national_id
    ask(world, client, borrower.phone, f"{w['story']} It helped my shop")
    with world.uow() as uow:
        transfers = uow.session.scalar(select(func.count()).select_from(Transfer))
        payments = uow.session.scalar(select(func.count()).select_from(Payment))
    send(client, borrower.phone, w["delete"])
    answer(world.services)
    assert "P1001" in to(world, old_phone)[-1]
    assert ("Loan and payment records stay" if lang == "en" else "Kumbukumbu za mikopo"
            ) in to(world, old_phone)[-1]

    erased = cli(world, "data", "erase", "P1001", "--by", "dpo@harambee")
    assert erased.exit_code == 0, erased.output
    with world.uow() as uow:
        member = uow.session.get(Member, borrower.id)
        assert (member.name, member.phone, member.national_id, member.status) == (
            "Erased member", f"erased:{borrower.id}", None, MemberStatus.ERASED)
        assert member.pin_hash is None and member.place is None
        assert uow.session.scalar(select(func.count()).select_from(Transfer)) == transfers
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == payments
        assert uow.session.get(Loan, loan.id).borrower_id == borrower.id  # the loan stays
        texts = list(uow.session.scalars(select(InboundSms.text).where(
            InboundSms.member_id == borrower.id)))
        assert texts and set(texts) == {"(erased)"}
        kept = list(uow.session.scalars(select(OutboxMessage.text).where(
            OutboxMessage.phone == old_phone)))
        assert kept == [("Request P1001 is done: your details are erased from Harambee. Loan "
                         "and payment records stay, as the law requires.") if lang == "en" else
                        ("Ombi P1001 limekamilika: taarifa zako zimefutwa kutoka Harambee. "
                         "Kumbukumbu za mikopo na malipo zinabaki, kama sheria inavyotaka.")]
        # only the last word, to the number that was theirs
        assert old_id not in " ".join(kept)
        story = uow.session.scalar(select(Story))
        assert (story.text, story.status) == ("(erased)", StoryStatus.REJECTED)  # never shared
        assert uow.session.scalar(select(DataRequest.status)) == DataRequestStatus.DONE
    assert checks.check(UnitOfWork(services.db)) == []
    assert cli(world, "check").exit_code == 0
    # The number that was theirs is a stranger now; a lender's THANKS reaches no one.
    assert ask(world, client, old_phone, "BAL") == "You are not registered. Dial *384*123# to join."
    lender = lenders_of(world, loan)[0]
    assert loan.number in ask(world, client, lender.phone, f"{w['thanks']} {loan.number}")
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.template == "sms.thanks_received")) == 0


def test_deletion_waits_while_money_is_owed_or_held(world, client):
    loan = world.disbursed_loan(lenders=1)
    lender = lenders_of(world, loan)[0]
    for who in (loan.borrower, lender):
        texted(world, client, who.phone, "DATA DELETE")
    owes = cli(world, "data", "erase", "P1001")
    assert owes.exit_code != 0 and f"Loan {loan.number} is still open" in owes.output
    owed = cli(world, "data", "erase", "P1002")
    assert owed.exit_code != 0 and "still coming back" in owed.output
    world.pay(loan.number, loan.total_due)
    holds = cli(world, "data", "erase", "P1002")
    assert holds.exit_code != 0 and "withdraw it first" in holds.output
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(DataRequest).where(
            DataRequest.status == DataRequestStatus.OPEN)) == 2
        assert uow.session.scalar(select(func.count()).select_from(Member).where(
            Member.status == MemberStatus.ERASED)) == 0
    refused = cli(world, "data", "close", "P1002", "--refused", "--note", "wallet not empty")
    assert refused.exit_code == 0 and "refused" in refused.output
    assert "Please call us" in to(world, lender.phone)[-1]


def test_a_long_history_fits_two_sms_in_whole_loans(world, client):
    from core.messages import sms_parts

    borrower = world.member("Wanjiru Kamau", roles="borrower")
    numbers = []
    for _ in range(5):
        loan = world.listed_loan(borrower, amount=500_000)
        world.pledge(world.lender(), loan, 500_000)
        loan = world.disburse(world.loan(loan.number))
        world.pay(loan.number, loan.total_due)
        numbers.append(loan.number)
    statement = ask(world, client, borrower.phone, "STATEMENT")
    assert sms_parts(statement) <= 2 and statement.endswith(".")
    places = [statement.find(f"{n} Ksh 5,000 fully repaid") for n in numbers]
    assert all(p > 0 for p in places) and places == sorted(places, reverse=True)  # newest first


def test_a_statement_stops_at_the_last_whole_loan_that_fits(world, client, monkeypatch):
    from core.messages import sms_parts
    from sms import community

    monkeypatch.setattr(community, "STATEMENT_PARTS", 1)
    borrower = world.member("Wanjiru Kamau", roles="borrower")
    numbers = []
    for _ in range(4):
        loan = world.listed_loan(borrower, amount=500_000)
        world.pledge(world.lender(), loan, 500_000)
        world.pay(loan.number, world.disburse(world.loan(loan.number)).total_due)
        numbers.append(loan.number)
    statement = ask(world, client, borrower.phone, "STATEMENT")
    assert sms_parts(statement) == 1 and statement.endswith("fully repaid.")
    shown = [n for n in numbers if n in statement]
    assert shown == numbers[-len(shown):] and 1 <= len(shown) < 4  # the newest, whole


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_what_we_hold_fits_two_sms_with_the_longest_values(lang):
    from core.messages import is_gsm7, sms_parts, text
    from tests.fake_port import LONG_FIRST, LONG_NAME, LONG_PLACE

    details = ", ".join([LONG_NAME, text("sms.data_phone", lang, phone="0712 345678"),
                         text("sms.data_id", lang, end="678"), LONG_PLACE,
                         text("ussd.lang.name", lang),
                         text("sms.data_agent", lang, agent=LONG_FIRST)])
    held = text("sms.data_held", lang, details=details, loans=999, pledges=9999,
                payments=99999, messages=999999)
    assert is_gsm7(held) and sms_parts(held) <= 2, len(held)
