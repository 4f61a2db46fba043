"""Parallel PIN guesses on one member: each is judged in its own short transaction with
the member's row locked, so guesses queue and the lockout cannot be raced past.

PostgreSQL runs the threads truly in parallel (the row lock decides); SQLite
serialises writers (BEGIN IMMEDIATE). Both must give the answers of some serial order.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from core import members
from core.db import Database, UnitOfWork
from core.errors import PinLocked, WrongPin
from core.models import Member
from tests.support import PIN, all_at_once

WRONG = "9137"


@pytest.fixture
def wide_database(services):
    db = Database(services.settings, pool_size=26)
    yield db
    db.dispose()


def guess_all_at_once(database: Database, member_id: int, now: Any,
                      pins: list[str]) -> list[Any]:
    """Each PIN guessed in its own unit of work, all at once; each result is None (right)
    or the exception raised."""
    return all_at_once([
        lambda pin=pin: members.check_pin(UnitOfWork(database), member_id, pin, now)
        for pin in pins])


def kinds(results: list[Any], which: Callable[[Any], bool]) -> int:
    return sum(1 for r in results if which(r))


def member_row(world, member_id: int) -> Member:
    with world.uow() as uow:
        return uow.session.get(Member, member_id)


def test_fifteen_parallel_wrong_guesses_get_three_answers_then_locked(world, wide_database):
    member = world.member("Amina Otieno")
    results = guess_all_at_once(wide_database, member.id, world.now, [WRONG] * 15)
    wrong = [r for r in results if isinstance(r, WrongPin)]
    assert sorted(r.params["tries_left"] for r in wrong) == [0, 1, 2]
    assert [r.key for r in wrong if r.params["tries_left"] == 0] == ["pin.wrong_locked"]
    assert kinds(results, lambda r: isinstance(r, PinLocked)) == 12
    row = member_row(world, member.id)
    assert row.pin_locked_until is not None and row.pin_locked_until > world.now
    with pytest.raises(PinLocked):  # and the right PIN waits too
        members.check_pin(world.uow(), member.id, PIN, world.now)


@pytest.mark.parametrize("round_", range(4))
def test_a_right_guess_racing_the_locking_guess_never_clears_the_lock(world, wide_database,
                                                                    round_):
    """Two wrong tries made; the third races eight right ones. Serially either the wrong
    one came first (locked: every right one refused) or a right one did (unlocked: the
    wrong one counted from zero). Nothing in between: a lock written and then wiped."""
    member = world.member("Amina Otieno")
    with world.uow() as uow:
        uow.session.execute(update(Member).where(Member.id == member.id)
                            .values(pin_failures=2))
        uow.commit()
    pins = [PIN] * 8
    pins.insert(round_ * 2, WRONG)
    results = guess_all_at_once(wide_database, member.id, world.now, pins)
    wrong = results[pins.index(WRONG)]
    rights = [r for r, pin in zip(results, pins, strict=True) if pin == PIN]
    row = member_row(world, member.id)
    assert isinstance(wrong, WrongPin)
    if wrong.key == "pin.wrong_locked":
        assert row.pin_locked_until is not None, "a right guess wiped the lock"
        assert all(isinstance(r, PinLocked) for r in rights)
    else:
        assert wrong.params["tries_left"] == 2  # a right guess had reset the count first
        assert row.pin_locked_until is None and row.pin_failures in (0, 1)
        assert not any(isinstance(r, PinLocked) for r in rights)
        assert all(r is None for r in rights)
