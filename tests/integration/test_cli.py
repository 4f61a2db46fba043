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
