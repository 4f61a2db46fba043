"""The dashboard's figures against a book worked out by hand (tests/console_actions.py
`seed_par_book`), and the loans behind them."""
from __future__ import annotations

from core import portfolio
from core.models import OutboxMessage, OutboxStatus
from tests.console_actions import seed_par_book


def test_par_and_the_rest_match_the_hand_worked_book(world, services):
    expected = seed_par_book(world)
    board = portfolio.dashboard(services.uow(), portfolio.BookFilter(), services.now())
    assert board.outstanding == expected["outstanding"]
    assert board.at_risk == {1: expected["par1"], 30: expected["par30"], 90: 0}
    assert abs(board.par(30) - 450_000 / 1_050_000) < 1e-12
    assert board.active_borrowers == 4 and board.active_lenders == 8
    assert board.by_state == {"disbursed": 3, "repaying": 1}
    # repayment rate: installments are 787, 787, 787 and 789 (whole shillings, the rest on
    # the last): due so far A 3,150, B 3,150, C 787 x 2; paid: B's 1,575
    assert board.due_to_date == 787_400 and board.paid_to_date == 157_500
    assert sum(n for _, n, _ in board.disbursed_weeks) == 4
    assert board.median_days_to_fund == 0


def test_the_loans_behind_par30_are_the_two_late_ones(world, services):
    seed_par_book(world)
    rows = portfolio.loans(services.uow(), portfolio.LoanFilter(late_over=30), services.now())
    assert sorted(r.days_late for r in rows) == [39, 53]
    rows = portfolio.loans(services.uow(), portfolio.LoanFilter(late_over=1), services.now())
    assert sorted(r.days_late for r in rows) == [13, 39, 53]


def test_filters_by_agent_village_and_period(world, services):
    seed_par_book(world)
    agent = world.agent()
    everyone = portfolio.dashboard(services.uow(), portfolio.BookFilter(agent_id=agent.id),
                                   services.now())
    assert everyone.outstanding == 1_050_000
    nobody = portfolio.dashboard(services.uow(), portfolio.BookFilter(agent_id=agent.id + 999),
                                 services.now())
    assert nobody.outstanding == 0 and nobody.par(30) is None
    late_ones = portfolio.dashboard(
        services.uow(), portfolio.BookFilter(until=services.now().date()
                                             .replace(day=1).replace(month=4)),
        services.now())
    assert late_ones.outstanding == 450_000  # A and B, paid out in March
    assert portfolio.dashboard(services.uow(), portfolio.BookFilter(village="Nowhere"),
                               services.now()).loans == 0


def test_sms_delivery_rate_counts_final_words_only(world, services):
    world.member()
    with services.uow() as uow:
        rows = list(uow.session.query(OutboxMessage))
        for row, status in zip(rows, (OutboxStatus.DELIVERED, OutboxStatus.FAILED), strict=False):
            row.status = status
        uow.commit()
    board = portfolio.dashboard(services.uow(), portfolio.BookFilter(), services.now())
    assert board.sms_delivery_rate == 0.5
