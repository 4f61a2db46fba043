"""Incoming SMS are answered by share answerers that send their own replies: a burst
of new messages cannot hold back the reply to an earlier one, answerers side by side
never answer a message twice, and a message that lands as an answerer leaves is still
answered."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from core import inbox
from core.models import InboundSms, InboundStatus, OutboxMessage, OutboxStatus
from runtime.jobs import ANSWERERS
from runtime.services import Services
from runtime.sms_gateways import SENT, Outcome
from tests.sms_hook import send
from tests.support import run_worker
from workers import duties


class Watching:
    """An SMS gateway that notes, as each reply goes, how many messages were answered."""

    name = "watching"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.answered_when_sent: dict[str, int] = {}  # phone -> answered at its first send
        self.sent = 0

    def send(self, text: str, phones: list[str]) -> dict[str, Outcome]:
        with self.services.db.engine.connect() as conn:
            answered = conn.execute(select(func.count()).select_from(InboundSms).where(
                InboundSms.status == InboundStatus.HANDLED)).scalar_one()
        outcomes = {}
        for phone in phones:
            self.answered_when_sent.setdefault(phone, answered)
            self.sent += 1
            outcomes[phone] = Outcome(SENT, f"w-{self.sent}", None, "watching")
        return outcomes


@pytest.fixture
def watching(services: Services, monkeypatch: pytest.MonkeyPatch) -> Watching:
    gateway = Watching(services)
    monkeypatch.setattr(Services, "sms", property(lambda _self: gateway))
    return gateway


def name(i: int) -> str:
    """A member name of letters only: Mwana Aa, Mwana Ab, ..."""
    return f"Mwana {chr(65 + i // 26 % 26)}{chr(97 + i % 26)}"


def reply_counts(services: Services) -> dict[str, int]:
    with services.uow() as uow:
        rows = uow.session.execute(select(OutboxMessage.key, OutboxMessage.status).where(
            OutboxMessage.key.like("reply:%"))).all()
    return {"rows": len(rows), "sent": sum(1 for _, s in rows if s == OutboxStatus.SENT)}


def test_a_burst_cannot_hold_back_the_reply_to_an_earlier_sms(world, client, services,
                                                               watching):
    first = world.member("First Sender")
    crowd = [world.member(name(i)) for i in range(4 * ANSWERERS * duties.ANSWER_BATCH)]
    send(client, first.phone, "BAL")
    for member in crowd:  # a burst after it, before any worker runs
        send(client, member.phone, "HELP")

    run_worker(services)

    everyone = 1 + len(crowd)
    assert reply_counts(services) == {"rows": everyone, "sent": everyone}
    # The first reply went with its own batch, not after the whole burst was answered.
    assert watching.answered_when_sent[first.phone] <= duties.ANSWER_BATCH


def test_answerers_side_by_side_answer_each_message_once(world, client, services, watching):
    senders = [world.member(name(i)) for i in range(60)]
    for member in senders:
        send(client, member.phone, "BAL")

    # Two answerers for every share at once (as after a lost flag), all in parallel.
    shares = [share for share in range(ANSWERERS) for _ in range(2)]
    errors: list[BaseException] = []

    def answer(share: int) -> None:
        try:
            duties.answer_share(services, share)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=answer, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert reply_counts(services) == {"rows": 60, "sent": 60}
    assert watching.sent == 60  # no reply went twice


def test_an_sms_landing_as_its_answerer_leaves_is_answered(world, client, services, watching,
                                                           monkeypatch):
    late = world.member("Late Sender")
    early = world.member("Early Sender")
    send(client, early.phone, "BAL")
    real = inbox.waiting_in_slot
    landed: list[Any] = []

    def then_one_lands(uow: Any, share: int, shares: int, *, limit: int) -> list[int]:
        found = real(uow, share, shares, limit=limit)
        if not found and not landed:  # the answerer has just seen its share empty
            landed.append(send(client, late.phone, "HELP"))  # the flag is still up
        return found

    monkeypatch.setattr(inbox, "waiting_in_slot", then_one_lands)
    for share in range(ANSWERERS):
        duties.answer_share(services, share)

    assert landed and landed[0].status_code == 200
    with services.uow() as uow:
        waiting = uow.session.scalar(select(func.count()).select_from(InboundSms).where(
            InboundSms.status == InboundStatus.RECEIVED))
    assert waiting == 0
    assert late.phone in watching.answered_when_sent


def test_an_answerer_makes_way_after_its_rounds(world, client, services, watching):
    senders = [world.member(name(i)) for i in range(3 * ANSWERERS)]
    for member in senders:
        send(client, member.phone, "HELP")
    with services.uow() as uow:
        ids = list(uow.session.scalars(select(InboundSms.id)))
    share = ids[0] % ANSWERERS
    mine = [i for i in ids if i % ANSWERERS == share]
    services.jobs.queue("sms_in").empty()

    assert duties.answer_share(services, share, rounds=0) == 0  # no round: it queues itself
    assert [job.args for job in services.jobs.queue("sms_in").get_jobs()] == [(share,)]
    assert duties.answer_share(services, share) == len(mine) == 3


def test_an_answerer_that_fails_lowers_its_flag(world, client, services, watching,
                                                monkeypatch):
    sender = world.member("Failing Sender")
    send(client, sender.phone, "BAL")  # its share's flag goes up, its answerer queued
    with services.uow() as uow:
        share = uow.session.scalar(select(InboundSms.id)) % ANSWERERS
    flag = f"harambee:sms:answerer:{share}"
    assert services.redis.client.exists(flag)

    def database_gone(*_: Any) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(duties, "answer_and_send", database_gone)
    with pytest.raises(RuntimeError):
        duties.answer_share(services, share)
    # The next message, or the sweep's nudge, starts a new answerer at once.
    assert not services.redis.client.exists(flag)


def test_the_sweep_nudges_a_share_whose_answerer_was_lost(world, client, services, watching,
                                                          clock):
    sender = world.member("Lost Sender")
    send(client, sender.phone, "BAL")
    services.redis.client.flushdb()  # Redis lost: the answerer's job and its flag with it
    queue = services.jobs.queue("sms_in")

    duties.sweep_inbound(services, services.now())  # too fresh to nudge yet
    assert queue.count == 0
    clock.advance(seconds=duties.NUDGE_AFTER.total_seconds() + 1)
    duties.sweep_inbound(services, services.now())
    assert queue.count == 1  # one answerer for the share, long before the minute's sweep
    run_worker(services)
    assert sender.phone in watching.answered_when_sent
