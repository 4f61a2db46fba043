"""Pledges by lender and code: the index `YES <code>` looks a pledge up with.

The lookup used the lender index and then read every pledge the lender had ever made
to find the code; a lender with years of pledges made each confirmation slower. The
two-column index serves the lender-only queries too, so it replaces that index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:05:00
"""
from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.create_index('ix_pledges_lender_code', ['lender_id', 'code'], unique=False)
        batch_op.drop_index('ix_pledges_lender_id')


def downgrade() -> None:
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.create_index('ix_pledges_lender_id', ['lender_id'], unique=False)
        batch_op.drop_index('ix_pledges_lender_code')
