"""Sending the outbox: exclusive claims, quiet hours, tips, bulk requests, delivery
reports, and no message lost when Redis loses its jobs or a sender dies."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import delivery, outbox
from core.models import DeliveryReport, Member, OutboxMessage, OutboxStatus, Purpose
from runtime.jobs import OUTBOUND
from runtime.redis import RedisHandle, client_for
from runtime.services import Services
from runtime.sms_gateways import SENT, Outcome
from tests.support import run_worker
from workers import duties

KEY = "test-webhook-key"


class CountingGateway:
    """Accepts everything and remembers each request (the console gateway, counted)."""

    name = "counting"

    def __init__(self) -> None:
        self.requests: list[tuple[str, list[str]]] = []

    def send(self, text, phones):
        self.requests.append((text, list(phones)))
        n = len(self.requests)
        return {p: Outcome(SENT, f"CNT-{n}-{i}", "KES 0.80") for i, p in enumerate(phones)}


def queue(world, member, key, template="sms.help", purpose=Purpose.NOTICE, **kw):
    with world.uow() as uow:
        ids = outbox.queue(uow, [outbox.sms_to(member, key, template, purpose, **kw)], world.now)
        uow.commit()
    return ids[0] if ids else None


def row(world, row_id):
    with world.uow() as uow:
        return uow.session.get(OutboxMessage, row_id)


def test_a_row_is_claimed_by_one_sender_only(world, services):
    row_id = queue(world, world.member(), "once")
    with world.uow() as uow:
        first = delivery.claim(uow, [row_id], world.now)
        uow.commit()
    with world.uow() as uow:
        second = delivery.claim(uow, [row_id], world.now)
        uow.commit()
    assert [c.id for c in first] == [row_id] and second == []
    assert row(world, row_id).attempts == 1


def test_identical_texts_go_in_one_request_personal_ones_apart(world, services):
    people = [world.member(f"Person {name}") for name in ("Aa", "Bb", "Cc")]
    same = [queue(world, p, f"help:{p.id}") for p in people]
    personal = [queue(world, p, f"bal:{p.id}", "sms.tips_started") for p in people[:1]]
    gateway = CountingGateway()
    report = duties.send_outbox(services, same + personal, gateway)
    assert report.sent == 4 and report.requests == 2
    assert sorted(len(phones) for _, phones in gateway.requests) == [1, 3]


def test_tips_are_skipped_after_stop_but_receipts_still_go(world, services):
    member = world.member()
    with world.uow() as uow:
        uow.session.get(Member, member.id).tips_opt_out = True
        uow.commit()
    tip = queue(world, member, "tip", purpose=Purpose.TIP)
    receipt = queue(world, member, "receipt", purpose=Purpose.RECEIPT)
    gateway = CountingGateway()
    duties.send_outbox(services, [tip, receipt], gateway)
    assert row(world, tip).status == delivery.SKIPPED
    assert row(world, receipt).status == OutboxStatus.SENT
    assert len(gateway.requests) == 1


def test_quiet_hours_hold_a_row_until_its_time(world, services, clock):
    member = world.member()
    morning = clock() + timedelta(hours=10)
    with world.uow() as uow:
        [row_id] = outbox.queue(uow, [outbox.sms_to(member, "held", "sms.help", Purpose.REMINDER,
                                                    not_before=morning)], clock())
        uow.commit()
    gateway = CountingGateway()
    assert duties.send_outbox(services, [row_id], gateway).claimed == 0
    with world.uow() as uow:
        assert row_id not in delivery.due_ids(uow, morning - timedelta(minutes=1))
        assert row_id in delivery.due_ids(uow, morning)
    clock.set(morning - timedelta(minutes=1))
    assert duties.send_outbox(services, [row_id], gateway).claimed == 0
    clock.set(morning)
    assert duties.send_outbox(services, [row_id], gateway).sent == 1


def test_redis_flushed_between_commit_and_send_loses_nothing(world, services, clock):
    member = world.member()  # welcome SMS to the member and their agent, jobs enqueued
    assert services.redis.client.llen("rq:queue:" + OUTBOUND) >= 1
    services.redis.client.flushdb()  # Redis lost the jobs
    run_worker(services)
    with world.uow() as uow:
        assert set(uow.session.scalars(select(OutboxMessage.status))) == {OutboxStatus.QUEUED}
    clock.advance(minutes=1)
    assert duties.tick(services, clock(), ["outbox_sweep"]).done == {"outbox_sweep": 2}
    run_worker(services)
    duties.tick(services, clock(), ["outbox_sweep"])  # a second sweep sends nothing again
    run_worker(services)
    with world.uow() as uow:
        rows = list(uow.session.scalars(select(OutboxMessage)))
    assert member.phone in {r.phone for r in rows}
    assert [(r.status, r.attempts) for r in rows] == [(OutboxStatus.SENT, 1)] * 2


def test_redis_down_at_commit_then_back(world, services, clock):
    dead = RedisHandle(client_for("redis://127.0.0.1:1/0"), "redis://127.0.0.1:1/0")
    offline = Services(settings=services.settings, db=services.db, redis=dead, clock=clock)
    member = world.member()
    with offline.uow() as uow:  # the enqueue after this commit fails: Redis is down
        [row_id] = outbox.queue(uow, [outbox.sms_to(member, "x", "sms.help", Purpose.NOTICE)],
                                clock())
        uow.commit()
    services.redis.client.flushdb()
    run_worker(services)
    assert row(world, row_id).status == OutboxStatus.QUEUED
    clock.advance(minutes=1)
    duties.sweep_outbox(services, clock())  # Redis is back: the sweep enqueues, a worker sends
    run_worker(services)
    assert row(world, row_id).status == OutboxStatus.SENT


def test_the_sweep_sends_inline_while_redis_is_down(world, services, clock):
    dead = RedisHandle(client_for("redis://127.0.0.1:1/0"), "redis://127.0.0.1:1/0")
    offline = Services(settings=services.settings, db=services.db, redis=dead, clock=clock)
    member = world.member()
    clock.advance(minutes=1)
    assert duties.sweep_outbox(offline, clock()) == 2  # the member's and the agent's welcome
    with world.uow() as uow:
        rows = list(uow.session.scalars(select(OutboxMessage)))
    assert member.phone in {r.phone for r in rows}
    assert {r.status for r in rows} == {OutboxStatus.SENT}


def test_a_row_left_in_sending_is_retried_after_its_lease(world, services, clock):
    row_id = queue(world, world.member(), "stuck")
    with world.uow() as uow:
        delivery.claim(uow, [row_id], clock())  # a sender took it, then died
        uow.commit()
    duties.sweep_outbox(services, clock() + timedelta(seconds=10), inline_if_redis_down=False)
    assert row(world, row_id).status == OutboxStatus.SENDING  # the lease still holds
    clock.advance(seconds=delivery.LEASE.total_seconds() + 1)
    duties.tick(services, clock(), ["outbox_sweep"])
    run_worker(services)
    done = row(world, row_id)
    assert (done.status, done.attempts) == (OutboxStatus.SENT, 2)


class DyingGateway(CountingGateway):
    """Killed inside its first request, as a SIGKILLed worker would be."""

    def send(self, text, phones):
        super().send(text, phones)
        raise SystemExit("killed mid-send")


def test_a_sender_killed_mid_send_holds_a_few_rows_for_seconds(world, services, clock,
                                                              monkeypatch):
    monkeypatch.setattr(duties, "CLAIM_AT_ONCE", 10)
    members = [world.member(f"Person {chr(65 + n % 26)}{chr(97 + n // 26)}") for n in range(30)]
    with world.uow() as uow:
        ids = [r for r, in uow.session.execute(select(OutboxMessage.id).order_by(
            OutboxMessage.id))]
    assert len(ids) > duties.CLAIM_AT_ONCE
    try:
        duties.send_outbox(services, ids, DyingGateway())
    except SystemExit:
        pass
    with world.uow() as uow:
        held = list(uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.SENDING)))
    assert len(held) <= duties.CLAIM_AT_ONCE  # only the current claim, not the whole job
    assert all(r.next_attempt_at <= clock() + timedelta(seconds=30) for r in held)
    # The next send job, for anything at all, takes the dead sender's rows back once
    # the short lease is over: no sweep, no minutes.
    clock.advance(seconds=31)
    other = queue(world, members[0], "later")
    gateway = CountingGateway()
    duties.send_outbox(services, [other], gateway)
    sent = {p for _, phones in gateway.requests for p in phones}
    assert {r.phone for r in held} <= sent
    assert len(gateway.requests) >= 1


def distinct_rows(world, count):
    """`count` rows to one phone (so one request each), ids in order."""
    member = world.member()
    return [queue(world, member, f"one-by-one:{n}") for n in range(count)]


class DiesInThirdRequest(CountingGateway):
    def send(self, text, phones):
        super().send(text, phones)
        if len(self.requests) == 3:
            raise SystemExit("killed mid-send")
        return {p: Outcome(SENT, f"DIE-{len(self.requests)}-{i}", None)
                for i, p in enumerate(phones)}


def test_a_killed_sender_sends_again_only_the_request_it_died_in(world, services, clock):
    ids = distinct_rows(world, 6)
    dying = DiesInThirdRequest()
    with pytest.raises(SystemExit):
        duties.send_outbox(services, ids, dying)
    done = {r.id: r for r in map(lambda i: row(world, i), ids)}
    recorded = [i for i in ids if done[i].status == OutboxStatus.SENT]
    assert len(recorded) == 2  # each request's rows were on record as it answered
    clock.advance(seconds=delivery.LEASE.total_seconds() + 1)
    gateway = CountingGateway()
    duties.send_outbox(services, [], gateway)  # takes the dead sender's rows back
    assert len(gateway.requests) == len(ids) - 2  # the recorded two: never again
    after = {i: row(world, i) for i in ids}
    assert {r.status for r in after.values()} == {OutboxStatus.SENT}
    assert [after[i].attempts for i in recorded] == [1, 1]
    # the row of the request it died in went once more; the rest of its claim, once
    assert sorted(after[i].attempts for i in ids if i not in recorded) == [2, 2, 2, 2]
    assert len(dying.requests) - 2 == 1


def test_a_long_claim_renews_its_lease(world, services, monkeypatch):
    monkeypatch.setattr(duties, "RENEW_AFTER", timedelta(0))  # renew before each request
    ids = distinct_rows(world, 4)
    gateway = CountingGateway()
    duties.send_outbox(services, ids, gateway)
    assert len(gateway.requests) == len(ids)
    assert {(row(world, i).status, row(world, i).attempts) for i in ids} == {
        (OutboxStatus.SENT, 1)}


def test_a_claim_never_sends_a_row_its_lease_lost(world, services, clock, monkeypatch):
    monkeypatch.setattr(duties, "RENEW_AFTER", timedelta(0))
    ids = distinct_rows(world, 4)
    taken: list[delivery.Claimed] = []

    class Slow(CountingGateway):
        def send(self, text, phones):
            answer = super().send(text, phones)
            if len(self.requests) == 1:  # longer than the lease: the rows were taken back
                clock.advance(seconds=delivery.LEASE.total_seconds() + 1)
                released = delivery.release_stuck(world.uow(), clock())
                taken.extend(delivery.claim(world.uow(), released[-1:], clock()))
            return answer

    gateway = Slow()
    duties.send_outbox(services, ids, gateway)
    assert len(gateway.requests) == 1  # nothing it no longer held went out
    first = row(world, ids[0])
    assert first.status == OutboxStatus.QUEUED  # its answer came too late to count
    other = row(world, taken[0].id)
    assert (other.status, other.attempts) == (OutboxStatus.SENDING, 2)  # theirs, untouched
    assert other.next_attempt_at == taken[0].lease


def test_delivery_report_before_the_id_is_recorded_applies_later(world, services, client,
                                                                 clock):
    row_id = queue(world, world.member(), "early")
    with world.uow() as uow:
        claimed = delivery.claim(uow, [row_id], clock())
        uow.commit()
    report = {"id": "CNT-1-0", "status": "Success", "phoneNumber": claimed[0].phone,
              "networkCode": "63902", "retryCount": "0"}
    for _ in range(2):  # redelivered: stored once
        assert client.post(f"/hooks/sms/delivery?key={KEY}", data=report).status_code == 200
    assert row(world, row_id).status == OutboxStatus.SENDING
    with world.uow() as uow:
        delivery.record(uow, [delivery.Result(row_id, SENT, "CNT-1-0", "KES 0.80")], clock())
        uow.commit()
    assert row(world, row_id).status == OutboxStatus.DELIVERED
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(DeliveryReport)) == 1
        assert delivery.pending_report_count(uow) == 0


def test_a_blacklist_report_marks_the_member_unreachable(world, services, client):
    member = world.member()
    row_id = queue(world, member, "bl")
    duties.send_outbox(services, [row_id], CountingGateway())
    message_id = row(world, row_id).provider_message_id
    response = client.post(f"/hooks/sms/delivery?key={KEY}", data={
        "id": message_id, "status": "Rejected", "failureReason": "UserInBlackList"})
    assert response.status_code == 200
    assert row(world, row_id).status == OutboxStatus.UNDELIVERABLE
    with world.uow() as uow:
        assert uow.session.get(Member, member.id).sms_unreachable
    late_success = client.post(f"/hooks/sms/delivery?key={KEY}",
                               data={"id": message_id, "status": "Success"})
    assert late_success.status_code == 200
    assert row(world, row_id).status == OutboxStatus.UNDELIVERABLE  # final stays final


def test_delivery_hook_needs_the_key_and_fields(client):
    assert client.post("/hooks/sms/delivery?key=wrong", data={"id": "x", "status": "Success"}
                       ).status_code == 403
    assert client.post(f"/hooks/sms/delivery?key={KEY}", data={"id": "x"}).status_code == 400
    assert client.post(f"/hooks/sms/delivery?key={KEY}",
                       data={"id": "unknown", "status": "Success"}).status_code == 200
