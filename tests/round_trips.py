"""Round trips counted in this process, for the tests that hold a hop to its budget and
for the benchmarks that print them: SQL statements on every engine of a `Database` (the
read pool too), PostgreSQL round trips, and Redis round trips."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import event

from core.db import Database


@dataclass
class RoundTrips:
    """SQL statements and Redis round trips made in this process while counting."""

    sql: list[str] = field(default_factory=list)
    redis: int = 0
    pg: int = 0  # PostgreSQL round trips: the statements and any BEGIN, COMMIT, ROLLBACK

    def clear(self) -> None:
        self.sql.clear()
        self.redis = 0
        self.pg = 0


def _open_transaction(dbapi_connection: Any) -> bool:
    # psycopg: 0 is IDLE (no transaction open); anything else has one to end
    info = getattr(dbapi_connection, "info", None)
    return getattr(info, "transaction_status", 0) != 0


@contextmanager
def counting(db: Database) -> Iterator[RoundTrips]:
    """Count, until the block ends, the SQL statements sent on `db`'s engines (a
    SQLAlchemy `before_cursor_execute` event), PostgreSQL round trips (those, each BEGIN
    psycopg sends before a transaction's first statement, each COMMIT or ROLLBACK of an
    open transaction) and every Redis round trip (a pipeline is one)."""
    seen = RoundTrips()
    postgres = db.is_postgres

    def on_sql(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.sql.append(statement)
        if postgres:  # psycopg sends BEGIN itself before a transaction's first statement
            dbapi = conn.connection.dbapi_connection
            seen.pg += 1 + (not dbapi.autocommit and not _open_transaction(dbapi))

    def on_end(conn: Any) -> None:
        if postgres and _open_transaction(conn.connection.dbapi_connection):
            seen.pg += 1

    def on_reset(dbapi_connection: Any, *_: Any) -> None:
        if postgres and _open_transaction(dbapi_connection):
            seen.pg += 1

    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        seen.redis += 1
        original(self, command, check_health)

    hooks = [hook for engine in db.engines
             for hook in ((engine, "before_cursor_execute", on_sql), (engine, "commit", on_end),
                          (engine, "rollback", on_end), (engine.pool, "reset", on_reset))]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    redis.connection.AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
        for target, name, fn in hooks:
            event.remove(target, name, fn)
