"""`harambee cron`: its two schedules enqueue the periodic duties, once per interval, and
a worker runs them."""
from __future__ import annotations

from rq import Queue

from core.models import Pledge, PledgeStatus
from runtime.jobs import DUTIES
from tests.support import run_worker
from workers import duties
from workers.schedule import cron_schedule


def test_each_schedule_enqueues_its_duties_once_per_interval_and_a_worker_runs_them(
        world, services, clock):
    loan = world.listed_loan()
    pledge = world.pledge(world.lender(), loan, 50_000, confirm=False)
    clock.advance(hours=24)  # its confirmation code has run out
    scheduler = cron_schedule(services.redis.client)

    first = scheduler.enqueue_jobs()
    again = scheduler.enqueue_jobs()

    assert sorted(job.name for job in first) == ["harambee.frequent", "harambee.reminders"]
    assert again == []  # neither interval has passed
    waiting = Queue(DUTIES, connection=services.redis.client).jobs
    assert sorted(job.kwargs["names"] for job in waiting) == sorted(
        [list(duties.FREQUENT), list(duties.DAILY)])
    run_worker(services)
    assert Queue(DUTIES, connection=services.redis.client).is_empty()
    with world.uow() as uow:
        assert uow.session.get(Pledge, pledge.id).status == PledgeStatus.LAPSED


def test_the_frequent_duties_run_as_often_as_configured(services):
    scheduler = cron_schedule(services.redis.client, every=5)
    intervals = {job.name: job.interval for job in scheduler.get_jobs()}
    assert intervals == {"harambee.frequent": 5, "harambee.reminders": 15 * 60}
