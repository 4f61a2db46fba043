"""The composition root: settings, database, Redis and the outbox notifier, built once
per process and shared by the web app, the CLI and the workers."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.config import Settings, load_settings
from core.db import Committed, Database, UnitOfWork
from core.payouts import PayoutGateway, payout_gateway
from workers.redis import RedisHandle, connect

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    db: Database
    redis: RedisHandle
    clock: Callable[[], datetime] = utcnow
    notify: Callable[[Committed], None] | None = None
    payouts: PayoutGateway = field(init=False)

    def __post_init__(self) -> None:
        self.payouts = payout_gateway(self.settings.gateway.payout)
        if self.notify is None:
            self.notify = self._enqueue

    def uow(self) -> UnitOfWork:
        """A unit of work whose committed outbox rows and follow-ups are enqueued."""
        return UnitOfWork(self.db, after_commit=self.notify)

    def now(self) -> datetime:
        return self.clock()

    def _enqueue(self, done: Committed) -> None:
        """After commit: enqueue a send job per batch, and a job per follow-up. Failure
        here loses nothing — the periodic sweeps find rows still queued and follow-ups
        still undone."""
        try:
            from workers.queues import enqueue_follow_ups, enqueue_sends
        except ImportError:  # the worker layer is not installed in this build
            return
        try:
            enqueue_sends(self.redis.client, done.outbox_ids)
            enqueue_follow_ups(self.redis.client, done.follow_ups)
        except Exception:  # noqa: BLE001 - Redis down: the sweeps will pick them up
            log.warning("could not enqueue %d outbox rows and %d follow-ups; the sweeps will",
                        len(done.outbox_ids), sum(map(len, done.follow_ups.values())))

    def close(self) -> None:
        self.redis.close()
        self.db.dispose()


def build_services(settings: Settings | None = None,
                   overrides: Mapping[str, Mapping[str, Any]] | None = None,
                   redis: RedisHandle | None = None) -> Services:
    settings = settings or load_settings(overrides=overrides)
    return Services(settings=settings, db=Database(settings), redis=redis or connect(settings))
