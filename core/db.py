"""Engine, session factory and the unit of work: one transaction per use case."""
from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import TextClause

from core.config import Settings


@dataclass
class Committed:
    """What a committed unit of work leaves for the workers: outbox rows to send, and
    follow-up work by name (e.g. "tell_lenders" -> payment ids). Each follow-up is also
    found by a periodic sweep, so losing this hand-over loses nothing."""

    outbox_ids: list[int] = field(default_factory=list)
    follow_ups: dict[str, list[int]] = field(default_factory=dict)
    # Phones of members whose row this transaction wrote (any ORM change to a member):
    # whatever copy of them is kept elsewhere (the USSD caller card) is dropped.
    members: set[str] = field(default_factory=set)
    # An agent's row changed, or something a caller's card counts that is not their own
    # row (an invitation, a guarantee asked, a choice offered, a pause asked): every
    # card is dropped.
    agents: bool = False

    def __bool__(self) -> bool:
        return bool(self.outbox_ids or self.follow_ups or self.members or self.agents)


AfterCommit = Callable[[Committed], None]
READING = "harambee_reading"  # execution option: statements outside any transaction of ours
T = TypeVar("T")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10,
                autocommit: bool = False) -> Engine:
    """An engine tuned per backend: SQLite serialises writers, PostgreSQL pools. Neither
    puts a statement's values in its error messages (`hide_parameters`). `autocommit`
    (PostgreSQL): its connections are in autocommit from the start, for reads of one
    statement."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock up front: read-then-write races become waits, not errors.
            # A read of one statement (`UnitOfWork.reading`) needs no transaction: in WAL
            # mode it reads one snapshot, beside the writer.
            if not conn.get_execution_options().get(READING):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Fail fast when PostgreSQL is unreachable: a USSD gateway waits ~10 s for us, and
    # a phone deserves an apology in a second, not a hang. No pre-ping: it would cost a
    # round trip on every hop; a dead connection fails one request and SQLAlchemy then
    # invalidates the pool.
    # hide_parameters: an error's message (and so a log line) never carries the
    # statement's values: phone numbers, SMS texts, codes.
    engine = create_engine(
        url, echo=echo, hide_parameters=True, pool_size=pool_size, max_overflow=pool_size,
        pool_pre_ping=False, pool_recycle=1800, pool_timeout=2,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
        connect_args={"connect_timeout": 1,
                      "options": "-c statement_timeout=15000 -c lock_timeout=10000"},
    )

    @event.listens_for(engine, "handle_error")
    def _no_values_in_errors(context: Any) -> None:
        # PostgreSQL's DETAIL line repeats the values a constraint refused ("Key
        # (phone)=(+2547...) already exists"): it leaves the messages (ours and the
        # driver's, which a traceback prints too) and stays in `orig.diag` for code.
        for error in (context.original_exception, context.sqlalchemy_exception):
            if error is not None and error.args and isinstance(error.args[0], str):
                error.args = (_DETAIL.sub("", error.args[0]), *error.args[1:])

    return engine


_DETAIL = re.compile(r"\nDETAIL:[^\n]*")


# Rows whose change alters what waits for some member's answer (core/waiting.py), which
# their caller card counts.
_WAITING_TABLES = frozenset({"group_members", "guarantees", "pauses"})


def _choice_changed(loan: Any) -> bool:
    """A loan's funding choice opened or closed (core/choices.py)."""
    return bool(inspect(loan).attrs.choice_until.history.has_changes())


def _note_members(session: Session, _context: Any) -> None:
    """After each flush: the phones of the members this unit of work wrote (new rows,
    changed rows, deleted rows; a changed phone both old and new), noted for after
    commit. A Core UPDATE of members bypasses this: none changes what a copy keeps."""
    uow = session.info.get("uow")
    if uow is None:
        return
    pending: Committed = uow._pending
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", "")
        if table in _WAITING_TABLES or (table == "loans" and _choice_changed(obj)):
            pending.agents = True  # what waits for someone's answer changed
        if table != "members":
            continue
        if obj in session.dirty and not session.is_modified(obj):
            continue
        pending.members.add(obj.phone)
        old = inspect(obj).attrs.phone.history.deleted
        pending.members.update(p for p in old if p)
        if "agent" in (obj.roles or "").split(",") and (
                old or inspect(obj).attrs.name.history.deleted):
            pending.agents = True  # a name or number their members' cards carry


def insert_or_nothing(table: Table, columns: Iterable[str], conflict: str) -> TextClause:
    """`INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING id` as one text both
    PostgreSQL and SQLite take, built once with its values bound at execution (through
    the columns' own types). Not the dialects' `insert().on_conflict_do_nothing()`:
    those constructs are not cacheable, so SQLAlchemy compiled one afresh on every call
    (a third of a hook's CPU)."""
    names = tuple(columns)
    return text(
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + name for name in names)}) "
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING id"
    ).bindparams(*(bindparam(name, type_=table.c[name].type) for name in names))


class Database:
    """The engine and its session factory, made once per process."""

    def __init__(self, settings: Settings, *, pool_size: int = 10) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.engine = make_engine(self.url, echo=settings.database.echo, pool_size=pool_size)
        # Reads of one statement (`UnitOfWork.reading`): on PostgreSQL a small pool of its
        # own, in autocommit from the connect on, so a read pays for no isolation switch
        # and back (a tenth of a read screen's CPU); on SQLite, the one engine.
        self.reader = (make_engine(self.url, echo=settings.database.echo, pool_size=2,
                                   autocommit=True)
                       if self.engine.dialect.name == "postgresql" else None)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.sessions, "after_flush", _note_members)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine statements may go out on (what counts them must watch all)."""
        return (self.engine,) if self.reader is None else (self.engine, self.reader)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.reader is not None:
            self.reader.dispose()


class UnitOfWork:
    """One transaction per use case: `with uow: ...; uow.commit()`, rolled back unless
    committed.

    Every use case in `core` opens its own `with uow:` and commits before it returns, so
    a channel calls one use case per action and never commits. A use case entered while
    the unit is already open (a test's setup, the SMS handler answering inside the inbox
    row's transaction) joins that transaction: its commit waits for the outermost one,
    and an error it raises reaches the caller, which decides (see `savepoint`).

    Use cases note new outbox row ids (`announce`) and follow-up work (`follow_up`);
    after the outermost commit these are handed to `after_commit` (the composition root
    enqueues jobs there).
    """

    def __init__(self, db: Database, after_commit: AfterCommit | None = None) -> None:
        self.db = db
        self.settings = db.settings
        self._after_commit = after_commit
        self._pending = Committed()
        self._session: Session | None = None
        self._bare: Connection | None = None  # a transaction without a session (`bare`)
        self._depth = 0

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its `with` block"
                               + (" (or inside `bare`)" if self._bare is not None else ""))
        return self._session

    @property
    def active(self) -> bool:
        """Inside a `with` block: a use case entered now joins this transaction."""
        return self._session is not None

    @property
    def is_postgres(self) -> bool:
        return self.db.is_postgres

    @property
    def connection(self) -> Connection:
        """This unit's connection, inside its transaction, for the Core statements of a
        hot path: it skips the session's execute machinery (about 40 µs a statement).
        Pending ORM changes are flushed first, as the session does before a query."""
        if self._bare is not None:
            return self._bare
        session = self.session
        session.flush()
        return session.connection()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for a read of one statement, outside any transaction of ours:
        on PostgreSQL in autocommit, so no BEGIN and no ROLLBACK go over the wire (one
        statement sees one snapshot, as consistent as a transaction of one). Inside an
        open unit (a use case joined by a test, the SMS handler) it is that unit's
        connection, which sees what the unit wrote."""
        if self.active or self._bare is not None:
            yield self.connection
            return
        if self.db.reader is not None:
            with self.db.reader.connect() as conn:
                yield conn
            return
        with self.db.engine.connect() as conn:
            yield conn.execution_options(**{READING: True})

    @contextmanager
    def autocommit(self, *, flush_later: bool = False) -> Iterator[Connection]:
        """A connection on which each statement commits by itself: no BEGIN and no COMMIT
        go over the wire (PostgreSQL in autocommit; SQLite's driver as we configure it).
        For a hot path whose writes each stand alone: the outbox sender records each sent
        row the moment the gateway answers. Never inside an open unit: its writes would
        not join the unit's transaction.

        `flush_later`: on PostgreSQL, a commit here does not wait for its WAL to reach
        the disk (`synchronous_commit = off`). It is seen at once by everyone and survives
        this process dying; only a crash of the database server within about 0.6 s
        (3 x wal_writer_delay) may lose it, and any later ordinary commit, anywhere,
        writes it to disk first. The setting goes back before the connection does."""
        if self.active or self._bare is not None:
            raise RuntimeError("autocommit() inside an open unit of work")
        later = flush_later and self.is_postgres
        with self.db.engine.connect() as conn:
            conn = conn.execution_options(**{READING: True}, **(
                {"isolation_level": "AUTOCOMMIT"} if self.is_postgres else {}))
            if later:
                conn.exec_driver_sql("SET synchronous_commit = off")
            try:
                yield conn
            finally:
                if later:
                    try:
                        conn.exec_driver_sql("RESET synchronous_commit")
                    except Exception:  # noqa: BLE001 - a broken connection: never pooled again
                        conn.invalidate()

    @contextmanager
    def bare(self) -> Iterator[Connection]:
        """`with uow:` for a use case of a few Core statements on a hot path (a paybill
        confirmation at the door): the transaction is on a pooled connection with no
        ORM session, which costs about half a millisecond of CPU less. `commit()`,
        `follow_up` and `announce` work as ever; `session` does not. Entered inside an
        open unit it joins that transaction, as `with uow:` does."""
        if self._depth:
            with self:
                yield self.connection
            return
        self._depth = 1
        self._pending = Committed()
        self._bare = self.db.engine.connect()
        try:
            yield self._bare
        finally:
            self._depth = 0
            self._bare.close()  # rolls back whatever was not committed
            self._bare = None

    def __enter__(self) -> UnitOfWork:
        self._depth += 1
        if self._depth == 1:
            self._session = self.db.sessions()
            self._session.info["uow"] = self
            self._pending = Committed()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth:
            return  # a joined use case: the outermost block ends the transaction
        assert self._session is not None
        # close() rolls back whatever was not committed, and detaches objects without
        # expiring them, so a channel can still read what a use case returned.
        self._session.close()
        self._session = None

    def commit(self) -> None:
        """Commit, then hand over the announced work; inside a joined use case, nothing
        yet: the outermost block commits."""
        if self._depth > 1:
            return
        if self._bare is not None:
            self._bare.commit()
        else:
            self.session.commit()
        done, self._pending = self._pending, Committed()
        if done and self._after_commit is not None:
            self._after_commit(done)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Writes that are undone alone if the block raises (a refused SMS command inside
        the inbox row's transaction); the outbox rows and follow-ups it announced are
        forgotten with them."""
        announced = len(self._pending.outbox_ids)
        follow_ups = {name: list(refs) for name, refs in self._pending.follow_ups.items()}
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            del self._pending.outbox_ids[announced:]
            self._pending.follow_ups = follow_ups
            raise

    def exclusive(self, name: str) -> bool:
        """True when this transaction is the only one running `name` (a PostgreSQL
        advisory lock, released at commit); SQLite serialises writers by itself."""
        if not self.is_postgres:
            return True
        key = zlib.crc32(f"harambee:{name}".encode())
        return bool(self.session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                         {"k": key}).scalar())

    @property
    def outbox_ids(self) -> list[int]:
        """Outbox rows written in this transaction so far."""
        return self._pending.outbox_ids

    def announce(self, ids: Iterable[int]) -> None:
        """Note outbox rows written in this transaction, to be sent after commit."""
        self._pending.outbox_ids.extend(ids)

    def loaded(self, model: type[T], ids: Iterable[int]) -> list[T]:
        """Instances of `model` with these primary keys that this session has already
        loaded: a statement changed their rows behind the ORM's back. Walks the identity
        map once (cheap when it is empty, as on the hot paths) rather than looking up
        each of perhaps thousands of ids."""
        identity_map = self.session.identity_map
        keys = [key for key in identity_map.keys() if key[0] is model]
        if not keys:
            return []
        wanted = set(ids)
        found = (identity_map.get(key) for key in keys if key[1][0] in wanted)
        return [obj for obj in found if obj is not None]

    def follow_up(self, name: str, ref: int) -> None:
        """Note work to start after commit (its sweep also finds it if this is lost)."""
        self._pending.follow_ups.setdefault(name, []).append(ref)
