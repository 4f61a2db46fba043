from core import queries


def test_account_view_shows_wallet_holds_and_open_loan(world):
    loan = world.listed_loan(amount=300_000)
    lender = world.lender(balance=200_000)
    world.pledge(lender, loan, 50_000)
    with world.uow() as uow:
        view = queries.account(uow, lender.id, world.now)
        status = queries.loan_status(uow, loan.number, world.now)
        page = queries.listed(uow, world.now)
    assert (view.wallet_balance, view.wallet_available, view.held) == (200_000, 150_000, 50_000)
    assert view.active_pledges == 1
    assert status.funded_percent == 16 and status.open_amount == 250_000
    assert [v.number for v in page] == [loan.number]


def test_standing_reports_behind(world, clock):
    loan = world.disbursed_loan(amount=300_000)
    clock.advance(days=8)
    with world.uow() as uow:
        view = queries.loans_of(uow, loan.borrower_id, world.now)[0]
    assert view.standing is not None
    assert view.standing.behind == loan.installments[0].amount
