"""The clock a process runs on: UTC now, or, outside production, now moved by an
offset that every process of one deployment reads from a file (`app.clock_file`).

The fault harness moves time this way for the web workers, the RQ workers, cron and
`harambee tick` at once, so reminders come due and the messages they write are due
for the senders too (a `tick --now` in the future alone would write rows stamped days
ahead, which real-time senders leave waiting). Production refuses to start with
`app.clock_file` set (`core.config.production_gaps`).
"""
from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REFRESH = 0.5  # seconds between reads of the file: every process follows within this


def utcnow() -> datetime:
    return datetime.now(UTC)


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
