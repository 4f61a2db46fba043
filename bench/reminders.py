"""Benchmark: find and enqueue repayment reminders for N installments due on one day,
and SMS commands parsed per second.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/reminders.py [25000 50000 100000]

It creates its own PostgreSQL database (`harambee_bench_reminders`) and drops it at the
end; without DATABASE_URL it uses a SQLite file in a temp dir. Each size is measured in
a fresh child process (so its peak RSS is the run's own), after seeding members, loans
and one unpaid installment each, all due on the same day. The timed part is what the
`reminders` duty does: query, render and bulk-insert outbox rows, commit, and enqueue
the send jobs in Redis. The Redis db given is flushed at the end.
"""
from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from bench.serving import fresh_database  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.db import Database  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.models import Installment, Loan, Member  # noqa: E402

DUE = date(2026, 3, 9)
RUN_AT = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # 10:00 in Nairobi, outside quiet hours
BENCH_DB = "harambee_bench_reminders"


def bench_url() -> tuple[str, Any]:
    """A fresh database URL for the benchmark and a function that drops it."""
    return fresh_database(BENCH_DB)


def settings_for(url: str) -> Any:
    return load_settings(env={}, overrides={
        "database": {"url": url}, "redis": {"url": os.environ.get("REDIS_URL", "")},
        "app": {"instance_dir": tempfile.gettempdir() + "/harambee-bench",
                "environment": "development"}})


def seed(url: str, n: int) -> None:
    """n borrowers (a tenth of them with an agent), each with one repaying loan whose
    installment is due on DUE."""
    db = Database(settings_for(url))
    now = datetime(2026, 2, 1, tzinfo=UTC)
    rng = random.Random(4)
    with db.engine.begin() as conn:
        if db.is_postgres:
            conn.execute(text("TRUNCATE outbox, installments, loans, members CASCADE"))
        else:
            for table in ("outbox", "installments", "loans", "members"):
                conn.execute(text(f"DELETE FROM {table}"))
        agents = [{"id": i + 1, "phone": f"+25471{i:07d}", "name": f"Agent{i} Mwangi",
                   "roles": "agent", "status": "verified", "language": "en",
                   "credit_limit": 500_000, "created_at": now, "pin_failures": 0,
                   "limit_frozen": False, "loans_repaid": 0, "loans_repaid_on_time": 0,
                   "tips_opt_out": False, "sms_unreachable": False} for i in range(100)]
        conn.execute(insert(Member), agents)
        for start in range(0, n, 10_000):
            ids = range(start + 1000, min(start + 10_000, n) + 1000)
            conn.execute(insert(Member), [{
                "id": i, "phone": f"+25472{i:07d}", "name": f"Borrower{i} Otieno",
                "roles": "borrower", "status": "verified",
                "language": rng.choice(("en", "sw")),
                "agent_id": (i % 100) + 1 if i % 10 == 0 else None,
                "credit_limit": 500_000, "created_at": now,
                "pin_failures": 0, "limit_frozen": False, "loans_repaid": 0,
                "loans_repaid_on_time": 0, "tips_opt_out": False, "sms_unreachable": False}
                for i in ids])
            conn.execute(insert(Loan), [{
                "id": i, "number": f"L{i + 1000}", "borrower_id": i, "status": "repaying",
                "amount": 300_000, "fee": 15_000, "interest": 0, "term_weeks": 4,
                "installment_count": 4, "purpose": "stock", "pledged": 300_000,
                "funded": 300_000, "repaid": 0, "fee_paid": 0, "created_at": now}
                for i in ids])
            conn.execute(insert(Installment), [{
                "loan_id": i, "seq": 1, "due_on": DUE, "amount": 78_750,
                "paid": 0, "late": False} for i in ids])
        if db.is_postgres:
            for table in ("members", "loans", "installments", "outbox"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
            conn.execute(text("ANALYZE"))
    db.dispose()


def run_child(url: str) -> dict[str, float]:
    """In this (fresh) process: the reminders duty once, timed, with peak RSS."""
    from core import reminders
    from runtime.services import build_services

    svc = build_services(settings_for(url))
    svc.redis.client.flushdb()
    started = time.perf_counter()
    with svc.uow() as uow:
        run = reminders.queue_reminders(uow, RUN_AT)
        written = time.perf_counter()
        uow.commit()  # after commit: send jobs enqueued in Redis
    done = time.perf_counter()
    jobs = svc.redis.client.llen("rq:queue:sms_out")
    svc.redis.client.flushdb()
    svc.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"reminders": run.queued, "find_and_write_s": written - started,
            "commit_and_enqueue_s": done - written, "total_s": done - started,
            "send_jobs": jobs, "peak_rss_mb": peak_kb / 1024}


def parse_rate(seconds: float = 2.0) -> float:
    from sms.parser import parse

    texts = ["LEND L1042 1,500", "yes 4821", "BAL", "kopesha 1042 1.5k", "STATUS #L-1042",
             "lugha sw", "DISPUTE L1042 my payment of 500 is missing", "hlep", "NO 4821",
             "pledge 500/= L1042"]
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for item in texts:
            parse(item)
        count += len(texts)
    return count / (time.perf_counter() - started)


def main(sizes: list[int]) -> None:
    url, drop = bench_url()
    try:
        upgrade(settings_for(url))
        backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        print(f"reminders for N installments due on one day ({backend}, one process each)")
        print(f"{'N':>8} {'find+write':>11} {'commit+enqueue':>15} {'total':>8} "
              f"{'per 1k':>7} {'peak RSS':>9} {'jobs':>5}")
        for n in sizes:
            seed(url, n)
            out = subprocess.run([sys.executable, __file__, "--child", url], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            assert r["reminders"] == n, r
            print(f"{n:>8} {r['find_and_write_s']:>10.2f}s {r['commit_and_enqueue_s']:>14.2f}s "
                  f"{r['total_s']:>7.2f}s {1000 * r['total_s'] / n:>6.3f}s "
                  f"{r['peak_rss_mb']:>7.0f}MB {int(r['send_jobs']):>5}")
    finally:
        drop()
    print(f"SMS commands parsed per second (one core): {parse_rate():,.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(run_child(sys.argv[2])))
    else:
        main([int(a) for a in sys.argv[1:]] or [25_000, 50_000, 100_000])
