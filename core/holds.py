"""A pledge's hold placed in one statement on PostgreSQL: the hot path of `YES <code>`.

The same rules as `ledger.transfer(pending=True)` plus the pledge and loan updates of
`pledges.confirm_pledge`, as one chain of data-modifying CTEs: the wallet is debited only
if it stays covered (the checked UPDATE), and each later step runs only if the one
before it changed its row. One round trip instead of eight; the caller has already
locked the loan and the pledge and checked every rule it can check from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from core.db import UnitOfWork
from core.models import HoldState, PledgeStatus, TransferKind

_PLACE = text("""
WITH wallet AS (
    UPDATE accounts SET debits_pending = debits_pending + :amount
    WHERE id = :wallet_id
      AND (NOT no_overdraft OR debits_pending + :amount + debits_posted <= credits_posted)
    RETURNING id
), escrow AS (
    UPDATE accounts SET credits_pending = credits_pending + :amount
    WHERE id = :loan_account_id AND EXISTS (SELECT 1 FROM wallet)
    RETURNING id
), hold AS (
    INSERT INTO transfers (key, debit_account_id, credit_account_id, amount, kind, code,
                           hold_state, expires_at, loan_id, created_at)
    SELECT :key, :wallet_id, :loan_account_id, :amount, :pending, 'pledge_hold',
           :hold_pending, :expires_at, :loan_id, :now
    WHERE EXISTS (SELECT 1 FROM escrow)
    RETURNING id
), pledge AS (
    UPDATE pledges SET status = :confirmed, confirmed_at = :now,
                       hold_id = (SELECT id FROM hold)
    WHERE id = :pledge_id AND status = :proposed AND EXISTS (SELECT 1 FROM hold)
    RETURNING id
), loan AS (
    UPDATE loans SET pledged = pledged + :amount
    WHERE id = :loan_id AND pledged + :amount <= amount AND EXISTS (SELECT 1 FROM pledge)
    RETURNING pledged
), sms AS (
    INSERT INTO outbox (key, phone, member_id, language, purpose, template, text, status,
                        attempts, next_attempt_at, created_at)
    SELECT :sms_key, :sms_phone, :sms_member_id, :sms_language, :sms_purpose, :sms_template,
           :sms_text, 'queued', 0, :now, :now
    WHERE EXISTS (SELECT 1 FROM loan)
    ON CONFLICT (key) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM hold) AS hold_id, (SELECT pledged FROM loan) AS pledged,
       (SELECT id FROM sms) AS sms_id,
       (SELECT credits_posted - debits_posted - debits_pending FROM accounts
        WHERE id = :wallet_id) AS available
""")


@dataclass(frozen=True)
class Placed:
    """What the statement did: the hold's id (None when the wallet was short), the
    loan's new pledged total, the outbox row id, and the wallet's available balance
    before the hold (for the refusal's text)."""

    hold_id: int | None
    pledged: int | None
    sms_id: int | None
    available: int


def place_hold(uow: UnitOfWork, *, pledge_id: int, loan_id: int, wallet_id: int,
               loan_account_id: int, amount: int, expires_at: datetime | None,
               now: datetime, sms: dict[str, object]) -> Placed:
    """Hold `amount` on the wallet for the pledge, mark it confirmed, add it to the
    loan, and queue its receipt (`sms`: its outbox.row_values, of which the statement
    writes key, phone, member_id, language, purpose, template and text) — all or, from
    the first step refused, nothing further."""
    row = uow.connection.execute(_PLACE, {
        "amount": amount, "wallet_id": wallet_id, "loan_account_id": loan_account_id,
        "key": f"hold:{pledge_id}", "pending": str(TransferKind.PENDING),
        "hold_pending": str(HoldState.PENDING), "expires_at": expires_at, "loan_id": loan_id,
        "now": now, "pledge_id": pledge_id, "confirmed": str(PledgeStatus.CONFIRMED),
        "proposed": str(PledgeStatus.PROPOSED),
        **{f"sms_{name}": value for name, value in sms.items()}}).one()
    return Placed(row.hold_id, row.pledged, row.sms_id, int(row.available or 0))
