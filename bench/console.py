"""Benchmark: the console's dashboard over a big loan book.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/console.py [100000]

Creates its own PostgreSQL database (`BENCH_DB`, default `wt_console_bench`) and drops
it at the end; without DATABASE_URL, a SQLite file in a temp dir. Seeds the book in bulk
(`bench/seeding.py` `bulk_loan_book`: N loans over a year and every state, their
borrowers, agents, villages, installments and pledges), ANALYZEs it, logs an admin in
through the real login (password and TOTP), then times GET /console/dashboard through
the whole Flask app: the median of several requests after one warm-up, unfiltered and
filtered by an agent, by a village and by a period. It prints the SQL statements each
request ran (counted on the engine) and the PAR figures, so a reader can see the page
is a handful of GROUP BY queries, not one per loan.
"""
from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

from bench.seeding import bulk_loan_book  # noqa: E402
from bench.serving import fresh_database  # noqa: E402
from core import casebook, operators  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from runtime.services import build_services  # noqa: E402

TODAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BENCH_DB = os.environ.get("BENCH_DB", "wt_console_bench")
PASSWORD = "bench password 123"
RUNS = 7


def bench_url() -> tuple[str, Any]:
    """A fresh database URL for the benchmark and a function that drops it."""
    return fresh_database(BENCH_DB)


def _ticks(pid: int) -> int | None:
    """CPU time (user + system, in clock ticks) a local process has used, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def backends(svc: Any) -> list[int]:
    """The PostgreSQL server processes serving the app's pooled connections (when the
    server runs on this machine: their CPU time is read from /proc)."""
    if not svc.db.is_postgres:
        return []
    with svc.db.engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars())


def cpu_ms(pids: list[int]) -> float | None:
    """CPU milliseconds used so far by this process and the given server processes."""
    ticks = [_ticks(pid) for pid in pids]
    if any(t is None for t in ticks):
        return None
    return time.process_time() * 1000 + sum(t or 0 for t in ticks) * 1000 / os.sysconf(
        "SC_CLK_TCK")


def main(loans: int) -> None:
    from web.app import create_app

    url, drop = bench_url()
    try:
        settings = load_settings(env={}, overrides={
            "database": {"url": url}, "redis": {"url": os.environ.get("REDIS_URL", "")},
            "app": {"instance_dir": tempfile.gettempdir() + "/harambee-bench-console",
                    "environment": "development"}})
        upgrade(settings)
        svc = build_services(settings)
        svc.clock = lambda: NOW
        started = time.perf_counter()
        with svc.uow() as uow:
            book = bulk_loan_book(uow, loans, TODAY)
            uow.commit()
        seeded = time.perf_counter() - started
        with svc.db.engine.connect() as conn:
            if svc.db.is_postgres:  # what autovacuum leaves: statistics and visibility map
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("VACUUM ANALYZE"))
            else:
                conn.execute(text("ANALYZE"))
        made = operators.add_operator(svc.uow(), email="bench@harambee.test", role="admin",
                                      password=PASSWORD, now=NOW)
        assert made.totp_secret is not None
        app = create_app(services=svc)
        client = app.test_client()
        page = client.get("/console/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        answer = client.post("/console/login", data={
            "csrf_token": token.group(1), "email": "bench@harambee.test", "password": PASSWORD,
            "code": pyotp.TOTP(made.totp_secret).at(NOW)})
        assert answer.status_code == 302, answer.status_code

        statements: list[str] = []
        in_sql: list[float] = []  # seconds spent in the database driver, per statement

        def before(*args: Any) -> None:
            statements.append(args[2])
            in_sql.append(-time.perf_counter())

        def after(*args: Any) -> None:
            in_sql[-1] += time.perf_counter()

        for engine in svc.db.engines:
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
        print(f"{svc.db.engine.dialect.name}: {book.loans:,} loans, {book.agents} agents, "
              f"{book.places} villages, seeded in {seeded:.1f} s")
        since = (TODAY - timedelta(days=90)).isoformat()
        agent_id = casebook.agent_choices(svc.uow())[0][0]
        for label, query in (("all loans", ""), ("one agent", f"?agent={agent_id}"),
                             ("one village", "?village=Village%207"),
                             ("last 90 days", f"?since={since}")):
            timings, counts, sql_ms, cpu, cold = [], [], [], [], 0.0
            for run in range(RUNS + 1):
                statements.clear()
                in_sql.clear()
                pids = backends(svc)
                cpu_before = cpu_ms(pids)
                began = time.perf_counter()
                answer = client.get(f"/console/dashboard{query}")
                elapsed = time.perf_counter() - began
                cpu_after = cpu_ms(pids)
                if run and cpu_before is not None and cpu_after is not None:
                    cpu.append(cpu_after - cpu_before)
                assert answer.status_code == 200, answer.status_code
                if run:  # the first one warms the template and the charts' cache
                    timings.append(elapsed * 1000)
                    counts.append(len(statements))
                    sql_ms.append(sum(in_sql) * 1000)
                else:
                    cold = elapsed * 1000
            if label == "all loans":  # where the time goes, statement by statement
                for statement, spent in sorted(zip(statements, in_sql, strict=True),
                                               key=lambda pair: -pair[1])[:6]:
                    print(f"    {spent * 1000:7.1f} ms  {' '.join(statement.split())[:90]}")
            html = answer.get_data(as_text=True)
            par30 = re.search(r'data-par="30">([^<]+)<', html)
            print(f"  {label:13s} median {statistics.median(timings):6.1f} ms "
                  f"(min {min(timings):.1f}, max {max(timings):.1f}; {RUNS} requests; "
                  f"first {cold:.1f}), "
                  f"{max(counts)} SQL statements taking {statistics.median(sql_ms):.1f} ms, "
                  f"PAR30 {par30.group(1) if par30 else '?'}"
                  + (f"; CPU used (app + PostgreSQL) median {statistics.median(cpu):.0f} ms"
                     if cpu else ""))
        print(f"  load average while measured: {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
        svc.close()
    finally:
        drop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
