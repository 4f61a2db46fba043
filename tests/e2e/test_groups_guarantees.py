"""Groups and guarantors through the USSD hook, in both languages: an agent forms a
group of three, each member joins on their own phone, the borrower asks two members to
guarantee a loan, one agrees with their PIN and one declines; the loan is repaid and
the hold released; another loan defaults and the hold is called to its lenders."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core import checks, guarantees, repayments
from core.models import Guarantee, GuaranteeStatus, LoanStatus, OutboxMessage
from tests import sms_hook
from tests.support import PIN
from tests.ussd_phone import Phone

WORDS = {  # what each screen says, by language
    "en": {"formed": "is formed", "joined": "You joined", "new": "new in Group",
           "asked": "We sent", "exposure": "if it is not repaid", "held": "is held",
           "declined": "You declined", "late": "late"},
    "sw": {"formed": "kimeundwa", "joined": "Umejiunga na", "new": "Kikundini",
           "asked": "Tumemtumia", "exposure": "usipolipwa", "held": "zimezuiliwa",
           "declined": "Umekataa", "late": "amechelewa"},
}
GROUP_ITEM = "9"  # a borrower and lender's main menu: the last item


def templates(world, phone: str) -> list[str]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage.template).where(
            OutboxMessage.phone == phone).order_by(OutboxMessage.id)))


def guarantee_of(world, loan_id: int, guarantor_id: int) -> Guarantee:
    with world.uow() as uow:
        return uow.session.scalar(select(Guarantee).where(
            Guarantee.loan_id == loan_id, Guarantee.guarantor_id == guarantor_id))


def form_group(client, world, lang: str):
    words = WORDS[lang]
    agent = world.member("Grace Wanjiku", roles="agent", language=lang)
    amina = world.member("Amina Otieno", language=lang)
    baraka = world.member("Baraka Mwangi", language=lang)
    chege = world.member("Chege Kamau", language=lang)
    body = Phone(client, agent.phone).run(
        "1", "4", "Umoja Women", "Nyalenda", amina.phone, baraka.phone, chege.phone, "1",
        "1", PIN)
    assert body.startswith("END Umoja Women") and words["formed"] in body
    for member in (amina, baraka, chege):
        assert templates(world, member.phone)[-1] in ("sms.group_invite",
                                                       "sms.group_invite_officer")
        phone = Phone(client, member.phone)
        assert words["new"] in phone.dial()
        phone.press(GROUP_ITEM)
        phone.press("1")
        assert phone.press("1").startswith(f"END {words['joined']} Umoja Women")
    return agent, amina, baraka, chege


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_a_group_of_three_guarantees_a_loan_repaid_then_another_that_defaults(
        client, world, clock, lang):
    words = WORDS[lang]
    _, amina, baraka, chege = form_group(client, world, lang)
    world.top_up(baraka, 500_000)
    world.top_up(chege, 500_000)
    loan = world.listed_loan(borrower=amina, amount=300_000)
    for guarantor in (baraka, chege):
        body = Phone(client, amina.phone).run("2", "1", "2", guarantor.phone, "1000", "1")
        assert body.startswith(f"END {words['asked']}"), body
        assert templates(world, guarantor.phone)[-1] == "sms.guarantee_asked"
    # Baraka reads the exact exposure and agrees with his PIN; Chege declines.
    phone = Phone(client, baraka.phone)
    phone.run(GROUP_ITEM)
    exposure = phone.press("1")
    assert "Ksh 1,000" in exposure and words["exposure"] in exposure and loan.number in exposure
    phone.press("1")
    assert words["held"] in phone.press(PIN)
    assert Phone(client, chege.phone).run(GROUP_ITEM, "1", "2").startswith(
        f"END {words['declined']}")
    assert world.wallet(baraka).debits_pending == 100_000
    assert world.wallet(chege).debits_pending == 0
    assert guarantee_of(world, loan.id, chege.id).status == GuaranteeStatus.DECLINED
    assert {"sms.guarantee_agreed", "sms.guarantee_declined"} <= set(
        templates(world, amina.phone))
    # Funded, paid out, repaid in two halves: the hold falls, then is released.
    for lender in (world.lender(balance=300_000), world.lender(balance=300_000)):
        world.pledge(lender, loan, 150_000)
    loan = world.disburse(world.loan(loan.number))
    world.pay(loan.number, loan.total_due // 2 // 100 * 100)
    held = world.wallet(baraka).debits_pending
    assert 0 < held < 100_000
    world.pay(loan.number, world.loan(loan.number).outstanding)
    assert world.loan(loan.number).status == LoanStatus.REPAID
    assert world.wallet(baraka).debits_pending == 0
    assert world.wallet(baraka).balance == 500_000  # released, not taken
    assert guarantee_of(world, loan.id, baraka.id).status == GuaranteeStatus.RELEASED
    assert "sms.guarantee_released" in templates(world, baraka.phone)
    # The officer sees the group's loans; another loan defaults and the hold is called.
    second = world.listed_loan(borrower=chege, amount=100_000)
    guarantees.ask(world.uow(), borrower_id=chege.id, number=second.number,
                   phone=baraka.phone, amount=50_000, now=world.now)
    phone = Phone(client, baraka.phone)
    phone.run(GROUP_ITEM, "1", "1")
    assert words["held"] in phone.press(PIN)
    lenders = [world.lender(balance=100_000), world.lender(balance=100_000)]
    for lender in lenders:
        world.pledge(lender, second, 50_000)
    second = world.disburse(world.loan(second.number))
    clock.advance(days=10)
    repayments.mark_arrears(world.uow(), clock())
    officer = Phone(client, amina.phone).run(GROUP_ITEM, "1")
    assert "Chege" in officer and second.number in officer and words["late"] in officer
    clock.advance(days=100)
    assert second.number in repayments.mark_arrears(world.uow(), clock())
    assert world.loan(second.number).status == LoanStatus.DEFAULTED
    called = guarantee_of(world, second.id, baraka.id)
    assert called.status == GuaranteeStatus.CALLED and called.called == 50_000
    assert world.wallet(baraka).balance == 450_000
    assert sum(world.wallet(lender).balance for lender in lenders) == 150_000
    assert "sms.guarantee_called" in templates(world, baraka.phone)
    assert "sms.guarantee_called_borrower" in templates(world, chege.phone)
    assert all("sms.guarantee_paid_lender" in templates(world, lender.phone)
               for lender in lenders)
    with world.uow() as uow:
        assert checks.check(uow) == []


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_guarantors_answer_by_sms_code(client, world, lang):
    _, amina, baraka, chege = form_group(client, world, lang)
    world.top_up(baraka, 500_000)
    loan = world.listed_loan(borrower=amina, amount=300_000)
    for guarantor in (baraka, chege):
        guarantees.ask(world.uow(), borrower_id=amina.id, number=loan.number,
                       phone=guarantor.phone, amount=100_000, now=world.now)
    yes, no = ("YES", "NO") if lang == "en" else ("NDIYO", "HAPANA")
    code_b = guarantee_of(world, loan.id, baraka.id).code
    code_c = guarantee_of(world, loan.id, chege.id).code
    with world.uow() as uow:
        asked = uow.session.scalar(select(OutboxMessage.text).where(
            OutboxMessage.phone == baraka.phone,
            OutboxMessage.template == "sms.guarantee_asked"))
    assert f"{yes} {code_b}" in asked and "Ksh 1,000" in asked and loan.number in asked
    sms_hook.send(client, baraka.phone, f"{yes} {code_b}")
    sms_hook.send(client, chege.phone, f"{no} {code_c}")
    sms_hook.send(client, baraka.phone, f"{yes} {code_b}")  # a replay holds nothing twice
    sms_hook.answer(world.services)
    assert guarantee_of(world, loan.id, baraka.id).status == GuaranteeStatus.HELD
    assert guarantee_of(world, loan.id, chege.id).status == GuaranteeStatus.DECLINED
    assert world.wallet(baraka).debits_pending == 100_000
    assert "sms.guarantee_held" in templates(world, baraka.phone)
    stranger = next(c for c in ("1000", "1001", "1002") if c not in (code_b, code_c))
    wrong = sms_hook.ask(world, client, chege.phone, f"{yes} {stranger}")
    assert stranger in wrong  # a code of no one's is said plainly, in their language
    with world.uow() as uow:
        assert checks.check(uow) == []
