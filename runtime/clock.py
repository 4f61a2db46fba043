"""The clock the simulator can move: the wall clock plus an offset kept in Redis.

Only the demo uses it (`simulator.enabled`, which production refuses): every process of
the demo (web, worker, cron) reads the same offset, so moving time forward on the
simulator's page moves it for the jobs too. The offset only grows: time never goes back,
so nothing already dated can end up in the future.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

import redis

OFFSET_KEY = "harambee:sim:clock-offset"  # whole seconds ahead of the wall clock
FRESH_FOR = 1.0  # seconds a process trusts the offset it read last


class MovableClock(Protocol):
    """A clock that can be moved forward (this one, and the tests' Clock)."""

    def __call__(self) -> datetime: ...

    def advance(self, **delta: float) -> datetime: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class ShiftedClock:
    """`now()` is the wall clock plus the shared offset. A Redis outage keeps the last
    offset read (a USSD hop must not fail because the clock could not be read)."""

    def __init__(self, client: redis.Redis, wall: Callable[[], datetime] = utcnow) -> None:
        self.client = client
        self.wall = wall
        self._offset = 0
        self._read_at = float("-inf")

    def __call__(self) -> datetime:
        return self.wall() + timedelta(seconds=self.offset())

    def offset(self) -> int:
        if time.monotonic() - self._read_at > FRESH_FOR:
            try:
                self._offset = int(cast(bytes | None, self.client.get(OFFSET_KEY)) or 0)
                self._read_at = time.monotonic()
            except redis.RedisError:
                pass
        return self._offset

    def advance(self, **delta: float) -> datetime:
        """Move every process's clock forward by `delta` (timedelta's keywords)."""
        seconds = int(timedelta(**delta).total_seconds())
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset = cast(int, self.client.incrby(OFFSET_KEY, seconds))
        self._read_at = time.monotonic()
        return self.wall() + timedelta(seconds=self._offset)
