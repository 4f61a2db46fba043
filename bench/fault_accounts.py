"""The fault harness's accounts: what is still to do (the drain), and after it, the
invariants, each compared against what the fakes saw.

- Money: every paybill payment M-Pesa took (the fake Daraja's record) must be a payment
  row with its receipt transfer in the ledger; every B2C payment M-Pesa made must be a
  payout settled as paid.
- SMS: every committed outbox row must have reached the gateway (the fake's record,
  by message id, phone and text); a message the gateway took more often than the
  outbox holds it went twice, and is explained by the fault around its first sending.
"""
from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.fault_gateway import FakeGateway, Taken
from bench.fault_village import Tally
from mpesa.fake import FakeDaraja

QUEUES = ("sms_in", "sms_out", "duties")
DONE = ("sent", "delivered", "skipped")
# Faults that can make a message go twice: each breaks a sender between the gateway
# taking a message and the outbox recording it (a killed worker, a dead database
# connection or Redis gone under the job); the row's lease then runs out and it is sent
# again. The fault must begin within this many seconds of the first sending.
CAUSES = ("rq_worker_kill", "pg_terminate", "redis_kill")
NEAR = 2.0
# A clock moved by days makes the lease of a row in flight look long run out to a
# process that reads the new time first; the sweep there takes the row back and it goes
# again. A harness effect (real clocks do not jump days), counted as such.
CLOCK_NEAR = 3.0


class Accounts:
    def __init__(self, db: Engine, redis_url: str, gateway: FakeGateway,
                 daraja: FakeDaraja, clock: Callable[[], datetime]) -> None:
        self.db, self.redis_url, self.gateway, self.daraja = db, redis_url, gateway, daraja
        self.clock = clock  # the app's (moved) clock: "due" means due by it

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.db.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def pending(self) -> dict[str, int]:
        """What is left to do; empty when drained."""
        left = {}
        for name, sql in {
            "outbox to send": "SELECT count(*) FROM outbox WHERE status IN ('queued', "
                              "'sending') AND (not_before IS NULL OR not_before <= :now)",
            "SMS to answer": "SELECT count(*) FROM sms_inbox WHERE status = 'received'",
            "payouts in flight": "SELECT count(*) FROM payouts WHERE status IN ('pending', "
                                 "'sending', 'sent', 'unknown')",
        }.items():
            count = self.rows(sql, now=self.clock())[0][0]
            if count:
                left[name] = count
        client = redis.Redis.from_url(self.redis_url, socket_timeout=1)
        try:
            for queue in QUEUES:
                count = int(client.llen(f"rq:queue:{queue}"))
                if count:
                    left[f"jobs on {queue}"] = count
        except redis.RedisError:
            left["redis unreachable"] = 1
        finally:
            client.close()
        return left

    # ---------------------------------------------------------------- money

    def money_missing(self) -> tuple[int, int]:
        """Paybill payments M-Pesa took that the ledger lacks: (count, shillings)."""
        taken = {trans_id: int(float(record.body["TransAmount"]))
                 for trans_id, record in self.daraja.c2b_payments.items() if record.accepted}
        booked = {row[0]: row[1] for row in self.rows(
            "SELECT p.transaction_id, t.amount FROM payments p JOIN transfers t "
            "ON t.key = 'receipt:' || p.provider || ':' || p.transaction_id "
            "WHERE p.provider = 'mpesa'")}
        missing = [(tid, amount) for tid, amount in taken.items()
                   if booked.get(tid) != amount * 100]
        return len(missing), sum(amount for _, amount in missing)

    def payouts_unsettled(self) -> tuple[int, int]:
        """B2C payments M-Pesa made whose payout is not settled as paid: (count, made)."""
        paid = {row[0] for row in self.rows(
            "SELECT receipt FROM payouts WHERE status = 'paid' AND receipt IS NOT NULL")}
        made = [p.receipt for p in self.daraja.payments]
        return sum(receipt not in paid for receipt in made), len(made)

    # ---------------------------------------------------------------- SMS

    def sms_never_sent(self, taken: list[Taken]) -> Counter[str]:
        """Committed outbox rows that never reached the gateway, by why."""
        by_id = {t.message_id: t for t in taken}
        never: Counter[str] = Counter()
        for status, message_id, phone, body, held in self.rows(
                "SELECT status, provider_message_id, phone, text, "
                "coalesce(not_before > :now, false) FROM outbox", now=self.clock()):
            if status not in DONE:
                if not held:
                    never[f"still {status}"] += 1
                continue
            if status == "skipped":
                continue
            seen = by_id.get(message_id)
            if seen is None or (seen.phone, seen.text) != (phone, body):
                never["recorded sent, never at the gateway"] += 1
        return never

    def rows_of(self, phone: str, body: str) -> list[tuple[Any, ...]]:
        """The outbox rows of one message: id, status, attempts, message id, last error."""
        return [tuple(row) for row in self.rows(
            "SELECT id, status, attempts, provider_message_id, last_error FROM outbox "
            "WHERE phone = :phone AND text = :body ORDER BY id", phone=phone, body=body)]

    def held(self) -> int:
        return self.rows("SELECT count(*) FROM outbox WHERE status = 'queued' "
                         "AND not_before > :now", now=self.clock())[0][0]

    def sent_twice(self, taken: list[Taken]) -> list[Taken]:
        """Messages the gateway took more often than the outbox holds them: the extra
        sendings (each the later one)."""
        rows = Counter((phone, body) for phone, body in self.rows(
            "SELECT phone, text FROM outbox WHERE status IN ('sent', 'delivered')"))
        seen: Counter[tuple[str, str]] = Counter()
        extra = []
        for t in sorted(taken, key=lambda t: t.at):
            seen[(t.phone, t.text)] += 1
            if seen[(t.phone, t.text)] > rows[(t.phone, t.text)]:
                extra.append(t)
        return extra

    def statuses(self, table: str) -> dict[str, int]:
        return dict(sorted((status, count) for status, count in self.rows(
            f"SELECT status, count(*) FROM {table} GROUP BY status")))

    def reminders(self) -> int:
        return self.rows("SELECT count(*) FROM outbox WHERE purpose = 'reminder'")[0][0]


def explain(extra: list[Taken], taken: list[Taken], lost: set[str],
            faults: Any, accounts: Accounts) -> Counter[str]:
    """Each extra sending by its cause: the gateway's answer lost (the first sending was
    taken in `timeout` mode), or the fault that broke its sender (begun within NEAR
    seconds of the first sending); else "unexplained", which is printed in full."""
    first: dict[tuple[str, str], Taken] = {}
    for t in sorted(taken, key=lambda t: t.at):
        first.setdefault((t.phone, t.text), t)
    causes: Counter[str] = Counter()
    for t in extra:
        original = first[(t.phone, t.text)]
        if original.mode == "timeout":
            causes["sms_timeout (taken, answer lost, sent again)"] += 1
            continue
        if original.message_id in lost:
            causes["gateway answered after the SDK gave up (slow machine), sent again"] += 1
            continue
        near = sorted((abs(f.start - original.at), f.kind) for f in faults.log
                      if f.kind in CAUSES and abs(f.start - original.at) <= NEAR)
        if near:
            causes[f"{near[0][1]} (sender broken mid-send, sent again after its lease)"] += 1
        elif any(abs(moved - original.at) <= CLOCK_NEAR for moved in faults.clock_moves):
            causes["clock moved days while it was in flight (a harness effect)"] += 1
        else:
            causes["unexplained"] += 1
            events = sorted([(f.start, f.kind) for f in faults.log]
                            + [(m, "clock_move") for m in faults.clock_moves])
            around = [f"{kind}@{at - faults.started:.1f}" for at, kind in events
                      if abs(at - original.at) <= 40]
            print(f"  unexplained: {original.message_id} at {original.at - faults.started:.1f} s "
                  f"and {t.message_id} at {t.at - faults.started:.1f} s to {t.phone[:7]}..., "
                  f"{t.text[:40]!r}; events near: {around}; its outbox rows: "
                  f"{accounts.rows_of(t.phone, t.text)}")
    return causes


def cut_by_kills(tally: Tally, faults: Any) -> tuple[int, int]:
    """USSD hops that got no HTTP answer at all: (those cut by a gunicorn worker killed
    mid-request, the others). Only the others are invalid answers."""
    kills = [f for f in faults.log if f.kind == "gunicorn_worker_kill"]
    cut = sum(any(f.start - 1 <= at <= f.end + 2 for f in kills) for at in tally.cut)
    return cut, len(tally.cut) - cut


def account(accounts: Accounts, tally: Tally, faults: Any, drained: float | None,
            check: subprocess.CompletedProcess[str], dead: list[str]) -> bool:
    """Print the figures; True when every invariant holds."""
    taken = accounts.gateway.snapshot()
    missing, missing_sh = accounts.money_missing()
    unsettled, b2c = accounts.payouts_unsettled()
    never = accounts.sms_never_sent(taken)
    extra = accounts.sent_twice(taken)
    cut, unexplained_cuts = cut_by_kills(tally, faults)
    invalid = len(tally.invalid) + unexplained_cuts
    errors_500 = sum(n for key, n in tally.server_errors.items() if key.endswith(" 500"))
    print("\n== figures")
    print(f"USSD hops {tally.hops} (replayed {tally.replays}, same answer {tally.replays_same}); "
          f"SMS in {tally.sms_in}; delivery reports {tally.reports}; "
          f"SMS out {len(taken)} (gateway requests {dict(accounts.gateway.requests)})")
    print(f"village: {tally.registered} registered, {tally.loans_asked} loans asked, "
          f"{tally.pledges} LEND, {tally.confirmations} YES, {tally.repayments} repayments; "
          f"{tally.reminder_runs} clock moves, {accounts.reminders()} reminders written")
    print(f"loans {accounts.statuses('loans')}; pledges {accounts.statuses('pledges')}")
    print(f"payments: {tally.payments} paybill payments taken by M-Pesa "
          f"({tally.payments_refused} refused at validation); {b2c} B2C payouts made")
    print(f"faults injected: {len(faults.log)} {dict(sorted(faults.by_kind.items()))}")
    print(f"answers not CON/END: {invalid} {tally.invalid[:5]} (no answer at all: "
          f"{unexplained_cuts}); hops cut by a killed gunicorn worker: {cut}")
    print(f"5xx answers: {sum(tally.server_errors.values())} {dict(tally.server_errors)} "
          f"(500s: {errors_500}); USSD apologies {dict(tally.apologies)}; "
          f"callbacks given up {dict(tally.gave_up)}")
    print(f"money accepted but not in the ledger: {missing} payments, Ksh {missing_sh:,}")
    print(f"B2C paid by M-Pesa but not settled: {unsettled}")
    print(f"committed SMS never sent: {sum(never.values())} {dict(never)} "
          f"(held for quiet hours: {accounts.held()})")
    causes = explain(extra, taken, accounts.gateway.lost, faults, accounts)
    print(f"SMS sent twice: {len(extra)} {dict(causes)}")
    drain = (f"{drained - faults.last_end:.1f} s" if drained is not None
             else f"NOT DRAINED: {accounts.pending()}")
    print(f"time to drain after the last fault: {drain}")
    print(f"harambee check: {(check.stdout + check.stderr).strip()}")
    if dead:
        print(f"processes that died on their own: {dead}")
    failed = {
        "money missing": missing > 0, "B2C unsettled": unsettled > 0,
        "SMS never sent": sum(never.values()) > 0, "invalid answers": invalid > 0,
        "500 answers": errors_500 > 0, "not drained": drained is None,
        "check": check.returncode != 0, "process died": bool(dead),
        "callbacks never taken": bool(tally.gave_up)}
    broken = [name for name, bad in failed.items() if bad]
    print("RESULT: " + ("all invariants hold" if not broken else "FAILED: " + ", ".join(broken)))
    return not broken
