"""Repayments to many lenders: HOT-friendly counter tables, lender notices after commit.

- accounts (fillfactor 50) and pledges (fillfactor 70) leave room on each page, so the
  counter and `repaid` updates of a repayment are HOT updates (no index is touched).
  PostgreSQL only; it applies to pages written from now on (`VACUUM FULL accounts,
  pledges` in a quiet hour rewrites the old ones).
- transfers loses its five foreign keys (debit and credit account, hold, payment, loan):
  their per-row triggers were two thirds of the cost of writing a repayment's 10,000
  transfers. core/ledger.py checks the accounts exist as it changes their counters,
  and `harambee check` reports any transfer that names a missing row.
- payments.lenders_told_at: NULL while a repayment's lenders have still to be told
  their shares. Payments already recorded were told in their own transaction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

FILLFACTOR = {"accounts": 50, "pledges": 70}
TRANSFER_FKS = {  # name -> (column, table referred to)
    "fk_transfers_debit_account_id_accounts": ("debit_account_id", "accounts"),
    "fk_transfers_credit_account_id_accounts": ("credit_account_id", "accounts"),
    "fk_transfers_pending_id_transfers": ("pending_id", "transfers"),
    "fk_transfers_payment_id_payments": ("payment_id", "payments"),
    "fk_transfers_loan_id_loans": ("loan_id", "loans"),
}


def upgrade() -> None:
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        for name in TRANSFER_FKS:
            batch_op.drop_constraint(name, type_='foreignkey')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lenders_told_at', core.models.UtcDateTime(timezone=True),
                                      nullable=True))
    op.execute("UPDATE payments SET lenders_told_at = created_at")
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_untold', ['id'], unique=False,
                              postgresql_where=sa.text('lenders_told_at IS NULL'),
                              sqlite_where=sa.text('lenders_told_at IS NULL'))
    if op.get_bind().dialect.name == "postgresql":
        for table, percent in FILLFACTOR.items():
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in FILLFACTOR:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_untold')
        batch_op.drop_column('lenders_told_at')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        for name, (column, table) in TRANSFER_FKS.items():
            batch_op.create_foreign_key(name, table, [column], ['id'])
