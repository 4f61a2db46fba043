"""The newcomer's path (#15.8): what the demo prints and the README says, the terminal
phone's port, SMS and local time, commands run away from the demo's instance, and one
embedded Redis per instance."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from cli.demo import banner
from cli.demo_world import PIN, cast
from core.config import ConfigError, load_settings
from core.models import InboundSms
from runtime.redis import URL_FILE, connect, start_embedded
from tests.integration.test_ussd_cli import env_for
from tests.support import run_worker

README = Path(__file__).resolve().parents[2] / "README.md"
OPERATOR = ("admin@harambee.demo", "harambee-demo-2580", "JBSWY3DPEHPK3PXP")


def test_the_demo_prints_the_simulator_and_its_people(settings):
    lines = banner(settings, "127.0.0.1", 8000, "http://127.0.0.1:9", OPERATOR)
    text = "\n".join(lines)
    assert "http://127.0.0.1:8000/simulator/" in text and f"PIN {PIN}" in text
    for phone, name, role in cast():
        assert any(phone in line and name in line and role in line for line in lines)
    assert "make phone N=" in text and "HARAMBEE_PORT" not in text
    elsewhere = "\n".join(banner(settings, "127.0.0.1", 8123, "http://127.0.0.1:9", OPERATOR))
    assert "HARAMBEE_PORT=8123 make phone" in elsewhere


def test_the_readmes_first_lines_point_to_the_simulator_and_its_people():
    first = "\n".join(README.read_text().splitlines()[:25])
    assert "make demo" in first and "http://127.0.0.1:8000/simulator/" in first
    for phone, name, _ in cast():
        assert name in first and phone in first
    assert "HARAMBEE_PORT" in README.read_text() and "HARAMBEE_INSTANCE" in README.read_text()


def test_the_terminal_phone_sends_an_sms_through_the_hook(world, settings, services):
    world.member("Amina Otieno", roles="borrower", phone="+254711000001")
    sent = CliRunner().invoke(main, ["phone", "0711 000 001", "--in-process", "--send", "BAL"],
                              env=env_for(settings))
    assert sent.exit_code == 0, sent.output
    assert "sent to 22384" in sent.output
    with world.uow() as uow:
        stored = uow.session.scalar(select(InboundSms))
        assert stored is not None and (stored.phone, stored.text) == ("+254711000001", "BAL")
    run_worker(services)
    listed = CliRunner().invoke(main, ["phone", "+254711000001", "--sms"], env=env_for(settings))
    assert listed.output.count("[") >= 2  # the welcome and the answer to BAL


def test_the_terminal_phone_shows_nairobi_time(world, settings):
    world.member("Amina Otieno", roles="borrower", phone="+254711000001")  # at 09:00 UTC
    listed = CliRunner().invoke(main, ["phone", "+254711000001", "--sms"], env=env_for(settings))
    assert "[02/03 12:00]" in listed.output, listed.output


def test_the_terminal_phone_dials_the_port_the_demo_runs_on(settings):
    env = {**env_for(settings), "HARAMBEE_PORT": "9"}  # nothing listens there
    result = CliRunner().invoke(main, ["phone", "+254711000001"], input="q\n", env=env)
    assert result.exit_code == 1
    assert "nothing answers at http://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["outbox"], ["phone", "+254711000001", "--sms"]])
def test_away_from_the_demos_instance_one_line_says_what_to_set(tmp_path, command):
    empty = tmp_path / "elsewhere"
    env = {"HARAMBEE_INSTANCE": str(empty), "HARAMBEE_ENV": "development", "DATABASE_URL": "",
           "REDIS_URL": ""}
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "HARAMBEE_INSTANCE" in lines[0], result.output
    assert not empty.exists()  # no empty database made, no second embedded Redis started


def test_an_instance_with_no_tables_says_so_in_one_line(tmp_path):
    (tmp_path / "harambee.db").touch()
    env = {"HARAMBEE_INSTANCE": str(tmp_path), "HARAMBEE_ENV": "development",
           "DATABASE_URL": "", "REDIS_URL": ""}
    result = CliRunner().invoke(main, ["outbox"], env=env)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "no Harambee tables" in result.output and "harambee db upgrade" in result.output


def test_every_process_on_an_instance_shares_one_embedded_redis(tmp_path):
    first = start_embedded(tmp_path / "redis.db")
    try:
        settings = load_settings(env={}, overrides={"app": {"instance_dir": str(tmp_path)}})
        again = connect(settings)  # no URL set: the running one, not a second server
        assert again.url == first.url and again.embedded
        given = connect(load_settings(env={"REDIS_URL": first.url}, overrides={
            "app": {"instance_dir": str(tmp_path)}}))  # the demo hands its children the URL
        assert given.embedded  # so /healthz says embedded, as it is
        again.close()
        given.close()
        assert first.client.ping()  # closing a sharer leaves the server running
    finally:
        first.close()
    assert not (tmp_path / URL_FILE).exists()
    outside = connect(load_settings(env={"REDIS_URL": "redis://127.0.0.1:1/0"},
                                    overrides={"app": {"instance_dir": str(tmp_path)}}))
    assert not outside.embedded


def test_healthz_says_embedded_for_the_demos_redis(client, services, monkeypatch):
    monkeypatch.setattr(services.redis, "_shared_embedded", True)
    assert client.get("/healthz").get_json()["redis"]["embedded"] is True


@pytest.mark.parametrize(("key", "value"), [
    ("phones", "0711000001"), ("known_pin", "12"), ("hop_timeout_seconds", "1"),
    ("session_seconds", "10"), ("short_code", "SMS")])
def test_simulator_settings_are_checked(key, value):
    with pytest.raises(ConfigError) as refused:
        load_settings(env={f"HARAMBEE_SIMULATOR__{key.upper()}": value})
    assert refused.value.key == f"simulator.{key}"


def test_the_terminal_phone_writes_an_sms_at_its_prompt(world, settings):
    world.member("Amina Otieno", roles="borrower", phone="+254711000001")
    result = CliRunner().invoke(main, ["phone", "+254711000001", "--in-process"],
                                input="\nw\nSTATUS\nq\n", env=env_for(settings))
    assert result.exit_code == 0, result.output
    assert "d/s/w/q" in result.output and "sent to 22384" in result.output
    with world.uow() as uow:
        assert uow.session.scalar(select(InboundSms.text)) == "STATUS"
