"""The journal has no foreign keys: the ledger itself refuses a transfer that names an
account that does not exist, one at a time or in bulk, and changes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import checks, ledger
from core.errors import InsufficientFunds, InvalidInput, NotFound
from core.models import Transfer, TransferCode
from tests.support import START

MISSING = 999_999
CODE = TransferCode.REFUND  # any real code: these tests are about accounts


def transfers(world):
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(Transfer))


@pytest.mark.parametrize("side", ["debit", "credit"])
def test_one_transfer_to_or_from_no_account_is_refused(world, side):
    lender = world.lender(balance=50_000)
    before = transfers(world)
    with world.uow() as uow, pytest.raises(NotFound) as refused:
        wallet = ledger.wallet(uow, lender.id).id
        debit, credit = (MISSING, wallet) if side == "debit" else (wallet, MISSING)
        ledger.transfer(uow, ledger.Movement(key="t:missing", debit_id=debit, credit_id=credit,
                                             amount=100, code=CODE), START)
    assert refused.value.key == "ledger.no_account"
    assert refused.value.params == {"account_id": MISSING}
    assert transfers(world) == before
    assert world.wallet(lender).balance == 50_000


@pytest.mark.parametrize("lenders", [3, 60])  # below and above the bulk path's threshold
def test_bulk_transfers_naming_no_account_are_refused_whole(world, lenders):
    people = [world.lender(balance=1_000) for _ in range(lenders)]
    payer = world.lender(balance=1_000_000, name="Payer Big")
    before = transfers(world)
    with world.uow() as uow, pytest.raises(NotFound) as refused:
        source = ledger.wallet(uow, payer.id).id
        moves = [ledger.Movement(key=f"t:{i}", debit_id=source,
                                 credit_id=ledger.wallet(uow, p.id).id, amount=10, code=CODE)
                 for i, p in enumerate(people)]
        moves.append(ledger.Movement(key="t:missing", debit_id=source, credit_id=MISSING,
                                     amount=10, code=CODE))
        ledger.transfer_many(uow, moves, START)
    assert refused.value.key == "ledger.no_account"
    assert transfers(world) == before
    assert world.wallet(payer).balance == 1_000_000
    assert all(world.wallet(p).balance == 1_000 for p in people)
    with world.uow() as uow:
        assert checks.check(uow) == []


@pytest.mark.parametrize("lenders", [3, 60])
def test_a_fan_out_naming_no_account_is_refused_whole(world, lenders):
    people = [world.lender(balance=1_000) for _ in range(lenders)]
    payer = world.lender(balance=1_000_000, name="Payer Big")
    before = transfers(world)
    with world.uow() as uow, pytest.raises(NotFound) as refused:
        legs = [(f"f:{i}", ledger.wallet(uow, p.id).id, 10) for i, p in enumerate(people)]
        ledger.fan_out(uow, debit_id=ledger.wallet(uow, payer.id).id,
                       legs=[*legs, ("f:missing", MISSING, 10)], code=CODE, now=START)
    assert refused.value.key == "ledger.no_account"
    assert transfers(world) == before


def test_a_fan_out_moves_each_leg_and_refuses_bad_ones(world):
    people = [world.lender(balance=0) for _ in range(3)]
    payer = world.lender(balance=1_000, name="Payer Big")
    source, *wallets = [world.wallet(m).id for m in (payer, *people)]  # opened, committed
    with world.uow() as uow:
        for legs, key in (([("z", wallets[0], 0)], "ledger.amount_not_positive"),
                          ([("s", source, 5)], "ledger.same_account")):
            with pytest.raises(InvalidInput) as refused:
                ledger.fan_out(uow, debit_id=source, legs=legs, code=CODE, now=START)
            assert refused.value.key == key
        with pytest.raises(InsufficientFunds):  # the debit is checked like any other
            ledger.fan_out(uow, debit_id=source, legs=[("big", wallets[0], 1_001)],
                           code=CODE, now=START)
    with world.uow() as uow:
        ledger.fan_out(uow, debit_id=source, code=CODE, now=START,
                       legs=[(f"ok:{i}", w, 100 * (i + 1)) for i, w in enumerate(wallets)])
        uow.commit()
    assert [world.wallet(p).balance for p in people] == [100, 200, 300]
    assert world.wallet(payer).balance == 400
    with world.uow() as uow:
        assert checks.check(uow) == []
