"""The periodic schedule `harambee cron` runs: each due entry becomes one `run_duties`
job on the duties queue, which a worker picks up."""
from __future__ import annotations

from redis import Redis
from rq.cron import CronScheduler

from runtime.jobs import DUTIES
from workers import duties, jobs

EVERY_MINUTE = 60
EVERY_QUARTER_HOUR = 15 * 60


def cron_schedule(connection: Redis, every: int = EVERY_MINUTE) -> CronScheduler:
    """The frequent duties every minute (`every` seconds: `background.sweep_seconds`);
    arrears, reminders and the weekly tips every quarter hour (the tips duty writes a
    member's tip once a week: core/tips.py)."""
    scheduler = CronScheduler(connection=connection, logging_level="INFO")
    scheduler.register(jobs.run_duties, DUTIES, kwargs={"names": list(duties.FREQUENT)},
                       interval=every, name="harambee.frequent", job_timeout=300)
    scheduler.register(jobs.run_duties, DUTIES, kwargs={"names": list(duties.DAILY)},
                       interval=EVERY_QUARTER_HOUR, name="harambee.reminders", job_timeout=900)
    return scheduler
