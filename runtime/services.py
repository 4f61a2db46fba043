"""The composition root: `Services`, built once per process from settings.

The only place that knows which database, Redis, job queue and gateways this process
uses. The web app, the channels, the workers and the CLI each get a `Services` and ask
it for units of work, the clock, the job queue (`jobs`) and the gateways; none of them
builds these itself, and `core` knows nothing of them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import RedisError

from core.config import ConfigError, Settings, load_settings, production_gaps
from core.db import Committed, Database, UnitOfWork
from core.payouts import PayoutGateway
from core.stk import StkGateway
from mpesa.daraja import Daraja
from runtime import caller_cards
from runtime.clock import OffsetClock, ShiftedClock, utcnow
from runtime.jobs import Jobs
from runtime.mpesa import daraja_client
from runtime.payouts import payout_gateway, stk_gateway
from runtime.redis import RedisHandle, connect
from runtime.sms_gateways import SimulatorGateway, SmsGateway, sms_gateway

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Settings, the database, Redis, the job queue, the gateways and the clock."""

    settings: Settings
    db: Database
    redis: RedisHandle
    clock: Callable[[], datetime] = utcnow
    jobs: Jobs = field(init=False)
    daraja: Daraja | None = field(init=False)
    payouts: PayoutGateway = field(init=False)
    stk: StkGateway = field(init=False)
    _simulated_sms: SimulatorGateway | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.jobs = Jobs(self.redis.client)
        self.daraja = (daraja_client(self.settings) if self.settings.gateway.payout == "daraja"
                       else None)
        self.payouts = payout_gateway(self.settings, self.daraja)
        self.stk = stk_gateway(self.settings, self.daraja)

    @property
    def sms(self) -> SmsGateway:
        """The configured SMS gateway (made once per process and configuration); the
        simulator's keeps what it sends in this Redis."""
        if self.settings.gateway.sms == "simulator":
            if self._simulated_sms is None:
                self._simulated_sms = SimulatorGateway(
                    self.redis.client, self.settings.simulator.short_code, self.clock)
            return self._simulated_sms
        return sms_gateway(self.settings)

    def uow(self) -> UnitOfWork:
        """A unit of work whose committed outbox rows and follow-ups are enqueued."""
        return UnitOfWork(self.db, after_commit=self._after_commit)

    def uow_sending_here(self, sends: list[int]) -> UnitOfWork:
        """A unit of work whose committed outbox rows are added to `sends`, for this
        process to send at once (the SMS answerer sends its replies itself, with no job
        between); the rest (follow-ups, caller cards to drop) is handed over as from
        `uow`. Rows left unsent (the process died) are queued rows like any other: the
        outbox sweep sends them."""
        def keep(done: Committed) -> None:
            sends.extend(done.outbox_ids)
            rest = Committed(follow_ups=done.follow_ups, members=done.members,
                             agents=done.agents)
            if rest:
                self._after_commit(rest)

        return UnitOfWork(self.db, after_commit=keep)

    def now(self) -> datetime:
        return self.clock()

    def _after_commit(self, done: Committed) -> None:
        """Drop the caller cards of the members written (before the use case returns:
        no later hop sees the old card), then enqueue a send job per batch of new
        outbox rows, and a job per follow-up. Failure to enqueue loses nothing: the
        periodic sweeps find rows still queued and follow-ups still undone."""
        if done.members or done.agents:
            try:
                caller_cards.forget(self.redis.client, sorted(done.members), done.agents)
            except RedisError:
                log.error("could not drop %d caller cards; they expire within %d s",
                          len(done.members), caller_cards.TTL_SECONDS)
        if not (done.outbox_ids or done.follow_ups):
            return
        try:
            self.jobs.after_commit(done)
        except RedisError:
            log.warning("could not enqueue %d outbox rows and %d follow-ups; the sweeps will",
                        len(done.outbox_ids), sum(map(len, done.follow_ups.values())))

    def close(self) -> None:
        self.redis.close()
        self.db.dispose()


def build_services(settings: Settings | None = None,
                   overrides: Mapping[str, Mapping[str, Any]] | None = None,
                   redis: RedisHandle | None = None) -> Services:
    """Services for this process: settings from the environment unless given."""
    settings = settings or load_settings(overrides=overrides)
    gaps = production_gaps(settings)
    if gaps:
        raise ConfigError("app.environment",
                          "production refuses to start until these are set: " + "; ".join(gaps))
    handle = redis or connect(settings)
    clock: Callable[[], datetime] = utcnow
    if settings.simulator.enabled:  # the demo: one clock the simulator moves for every process
        clock = ShiftedClock(handle.client)
    elif settings.app.clock_file:  # the fault harness: a clock moved through a file
        clock = OffsetClock(settings.app.clock_file)
    return Services(settings=settings, db=Database(settings), redis=handle, clock=clock)
