"""`harambee check` finds each kind of corruption and names the invariant it breaks."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from cli import main
from core import checks


def run_check(settings):
    env = {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url,
           "HARAMBEE_INSTANCE": settings.app.instance_dir}
    return CliRunner().invoke(main, ["check"], env=env)


def corrupt(world, sql, **params):
    with world.services.db.engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount >= 1


@pytest.fixture
def busy_books(world, clock):
    """A bit of everything: a repaid loan, a repaying one, a listed one with a hold,
    a withdrawal and money in suspense."""
    repaid = world.disbursed_loan(lenders=3)
    world.pay(repaid.number, repaid.total_due)
    repaying = world.disbursed_loan(lenders=2)
    world.pay(repaying.number, 12_345)
    listed = world.listed_loan()
    world.pledge(world.lender(), listed, 40_000)
    world.pay("L9999", 500)
    assert run_check(world.settings).exit_code == 0
    return {"repaid": repaid, "repaying": repaying, "listed": listed}


CORRUPTIONS = [
    (1, "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE code = 'platform:fees'"),
    (2, "UPDATE accounts SET debits_pending = debits_pending + 5, "
        "credits_pending = credits_pending + 5 WHERE id IN (SELECT min(id) FROM accounts) "
        "OR id IN (SELECT max(id) FROM accounts)"),
    (3, "UPDATE loans SET pledged = amount + 1, funded = amount + 1 WHERE status = 'repaid'"),
    (4, "UPDATE transfers SET hold_state = 'pending' WHERE kind = 'pending' "
        "AND hold_state = 'posted'"),
    (4, "UPDATE pledges SET status = 'voided' WHERE status = 'confirmed'"),
    (5, "UPDATE payments SET fee_part = fee_part + 1 WHERE kind = 'repayment'"),
    (5, "UPDATE pledges SET repaid = entitled + 1 WHERE status = 'posted'"),
    (6, "DELETE FROM payouts WHERE purpose = 'disbursement'"),
    (6, "UPDATE transfers SET payment_id = NULL WHERE code = 'receipt'"),
]


@pytest.mark.corrupts_ledger
@pytest.mark.parametrize("invariant, sql", CORRUPTIONS)
def test_check_exits_non_zero_naming_the_broken_invariant(world, busy_books, invariant, sql):
    corrupt(world, sql)
    result = run_check(world.settings)
    assert result.exit_code != 0
    assert f"invariant {invariant} ({checks.INVARIANTS[invariant]})" in result.output


DANGLING = [
    (2, "debit account", "UPDATE transfers SET debit_account_id = 999999 "
                         "WHERE id = (SELECT min(id) FROM transfers)"),
    (4, "hold", "UPDATE transfers SET pending_id = 999999 "
                "WHERE id = (SELECT min(id) FROM transfers WHERE kind = 'post')"),
    (5, "loan", "UPDATE transfers SET loan_id = 999999 WHERE code = 'allocation'"),
    (6, "payment", "UPDATE transfers SET payment_id = 999999 WHERE code = 'receipt'"),
]


@pytest.mark.corrupts_ledger
@pytest.mark.parametrize("invariant, what, sql", DANGLING)
def test_check_names_a_transfer_that_points_at_nothing(world, busy_books, invariant, what,
                                                       sql):
    """The journal has no foreign keys: `check` stands in for them."""
    corrupt(world, sql)
    result = run_check(world.settings)
    assert result.exit_code != 0
    assert f"names {what} 999999, which does not exist" in result.output
    assert f"invariant {invariant} ({checks.INVARIANTS[invariant]})" in result.output
