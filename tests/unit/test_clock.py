"""The moved clock (`app.clock_file`): every process reading the file runs on the moved
time, within a refresh; production refuses it."""
from __future__ import annotations

from datetime import timedelta

from core.config import load_settings, production_gaps
from runtime import clock
from runtime.clock import OffsetClock, move_to, utcnow
from tests.unit.test_config import LIVE_GATEWAYS, PRODUCTION


def test_a_clock_runs_on_real_time_until_the_file_moves_it(tmp_path, monkeypatch):
    path = tmp_path / "clock"
    moved = OffsetClock(path)
    assert abs(moved() - utcnow()) < timedelta(seconds=1)  # no file: real time

    target = utcnow() + timedelta(days=5)
    move_to(path, target)
    monkeypatch.setattr(clock, "REFRESH", 0.0)  # read the file at once
    assert abs(moved() - target) < timedelta(seconds=1)
    assert OffsetClock(path)() > utcnow() + timedelta(days=4, hours=23)  # another process

    path.write_text("not a number")
    assert abs(moved() - utcnow()) < timedelta(seconds=1)


def test_production_refuses_a_moved_clock(tmp_path):
    ready = load_settings(env=PRODUCTION, overrides=LIVE_GATEWAYS)
    assert production_gaps(ready) == []
    moved = load_settings(env={**PRODUCTION, "HARAMBEE_APP__CLOCK_FILE": str(tmp_path / "c")},
                          overrides=LIVE_GATEWAYS)
    assert [gap.split(":")[0] for gap in production_gaps(moved)] == ["app.clock_file"]
