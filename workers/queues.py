"""RQ queues and the enqueue helpers the web tier and the duties call after commit."""
from __future__ import annotations

from collections.abc import Sequence

import redis
from rq import Queue

from core.repayments import TELL_LENDERS

INBOUND = "sms_in"  # people waiting for an answer: first
OUTBOUND = "sms_out"
DUTIES = "duties"
ALL = (INBOUND, OUTBOUND, DUTIES)

SEND_BATCH = 200  # outbox rows per send job (rows with the same text go in one request)
SEND_JOB = "workers.jobs.send_outbox"
ANSWER_JOB = "workers.jobs.answer_sms"
# core's follow-ups (UnitOfWork.follow_up) by name -> the job that does each
FOLLOW_UP_JOBS = {TELL_LENDERS: "workers.jobs.tell_lenders"}


def queue(client: redis.Redis, name: str) -> Queue:
    return Queue(name, connection=client)


def enqueue_sends(redis_client: redis.Redis, ids: list[int]) -> None:
    """Enqueue send jobs for committed outbox rows. Raises when Redis is unreachable:
    callers swallow that, because the outbox sweep finds rows still queued."""
    if not ids:
        return
    q = queue(redis_client, OUTBOUND)
    ordered = sorted(set(ids))
    with redis_client.pipeline() as pipe:
        for chunk in _chunks(ordered, SEND_BATCH):
            q.enqueue(SEND_JOB, list(chunk), pipeline=pipe, result_ttl=0, failure_ttl=86_400)
        pipe.execute()


def enqueue_follow_ups(redis_client: redis.Redis, follow_ups: dict[str, list[int]]) -> None:
    """Enqueue one job per follow-up reference (their sweep covers failures)."""
    if not follow_ups:
        return
    q = queue(redis_client, OUTBOUND)
    with redis_client.pipeline() as pipe:
        for name, refs in follow_ups.items():
            for ref in refs:
                q.enqueue(FOLLOW_UP_JOBS[name], ref, pipeline=pipe, result_ttl=0,
                          failure_ttl=86_400)
        pipe.execute()


def enqueue_answer(redis_client: redis.Redis, inbound_id: int) -> None:
    """Enqueue the handler for a stored incoming SMS (the inbound sweep covers failures)."""
    queue(redis_client, INBOUND).enqueue(ANSWER_JOB, inbound_id, result_ttl=0,
                                         failure_ttl=86_400)


def _chunks(items: Sequence[int], size: int) -> list[Sequence[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
