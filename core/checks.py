"""The seven ledger invariants of DESIGN.md, checked against the database.

`harambee check` runs `check()`; tests run it after every step of a random walk.
Each violation names the invariant it breaks.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import aliased

from core import confirmations
from core.db import UnitOfWork
from core.models import (
    PAYOUTS_IN_FLIGHT,
    Account,
    Guarantee,
    GuaranteeStatus,
    HoldState,
    Loan,
    Payment,
    PaymentKind,
    Payout,
    PayoutPurpose,
    PayoutStatus,
    Pledge,
    PledgeStatus,
    Transfer,
    TransferCode,
    TransferKind,
)

INVARIANTS = {
    1: "posted debits = posted credits, pending debits = pending credits",
    2: "each account's counters equal the sum of its transfers",
    3: "no wallet negative; no loan funded above its amount",
    4: "a hold resolves at most once; a loan's funded amount = its posted pledges",
    5: "a repayment's allocations sum exactly to the repayment",
    6: "every external movement maps to exactly one transfer",
    7: "a guarantee hold never exceeds what is guaranteed; it is released or called once",
}


@dataclass(frozen=True)
class Violation:
    invariant: int
    detail: str

    def __str__(self) -> str:
        return f"invariant {self.invariant} ({INVARIANTS[self.invariant]}): {self.detail}"


def check(uow: UnitOfWork, now: datetime | None = None) -> list[Violation]:
    """Every violation found (empty when the books are sound) as of `now` (default:
    the wall clock), which says which paybill confirmations are overdue."""
    now = now or datetime.now(UTC)
    with uow:
        found: list[Violation] = []
        if uow.is_postgres and not uow.session.in_transaction():
            # One snapshot for every query, so a busy system is not mistaken for a broken one.
            uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        for part in (_totals, _counters, _limits, _holds, _allocations, _external, _references,
                     _guarantees):
            found.extend(part(uow))
        found.extend(_confirmations(uow, now))
        return found


def _totals(uow: UnitOfWork) -> list[Violation]:
    dp, dpo, cp, cpo = uow.session.execute(select(
        func.coalesce(func.sum(Account.debits_pending), 0),
        func.coalesce(func.sum(Account.debits_posted), 0),
        func.coalesce(func.sum(Account.credits_pending), 0),
        func.coalesce(func.sum(Account.credits_posted), 0))).one()
    out = []
    if dpo != cpo:
        out.append(Violation(1, f"posted debits {dpo} != posted credits {cpo}"))
    if dp != cp:
        out.append(Violation(1, f"pending debits {dp} != pending credits {cp}"))
    return out


def _counters(uow: UnitOfWork) -> list[Violation]:
    s = uow.session
    posted = Transfer.kind.in_([TransferKind.POSTED, TransferKind.POST])
    pending = (Transfer.kind == TransferKind.PENDING) & (Transfer.hold_state == HoldState.PENDING)
    sums: dict[int, list[int]] = {}
    for side, account_col in ((0, Transfer.debit_account_id), (2, Transfer.credit_account_id)):
        rows = s.execute(select(
            account_col,
            func.coalesce(func.sum(case((pending, Transfer.amount), else_=0)), 0),
            func.coalesce(func.sum(case((posted, Transfer.amount), else_=0)), 0),
        ).group_by(account_col))
        for account_id, pend, post in rows:
            entry = sums.setdefault(account_id, [0, 0, 0, 0])
            entry[side], entry[side + 1] = int(pend), int(post)
    out = []
    for acc in s.execute(select(Account.id, Account.code, Account.debits_pending,
                                Account.debits_posted, Account.credits_pending,
                                Account.credits_posted)):
        expected = sums.get(acc.id, [0, 0, 0, 0])
        actual = [acc.debits_pending, acc.debits_posted, acc.credits_pending, acc.credits_posted]
        if actual != expected:
            out.append(Violation(2, f"account {acc.code}: counters {actual} != transfers "
                                    f"{expected}"))
    return out


def _limits(uow: UnitOfWork) -> list[Violation]:
    s = uow.session
    out = [Violation(3, f"account {code} overdrawn by {over}") for code, over in s.execute(
        select(Account.code, Account.debits_pending + Account.debits_posted
               - Account.credits_posted).where(
            Account.no_overdraft.is_(True),
            Account.debits_pending + Account.debits_posted > Account.credits_posted))]
    out += [Violation(3, f"loan {number}: pledged {pledged}/funded {funded} > amount {amount}")
            for number, pledged, funded, amount in s.execute(
                select(Loan.number, Loan.pledged, Loan.funded, Loan.amount).where(
                    (Loan.pledged > Loan.amount) | (Loan.funded > Loan.amount)))]
    return out


def _holds(uow: UnitOfWork) -> list[Violation]:
    s = uow.session
    out = [Violation(4, f"hold {pid} resolved {n} times") for pid, n in s.execute(
        select(Transfer.pending_id, func.count()).where(Transfer.pending_id.is_not(None))
        .group_by(Transfer.pending_id).having(func.count() > 1))]
    resolution = select(Transfer.pending_id).where(Transfer.pending_id.is_not(None))
    out += [Violation(4, f"hold {tid} is {state} with no resolving transfer")
            for tid, state in s.execute(select(Transfer.id, Transfer.hold_state).where(
                Transfer.kind == TransferKind.PENDING, Transfer.hold_state != HoldState.PENDING,
                Transfer.id.not_in(resolution)))]
    out += [Violation(4, f"hold {tid} is pending but was resolved") for (tid,) in s.execute(
        select(Transfer.id).where(Transfer.kind == TransferKind.PENDING,
                                  Transfer.hold_state == HoldState.PENDING,
                                  Transfer.id.in_(resolution)))]
    expected_hold = {PledgeStatus.CONFIRMED: [HoldState.PENDING],
                     PledgeStatus.POSTED: [HoldState.POSTED],
                     PledgeStatus.VOIDED: [HoldState.VOIDED, HoldState.EXPIRED]}
    for status, states in expected_hold.items():
        out += [Violation(4, f"pledge {pid} is {status} but its hold is {state}")
                for pid, state in s.execute(
                    select(Pledge.id, Transfer.hold_state)
                    .outerjoin(Transfer, Transfer.id == Pledge.hold_id)
                    .where(Pledge.status == status,
                           Transfer.hold_state.is_(None) | Transfer.hold_state.not_in(
                               [str(x) for x in states])))]
    out += [Violation(4, f"pledge {pid} is {status} yet holds money") for pid, status in
            s.execute(select(Pledge.id, Pledge.status).where(
                Pledge.status.in_([PledgeStatus.PROPOSED, PledgeStatus.LAPSED,
                                   PledgeStatus.CANCELLED]), Pledge.hold_id.is_not(None)))]
    posted = (select(Pledge.loan_id, func.sum(Pledge.amount).label("total"))
              .where(Pledge.status == PledgeStatus.POSTED).group_by(Pledge.loan_id).subquery())
    held = (select(Pledge.loan_id, func.sum(Pledge.amount).label("total"))
            .where(Pledge.status.in_([PledgeStatus.CONFIRMED, PledgeStatus.POSTED]))
            .group_by(Pledge.loan_id).subquery())
    for number, funded, pledged, posted_total, held_total in s.execute(
            select(Loan.number, Loan.funded, Loan.pledged,
                   func.coalesce(posted.c.total, 0), func.coalesce(held.c.total, 0))
            .outerjoin(posted, posted.c.loan_id == Loan.id)
            .outerjoin(held, held.c.loan_id == Loan.id)):
        if funded != posted_total:
            out.append(Violation(4, f"loan {number}: funded {funded} != posted pledges "
                                    f"{posted_total}"))
        if pledged != held_total:
            out.append(Violation(4, f"loan {number}: pledged {pledged} != held pledges "
                                    f"{held_total}"))
    return out


def _allocations(uow: UnitOfWork) -> list[Violation]:
    s = uow.session
    parts = (select(Transfer.payment_id, func.sum(Transfer.amount).label("total"))
             .where(Transfer.code.in_([TransferCode.FEE, TransferCode.ALLOCATION,
                                       TransferCode.REFUND]))
             .group_by(Transfer.payment_id).subquery())
    out = []
    for pid, amount, total, fee, lenders, refund in s.execute(
            select(Payment.id, Payment.amount, func.coalesce(parts.c.total, 0), Payment.fee_part,
                   Payment.lender_part, Payment.refund_part)
            .outerjoin(parts, parts.c.payment_id == Payment.id)
            .where(Payment.kind == PaymentKind.REPAYMENT)):
        if total != amount or fee + lenders + refund != amount:
            out.append(Violation(5, f"payment {pid}: allocated {total} "
                                    f"(fee {fee} + lenders {lenders} + refund {refund}) "
                                    f"!= {amount}"))
    out += [Violation(5, f"pledge {pid}: lender received {repaid} > owed {entitled}")
            for pid, repaid, entitled in s.execute(
                select(Pledge.id, Pledge.repaid, Pledge.entitled)
                .where(Pledge.repaid > Pledge.entitled))]
    by_code = (select(Transfer.loan_id,
                      func.sum(case((Transfer.code == TransferCode.FEE, Transfer.amount),
                                    else_=0))
                      .label("fees"),
                      func.sum(case((Transfer.code == TransferCode.ALLOCATION, Transfer.amount),
                                    else_=0))
                      .label("lenders"))
               .where(Transfer.code.in_([TransferCode.FEE, TransferCode.ALLOCATION]))
               .group_by(Transfer.loan_id)
               .subquery())
    received = (select(Pledge.loan_id, func.sum(Pledge.repaid).label("total"))
                .group_by(Pledge.loan_id).subquery())
    for number, repaid, fee_paid, fees, lenders, pledges in s.execute(
            select(Loan.number, Loan.repaid, Loan.fee_paid, func.coalesce(by_code.c.fees, 0),
                   func.coalesce(by_code.c.lenders, 0), func.coalesce(received.c.total, 0))
            .outerjoin(by_code, by_code.c.loan_id == Loan.id)
            .outerjoin(received, received.c.loan_id == Loan.id)):
        if (fee_paid, repaid - fee_paid) != (fees, lenders) or lenders != pledges:
            out.append(Violation(5, f"loan {number}: repaid {repaid} (fee {fee_paid}) but "
                                    f"transfers say fee {fees} + lenders {lenders}, pledges "
                                    f"record {pledges}"))
    return out


def _external(uow: UnitOfWork) -> list[Violation]:
    s = uow.session
    out = []
    receipts = (select(Transfer.payment_id, func.count().label("n"))
                .where(Transfer.code == TransferCode.RECEIPT).group_by(Transfer.payment_id)
                .subquery())
    for pid, n in s.execute(select(Payment.id, func.coalesce(receipts.c.n, 0))
                            .outerjoin(receipts, receipts.c.payment_id == Payment.id)
                            .where(func.coalesce(receipts.c.n, 0) != 1)):
        out.append(Violation(6, f"payment {pid} has {n} receipt transfers"))
    out += [Violation(6, f"receipt transfer {tid} has no payment") for (tid,) in s.execute(
        select(Transfer.id).where(Transfer.code == TransferCode.RECEIPT,
                                  Transfer.payment_id.is_(None)))]
    return out + _payouts(uow)


# What a payout's hold must be in each of its states (legacy payouts, paid at once
# before payouts were held, have a single posted transfer instead).
_PAYOUT_HOLDS = {
    PayoutStatus.PAID: (HoldState.POSTED,),
    PayoutStatus.FAILED: (HoldState.VOIDED,),
    **{status: (HoldState.PENDING,) for status in PAYOUTS_IN_FLIGHT},
}


def _payouts(uow: UnitOfWork) -> list[Violation]:
    """Every payout has exactly one hold, keyed by it, of its amount, in the state its
    own state says (posted once paid, voided once failed, pending while in flight)."""
    s = uow.session
    payout_codes = [p.code for p in PayoutPurpose]
    out = [Violation(6, f"{code} transfer {tid} has no payout record") for tid, code in s.execute(
        select(Transfer.id, Transfer.code).where(
            Transfer.code.in_(payout_codes),
            Transfer.kind.in_([TransferKind.PENDING, TransferKind.POSTED]),
            Transfer.id.not_in(select(Payout.hold_id))))]
    rows = s.execute(select(Payout.id, Payout.key, Payout.amount, Payout.status, Transfer.key,
                            Transfer.amount, Transfer.kind, Transfer.hold_state)
                     .join(Transfer, Transfer.id == Payout.hold_id))
    for pid, key, amount, status, hold_key, held, kind, state in rows:
        if hold_key != f"payout:{key}":
            out.append(Violation(6, f"payout {pid}: its hold's key {hold_key} is not its own"))
        if held != amount:
            out.append(Violation(6, f"payout {pid}: paid {amount} but its hold is {held}"))
        legacy = kind == TransferKind.POSTED and status == PayoutStatus.PAID
        if not legacy and (kind != TransferKind.PENDING or state not in _PAYOUT_HOLDS[status]):
            out.append(Violation(6, f"payout {pid} is {status} but its hold is {kind} "
                                    f"{state or ''}".rstrip()))
    return out


def _confirmations(uow: UnitOfWork, now: datetime) -> list[Violation]:
    """Money M-Pesa confirmed is an external movement too: a confirmation still not in
    the ledger `mpesa.record_within_seconds` after it came (its job lost and no sweep
    since), or one that can never be recorded without a person, breaks invariant 6.
    Younger ones are simply on their way (`confirmations.waiting`)."""
    out = []
    for late in confirmations.overdue(uow, now):
        why = (f"refused: {late.refusal}" if late.refusal else
               f"not recorded {int((now - late.received_at).total_seconds())} s after it came")
        out.append(Violation(6, f"confirmation {late.id} ({late.trans_id}, {late.amount}) "
                                f"{why}"))
    return out


def _references(uow: UnitOfWork) -> list[Violation]:
    """The journal has no foreign keys (core/ledger.py checks as it writes): a transfer
    naming a row that does not exist breaks the invariant that row stands for."""
    s = uow.session
    hold = aliased(Transfer)
    named = (("debit account", Transfer.debit_account_id, Account.id, 2),
             ("credit account", Transfer.credit_account_id, Account.id, 2),
             ("hold", Transfer.pending_id, hold.id, 4),
             ("loan", Transfer.loan_id, Loan.id, 5),
             ("payment", Transfer.payment_id, Payment.id, 6))
    out = []
    for what, column, target, invariant in named:
        out += [Violation(invariant, f"transfer {tid} names {what} {ref}, which does not exist")
                for tid, ref in s.execute(
                    select(Transfer.id, column)
                    .where(column.is_not(None), ~exists().where(target == column))
                    .order_by(Transfer.id).limit(20))]
    return out


def _guarantees(uow: UnitOfWork) -> list[Violation]:
    """Each guarantee against its holds (`guarantee:<id>:<n>`, core/guarantees.py): no
    hold above what it guarantees; while held, exactly one pending hold, the one it
    names, of the amount it says; released, none pending and none posted; called, none
    pending and exactly one posted, of what it says was called; never answered or
    declined, no hold at all. A loan's `guaranteed` is what its consenting guarantors
    cover."""
    s = uow.session
    holds: dict[int, list[tuple[int, int, str | None, int]]] = {}
    out = []
    for tid, key, amount, state in s.execute(
            select(Transfer.id, Transfer.key, Transfer.amount, Transfer.hold_state)
            .where(Transfer.code == TransferCode.GUARANTEE_HOLD,
                   Transfer.kind == TransferKind.PENDING).order_by(Transfer.id)):
        parts = key.split(":")
        if len(parts) != 3 or parts[0] != "guarantee" or not parts[1].isdigit():
            out.append(Violation(7, f"guarantee hold {tid} has a stray key {key}"))
            continue
        holds.setdefault(int(parts[1]), []).append((tid, amount, state, int(parts[2])))
    consented = (GuaranteeStatus.HELD, GuaranteeStatus.RELEASED, GuaranteeStatus.CALLED)
    covered: dict[int, int] = {}
    for g in s.scalars(select(Guarantee).order_by(Guarantee.id)):
        mine = holds.pop(g.id, [])
        where = f"guarantee {g.id} ({g.status})"
        pending = [h for h in mine if h[2] == HoldState.PENDING]
        posted = [h for h in mine if h[2] == HoldState.POSTED]
        out += [Violation(7, f"{where}: hold {tid} of {amount} > guaranteed {g.amount}")
                for tid, amount, _, _ in mine if amount > g.amount]
        if len(mine) != g.holds or sorted(n for *_, n in mine) != list(range(1, g.holds + 1)):
            out.append(Violation(7, f"{where}: {len(mine)} holds, it counts {g.holds}"))
        if g.status in consented:
            covered[g.loan_id] = covered.get(g.loan_id, 0) + g.amount
        if g.status == GuaranteeStatus.HELD:
            if [(h[0], h[1]) for h in pending] != [(g.hold_id, g.held)] or posted:
                out.append(Violation(7, f"{where}: holds {pending} posted {posted}, it names "
                                        f"{g.hold_id} of {g.held}"))
        elif g.status == GuaranteeStatus.CALLED:
            if pending or [h[1] for h in posted] != [g.called]:
                out.append(Violation(7, f"{where}: called {g.called} but holds pending "
                                        f"{pending} posted {posted}"))
        elif pending or posted or (g.status != GuaranteeStatus.RELEASED and mine):
            out.append(Violation(7, f"{where}: holds pending {pending} posted {posted}"))
    out += [Violation(7, f"guarantee hold {h[0]} names guarantee {gid}, which does not exist")
            for gid, rows in holds.items() for h in rows]
    out += [Violation(7, f"loan {number}: guaranteed {guaranteed} != consented {covered.get(i, 0)}")
            for i, number, guaranteed in s.execute(select(Loan.id, Loan.number, Loan.guaranteed))
            if guaranteed != covered.get(i, 0)]
    return out
