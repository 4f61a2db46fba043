"""The port to background work: RQ queues on Redis, and what may be put on them.

Channels and the web tier hand work to the background only through `Jobs` (reached as
`Services.jobs`): they never import `workers/`. Jobs are named here by their dotted
path, which is how RQ finds the function in the worker process; `workers/jobs.py`
defines them.

Every enqueue may fail (Redis down): nothing is lost, because each kind of work is also
found by a periodic sweep (queued outbox rows, unanswered inbox rows, untold lenders,
unrecorded paybill confirmations).
"""
from __future__ import annotations

from collections.abc import Sequence

import redis
from rq import Queue
from rq.job import Job

from core import confirmations, payouts, stk, stories
from core.db import Committed
from core.repayments import TELL_LENDERS

INBOUND = "sms_in"  # people waiting for an answer: first
PAYMENTS = "payments"  # paybill confirmations stored at the door, to record in the ledger
OUTBOUND = "sms_out"
DUTIES = "duties"
QUEUES = (INBOUND, PAYMENTS, OUTBOUND, DUTIES)  # the order a worker takes them in

SEND_BATCH = 200  # outbox rows per send job (rows with the same text go in one request)
SEND_JOB = "workers.jobs.send_outbox"
ANSWER_JOB = "workers.jobs.answer_share"
# Incoming SMS are answered by at most ANSWERERS jobs at once, each owning the messages
# whose id modulo ANSWERERS is its share: answerers on several workers never wait on
# each other's rows, and while one runs, new messages of its share need no job at all.
# A flag in Redis per share says "an answerer is queued or running"; it expires after
# ANSWERER_TTL seconds without a sign of life (a killed worker), and the inbound sweep
# answers anything left meanwhile.
ANSWERERS = 4
ANSWERER_TTL = 20  # an answerer signs of life after each batch, within seconds
# core's follow-ups (UnitOfWork.follow_up) by name -> the job that does each
FOLLOW_UP_JOBS = {TELL_LENDERS: "workers.jobs.tell_lenders",
                  payouts.SEND: "workers.jobs.send_payout",
                  stk.SEND: "workers.jobs.push_stk",
                  stories.SHARE: "workers.jobs.share_story",
                  confirmations.RECORD: "workers.jobs.record_confirmation"}
# ... and the queue each goes on (the rest: OUTBOUND)
FOLLOW_UP_QUEUES = {confirmations.RECORD: PAYMENTS}
# ... and the job ids of those a sweep may enqueue again while the first job still
# waits (a backlog): the sweep skips a reference whose job is queued or running
FOLLOW_UP_IDS = {confirmations.RECORD: "confirmation-{}"}
OVER = (b"failed", b"stopped", b"canceled")  # job states after which a job runs no more
KEEP_FAILED = 86_400  # seconds a failed job stays inspectable


def _answerer_flag(share: int) -> str:
    return f"harambee:sms:answerer:{share}"


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
        with self.client.pipeline() as pipe:
            for name, refs in follow_ups.items():
                q = self.queue(FOLLOW_UP_QUEUES.get(name, OUTBOUND))
                ids = FOLLOW_UP_IDS.get(name)
                for ref in refs:
                    q.enqueue(FOLLOW_UP_JOBS[name], ref, pipeline=pipe, result_ttl=0,
                              failure_ttl=KEEP_FAILED,
                              job_id=ids.format(ref) if ids else None)
            pipe.execute()

    def record_confirmations(self, ids: Sequence[int]) -> int:
        """Record these stored paybill confirmations, unless a job for one is already
        queued or running (a backlog is not a loss); return how many were enqueued."""
        if not ids:
            return 0
        with self.client.pipeline(transaction=False) as pipe:
            for ref in ids:
                pipe.hget(Job.key_for(FOLLOW_UP_IDS[confirmations.RECORD].format(ref)),
                          "status")
            states = pipe.execute()
        lost = [ref for ref, state in zip(ids, states, strict=True)
                if state is None or state in OVER]
        self.follow_up({confirmations.RECORD: lost} if lost else {})
        return len(lost)

    def answer_sms(self, inbound_id: int) -> None:
        """See that a stored incoming SMS gets answered: start its share's answerer
        unless one is queued or running (one Redis round trip when it is). The inbound
        sweep covers failures."""
        share = inbound_id % ANSWERERS
        if self.client.set(_answerer_flag(share), 1, nx=True, ex=ANSWERER_TTL):
            self.answer_share(share)

    def answer_share(self, share: int) -> None:
        """Queue the answerer of one share (its flag already held)."""
        self.queue(INBOUND).enqueue(ANSWER_JOB, share, result_ttl=0, failure_ttl=KEEP_FAILED)

    def answerer_alive(self, share: int) -> None:
        """The share's answerer is still at work: keep its flag."""
        self.client.expire(_answerer_flag(share), ANSWERER_TTL)

    def answerer_leaves(self, share: int) -> None:
        """The share's answerer found nothing more: the next message starts a new one."""
        self.client.delete(_answerer_flag(share))

    def answerer_returns(self, share: int) -> bool:
        """Take the share's flag back (a message came as the answerer left); False when
        a new answerer already holds it."""
        return bool(self.client.set(_answerer_flag(share), 1, nx=True, ex=ANSWERER_TTL))

    def after_commit(self, done: Committed) -> None:
        """What a committed unit of work left: its outbox rows and follow-ups."""
        self.send(done.outbox_ids)
        self.follow_up(done.follow_ups)
