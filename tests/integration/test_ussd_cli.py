"""`harambee phone`: the terminal handset, in-process, over the test database."""
from __future__ import annotations

from click.testing import CliRunner

from cli import main


def env_for(settings) -> dict[str, str]:
    return {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url,
            "HARAMBEE_WEBHOOK_KEY": settings.security.webhook_key,
            "HARAMBEE_INSTANCE": settings.app.instance_dir, "HARAMBEE_PIN__HASH_COST": "8",
            "HARAMBEE_ENV": "development"}


def test_the_terminal_phone_dials_shows_screens_and_lists_sms(world, settings):
    member = world.member("Amina Otieno", roles="borrower", phone="+254711000001")
    runner = CliRunner()
    result = runner.invoke(main, ["phone", "0711 000 001", "--in-process"],
                           input="5\n1\n2\n\ns\nq\n", env=env_for(settings))
    assert result.exit_code == 0, result.output
    assert "Harambee: Amina" in result.output and "| 5. Settings" in result.output
    # The language changes and the session goes on, in Swahili, until cancelled.
    assert "Lugha sasa ni Kiswahili." in result.output and "| 1. Omba mkopo" in result.output
    assert "(cancelled)" in result.output
    assert "registered you on Harambee" in result.output  # the welcome SMS, listed
    with world.uow() as uow:
        assert uow.session.get(type(member), member.id).language == "sw"


def test_sms_only_and_a_bad_number(world, settings):
    world.member("Amina Otieno", roles="borrower", phone="+254711000001")
    runner = CliRunner()
    listed = runner.invoke(main, ["phone", "+254711000001", "--sms"], env=env_for(settings))
    assert listed.exit_code == 0 and "registered you on Harambee" in listed.output
    bad = runner.invoke(main, ["phone", "12"], env=env_for(settings))
    assert bad.exit_code != 0 and "not a phone number" in bad.output
