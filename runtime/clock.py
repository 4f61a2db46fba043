"""The clocks a process can run on besides UTC now, both for outside production only:

- `ShiftedClock`: the wall clock plus an offset kept in Redis, which the simulator's page
  moves for every process of the demo (web, worker, cron) at once
  (`simulator.enabled`);
- `OffsetClock`: the wall clock plus an offset read from a file (`app.clock_file`),
  which the fault harness moves for the web workers, the RQ workers, cron and
  `harambee tick` at once, so reminders come due and the messages they write are due
  for the senders too.

Both only ever move forward. Production refuses to start with either set
(`core.config.production_gaps`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, cast

import redis

OFFSET_KEY = "harambee:sim:clock-offset"  # whole seconds ahead of the wall clock
FRESH_FOR = 1.0  # seconds a process trusts the offset it read last
REFRESH = 0.5  # seconds between reads of the clock file: every process follows within this


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


class OffsetClock:
    """UTC now plus the seconds written in `path` (none while it is missing or unreadable)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._offset = timedelta(0)
        self._read_at = -REFRESH

    def __call__(self) -> datetime:
        if time.monotonic() - self._read_at >= REFRESH:
            self._offset = read_offset(self.path)
            self._read_at = time.monotonic()
        return utcnow() + self._offset


def read_offset(path: Path) -> timedelta:
    try:
        return timedelta(seconds=float(path.read_text().strip() or 0))
    except (OSError, ValueError):
        return timedelta(0)


def move_to(path: str | os.PathLike[str], moment: datetime) -> None:
    """Every clock reading `path` shows `moment` now, and runs on from it. Written to a
    temporary file and renamed, so a reader never sees half a number."""
    target = Path(path)
    spare = target.with_name(target.name + ".new")
    spare.write_text(f"{(moment - utcnow()).total_seconds():.3f}\n")
    spare.replace(target)
