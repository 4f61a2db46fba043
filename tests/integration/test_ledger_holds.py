"""ledger.place_hold: a hold and the writes that stand or fall with it, on whichever
backend the suite runs on (CI runs it on SQLite and on PostgreSQL): one statement on
PostgreSQL, the very same steps one at a time elsewhere. The tests of the primitive run
with the wallet's account id below the other account's and above it: PostgreSQL takes
row locks in id order, with a statement of its own for each order."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import checks, ledger, outbox, pledges
from core.errors import Conflict, InsufficientFunds, NotFound
from core.models import (
    Account,
    Loan,
    Member,
    OutboxMessage,
    Pledge,
    PledgeStatus,
    Purpose,
    Transfer,
)
from tests.support import START

BALANCE = 50_000
EXPIRES = START + timedelta(days=14)

# Follow-on writes on rows every test has, each on a table of its own as a chain needs:
# the lender's member row and the loan's.
NOTE_HOLD = ledger.Step(
    "note", "UPDATE members SET place = CAST({hold_id} AS VARCHAR(40)) "
            "WHERE id = :member_id AND {after}")
TAG_LOAN = ledger.Step("tag", "UPDATE loans SET purpose = :purpose WHERE id = :loan_id AND {after}")
NOWHERE = ledger.Step("nowhere", "UPDATE pledges SET amount = amount WHERE id = -1 AND {after}")


@pytest.fixture(params=["wallet_first", "wallet_last"])
def lender_and_escrow(request, world):
    """A lender with BALANCE in their wallet, and a listed loan's account to hold it
    towards, opened before the wallet or after it; and the loan's id."""
    loan = world.listed_loan() if request.param == "wallet_last" else None
    lender = world.lender(balance=BALANCE)
    loan = loan or world.listed_loan()
    wallet_id = world.wallet(lender).id
    assert (wallet_id < loan.account_id) == (request.param == "wallet_first")
    return lender, wallet_id, loan.account_id, loan.id


def move(wallet_id: int, escrow_id: int, amount: int, key: str = "hold:test",
         loan_id: int | None = None) -> ledger.Movement:
    return ledger.Movement(key=key, debit_id=wallet_id, credit_id=escrow_id, amount=amount,
                           code="pledge_hold", loan_id=loan_id)


def receipt(lender: Member, key: str = "confirmed:test") -> outbox.Sms:
    return outbox.Sms(key=key, phone=lender.phone, language=lender.language,
                      template="sms.pledge_confirmed", purpose=Purpose.RECEIPT,
                      member_id=lender.id, params={"amount": "Ksh 100", "loan": "L1001",
                                                   "percent": 40})


def books(uow, *account_ids):
    """What a refused or rolled-back hold must leave as it was."""
    s = uow.session
    counters = s.execute(select(Account.id, Account.debits_pending, Account.debits_posted,
                                Account.credits_pending, Account.credits_posted)
                         .where(Account.id.in_(account_ids)).order_by(Account.id)).all()
    return (counters, s.scalar(select(func.count()).select_from(Transfer)),
            s.scalar(select(func.count()).select_from(OutboxMessage)),
            s.execute(select(Member.id, Member.place).order_by(Member.id)).all(),
            s.execute(select(Loan.id, Loan.purpose, Loan.pledged).order_by(Loan.id)).all())


def test_a_hold_moves_the_pending_counters_writes_one_transfer_then_its_steps(
        world, lender_and_escrow):
    lender, wallet_id, escrow_id, loan_id = lender_and_escrow
    then = ledger.Then(NOTE_HOLD, TAG_LOAN, outbox.QUEUE_AFTER_HOLD)
    with world.uow() as uow:
        hold = ledger.place_hold(uow, move(wallet_id, escrow_id, 30_000, loan_id=loan_id),
                                 START, expires_at=EXPIRES, then=then,
                                 params={"member_id": lender.id, "purpose": "held",
                                         **outbox.after_hold_values(receipt(lender), START)})
        announced = list(uow.outbox_ids)
        uow.commit()
    with world.uow() as uow:
        s = uow.session
        wallet, escrow = s.get(Account, wallet_id), s.get(Account, escrow_id)
        assert (wallet.debits_pending, wallet.debits_posted, wallet.credits_pending,
                wallet.credits_posted) == (30_000, 0, 0, BALANCE)
        assert (escrow.debits_pending, escrow.debits_posted, escrow.credits_pending,
                escrow.credits_posted) == (0, 0, 30_000, 0)
        row = s.execute(select(Transfer).where(Transfer.key == "hold:test")).scalar_one()
        assert (row.id, row.debit_account_id, row.credit_account_id, row.amount, row.kind,
                row.code, row.hold_state, row.expires_at, row.loan_id, row.payment_id,
                row.pending_id, row.created_at) == (
            hold.id, wallet_id, escrow_id, 30_000, "pending", "pledge_hold", "pending",
            EXPIRES, loan_id, None, None, START)
        assert hold == ledger.Hold(row.id, "hold:test", "pending", "pending", wallet_id,
                                   escrow_id, 30_000, "pledge_hold", loan_id)
        assert s.get(Member, lender.id).place == str(hold.id)
        assert s.get(Loan, loan_id).purpose == "held"
        sms = s.execute(select(OutboxMessage).where(
            OutboxMessage.key == "confirmed:test")).scalar_one()
        assert (sms.key, sms.phone, sms.status, sms.purpose, sms.next_attempt_at) == (
            "confirmed:test", lender.phone, "queued", "receipt", START)
        assert "L1001" in sms.text
        assert announced == [sms.id]
        assert checks.check(uow) == []
    assert world.wallet(lender).available == BALANCE - 30_000


def test_a_hold_beyond_the_wallet_is_refused_and_writes_nothing(world, lender_and_escrow):
    lender, wallet_id, escrow_id, loan_id = lender_and_escrow
    then = ledger.Then(NOTE_HOLD, outbox.QUEUE_AFTER_HOLD)
    with world.uow() as uow:
        ledger.place_hold(uow, move(wallet_id, escrow_id, 20_000, key="hold:first"), START,
                          expires_at=EXPIRES)
        before = books(uow, wallet_id, escrow_id)
        with pytest.raises(InsufficientFunds) as refused:
            ledger.place_hold(uow, move(wallet_id, escrow_id, BALANCE - 20_000 + 1), START,
                              expires_at=EXPIRES, then=then,
                              params={"member_id": lender.id,
                                      **outbox.after_hold_values(receipt(lender), START)})
        assert refused.value.params == {"available": BALANCE - 20_000,
                                        "account_id": wallet_id}
        assert books(uow, wallet_id, escrow_id) == before  # in this very transaction
        assert uow.outbox_ids == []
        uow.commit()  # a refusal leaves nothing to undo: committing after it is safe
    with world.uow() as uow:
        assert books(uow, wallet_id, escrow_id) == before
        assert checks.check(uow) == []


def test_the_whole_wallet_can_be_held(world, lender_and_escrow):
    lender, wallet_id, escrow_id, loan_id = lender_and_escrow
    with world.uow() as uow:
        ledger.place_hold(uow, move(wallet_id, escrow_id, BALANCE), START, expires_at=None)
        uow.commit()
    assert world.wallet(lender).available == 0


@pytest.mark.parametrize("missing", ["debit", "credit"])
def test_a_hold_naming_no_account_is_refused_and_writes_nothing(world, lender_and_escrow,
                                                               missing):
    lender, wallet_id, escrow_id, loan_id = lender_and_escrow
    # An id below both and one above both: either order of the two accounts' ids.
    for absent in (0, 999_999):
        debit, credit = (absent, escrow_id) if missing == "debit" else (wallet_id, absent)
        with world.uow() as uow:
            before = books(uow, wallet_id, escrow_id)
            with pytest.raises(NotFound) as refused:
                ledger.place_hold(uow, move(debit, credit, 1_000), START, expires_at=None,
                                  then=ledger.Then(NOTE_HOLD), params={"member_id": lender.id})
            assert refused.value.params == {"account_id": absent}
            assert books(uow, wallet_id, escrow_id) == before


def test_a_step_that_changes_no_row_stops_the_chain_and_raises(world, lender_and_escrow):
    """Decided: the chain raises Unfollowed at the first step that changes no row, and
    runs none after it. The hold and the steps before it were written in this
    transaction, so the use case's rollback (or its savepoint's, as the SMS handler
    runs each command in one) undoes them all: nothing half-done is ever committed."""
    lender, wallet_id, escrow_id, loan_id = lender_and_escrow
    then = ledger.Then(NOTE_HOLD, NOWHERE, TAG_LOAN, outbox.QUEUE_AFTER_HOLD)
    params = {"member_id": lender.id, "purpose": "never",
              **outbox.after_hold_values(receipt(lender), START)}
    with world.uow() as uow:
        before = books(uow, wallet_id, escrow_id)
        with pytest.raises(ledger.Unfollowed) as stopped:
            ledger.place_hold(uow, move(wallet_id, escrow_id, 10_000), START,
                              expires_at=EXPIRES, then=then, params=params)
        assert stopped.value.step == "nowhere"
        assert isinstance(stopped.value, Conflict)
        assert uow.session.scalar(select(Loan.purpose).where(Loan.id == loan_id)) != "never"
        assert uow.session.scalar(select(func.count()).where(
            OutboxMessage.key == "confirmed:test")) == 0
        assert uow.outbox_ids == []  # nothing announced
        # ... while the hold and the step before it were made, in this transaction only
        assert uow.session.scalar(select(Member.place).where(Member.id == lender.id)) == str(
            uow.session.scalar(select(Transfer.id).where(Transfer.key == "hold:test")))
    with world.uow() as uow:  # left without commit: rolled back
        assert books(uow, wallet_id, escrow_id) == before
    with world.uow() as uow:  # in a savepoint, the rest of the transaction commits
        with pytest.raises(ledger.Unfollowed), uow.session.begin_nested():
            ledger.place_hold(uow, move(wallet_id, escrow_id, 10_000), START,
                              expires_at=EXPIRES, then=then, params=params)
        uow.session.get(Member, lender.id).name = "Committed Lender"
        uow.commit()
    with world.uow() as uow:
        assert books(uow, wallet_id, escrow_id) == before
        assert uow.session.get(Member, lender.id).name == "Committed Lender"
        assert checks.check(uow) == []


def test_the_receipt_is_written_once(world, lender_and_escrow):
    """The outbox step skips a key already written, as outbox.queue does: not a failure
    of the chain (the hold stands), and nothing announced twice."""
    lender, wallet_id, escrow_id, loan_id = lender_and_escrow
    then = ledger.Then(outbox.QUEUE_AFTER_HOLD)
    announced = []
    for n in (1, 2):
        with world.uow() as uow:
            ledger.place_hold(uow, move(wallet_id, escrow_id, 5_000, key=f"hold:{n}"), START,
                              expires_at=EXPIRES, then=then,
                              params=outbox.after_hold_values(receipt(lender), START))
            announced.append(list(uow.outbox_ids))
            uow.commit()
    with world.uow() as uow:
        ids = uow.session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.key == "confirmed:test")).all()
        assert uow.session.scalar(select(func.count()).where(
            Transfer.key.in_(["hold:1", "hold:2"]))) == 2
    assert announced == [ids, []] and len(ids) == 1
    with world.uow() as uow:  # queue agrees: the key is taken
        assert outbox.queue(uow, [receipt(lender)], START) == []


def test_a_chain_is_checked_when_it_is_built_and_params_cannot_shadow_the_hold(world):
    for steps in ((NOTE_HOLD, NOTE_HOLD),  # one name twice
                  (outbox.QUEUE_AFTER_HOLD, NOTE_HOLD),  # an optional step must come last
                  (NOTE_HOLD, ledger.Step("again", "UPDATE members SET name = :name "
                                                   "WHERE id = :member_id AND {after}")),
                  (ledger.Step("books", "UPDATE accounts SET kind = kind WHERE {after}"),),
                  (ledger.Step("read", "SELECT 1 WHERE {after}"),)):
        with pytest.raises(ValueError):
            ledger.Then(*steps)
    lender = world.lender(balance=BALANCE)
    with world.uow() as uow, pytest.raises(ValueError):
        wallet_id = ledger.wallet_id(uow, lender.id)
        ledger.place_hold(uow, move(wallet_id, wallet_id + 1, 1), START, expires_at=None,
                          then=ledger.Then(NOTE_HOLD),
                          params={"amount": 2, "member_id": lender.id})


# ---------------------------------------------------------------- through confirm_pledge

@pytest.mark.parametrize("completes", [False, True])
def test_a_confirmation_beyond_the_wallet_says_what_it_holds_and_changes_nothing(
        world, completes):
    """The pledge's hold is the same primitive on both backends, for a pledge that leaves
    the loan open and for the one that completes it."""
    loan = world.listed_loan(amount=300_000)
    amount, left = (300_000, 100_000) if completes else (100_000, 60_000)
    lender = world.lender(balance=amount)
    pledge = world.pledge(lender, loan, amount, confirm=False)
    # the wallet shrinks after the pledge was proposed
    world.withdraw(lender, amount - left, key="shrink")
    wallet_id = world.wallet(lender).id
    with world.uow() as uow:
        before = books(uow, wallet_id, loan.account_id)
    with world.uow() as uow, pytest.raises(InsufficientFunds) as refused:
        pledges.confirm_pledge(uow, phone=lender.phone, code=pledge.code, now=world.now)
    assert refused.value.params == {"available": world.settings.fmt(left)}
    with world.uow() as uow:
        assert books(uow, wallet_id, loan.account_id) == before
        assert uow.session.get(Pledge, pledge.id).status == PledgeStatus.PROPOSED
        assert uow.session.get(Loan, loan.id).pledged == 0


def test_a_confirmation_holds_claims_adds_and_tells_in_one_go(world):
    loan = world.listed_loan(amount=300_000)
    lender = world.lender(balance=100_000)
    pledge = world.pledge(lender, loan, 100_000, confirm=False)
    wallet_id = world.wallet(lender).id
    with world.uow() as uow:
        done = pledges.confirm_pledge(uow, phone=lender.phone, code=pledge.code, now=world.now)
        announced = list(uow.outbox_ids)
        uow.commit()
    assert done.status == PledgeStatus.CONFIRMED and not done.funded
    with world.uow() as uow:
        s = uow.session
        claimed = s.get(Pledge, pledge.id)
        hold = s.get(Transfer, claimed.hold_id)
        assert (claimed.status, claimed.confirmed_at) == (PledgeStatus.CONFIRMED, world.now)
        assert (hold.key, hold.amount, hold.debit_account_id, hold.credit_account_id,
                hold.hold_state, hold.expires_at) == (
            f"hold:{pledge.id}", 100_000, wallet_id, loan.account_id,
            "pending", loan.deadline)
        assert s.get(Loan, loan.id).pledged == 100_000
        told = s.execute(select(OutboxMessage).where(
            OutboxMessage.key == f"confirmed:{pledge.id}")).scalar_one()
        assert announced == [told.id]
        assert checks.check(uow) == []
