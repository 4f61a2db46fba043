"""Double-entry ledger after TigerBeetle: accounts with four counters, immutable transfers.

The one place that moves money. Rules enforced here and nowhere else:
- a transfer moves a positive amount from a debit account to a different credit account;
- its key is its idempotency key: the same key with the same fields returns the first
  transfer, with different fields raises Conflict("ledger.key_reused") (writers that
  take keys their caller's own state proves new, such as `place_hold`, let the unique
  index refuse a reused one);
- a pending transfer (a hold) is posted or voided exactly once (a conditional update on
  its `hold_state` decides races);
- an account with `no_overdraft` refuses any change that would leave
  debits_pending + debits_posted > credits_posted (checked in the same UPDATE that
  changes it, so concurrent writers cannot both pass; `_covered` is the condition,
  written once for every such UPDATE);
- counters are updated in ascending account id order, so PostgreSQL row locks are
  always taken in one order and writers cannot deadlock on accounts (a hold's debit is
  checked first, so when its credit account has the lower id, that row is locked
  before it);
- both accounts of a transfer exist: the counter updates must each change one row, or
  the transfer is refused (NotFound "ledger.no_account"). This is the ledger's own check
  rather than a foreign key: on PostgreSQL the five foreign-key triggers of `transfers`
  were two thirds of the cost of writing a 10,000-lender repayment (migration 0003).
  `harambee check` reports any transfer naming a row that does not exist;
- a hold placed with `place_hold` may bring writes that stand or fall with it (`Then`,
  `Step`: the pledge claiming it, the loan's pledged total, the lender's receipt), each
  made only if the one before it changed its row. A refused hold writes nothing; a
  write that changes no row raises Unfollowed, and the use case rolls back. On
  PostgreSQL the hold and its writes are one statement (data-modifying CTEs: one round
  trip on the hot path of `YES <code>`); on any other backend the very same steps run
  one statement at a time. `place_hold` is the one place that chooses between them.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import TypeEngine

from core.bulk import add_to_rows, insert_rows, rowcount
from core.db import UnitOfWork
from core.errors import Conflict, InsufficientFunds, InvalidInput, NotFound
from core.models import Account, AccountKind, HoldState, Transfer, TransferCode, TransferKind

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
    code: TransferCode
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
    code: TransferCode
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
    values = {"code": code, "kind": kind, "member_id": member_id,
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
    """One of the platform's own accounts (fees, suspense, a provider's mirror)."""
    kind = {FEES: AccountKind.FEES, SUSPENSE: AccountKind.SUSPENSE}.get(code) or (
        AccountKind.MOBILE_MONEY if code.startswith("mobile_money:") else AccountKind.PAYOUT)
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
                   amount=move.amount, kind=kind, code=move.code, loan_id=move.loan_id,
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
        .values(hold_state=to).execution_options(synchronize_session=False)))
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


# ---------------------------------------------------------------- holds

class Unfollowed(Conflict):
    """A write that had to follow a hold changed no row. The hold and the writes before
    it were made in this transaction: raising out of the unit of work (or savepoint)
    rolls them back, as after any refusal in a use case. `step` is the write's name."""

    def __init__(self, step: str) -> None:
        super().__init__(step=step)
        self.step = step


@dataclass(frozen=True)
class Step:
    """A write that must stand or fall with a hold (a pledge marking itself confirmed, a
    loan's pledged total, the lender's receipt): one UPDATE, or one INSERT ... SELECT,
    whose WHERE ends in `{after}`, the ledger's condition that everything before it was
    done; `{hold_id}` stands for the new hold's id. `place_hold` adds
    `RETURNING <returning>`: a column never NULL, so a value means a row was changed.

    The statement reads the hold's own values as `:key`, `:debit_id`, `:credit_id`,
    `:amount`, `:code`, `:loan_id`, `:payment_id`, `:expires_at` and `:now`, and its own
    from the `params` given to `place_hold`; `types` types those of its own that need it
    (datetimes). It writes a table no other write of the hold writes (`accounts` and
    `transfers` are the hold's own), and reads no table another one writes: in one
    statement PostgreSQL changes a row once and every part sees the tables as they were
    before it, where one statement at a time each sees the last.

    `optional`: changing no row is no failure (an outbox row whose key is already
    written); such a step comes last. `written` is called with the value it returned
    once the hold and all its steps are made (the outbox announces its row).
    """

    name: str
    sql: str
    returning: str = "id"
    types: tuple[tuple[str, TypeEngine[Any]], ...] = ()
    optional: bool = False
    written: Callable[[UnitOfWork, Any], None] | None = None


_DATETIME = Transfer.__table__.c.created_at.type
_HOLD_VALUES = ("key", "debit_id", "credit_id", "amount", "code", "loan_id", "payment_id",
                "expires_at", "now", "hold_id")

# The ledger's own steps of a hold: the debit (checked), the credit, the transfer row.
# The debit comes first, so a refusal writes nothing; it also sees that the credit
# account exists (accounts are never deleted, so no lock is needed to know it).
_DEBIT = Step("debit", "UPDATE accounts SET debits_pending = debits_pending + :amount "
                       f"WHERE id = :debit_id AND {_covered(':amount')} AND {{after}}")
_CREDIT = Step("credit", "UPDATE accounts SET credits_pending = credits_pending + :amount "
                         "WHERE id = :credit_id AND {after}")
_HOLD = Step("hold", (
    "INSERT INTO transfers (key, debit_account_id, credit_account_id, amount, kind, code, "
    "hold_state, expires_at, loan_id, payment_id, created_at) "
    f"SELECT :key, :debit_id, :credit_id, :amount, '{TransferKind.PENDING}', :code, "
    f"'{HoldState.PENDING}', :expires_at, :loan_id, :payment_id, :now WHERE {{after}}"),
    types=(("expires_at", _DATETIME), ("now", _DATETIME)))
_CREDIT_EXISTS = "EXISTS (SELECT 1 FROM accounts WHERE id = :credit_id)"
# Row locks in ascending id order with the debit still first: when the credit account
# has the lower id, its row is locked before the debit's, with the lock its UPDATE
# takes anyway. (Locking both rows first every time cost 50 us a confirmation, 2% of
# one in bench/ledger.py.)
_CREDIT_LOCKED = "credit_locked AS (SELECT id FROM accounts WHERE id = :credit_id " \
                 "FOR NO KEY UPDATE)"


def _written_table(step: Step) -> str:
    found = re.match(r"\s*(?:UPDATE|INSERT\s+INTO)\s+(\w+)", step.sql, re.IGNORECASE)
    if found is None:
        raise ValueError(f"step {step.name} is not one UPDATE or INSERT")
    return found.group(1).lower()


def _statement(sql: str, steps: Iterable[Step]) -> TextClause:
    """`sql` with the steps' bind types (those it names)."""
    types = {name: type_ for step in steps for name, type_ in step.types}
    named = set(re.findall(r"(?<![:\w]):(\w+)", sql))
    return text(sql).bindparams(*(bindparam(name, type_=type_)
                                  for name, type_ in types.items() if name in named))


def _apart(step: Step, **marks: str) -> TextClause:
    return _statement(step.sql.format(**marks) + f" RETURNING {step.returning}",
                      (_HOLD, step))


def _together(steps: Sequence[Step], *, credit_first: bool) -> TextClause:
    """One statement of data-modifying CTEs: the ledger's steps then `steps`, each
    only if the one before it changed its row; it returns the hold's id and each step's
    value, NULL from the first step that changed no row on."""
    ctes = [_CREDIT_LOCKED] if credit_first else []
    after = "EXISTS (SELECT 1 FROM credit_locked)" if credit_first else _CREDIT_EXISTS
    named = [("debit", _DEBIT), ("credit", _CREDIT), ("hold", _HOLD),
             *((f"then_{step.name}", step) for step in steps)]
    for cte, step in named:
        body = step.sql.format(after=after, hold_id="(SELECT value FROM hold)")
        ctes.append(f"{cte} AS ({body} RETURNING {step.returning} AS value)")
        after = f"EXISTS (SELECT 1 FROM {cte})"
    values = ", ".join(f"(SELECT value FROM {cte})" for cte, _ in named[2:])
    return _statement(f"WITH {', '.join(ctes)} SELECT {values}", (_HOLD, *steps))


class Then:
    """The steps that follow a hold, in order, each made only if the one before it
    changed its row, with their statements built once (build a Then at module level:
    holds are a hot path). `together`: for PostgreSQL, the hold and every step in one
    statement (two forms, by which account's id is the lower). `apart`: for any other
    backend, each step's own statement, to run one at a time after the hold's.
    """

    def __init__(self, *steps: Step) -> None:
        names = [step.name for step in steps]
        if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
            raise ValueError(f"steps need distinct plain names: {names}")
        if any(step.optional for step in steps[:-1]):
            raise ValueError("only the last step may be optional")
        # One writer per table keeps the two forms alike (see Step).
        tables = ["accounts", "transfers", *map(_written_table, steps)]
        if len(set(tables)) != len(tables):
            raise ValueError(f"each step writes a table of its own: {tables}")
        self.steps = steps
        self.together = (_together(steps, credit_first=False),  # indexed by credit_first
                         _together(steps, credit_first=True))
        self.apart = tuple(_apart(step, after="true", hold_id=":hold_id") for step in steps)


NOTHING = Then()
_DEBIT_APART = _apart(_DEBIT, after=_CREDIT_EXISTS)
_CREDIT_APART, _HOLD_APART = (_apart(step, after="true") for step in (_CREDIT, _HOLD))


def place_hold(uow: UnitOfWork, move: Movement, now: datetime, *,
               expires_at: datetime | None, then: Then = NOTHING,
               params: Mapping[str, Any] | None = None) -> Hold:
    """Hold `move.amount` on the debit account towards the credit account (a pending
    transfer), then make `then`'s writes with `params`; return the hold.

    Refused with InsufficientFunds (the available amount, unformatted) when a
    no-overdraft account would be overdrawn, or NotFound("ledger.no_account"): nothing
    was written then, and the caller may carry on. A step that changes no row raises
    Unfollowed: the hold and the steps before it were written, and the transaction (or
    savepoint) must roll back, as raising out of the use case does. `move.key` must be
    new, as the caller's own state proves (a pledge still proposed): a reused key fails
    on the unique index.

    On PostgreSQL this is one round trip; on any other backend, the same steps one at a
    time.
    """
    _validate(move)
    if params and not params.keys().isdisjoint(_HOLD_VALUES):
        raise ValueError(f"params may not name the hold's own values {_HOLD_VALUES}")
    values = {**(params or {}), "key": move.key, "debit_id": move.debit_id,
              "credit_id": move.credit_id, "amount": move.amount, "code": move.code,
              "loan_id": move.loan_id, "payment_id": move.payment_id,
              "expires_at": expires_at, "now": now}
    if uow.is_postgres:
        credit_first = move.credit_id < move.debit_id
        hold_id, *returned = uow.connection.execute(then.together[credit_first], values).one()
    else:
        hold_id, returned = _one_at_a_time(uow, then, values)
    if hold_id is None:
        _refuse_missing(uow, (move.debit_id, move.credit_id))
        raise InsufficientFunds(available=_available(uow, move.debit_id),
                                account_id=move.debit_id)
    _forget(uow, (move.debit_id, move.credit_id))
    for step, value in zip(then.steps, returned, strict=True):
        if value is None and not step.optional:
            raise Unfollowed(step.name)
    for step, value in zip(then.steps, returned, strict=True):
        if step.written is not None and value is not None:
            step.written(uow, value)
    return Hold(hold_id, move.key, TransferKind.PENDING, HoldState.PENDING, move.debit_id,
                move.credit_id, move.amount, move.code, move.loan_id)


def _one_at_a_time(uow: UnitOfWork, then: Then,
                   values: dict[str, Any]) -> tuple[int | None, list[Any]]:
    """`Then.apart`: the hold's id (None, and nothing written, when refused) and each
    step's value, None from the first step that changed no row on."""
    execute = uow.connection.execute
    returned: list[Any] = [None] * len(then.steps)
    if execute(_DEBIT_APART, values).first() is None:
        return None, returned
    execute(_CREDIT_APART, values).one()  # the debit saw that it exists
    values["hold_id"] = hold_id = execute(_HOLD_APART, values).scalar_one()
    for index, statement in enumerate(then.apart):
        row = execute(statement, values).first()
        if row is None:
            break
        returned[index] = row[0]
    return hold_id, returned


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
                                              kind, move.code)
    if not same:
        raise Conflict("ledger.key_reused", key=move.key)


def accounts_by_id(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, Account]:
    wanted = list(ids)
    return {a.id: a for a in uow.session.scalars(select(Account).where(Account.id.in_(wanted)))}
