"""The first SMS says what a new member must do before they may borrow, and only the
verified SMS says they may: registration by USSD (on one's own phone, and by an
agent) and by the operator's command, every SMS through the real worker to a local
fake of Africa's Talking."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from core.models import MemberStatus, OutboxMessage
from tests.support import PIN, run_worker
from tests.ussd_phone import Phone, member
from web.app import create_app


def limit_of(world, phone: str) -> str:
    return world.settings.fmt(member(world, phone).credit_limit)


def test_a_member_who_registers_themselves_waits_for_an_agent_and_is_told_whom_to_call(
        world, at_services, fake_at):
    client = create_app(services=at_services).test_client()
    body = Phone(client, "+254733000333").run("1", "Zawadi Achieng", "45678901", "1", "1",
                                              "4826", "4826")
    assert body.startswith("END ")
    assert member(world, "+254733000333").status == MemberStatus.PENDING
    run_worker(at_services)
    assert fake_at.delivered_to("+254733000333") == [
        "Welcome to Harambee, Zawadi. Before you can borrow, an agent will meet you to "
        "check your ID. To arrange it, call Harambee on 0709 000000."]

    agent = world.member("Grace Wanjiku", roles="agent", phone="+254700000009")
    assert Phone(client, agent.phone).run("1", "2", "0733000333", "1", PIN).startswith(
        "END Zawadi Achieng is verified")
    run_worker(at_services)
    assert fake_at.delivered_to("+254733000333")[1:] == [
        f"Zawadi, your Harambee account is verified. You can now ask for a loan up to "
        f"{limit_of(world, '+254733000333')}."]


def test_in_swahili_and_with_another_support_line(world, services, fake_at):
    from dataclasses import replace

    from core.db import Database
    from runtime.services import Services
    from workers import jobs

    settings = services.settings
    settings = replace(settings, app=replace(settings.app, support_phone="+254711222333"),
                       gateway=replace(settings.gateway, sms="africastalking",
                                       username="harambee", api_key=fake_at.api_key,
                                       api_base_url=fake_at.base_url))
    database = Database(settings)
    svc = Services(settings=settings, db=database, redis=services.redis, clock=services.clock)
    jobs.bind(svc)
    try:
        client = create_app(services=svc).test_client()
        Phone(client, "+254733000444").run("1", "Halima Njoroge", "23456789", "2", "1",
                                           "4826", "4826")
        run_worker(svc)
    finally:
        jobs.bind(None)
        database.dispose()
    assert fake_at.delivered_to("+254733000444") == [
        "Karibu Harambee, Halima. Kabla ya kukopa, wakala atakutembelea kuona kitambulisho "
        "chako. Ili kupanga, piga simu kwa Harambee: 0711 222333."]


def test_a_member_an_agent_registers_must_accept_the_terms_on_their_own_phone(
        world, at_services, fake_at):
    client = create_app(services=at_services).test_client()
    agent = world.member("Grace Wanjiku", roles="agent", phone="+254700000009")
    body = Phone(client, agent.phone).run("1", "1", "0733 000 222", "Baraka Mwangi",
                                          "34567890", "Machakos Youth Group", "2", "1", PIN)
    assert body.startswith("END Baraka Mwangi (0733 000222) is registered")
    assert member(world, "+254733000222").status == MemberStatus.VERIFIED
    run_worker(at_services)
    assert fake_at.delivered_to("+254733000222") == [
        "Baraka, wakala Grace amekusajili Harambee. Bado unahitaji kukubali masharti kwenye "
        "simu yako mwenyewe: piga *384*123# na uweke PIN yako."]

    assert Phone(client, "+254733000222").run("1", "7391", "7391").startswith(
        "CON Masharti na PIN vimekamilika")
    run_worker(at_services)
    assert fake_at.delivered_to("+254733000222")[1:] == [
        f"Baraka, akaunti yako ya Harambee imethibitishwa. Sasa unaweza kuomba mkopo wa hadi "
        f"{limit_of(world, '+254733000222')}."]
    Phone(client, "+254733000222").run("1", "7391", "7391")  # once only, however often
    run_worker(at_services)
    assert len(fake_at.delivered_to("+254733000222")) == 2


def test_an_english_member_an_agent_registers(world, at_services, fake_at):
    client = create_app(services=at_services).test_client()
    agent = world.member("Grace Wanjiku", roles="agent", phone="+254700000009")
    Phone(client, agent.phone).run("1", "1", "0733 000 555", "Baraka Mwangi", "34567891",
                                   "Machakos", "1", "1", PIN)
    run_worker(at_services)
    [welcome] = fake_at.delivered_to("+254733000555")
    assert welcome == ("Baraka, agent Grace registered you on Harambee. You must still accept "
                       "the terms on your own phone: dial *384*123# and set your PIN.")
    assert "borrow" not in welcome


def test_a_member_the_operator_adds_must_accept_the_terms_first(world, settings):
    env = {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url,
           "HARAMBEE_WEBHOOK_KEY": settings.security.webhook_key,
           "HARAMBEE_INSTANCE": settings.app.instance_dir, "HARAMBEE_PIN__HASH_COST": "8",
           "HARAMBEE_ENV": "development"}
    result = CliRunner().invoke(main, ["members", "add", "0733000666", "--name", "Amani Kipchoge",
                                       "--role", "borrower"], env=env)
    assert result.exit_code == 0, result.output
    with world.uow() as uow:
        texts = list(uow.session.scalars(select(OutboxMessage.text).where(
            OutboxMessage.phone == "+254733000666")))
    assert texts == ["Welcome to Harambee, Amani. First accept the terms on your own phone: "
                     "dial *384*123#."]
