"""The operator commands, run through click against the test database."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from core.models import Member, MemberStatus


def run(settings, *args):
    env = {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url,
           "HARAMBEE_INSTANCE": settings.app.instance_dir}
    return CliRunner().invoke(main, list(args), env=env)


def test_members_add_registers_a_verified_member_with_e164_phone(services, world):
    result = run(services.settings, "members", "add", "0712 345 678", "--name", "grace wanjiku",
                 "--role", "agent", "--role", "lender", "--language", "sw")
    assert result.exit_code == 0, result.output
    with world.uow() as uow:
        member = uow.session.scalar(select(Member))
    assert member.phone == "+254712345678"
    assert member.name == "Grace Wanjiku"
    assert member.role_set == {"agent", "lender"}
    assert member.status == MemberStatus.VERIFIED and member.language == "sw"


def test_members_add_refuses_a_bad_phone_and_a_duplicate_plainly(services, world):
    bad = run(services.settings, "members", "add", "12", "--name", "X Y", "--role", "agent")
    assert bad.exit_code != 0 and "phone number is not valid" in bad.output
    assert run(services.settings, "members", "add", "0712345678", "--name", "Ann Moraa",
               "--role", "lender").exit_code == 0
    again = run(services.settings, "members", "add", "+254712345678", "--name", "Ann Moraa",
                "--role", "lender")
    assert again.exit_code != 0 and "already registered" in again.output


def test_check_passes_on_sound_books(services, world):
    world.disbursed_loan()
    result = run(services.settings, "check")
    assert result.exit_code == 0, result.output
    assert "all 7 invariants hold" in result.output


def test_an_operator_lists_and_approves_a_pause(services, world):
    from datetime import timedelta

    from core import pauses
    from core.models import PauseStatus

    loan = world.disbursed_loan()
    before = [i.due_on for i in loan.installments]
    asked = pauses.ask(world.uow(), borrower_id=loan.borrower_id, number=loan.number, weeks=2,
                       reason="family", now=world.now)
    listed = run(services.settings, "pause", "list")
    assert listed.exit_code == 0 and f"{asked.id} {loan.number}" in listed.output
    done = run(services.settings, "pause", "decide", str(asked.id), "--approve")
    assert done.exit_code == 0 and "approved" in done.output, done.output
    assert [i.due_on for i in world.loan(loan.number).installments] == [
        d + timedelta(weeks=2) for d in before]
    again = run(services.settings, "pause", "decide", str(asked.id), "--decline")
    assert again.exit_code != 0 and "already answered" in again.output
    with world.uow() as uow:
        from core.models import Pause
        assert uow.session.get(Pause, asked.id).status == PauseStatus.APPROVED
