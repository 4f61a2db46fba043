"""The journal has no foreign keys: the ledger itself refuses a transfer that names an
account that does not exist, one at a time or in bulk, and changes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import checks, ledger
from core.errors import NotFound
from core.models import Transfer
from tests.support import START

MISSING = 999_999


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
                                             amount=100, code="test"), START)
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
                                 credit_id=ledger.wallet(uow, p.id).id, amount=10, code="test")
                 for i, p in enumerate(people)]
        moves.append(ledger.Movement(key="t:missing", debit_id=source, credit_id=MISSING,
                                     amount=10, code="test"))
        ledger.transfer_many(uow, moves, START)
    assert refused.value.key == "ledger.no_account"
    assert transfers(world) == before
    assert world.wallet(payer).balance == 1_000_000
    assert all(world.wallet(p).balance == 1_000 for p in people)
    with world.uow() as uow:
        assert checks.check(uow) == []
