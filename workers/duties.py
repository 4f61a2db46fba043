"""The work itself, as plain functions over `Services` and a moment `now`: send outbox
rows, answer incoming SMS, and the periodic duties `tick` runs. RQ jobs
(workers/jobs.py) and the CLI call these; tests call them directly.

Each duty is idempotent: running `tick` twice at the same moment sends nothing twice.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis import RedisError
from sqlalchemy.engine import Connection

from core import (
    choices,
    confirmations,
    delivery,
    inbox,
    loans,
    pledges,
    reminders,
    repayments,
    stories,
    tips,
)
from runtime.jobs import ANSWERERS, SEND_BATCH
from runtime.services import Services
from runtime.sms_gateways import SmsGateway
from sms import handlers
from workers import payouts, stk

log = logging.getLogger(__name__)

BULK_MAX = 100  # recipients per gateway request
CLAIM_AT_ONCE = 100  # rows a sender holds at a time: what a crash mid-send can delay
# A claim still sending after this renews its lease (delivery.LEASE, 30 s) on the rows
# it has not sent: a slow gateway never lets a lease run out under a row still to send.
RENEW_AFTER = timedelta(seconds=10)
SWEEP_GRACE = timedelta(seconds=30)  # rows this fresh still have their own send job
ANSWER_BATCH = 25  # SMS answered before their replies go (the most a reply waits behind)
ANSWER_ROUNDS = 8  # batches an answerer takes before it makes way for other jobs
NUDGE_AFTER = timedelta(seconds=10)  # a message this old with no answerer gets one


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    invalid: int = 0
    requests: int = 0


def send_outbox(svc: Services, ids: Sequence[int], gateway: SmsGateway | None = None
                ) -> SendReport:
    """Send the given rows a few at a time: claim CLAIM_AT_ONCE rows, send them (one
    request per text, many phones), record each request's sent rows the moment it
    answers (one statement, committed by itself), then the next few. A sender killed
    mid-send holds only the rows of its current claim, for one short lease, and sends
    again at most the rows of the one request it was in; the rows of any sender that
    died before are taken back first."""
    report = SendReport()
    gateway = gateway or svc.sms
    released = delivery.release_stuck(svc.uow(), svc.now())
    pending = list(dict.fromkeys([*released, *ids]))
    with svc.uow().autocommit(flush_later=True) as conn:
        for start in range(0, len(pending), CLAIM_AT_ONCE):
            claimed = delivery.claim(svc.uow(), pending[start:start + CLAIM_AT_ONCE],
                                     svc.now())
            report.claimed += len(claimed)
            _send_claimed(svc, gateway, conn, claimed, report)
    return report


def _send_claimed(svc: Services, gateway: SmsGateway, conn: Connection,
                  claimed: list[delivery.Claimed], report: SendReport) -> None:
    recorded: list[str] = []
    renew_at = time.monotonic() + RENEW_AFTER.total_seconds()
    batches = _bulk(claimed)
    while batches:
        if time.monotonic() >= renew_at:  # a slow gateway: keep what is still ours
            held = {row.id: row for row in delivery.renew(
                conn, [row for _, batch in batches for row in batch], svc.now())}
            batches = [(text, [held[row.id] for row in batch if row.id in held])
                       for text, batch in batches]
            renew_at = time.monotonic() + RENEW_AFTER.total_seconds()
        text, batch = batches.pop(0)
        if not batch:
            continue
        outcomes = gateway.send(text, [row.phone for row in batch])
        report.requests += 1
        sent: list[delivery.Result] = []
        other: list[delivery.Result] = []
        for row in batch:
            outcome = outcomes[row.phone]
            setattr(report, outcome.state, getattr(report, outcome.state) + 1)
            result = delivery.Result(row.id, outcome.state, outcome.message_id,
                                     outcome.cost, outcome.detail, row.attempts)
            (sent if outcome.state == "sent" else other).append(result)
        if sent:
            delivery.record_sent(conn, sent, svc.now())
            recorded.extend(r.message_id for r in sent if r.message_id)
        if other:  # retries and bad numbers: rare, each read and written in the ORM
            delivery.record(svc.uow(), other, svc.now())
    delivery.apply_early_reports(svc.uow(), conn, recorded, svc.now())


def _bulk(rows: Sequence[delivery.Claimed]) -> list[tuple[str, list[delivery.Claimed]]]:
    """Rows grouped by identical text, distinct phones per request, at most BULK_MAX."""
    batches: list[tuple[str, list[delivery.Claimed]]] = []
    open_batch: dict[str, int] = {}
    for row in rows:
        index = open_batch.get(row.text)
        if index is not None:
            _, members = batches[index]
            if len(members) < BULK_MAX and all(m.phone != row.phone for m in members):
                members.append(row)
                continue
        open_batch[row.text] = len(batches)
        batches.append((row.text, [row]))
    return batches


def tell_lenders_of(svc: Services, payment_id: int) -> int:
    """Write the notices of one repayment's lenders (sent after commit, as any row)."""
    return repayments.tell_lenders(svc.uow(), payment_id, svc.now())


def tell_lenders(svc: Services, now: datetime) -> int:
    """Repayments whose lenders no job has told yet (Redis lost the job, or it failed):
    tell them from here. Returns the number of repayments done."""
    done = 0
    for _ in range(50):  # at most 5,000 repayments a tick; the next tick goes on
        ids = repayments.untold_payments(svc.uow(), now - SWEEP_GRACE, limit=100)
        for payment_id in ids:
            tell_lenders_of(svc, payment_id)
        done += len(ids)
        if len(ids) < 100:
            break
    return done


def record_confirmations(svc: Services, now: datetime) -> int:
    """Paybill confirmations stored and still not in the ledger, whose job was lost
    (Redis lost it, or it failed): enqueued again, or recorded from here while Redis is
    down. Those whose job still waits in a backlog are left to it. Returns how many
    were enqueued or recorded here."""
    ids = confirmations.unrecorded(svc.uow(), now - SWEEP_GRACE, limit=5_000)
    if not ids:
        return 0
    try:
        done = svc.jobs.record_confirmations(ids)
    except RedisError:
        log.warning("confirmations: Redis is down; recording %d from here", len(ids))
        for confirmation_id in ids:
            confirmations.record(svc.uow(), confirmation_id, now)
        return len(ids)
    if done:
        log.warning("confirmations: %d stored but not recorded had lost their job; "
                    "enqueued again", done)
    return done


def answer_sms(svc: Services, inbound_id: int) -> str:
    return handlers.answer(svc.uow(), inbound_id, svc.now())


def answer_share(svc: Services, share: int, *, rounds: int = ANSWER_ROUNDS) -> int:
    """Answer the waiting SMS of one share, oldest first, ANSWER_BATCH at a time; each
    batch's replies are sent before the next batch is taken, so a burst of new messages
    delays the reply to an earlier one by one batch at most. After `rounds` batches the
    answerer queues itself again and makes way for other work. Returns the number
    answered."""
    answered = 0
    try:
        for _ in range(rounds):
            ids = inbox.waiting_in_slot(svc.uow(), share, ANSWERERS, limit=ANSWER_BATCH)
            if not ids:
                svc.jobs.answerer_leaves(share)
                # A message stored as we left found the flag still up and started nobody.
                if not inbox.waiting_in_slot(svc.uow(), share, ANSWERERS, limit=1):
                    return answered
                if not svc.jobs.answerer_returns(share):
                    return answered  # a new answerer has it
                continue
            answered += answer_and_send(svc, ids)
            _still_here(svc, share)
    except Exception:
        # The database or Redis failed under us: lower the flag, so the next message
        # (or the inbound sweep's nudge) starts a new answerer at once, not after the
        # flag's time runs out.
        with suppress(RedisError):
            svc.jobs.answerer_leaves(share)
        raise
    svc.jobs.answer_share(share)  # the flag stays up: this share's answerer is queued
    return answered


def answer_and_send(svc: Services, inbound_ids: Sequence[int]) -> int:
    """Answer these SMS (each in its own transaction) and send their replies in one go."""
    sends: list[int] = []
    for inbound_id in inbound_ids:
        handlers.answer(svc.uow_sending_here(sends), inbound_id, svc.now())
    if sends:
        send_outbox(svc, sends)
    return len(inbound_ids)


def _still_here(svc: Services, share: int) -> None:
    try:
        svc.jobs.answerer_alive(share)
    except RedisError:  # the work goes on; the flag expires and the sweep covers the rest
        log.warning("answerer %d: redis unavailable", share)


# ---------------------------------------------------------------- periodic duties

def sweep_outbox(svc: Services, now: datetime, *, inline_if_redis_down: bool = True) -> int:
    """Retake rows whose sender died, apply early delivery reports, and re-enqueue due
    rows that no job holds (Redis lost them, or their backoff ended). When Redis is
    down the rows are sent from here instead."""
    released = delivery.release_stuck(svc.uow(), now)
    delivery.apply_pending_reports(svc.uow(), now)
    if released:
        log.warning("outbox: %d rows were stuck in sending; queued again", len(released))
    ids = sorted(set(released) | set(delivery.due_ids(svc.uow(), now - SWEEP_GRACE)))
    if not ids:
        return 0
    try:
        svc.jobs.send(ids)
    except RedisError:
        if not inline_if_redis_down:
            raise
        log.warning("outbox sweep: Redis is down; sending %d rows from here", len(ids))
        for start in range(0, len(ids), SEND_BATCH):
            send_outbox(svc, ids[start:start + SEND_BATCH])
    return len(ids)


def sweep_inbound(svc: Services, now: datetime) -> int:
    """Start the answerer of every share whose messages have waited NUDGE_AFTER without
    one (its job was lost with Redis, or its worker died); then answer here the messages
    still waiting after a minute, or whose handler failed and may succeed now."""
    try:
        for inbound_id in inbox.oldest_of_each_share(svc.uow(), ANSWERERS, now - NUDGE_AFTER):
            svc.jobs.answer_sms(inbound_id)  # a no-op while the share's answerer lives
    except RedisError:
        log.warning("inbound sweep: Redis is down; answering from here after a minute")
    ids = inbox.waiting_ids(svc.uow(), now)
    for inbound_id in ids:
        handlers.answer(svc.uow(), inbound_id, now)
    return len(ids)


def lapse_pledges(svc: Services, now: datetime) -> int:
    return _until_done(lambda: pledges.lapse_pledges(svc.uow(), now))


def expire_loans(svc: Services, now: datetime) -> int:
    return _until_done(lambda: len(loans.expire_loans(svc.uow(), now)))


def lapse_choices(svc: Services, now: datetime) -> int:
    """Partly funded loans whose borrower did not choose in time: cancelled, holds freed."""
    return _until_done(lambda: len(choices.lapse(svc.uow(), now)))


def _until_done(step: Callable[[], int], rounds: int = 50) -> int:
    """Run a batched use case until a batch comes back empty (each batch one commit)."""
    total = 0
    for _ in range(rounds):
        done = step()
        total += done
        if not done:
            break
    return total


def mark_arrears(svc: Services, now: datetime) -> int:
    return len(repayments.mark_arrears(svc.uow(), now))


def send_reminders(svc: Services, now: datetime) -> int:
    """Today's repayment reminders: one SMS per borrower, each installment's kind once, ever."""
    run = reminders.queue_reminders(svc.uow(), now)
    if run.skipped:
        log.info("reminders: another run holds the lock; skipping")
    elif run.queued:
        held = f", held until {run.held_until:%H:%M} UTC" if run.held_until else ""
        log.info("reminders: %d written%s", run.queued, held)
    return run.queued


def share_story(svc: Services, story_id: int) -> int:
    """An approved story to the members who want stories, a batch per transaction."""
    return stories.share_with_members(svc.uow(), story_id, svc.now())


def share_stories(svc: Services, now: datetime) -> int:
    """Approved stories whose share job was lost or died midway: finish them here."""
    return sum(stories.share_with_members(svc.uow(), story_id, now)
               for story_id in stories.unshared(svc.uow(), now - SWEEP_GRACE))


def send_tips(svc: Services, now: datetime) -> int:
    """The week's money tip to members who asked for tips (core/tips.py): once a week
    each, from Wednesday morning, never in quiet hours; other runs write nothing."""
    written = tips.queue_weekly_tips(svc.uow(), now)
    if written:
        log.info("tips: %d written", written)
    return written


def prune_reports(svc: Services, now: datetime) -> int:
    return delivery.prune_unmatched_reports(svc.uow(), now)


DUTIES: dict[str, Callable[[Services, datetime], int]] = {
    "lapse_pledges": lapse_pledges,
    "expire_loans": expire_loans,
    "lapse_choices": lapse_choices,
    "disburse_funded": payouts.disburse_funded,
    "payouts": payouts.send_payouts,
    "payout_float": payouts.ask_float,
    "stk_sweep": stk.sweep,
    "mark_arrears": mark_arrears,
    "reminders": send_reminders,
    "tips": send_tips,
    "inbound_sweep": sweep_inbound,
    "confirmations": record_confirmations,
    "tell_lenders": tell_lenders,
    "share_stories": share_stories,
    "outbox_sweep": sweep_outbox,
    "prune_reports": prune_reports,
}
FREQUENT = ("lapse_pledges", "expire_loans", "lapse_choices", "disburse_funded", "payouts",
            "stk_sweep", "inbound_sweep", "confirmations", "tell_lenders", "share_stories",
            "outbox_sweep")
DAILY = ("mark_arrears", "reminders", "tips", "payout_float", "prune_reports")


@dataclass
class TickReport:
    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def tick(svc: Services, now: datetime, names: Sequence[str] | None = None) -> TickReport:
    """Run the periodic duties once, as of `now`; a failing duty does not stop the rest."""
    report = TickReport()
    for name in names or DUTIES:
        try:
            report.done[name] = DUTIES[name](svc, now)
        except Exception as exc:  # noqa: BLE001 - reported, and the next tick tries again
            log.exception("duty %s failed", name)
            report.failed[name] = f"{type(exc).__name__}: {exc}"[:200]
    return report
