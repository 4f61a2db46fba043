"""The round trips a USSD hop may spend (docs/architecture.md, "One USSD hop"): the
dial of a known caller and a menu read no SQL; each read screen is one statement (on
PostgreSQL without BEGIN or ROLLBACK either); every hop is two Redis round trips, the
session's load and its save. Counted with SQLAlchemy events on the app's engine and on
Redis's connection, so a lazy load or a second query on any of these screens fails."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from sqlalchemy import event

from tests.support import PIN
from tests.ussd_phone import Phone


@dataclass
class Spent:
    sql: list[str] = field(default_factory=list)
    pg: int = 0  # PostgreSQL round trips: statements, and any BEGIN, COMMIT, ROLLBACK
    redis: int = 0


@contextmanager
def spending(engine: Any) -> Iterator[Spent]:
    spent = Spent()
    postgres = engine.dialect.name == "postgresql"

    def open_transaction(dbapi: Any) -> bool:
        return getattr(getattr(dbapi, "info", None), "transaction_status", 0) != 0

    def on_sql(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        spent.sql.append(statement)
        if postgres:  # psycopg sends BEGIN itself before a transaction's first statement
            dbapi = conn.connection.dbapi_connection
            spent.pg += 1 + (not dbapi.autocommit and not open_transaction(dbapi))

    def on_end(conn: Any) -> None:
        if postgres and open_transaction(conn.connection.dbapi_connection):
            spent.pg += 1

    def on_reset(dbapi: Any, *_: Any) -> None:
        if postgres and open_transaction(dbapi):
            spent.pg += 1

    original = redis.connection.AbstractConnection.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        spent.redis += 1
        original(self, command, check_health)

    hooks = [(engine, "before_cursor_execute", on_sql), (engine, "commit", on_end),
             (engine, "rollback", on_end), (engine.pool, "reset", on_reset)]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    redis.connection.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
        for target, name, fn in hooks:
            event.remove(target, name, fn)


@pytest.fixture
def caller(world):
    """A borrower and lender with a loan being repaid (installments), a pledge, money in
    the wallet, and loans listed by others."""
    me = world.member("Amina Otieno", roles="borrower,lender")
    world.disbursed_loan(borrower=me)
    world.top_up(me, 200_000)
    world.pledge(me, world.listed_loan(), 50_000)
    world.listed_loan(world.member("Baraka Mwangi", roles="borrower"))
    return me


def hop(services, phone: Phone, typed: str | None) -> tuple[str, Spent]:
    with spending(services.db.engine) as spent:
        said = phone.dial() if typed is None else phone.press(typed)
    return said, spent


def statements(spent: Spent) -> int:
    return len(spent.sql)


def assert_within(services, spent: Spent, budget: int, what: str) -> None:
    assert statements(spent) <= budget, (what, spent.sql)
    if services.db.is_postgres:
        assert spent.pg <= budget, (what, "BEGIN/ROLLBACK round trips", spent.pg)
    assert spent.redis == 2, (what, "Redis round trips", spent.redis)


@pytest.mark.parametrize(("pick", "shows"), [
    ("2", "pay Ksh"),  # my loans: a loan being repaid, its next installment
    ("4", "% funded"),  # lend: the loans listed for lenders
    ("5", "Ksh 500"),  # my pledges
    ("3", "paybill 247247"),  # how to repay: the open loan and where it stands
])
def test_a_read_screen_is_one_statement_and_a_known_callers_dial_none(
        services, client, caller, pick, shows):
    Phone(client, caller.phone).dial()  # the first dial ever reads the caller: one statement
    phone = Phone(client, caller.phone)
    said, spent = hop(services, phone, None)
    assert said.startswith("CON Harambee: Amina")
    assert_within(services, spent, 0, "the dial of a known caller")
    said, spent = hop(services, phone, pick)
    assert shows in said, said
    assert_within(services, spent, 1, f"read screen {pick}")


def test_the_first_dial_reads_the_caller_in_one_statement(services, client, caller):
    said, spent = hop(services, Phone(client, caller.phone), None)
    assert said.startswith("CON Harambee: Amina")
    assert_within(services, spent, 1, "the first dial")


@pytest.mark.parametrize(("pick", "shows"), [("7", "Limit"), ("6", "Free to lend")])
def test_balances_after_the_pin_are_one_statement(services, client, caller, pick, shows):
    phone = Phone(client, caller.phone)
    phone.dial()
    assert "PIN" in phone.press(pick)
    assert shows in phone.press(PIN)  # the PIN check, then the screen
    phone.press("0")  # back to the main menu: a menu, no SQL
    said, spent = hop(services, phone, pick)  # the PIN was typed: straight to the screen
    assert shows in said, said
    assert_within(services, spent, 1, f"balance screen {pick}")


def test_menus_read_nothing(services, client, caller):
    phone = Phone(client, caller.phone)
    phone.dial()
    for typed, shows in (("8", "Settings"), ("3", "Questions? Call Grace"), ("0", "Settings"),
                         ("00", "Harambee: Amina")):
        said, spent = hop(services, phone, typed)
        assert shows in said, said
        assert_within(services, spent, 0, f"menu {typed}")


def test_a_loan_picked_from_my_loans_is_one_statement(services, client, caller):
    phone = Phone(client, caller.phone)
    phone.dial()
    phone.press("2")
    said, spent = hop(services, phone, "1")
    assert "Left to repay in all" in said, said
    assert_within(services, spent, 1, "a loan's detail")
