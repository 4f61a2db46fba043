"""Double-entry ledger after TigerBeetle: accounts with four counters, immutable transfers.

The one place that moves money. Rules enforced here and nowhere else:
- a transfer moves a positive amount from a debit account to a different credit account;
- its key is its idempotency key: the same key with the same fields returns the first
  transfer, with different fields raises Conflict("ledger.key_reused");
- a pending transfer (a hold) is posted or voided exactly once (a conditional update on
  its `hold_state` decides races);
- an account with `no_overdraft` refuses any change that would leave
  debits_pending + debits_posted > credits_posted (checked in the same UPDATE that
  changes it, so concurrent writers cannot both pass; `_covered` is the condition,
  written once for every such UPDATE);
- counters are updated in ascending account id order, so PostgreSQL row locks are
  always taken in one order and writers cannot deadlock on accounts;
- both accounts of a transfer exist: the counter updates must each change one row, or
  the transfer is refused (NotFound "ledger.no_account"). This is the ledger's own check
  rather than a foreign key: on PostgreSQL the five foreign-key triggers of `transfers`
  were two thirds of the cost of writing a 10,000-lender repayment (migration 0003).
  `harambee check` reports any transfer naming a row that does not exist.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.bulk import add_to_rows, insert_rows, rowcount
from core.db import UnitOfWork
from core.errors import Conflict, InsufficientFunds, InvalidInput, NotFound
from core.models import Account, AccountKind, HoldState, Transfer, TransferKind

_TRANSFERS = Transfer.__table__
_ACCOUNTS = Account.__table__


def _covered(debits: str, credits: str | None = None) -> str:
    """The no-overdraft rule, as the SQL condition of an UPDATE of `accounts` that adds
    `debits` to the account's debits (pending or posted) and `credits` to its posted
    credits: the one place it is written."""
    covered = f"debits_pending + debits_posted + {debits} <= credits_posted"
    return f"(NOT no_overdraft OR {covered}{f' + {credits}' if credits else ''})"


FEES = "platform:fees"
SUSPENSE = "platform:suspense"


def mobile_money_code(provider: str) -> str:
    return f"mobile_money:{provider}"


def payout_code(provider: str) -> str:
    return f"payout:{provider}"


@dataclass(frozen=True)
class Movement:
    """A transfer to make: the caller's key, the two accounts, the amount and why."""

    key: str
    debit_id: int
    credit_id: int
    amount: int
    code: str
    loan_id: int | None = None
    payment_id: int | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """A pending transfer as plain values: what resolving it reads. `HOLD_COLUMNS`
    selects them in this order, so `Hold(*row)` builds one without an ORM object."""

    id: int
    key: str
    kind: str
    hold_state: str | None
    debit_account_id: int
    credit_account_id: int
    amount: int
    code: str
    loan_id: int | None


HOLD_COLUMNS = (Transfer.id, Transfer.key, Transfer.kind, Transfer.hold_state,
                Transfer.debit_account_id, Transfer.credit_account_id, Transfer.amount,
                Transfer.code, Transfer.loan_id)


# ---------------------------------------------------------------- accounts

def find_account(uow: UnitOfWork, code: str) -> Account | None:
    return uow.session.scalar(select(Account).where(Account.code == code))


def ensure_account(uow: UnitOfWork, code: str, kind: AccountKind, *,
                   member_id: int | None = None, no_overdraft: bool = False) -> Account:
    """The account with this code, opened on first use (two transactions opening it at
    once both get the one row: the insert skips a code that already exists)."""
    account = find_account(uow, code)
    if account is None:
        _open(uow, code, kind, member_id=member_id, no_overdraft=no_overdraft)
        account = find_account(uow, code)
        assert account is not None
    return account


def _open(uow: UnitOfWork, code: str, kind: AccountKind, *, member_id: int | None,
          no_overdraft: bool) -> None:
    dialect = uow.session.get_bind().dialect.name
    make: Any = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(dialect)
    values = {"code": code, "kind": str(kind), "member_id": member_id,
              "no_overdraft": no_overdraft, "debits_pending": 0, "debits_posted": 0,
              "credits_pending": 0, "credits_posted": 0}
    if make is None:
        uow.session.execute(insert(Account).values(**values))
    else:
        uow.session.execute(make(Account).values(**values)
                            .on_conflict_do_nothing(index_elements=["code"]))


def wallet_code(member_id: int) -> str:
    return f"wallet:{member_id}"


def wallet(uow: UnitOfWork, member_id: int) -> Account:
    """A member's wallet: never negative."""
    return ensure_account(uow, wallet_code(member_id), AccountKind.WALLET,
                          member_id=member_id, no_overdraft=True)


def wallet_id(uow: UnitOfWork, member_id: int) -> int:
    """The id of a member's wallet (opened on first use): one indexed lookup."""
    found = uow.session.scalar(select(Account.id).where(Account.code == wallet_code(member_id)))
    return found if found is not None else wallet(uow, member_id).id


def lock_accounts(uow: UnitOfWork, ids: Iterable[int]) -> None:
    """Take the row locks of these accounts now, in ascending id order (PostgreSQL; a
    SQLite writer already holds the database lock). For a use case about to change many
    accounts in several steps: later updates then never wait while holding a lock out
    of order. Raises NotFound("ledger.no_account") when one does not exist."""
    wanted = sorted(set(ids))
    if wanted and uow.is_postgres:
        locked = uow.session.execute(_LOCK_IN_ORDER, {"ids": wanted}).scalar_one()
        if locked != len(wanted):
            _refuse_missing(uow, wanted)


_LOCK_IN_ORDER = text(
    "SELECT count(*) FROM (SELECT id FROM accounts WHERE id = ANY(CAST(:ids AS integer[])) "
    "ORDER BY id FOR UPDATE) AS locked")


def _refuse_missing(uow: UnitOfWork, ids: Iterable[int]) -> None:
    wanted = sorted(set(ids))
    found = set(uow.session.scalars(select(Account.id).where(
        Account.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound("ledger.no_account", account_id=missing[0])


def system_account(uow: UnitOfWork, code: str) -> Account:
    kind = {
        "platform:fees": AccountKind.FEES, "platform:suspense": AccountKind.SUSPENSE,
    }.get(code) or (AccountKind.MOBILE_MONEY if code.startswith("mobile_money:")
                    else AccountKind.PAYOUT)
    return ensure_account(uow, code, kind)


# ---------------------------------------------------------------- transfers

def transfer(uow: UnitOfWork, move: Movement, now: datetime, *, pending: bool = False,
             expires_at: datetime | None = None, fresh: bool = False) -> Transfer:
    """Make one transfer (posted, or a pending hold); idempotent by `move.key`.

    `fresh=True` skips the lookup of an earlier transfer with this key, for callers whose
    own state already proves it is new (a reused key still fails on the unique index).
    """
    _validate(move)
    kind = TransferKind.PENDING if pending else TransferKind.POSTED
    if not fresh:
        existing = uow.session.scalar(select(Transfer).where(Transfer.key == move.key))
        if existing is not None:
            _same_or_conflict(existing, move, kind)
            return existing
    if pending:
        _apply(uow, {move.debit_id: (move.amount, 0, 0, 0), move.credit_id: (0, 0, move.amount, 0)})
    else:
        _apply(uow, {move.debit_id: (0, move.amount, 0, 0), move.credit_id: (0, 0, 0, move.amount)})
    row = Transfer(key=move.key, debit_account_id=move.debit_id, credit_account_id=move.credit_id,
                   amount=move.amount, kind=str(kind), code=move.code, loan_id=move.loan_id,
                   payment_id=move.payment_id, created_at=now,
                   hold_state=HoldState.PENDING if pending else None, expires_at=expires_at)
    uow.session.add(row)
    uow.session.flush()
    return row


def transfer_many(uow: UnitOfWork, moves: Sequence[Movement], now: datetime, *,
                  pending: bool = False, expires_at: datetime | None = None) -> None:
    """Transfers in bulk (one repayment to thousands of lenders), posted or as holds.

    Callers pass fresh keys made from a row that is itself idempotent (the payment), so
    no per-key lookup is made; a reused key fails on the unique index.
    """
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    debit, credit = (0, 2) if pending else (1, 3)
    kind = TransferKind.PENDING if pending else TransferKind.POSTED
    hold_state = HoldState.PENDING if pending else None
    rows = []
    for move in moves:
        _validate(move)
        deltas[move.debit_id][debit] += move.amount
        deltas[move.credit_id][credit] += move.amount
        rows.append({"key": move.key, "debit_account_id": move.debit_id,
                     "credit_account_id": move.credit_id, "amount": move.amount,
                     "kind": kind, "code": move.code, "loan_id": move.loan_id,
                     "payment_id": move.payment_id, "created_at": now, "hold_state": hold_state,
                     "expires_at": expires_at if pending else None, "pending_id": None})
    if not rows:
        return
    _apply(uow, {k: (v[0], v[1], v[2], v[3]) for k, v in deltas.items()})
    insert_rows(uow.session, _TRANSFERS, rows)


def fan_out(uow: UnitOfWork, *, debit_id: int, legs: Sequence[tuple[str, int, int]],
            code: str, now: datetime, loan_id: int | None = None,
            payment_id: int | None = None) -> None:
    """Posted transfers from one account to many (a repayment's shares to 10,000
    lenders): `legs` are (key, credit account id, amount). The rules of transfer_many,
    without an object per leg; keys must be fresh (a reused one fails on the index)."""
    if not legs:
        return
    total = 0
    credits: dict[int, int] = defaultdict(int)
    for _, credit_id, amount in legs:
        if amount <= 0:
            raise InvalidInput("ledger.amount_not_positive")
        credits[credit_id] += amount
        total += amount
    if debit_id in credits:
        raise InvalidInput("ledger.same_account")
    deltas = {account_id: (0, 0, 0, amount) for account_id, amount in credits.items()}
    deltas[debit_id] = (0, total, 0, 0)
    _apply(uow, deltas)
    insert_rows(uow.session, _TRANSFERS,
                [{"key": key, "credit_account_id": credit_id, "amount": amount}
                 for key, credit_id, amount in legs],
                same={"debit_account_id": debit_id, "kind": TransferKind.POSTED, "code": code,
                      "loan_id": loan_id, "payment_id": payment_id, "created_at": now,
                      "hold_state": None, "expires_at": None, "pending_id": None})


def resolve_holds(uow: UnitOfWork, holds: Sequence[Transfer | Hold], now: datetime, *,
                  to: HoldState) -> None:
    """Post, void or expire pending transfers, each exactly once, in one statement.

    A hold already in state `to` is skipped (a retry); one resolved otherwise raises
    Conflict("ledger.hold_resolved").
    """
    if to is HoldState.PENDING:
        raise InvalidInput("ledger.bad_resolution")
    todo = [h for h in holds if h.hold_state != to]
    if any(h.kind != TransferKind.PENDING or h.hold_state != HoldState.PENDING for h in todo):
        raise Conflict("ledger.hold_resolved")
    if not todo:
        return
    ids = sorted(h.id for h in todo)
    changed = rowcount(uow.session.execute(
        update(Transfer).where(Transfer.id.in_(ids), Transfer.hold_state == HoldState.PENDING)
        .values(hold_state=str(to)).execution_options(synchronize_session=False)))
    if changed != len(ids):
        raise Conflict("ledger.hold_resolved")
    posting = to is HoldState.POSTED
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rows = []
    for hold in todo:
        d, c = deltas[hold.debit_account_id], deltas[hold.credit_account_id]
        d[0] -= hold.amount
        c[2] -= hold.amount
        if posting:
            d[1] += hold.amount
            c[3] += hold.amount
        rows.append({"key": f"{'post' if posting else 'void'}:{hold.key}",
                     "debit_account_id": hold.debit_account_id,
                     "credit_account_id": hold.credit_account_id, "amount": hold.amount,
                     "kind": TransferKind.POST if posting else TransferKind.VOID,
                     "code": hold.code, "loan_id": hold.loan_id, "payment_id": None,
                     "pending_id": hold.id, "created_at": now, "hold_state": None,
                     "expires_at": None})
    _apply(uow, {k: (v[0], v[1], v[2], v[3]) for k, v in deltas.items()})
    insert_rows(uow.session, _TRANSFERS, rows)
    for loaded in uow.loaded(Transfer, ids):
        uow.session.expire(loaded, ["hold_state"])


# ---------------------------------------------------------------- internals

_UPDATE_COUNTERS = (
    "UPDATE accounts SET debits_pending = debits_pending + :dp, "
    "debits_posted = debits_posted + :dpo, credits_pending = credits_pending + :cp, "
    "credits_posted = credits_posted + :cpo WHERE id = :id")
_UPDATE_PLAIN = text(_UPDATE_COUNTERS)
_UPDATE_CHECKED = text(f"{_UPDATE_COUNTERS} AND {_covered(':dp + :dpo', ':cpo')}")


_BULK = 50  # from this many accounts, PostgreSQL locks them all first, then one statement


def _apply(uow: UnitOfWork, deltas: dict[int, tuple[int, int, int, int]]) -> None:
    """Change counters in ascending id order; debits are checked against overdraft, and
    every account must exist."""
    if uow.is_postgres and len(deltas) >= _BULK:
        _apply_bulk(uow, deltas)
        return
    plain: list[dict[str, int]] = []
    for account_id in sorted(deltas):
        dp, dpo, cp, cpo = deltas[account_id]
        params = {"id": account_id, "dp": dp, "dpo": dpo, "cp": cp, "cpo": cpo}
        if dp + dpo > 0:
            # Flush what is batched so far: keeps the lock order strictly ascending.
            if plain:
                _update_plain(uow, plain)
                plain = []
            _update_checked(uow, params)
        else:
            plain.append(params)
    if plain:
        _update_plain(uow, plain)
    _forget(uow, deltas)


def _update_plain(uow: UnitOfWork, rows: list[dict[str, int]]) -> None:
    if rowcount(uow.session.execute(_UPDATE_PLAIN, rows)) != len(rows):
        _refuse_missing(uow, (row["id"] for row in rows))


def _update_checked(uow: UnitOfWork, params: dict[str, int]) -> None:
    """A debit: refused when it would overdraw a no-overdraft account."""
    if rowcount(uow.session.execute(_UPDATE_CHECKED, params)) != 1:
        _refuse_missing(uow, [params["id"]])
        raise InsufficientFunds(available=_available(uow, params["id"]),
                                account_id=params["id"])


def _apply_bulk(uow: UnitOfWork, deltas: dict[int, tuple[int, int, int, int]]) -> None:
    """Many accounts on PostgreSQL: take every row lock in id order with one statement,
    check the debited ones one by one, then change the rest with one more."""
    lock_accounts(uow, deltas)
    plain = []
    for account_id in sorted(deltas):
        dp, dpo, cp, cpo = deltas[account_id]
        if dp + dpo > 0:
            _update_checked(uow, {"id": account_id, "dp": dp, "dpo": dpo, "cp": cp,
                                  "cpo": cpo})
        else:
            plain.append((account_id, dp, dpo, cp, cpo))
    # Send just the counters that change in some row (a fan-out changes one of four).
    columns = [(name, index) for index, name in enumerate(
        ("debits_pending", "debits_posted", "credits_pending", "credits_posted"), start=1)
        if any(row[index] for row in plain)]
    add_to_rows(uow.session, _ACCOUNTS, "id",  # every row exists: lock_accounts saw it
                [{"id": row[0], **{name: row[index] for name, index in columns}}
                 for row in plain])
    _forget(uow, deltas)


def _available(uow: UnitOfWork, account_id: int) -> int:
    return uow.session.scalar(select(Account.credits_posted - Account.debits_posted
                                     - Account.debits_pending)
                              .where(Account.id == account_id)) or 0


def forget_accounts(uow: UnitOfWork, ids: Iterable[int]) -> None:
    """Counters changed by a statement outside this module (core.holds): reload any
    cached account on next use."""
    _forget(uow, ids)


def _forget(uow: UnitOfWork, ids: Iterable[int]) -> None:
    """Counters changed behind the ORM's back: reload cached accounts on next use."""
    for account in uow.loaded(Account, ids):
        uow.session.expire(account)


def _validate(move: Movement) -> None:
    if move.amount <= 0:
        raise InvalidInput("ledger.amount_not_positive")
    if move.debit_id == move.credit_id:
        raise InvalidInput("ledger.same_account")


def _same_or_conflict(existing: Transfer, move: Movement, kind: TransferKind) -> None:
    same = (existing.debit_account_id, existing.credit_account_id, existing.amount,
            existing.kind, existing.code) == (move.debit_id, move.credit_id, move.amount,
                                              str(kind), move.code)
    if not same:
        raise Conflict("ledger.key_reused", key=move.key)


def accounts_by_id(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, Account]:
    wanted = list(ids)
    return {a.id: a for a in uow.session.scalars(select(Account).where(Account.id.in_(wanted)))}
