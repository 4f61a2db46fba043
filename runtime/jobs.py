"""The port to background work: RQ queues on Redis, and what may be put on them.

Channels and the web tier hand work to the background only through `Jobs` (reached as
`Services.jobs`): they never import `workers/`. Jobs are named here by their dotted
path, which is how RQ finds the function in the worker process; `workers/jobs.py`
defines them.

Every enqueue may fail (Redis down): nothing is lost, because each kind of work is also
found by a periodic sweep (queued outbox rows, unanswered inbox rows, untold lenders).
"""
from __future__ import annotations

from collections.abc import Sequence

import redis
from rq import Queue

from core import payouts, stk, stories
from core.db import Committed
from core.repayments import TELL_LENDERS

INBOUND = "sms_in"  # people waiting for an answer: first
OUTBOUND = "sms_out"
DUTIES = "duties"
QUEUES = (INBOUND, OUTBOUND, DUTIES)

SEND_BATCH = 200  # outbox rows per send job (rows with the same text go in one request)
SEND_JOB = "workers.jobs.send_outbox"
ANSWER_JOB = "workers.jobs.answer_sms"
# core's follow-ups (UnitOfWork.follow_up) by name -> the job that does each
FOLLOW_UP_JOBS = {TELL_LENDERS: "workers.jobs.tell_lenders",
                  payouts.SEND: "workers.jobs.send_payout",
                  stk.SEND: "workers.jobs.push_stk",
                  stories.SHARE: "workers.jobs.share_story"}
KEEP_FAILED = 86_400  # seconds a failed job stays inspectable


class Jobs:
    """Enqueue background work on one Redis connection. Each method raises
    `redis.RedisError` when Redis is unreachable; callers that can rely on a sweep
    (see `after_commit`) swallow it."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def queue(self, name: str) -> Queue:
        return Queue(name, connection=self.client)

    def send(self, outbox_ids: Sequence[int]) -> None:
        """Send these committed outbox rows, a batch per job."""
        if not outbox_ids:
            return
        q = self.queue(OUTBOUND)
        ordered = sorted(set(outbox_ids))
        with self.client.pipeline() as pipe:
            for start in range(0, len(ordered), SEND_BATCH):
                q.enqueue(SEND_JOB, ordered[start:start + SEND_BATCH], pipeline=pipe,
                          result_ttl=0, failure_ttl=KEEP_FAILED)
            pipe.execute()

    def follow_up(self, follow_ups: dict[str, list[int]]) -> None:
        """One job per follow-up reference (their sweep covers failures)."""
        if not follow_ups:
            return
        q = self.queue(OUTBOUND)
        with self.client.pipeline() as pipe:
            for name, refs in follow_ups.items():
                for ref in refs:
                    q.enqueue(FOLLOW_UP_JOBS[name], ref, pipeline=pipe, result_ttl=0,
                              failure_ttl=KEEP_FAILED)
            pipe.execute()

    def answer_sms(self, inbound_id: int) -> None:
        """Answer a stored incoming SMS (the inbound sweep covers failures)."""
        self.queue(INBOUND).enqueue(ANSWER_JOB, inbound_id, result_ttl=0,
                                    failure_ttl=KEEP_FAILED)

    def after_commit(self, done: Committed) -> None:
        """What a committed unit of work left: its outbox rows and follow-ups."""
        self.send(done.outbox_ids)
        self.follow_up(done.follow_ups)
