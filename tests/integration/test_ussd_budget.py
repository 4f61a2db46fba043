"""The round trips a USSD hop may spend (docs/architecture.md, "One USSD hop"): the
dial of a known caller and a menu read no SQL; each read screen is one statement (on
PostgreSQL without BEGIN or ROLLBACK either); every hop is two Redis round trips, the
session's load and its save. Counted with SQLAlchemy events on the app's engine and on
Redis's connection, so a lazy load or a second query on any of these screens fails."""
from __future__ import annotations

import pytest

from tests.round_trips import RoundTrips, counting
from tests.support import PIN
from tests.ussd_phone import Phone


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


def hop(services, phone: Phone, typed: str | None) -> tuple[str, RoundTrips]:
    with counting(services.db) as spent:
        said = phone.dial() if typed is None else phone.press(typed)
    return said, spent


def statements(spent: RoundTrips) -> int:
    return len(spent.sql)


def assert_within(services, spent: RoundTrips, budget: int, what: str) -> None:
    """Exactly the budget: a read screen that counted no statement would mean the
    counter missed the engine it went out on."""
    assert statements(spent) == budget, (what, spent.sql)
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
