from core import queries


def test_account_view_shows_wallet_holds_and_open_loan(world):
    loan = world.listed_loan(amount=300_000)
    lender = world.lender(balance=200_000)
    world.pledge(lender, loan, 50_000)
    with world.uow() as uow:
        view = queries.account(uow, lender.id, world.now)
        status = queries.loan_seen_by(uow, lender.id, loan.number, world.now)
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


def test_a_pledge_offer_for_a_loan_past_listing_is_not_found_by_a_stranger(world):
    import pytest

    from core.errors import NotAllowed, NotFound

    loan = world.disbursed_loan(lenders=1, amount=300_000)
    stranger = world.lender(100_000, "Nosy Neighbour")
    with pytest.raises(NotFound) as refused:
        queries.pledge_offer(world.uow(), stranger.id, loan.number, world.now)
    assert (refused.value.key, refused.value.params) == ("loan.not_found",
                                                         {"number": loan.number})
    with pytest.raises(NotAllowed) as told:
        queries.pledge_offer(world.uow(), loan.borrower.agent_id, loan.number, world.now)
    assert told.value.key == "loan.not_listed"
