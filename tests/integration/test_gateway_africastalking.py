"""The africastalking gateway through the real SDK against a local fake of AT's API,
chosen by configuration (gateway.sms, gateway.api_base_url)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import outbox
from core.models import Member, OutboxMessage, OutboxStatus, Purpose
from runtime.services import Services
from runtime.sms_gateways import INVALID, RETRY, SENT, AfricasTalkingGateway, sms_gateway
from tests.fake_at import FakeAfricasTalking
from workers import duties

OK, BAD, BLOCKED = "+254711000001", "+254711000002", "+254711000003"


@pytest.fixture
def at_services(services: Services, fake_at: FakeAfricasTalking) -> Services:
    gateway = replace(services.settings.gateway, sms="africastalking", username="harambee",
                      api_key=fake_at.api_key, api_base_url=fake_at.base_url,
                      sender_id="HARAMBEE")
    return Services(settings=replace(services.settings, gateway=gateway), db=services.db,
                    redis=services.redis, clock=services.clock)


def test_configuration_chooses_the_gateway(services, at_services):
    assert sms_gateway(services.settings).name == "console"
    gateway = sms_gateway(at_services.settings)
    assert isinstance(gateway, AfricasTalkingGateway)
    assert sms_gateway(at_services.settings) is gateway  # made once per process


def test_one_bulk_request_with_each_recipients_status(at_services, fake_at):
    fake_at.statuses.update({BAD: 403, BLOCKED: 406})
    outcomes = sms_gateway(at_services.settings).send("Hello", [OK, BAD, BLOCKED])
    assert len(fake_at.requests) == 1
    request = fake_at.requests[0]
    assert (request.username, request.to, request.message, request.sender) == (
        "harambee", [OK, BAD, BLOCKED], "Hello", "HARAMBEE")
    assert outcomes[OK].state == SENT and outcomes[OK].message_id.startswith("ATXid_")
    assert outcomes[OK].cost == "KES 0.8000"
    assert outcomes[BAD].state == INVALID and "403" in outcomes[BAD].detail
    assert outcomes[BLOCKED].state == INVALID and "406" in outcomes[BLOCKED].detail


def test_a_server_error_is_retried_later(at_services, fake_at):
    fake_at.fail_with = 500
    outcomes = sms_gateway(at_services.settings).send("Hello", [OK])
    assert outcomes[OK].state == RETRY and outcomes[OK].message_id is None


def test_a_wrong_api_key_is_retried_not_dropped(at_services, fake_at):
    fake_at.api_key = "another-key"
    assert sms_gateway(at_services.settings).send("Hello", [OK])[OK].state == RETRY


def test_a_number_the_sdk_refuses_never_reaches_at(at_services, fake_at):
    outcomes = sms_gateway(at_services.settings).send("Hello", ["0711000001", OK])
    assert outcomes["0711000001"].state == INVALID
    assert fake_at.requests[0].to == [OK]


def _queue(world, member, key: str, purpose: Purpose = Purpose.NOTICE) -> int:
    with world.uow() as uow:
        ids = outbox.queue(uow, [outbox.sms_to(member, key, "sms.help", purpose)], world.now)
        uow.commit()
    return ids[0]


def _row(world, row_id: int) -> OutboxMessage:
    with world.uow() as uow:
        return uow.session.get(OutboxMessage, row_id)


def test_invalid_and_blacklisted_numbers_are_never_retried(world, at_services, fake_at, clock):
    good, bad, blocked = (world.member("Good Phone"), world.member("Bad Phone"),
                          world.member("Blocked Phone"))
    fake_at.statuses.update({bad.phone: 403, blocked.phone: 406})
    ids = [_queue(world, m, f"t:{m.id}") for m in (good, bad, blocked)]
    report = duties.send_outbox(at_services, ids)
    assert (report.requests, report.sent, report.invalid) == (1, 1, 2)  # same text: one request
    assert _row(world, ids[0]).status == OutboxStatus.SENT
    assert _row(world, ids[0]).provider_message_id.startswith("ATXid_")
    for row_id, member in zip(ids[1:], (bad, blocked), strict=True):
        assert _row(world, row_id).status == OutboxStatus.UNDELIVERABLE
        with world.uow() as uow:
            assert uow.session.get(Member, member.id).sms_unreachable
    clock.advance(hours=2)
    assert duties.tick(at_services, clock()).failed == {}
    later = _queue(world, bad, "later")  # a receipt to the unreachable member: not attempted
    duties.send_outbox(at_services, [later])
    assert len(fake_at.requests) == 1
    assert _row(world, later).status == OutboxStatus.UNDELIVERABLE


def test_a_500_goes_back_to_the_queue_with_backoff_then_sends(world, at_services, fake_at,
                                                               clock):
    member = world.member()
    row_id = _queue(world, member, "flaky")
    fake_at.fail_with = 500
    assert duties.send_outbox(at_services, [row_id]).retry == 1
    row = _row(world, row_id)
    assert (row.status, row.attempts) == (OutboxStatus.QUEUED, 1)
    assert row.next_attempt_at == clock() + timedelta(minutes=1)
    assert duties.send_outbox(at_services, [row_id]).claimed == 0  # not before the backoff
    fake_at.fail_with = None
    clock.advance(minutes=2)
    duties.sweep_outbox(at_services, clock(), inline_if_redis_down=False)
    assert duties.send_outbox(at_services, [row_id]).sent == 1
    row = _row(world, row_id)
    assert (row.status, row.attempts, row.cost) == (OutboxStatus.SENT, 2, "KES 0.8000")
    assert len(fake_at.delivered_to(member.phone)) == 1
    with world.uow() as uow:
        assert uow.session.scalar(select(OutboxMessage.last_error).where(
            OutboxMessage.id == row_id)) == "101 Success"
