"""A self-registered member's national ID is a claim, not the ID itself.

`national_id` (unique) holds only IDs an agent or an operator saw; a member who
registers themselves keeps the ID they typed in `claimed_national_id` (not unique)
until an agent verifies them. A stranger can then neither learn whether an ID is
taken nor take someone's ID first. Pending self-registered members move their ID
to the claim.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_national_id', sa.String(length=20),
                                      nullable=True))
        batch_op.create_index('ix_members_claimed_national_id', ['claimed_national_id'],
                              unique=False)
    op.execute("UPDATE members SET claimed_national_id = national_id, national_id = NULL "
               "WHERE status = 'pending' AND agent_id IS NULL AND national_id IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE members SET national_id = claimed_national_id "
               "WHERE national_id IS NULL AND claimed_national_id IS NOT NULL AND NOT EXISTS "
               "(SELECT 1 FROM members AS m WHERE m.national_id = members.claimed_national_id)")
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_claimed_national_id')
        batch_op.drop_column('claimed_national_id')
