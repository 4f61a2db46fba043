"""`harambee worker` outlives Redis going away: RQ's loop quits, a new one starts once
Redis answers, and a stop on request is final."""
from __future__ import annotations

import redis

from cli.background import keep_working


class FakeWorker:
    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self._stop_requested = False

    def work(self, **_: object) -> bool:
        if self.outcome == "raise":
            raise redis.ConnectionError("gone")
        self._stop_requested = self.outcome == "stop"
        return False  # "quit" is RQ's loop giving up on an error


class FlakyRedis:
    def __init__(self, failures: int) -> None:
        self.failures = failures

    def ping(self) -> bool:
        if self.failures:
            self.failures -= 1
            raise redis.ConnectionError("still gone")
        return True


def test_the_loop_waits_for_redis_with_backoff_and_stops_only_on_request():
    made = []
    outcomes = iter(["quit", "raise", "stop"])

    def make() -> FakeWorker:
        made.append(FakeWorker(next(outcomes)))
        return made[-1]

    slept: list[float] = []
    keep_working(make, FlakyRedis(failures=5), burst=False,  # type: ignore[arg-type]
                 sleep=slept.append)
    assert [w.outcome for w in made] == ["quit", "raise", "stop"]
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0]  # five failed pings, then Redis answered


def test_a_burst_worker_returns_when_its_queues_are_done():
    made = []
    keep_working(lambda: made.append(FakeWorker("quit")) or made[-1], FlakyRedis(0),
                 burst=True, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(made) == 1
