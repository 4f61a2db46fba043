"""`harambee worker`, `cron`, `tick` and `outbox`: the background side of the service."""
from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
import redis
from rq.exceptions import StopRequested

from core.config import ConfigError
from runtime.jobs import QUEUES
from runtime.services import Services

log = logging.getLogger("harambee.worker")


def _services() -> Services:
    from workers import jobs

    try:
        return jobs.services()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--queue", "queues", multiple=True, type=click.Choice(QUEUES),
              help="Work only this queue (repeatable; default: all of them, in the order "
                   "sms_in, payments, sms_out, duties).")
def worker(burst: bool, queues: tuple[str, ...]) -> None:
    """Run an RQ worker (with RQ's scheduler) on the SMS, payment and duty queues. It
    outlives a Redis outage of any length: it waits for Redis and carries on by itself.
    In production one worker or more keeps to `--queue payments`, so paybill payments
    reach the ledger even while a flood of SMS waits."""
    from rq import Queue, SimpleWorker

    svc = _services()
    connection = svc.redis.client
    names = [name for name in QUEUES if name in queues] if queues else list(QUEUES)

    def make() -> SimpleWorker:
        # SimpleWorker runs jobs in this process, so Services (engine pool, gateway)
        # are built once per process rather than once per forked job.
        return SimpleWorker([Queue(name, connection=connection) for name in names],
                            connection=connection)

    keep_working(make, connection, burst=burst)


def keep_working(make: Callable[[], Any], connection: redis.Redis, *, burst: bool,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Run RQ workers one after another until one stops on request or its burst is
    done. RQ's work loop quits when Redis goes away (it logs "unhandled exception,
    quitting"): then wait until Redis answers, with backoff, and start a new one. A stop
    asked for while Redis is away (SIGTERM to the whole group: Redis goes too) is final."""
    try:
        while True:
            rq_worker = None
            try:
                rq_worker = make()
                rq_worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")
            except redis.RedisError as exc:  # at start-up or teardown, Redis gone
                log.warning("worker: redis unavailable (%s)", type(exc).__name__)
            if burst or stop_asked(rq_worker):
                return
            wait_for_redis(connection, sleep)
    except (StopRequested, KeyboardInterrupt):  # stopped while waiting for Redis
        return


def wait_for_redis(connection: redis.Redis, sleep: Callable[[float], None]) -> None:
    delay = 0.5
    while True:
        try:
            connection.ping()
            log.warning("redis answers again; carrying on")
            return
        except redis.RedisError:
            log.warning("waiting for redis (next try in %.1f s)", delay)
            sleep(delay)
            delay = min(delay * 2, 10.0)


@click.command()
def cron() -> None:
    """Run RQ's cron scheduler (one process): the frequent duties every minute,
    arrears and reminders every quarter hour. It outlives a Redis outage."""
    from workers.schedule import cron_schedule

    svc = _services()
    every = svc.settings.background.sweep_seconds
    keep_scheduling(lambda: cron_schedule(svc.redis.client, every), svc.redis.client)


def stop_asked(rq_worker: Any) -> bool:
    """Whether the worker was told to stop (SIGTERM, SIGINT). RQ sets `_stop_requested`
    only when the signal finds it busy; an idle worker just leaves its loop, with
    `_shutdown_requested_date` set: either means stop, never start a new loop."""
    return rq_worker is not None and bool(
        rq_worker._stop_requested  # noqa: SLF001 - RQ's own flags
        or rq_worker._shutdown_requested_date)  # noqa: SLF001


def keep_scheduling(make: Callable[[], Any], connection: redis.Redis,
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Run RQ cron schedulers one after another until one stops on request. RQ's
    scheduler loop raises when Redis goes away (and so does its own clean-up, so the
    process would die): then wait until Redis answers and start a new one, which runs
    every duty at once, as a scheduler does when it starts (each duty is idempotent).
    A stop asked for while Redis is away is final."""
    try:
        while True:
            try:
                make().start()  # returns when stopped on request (SIGTERM, SIGINT)
                return
            except redis.RedisError as exc:
                if isinstance(exc.__context__, (StopRequested, KeyboardInterrupt)):
                    return  # stopped, and Redis was gone for the scheduler's clean-up
                log.warning("cron: redis unavailable (%s)", type(exc).__name__)
            wait_for_redis(connection, sleep)
    except (StopRequested, KeyboardInterrupt):  # stopped while waiting for Redis
        return


@click.command()
@click.option("--now", "moment", default=None, help="ISO time to run as of (default: now).")
@click.option("--only", multiple=True, help="Run only these duties (repeatable).")
def tick(moment: str | None, only: tuple[str, ...]) -> None:
    """Run the periodic duties once, in this process, as of a moment."""
    from workers import duties

    svc = _services()
    now = _moment(moment) if moment else svc.now()
    unknown = [name for name in only if name not in duties.DUTIES]
    if unknown:
        raise click.BadParameter(f"unknown duty {unknown[0]!r}; known: "
                                 f"{', '.join(duties.DUTIES)}", param_hint="--only")
    report = duties.tick(svc, now, list(only) or None)
    for name, count in report.done.items():
        click.echo(f"{name}: {count}")
    for name, reason in report.failed.items():
        click.echo(f"{name}: FAILED {reason}", err=True)
    if report.failed:
        sys.exit(1)


def _moment(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("an ISO 8601 time, e.g. 2026-03-02T09:00:00Z",
                                 param_hint="--now") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("outbox")
@click.option("--phone", default=None, help="Only messages to this phone (any common form).")
@click.option("--limit", default=20, type=int, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def outbox_command(phone: str | None, limit: int, as_json: bool) -> None:
    """List the newest outgoing messages and their state, for support staff."""
    from sqlalchemy import select

    from cli.instance import database_or_hint
    from core.config import load_settings
    from core.db import UnitOfWork
    from core.models import OutboxMessage
    from core.phones import try_normalise
    from workers import jobs

    given = jobs.bound()  # a process (or test) that bound its services reads their database
    try:
        settings = given.settings if given else load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if phone:
        e164 = try_normalise(phone, settings.app.default_region)
        if e164 is None:
            raise click.BadParameter("not a phone number", param_hint="--phone")
        query = query.where(OutboxMessage.phone == e164)
    database = given.db if given else database_or_hint(settings)  # no Redis is started
    try:
        with UnitOfWork(database) as uow:
            rows = list(uow.session.scalars(query))
    finally:
        if given is None:
            database.dispose()
    for row in rows:
        if as_json:
            click.echo(json.dumps({
                "id": row.id, "phone": row.phone, "purpose": row.purpose,
                "template": row.template, "status": row.status, "attempts": row.attempts,
                "text": row.text, "created_at": row.created_at.isoformat(),
                "sent_at": row.sent_at.isoformat() if row.sent_at else None,
                "provider_message_id": row.provider_message_id, "cost": row.cost,
                "last_error": row.last_error}, ensure_ascii=False))
        else:
            when = row.created_at.astimezone(settings.zone).strftime("%d/%m %H:%M")
            click.echo(f"#{row.id} {when} {row.phone} {row.status:<13} {row.purpose:<8} "
                       f"{row.text}")
    if not rows and not as_json:
        click.echo("no messages")

