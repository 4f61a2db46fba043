"""`harambee worker` and `harambee cron` outlive Redis going away: RQ's loop quits (or
raises), a new one starts once Redis answers, and a stop on request is final."""
from __future__ import annotations

import redis
from rq.exceptions import StopRequested

from cli.background import keep_scheduling, keep_working


class FakeWorker:
    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self._stop_requested = False
        self._shutdown_requested_date: str | None = None

    def work(self, **_: object) -> bool:
        if self.outcome == "raise":
            raise redis.ConnectionError("gone")
        if self.outcome == "stop when idle":  # RQ leaves its loop, _stop_requested unset
            self._shutdown_requested_date = "2026-12-01T20:30:58"
            return False
        if self.outcome == "stop, redis gone":  # SIGTERM to the group: Redis went too
            self._stop_requested = True
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


class FakeScheduler:
    """RQ's CronScheduler: `start` returns when stopped on request, and raises when Redis
    goes away (from its loop, then again from its own clean-up)."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome

    def start(self) -> None:
        if self.outcome == "raise":
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        if self.outcome == "stop, redis gone":
            try:
                raise StopRequested()  # what RQ's SIGTERM handler raises
            finally:
                raise redis.ConnectionError("register_death: Redis gone as well")


def test_cron_starts_a_new_scheduler_once_redis_answers_and_stops_only_on_request():
    made = []
    outcomes = iter(["raise", "raise", "stop"])

    def make() -> FakeScheduler:
        made.append(FakeScheduler(next(outcomes)))
        return made[-1]

    slept: list[float] = []
    keep_scheduling(make, FlakyRedis(failures=2), sleep=slept.append)  # type: ignore[arg-type]
    assert [s.outcome for s in made] == ["raise", "raise", "stop"]
    assert slept == [0.5, 1.0]  # two failed pings after the first loss, none after the second


def test_a_stop_while_redis_is_gone_is_final():
    slept: list[float] = []
    never_up = FlakyRedis(failures=10**6)  # waiting for it would never end
    keep_working(lambda: FakeWorker("stop, redis gone"), never_up,  # type: ignore[arg-type]
                 burst=False, sleep=slept.append)
    keep_scheduling(lambda: FakeScheduler("stop, redis gone"), never_up,  # type: ignore[arg-type]
                    sleep=slept.append)
    assert slept == []


def test_a_stop_while_waiting_for_redis_is_final():
    def stop_now(_: float) -> None:
        raise StopRequested()  # RQ's SIGTERM handler, still installed, while we sleep

    keep_working(lambda: FakeWorker("raise"), FlakyRedis(failures=1),  # type: ignore[arg-type]
                 burst=False, sleep=stop_now)
    keep_scheduling(lambda: FakeScheduler("raise"), FlakyRedis(failures=1),  # type: ignore[arg-type]
                    sleep=stop_now)


def test_a_worker_stopped_while_idle_is_not_started_again():
    made = []
    keep_working(lambda: made.append(FakeWorker("stop when idle")) or made[-1],
                 FlakyRedis(0), burst=False, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(made) == 1
