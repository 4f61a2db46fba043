"""Listed loans in the order lenders see them: `ix_loans_status_deadline` gains `id`, the
lending list's tiebreak, so a page of the list (status, deadline > now, ORDER BY deadline,
id, LIMIT 3) reads three index entries instead of sorting every listed loan with its
borrower joined. The scans by status and deadline (expiry, choices) use it as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 23:55:00
"""
from __future__ import annotations

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_status_deadline')
        batch_op.create_index('ix_loans_status_deadline', ['status', 'deadline', 'id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_status_deadline')
        batch_op.create_index('ix_loans_status_deadline', ['status', 'deadline'], unique=False)
