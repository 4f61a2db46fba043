"""Community and data rights (#16, items 5-7): stories, weekly tips by opt-in, and
members' requests to correct or erase their data.

- `stories`: a borrower's few words about a repaid loan, approved by an operator;
- `data_requests`: a correction or an erasure, with its 7-day clock (`due_at`);
- `members.tips_wanted` (TIPS ON / TIPS OFF) and `members.last_tip_week` (the ISO
  week of the last tip written, so the weekly duty skips who already has one);
(the index on `members.agent_id` that core/reputation.py reads through comes with
0008, the console's).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tips_wanted', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('last_tip_week', sa.String(length=8), nullable=True))

    op.create_table('stories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=120), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', core.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', core.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=80), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('share_cursor', sa.Integer(), nullable=False),
    sa.Column('shared_at', core.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_stories_loan_id_loans')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_stories_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stories')),
    sa.UniqueConstraint('request_key', name=op.f('uq_stories_request_key'))
    )
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.create_index('ix_stories_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_stories_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stories_member_id'), ['member_id'], unique=False)

    op.create_table('data_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=12), nullable=True),
    sa.Column('request_key', sa.String(length=120), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', core.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('due_at', core.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', core.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=80), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_data_requests_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_requests')),
    sa.UniqueConstraint('number', name=op.f('uq_data_requests_number')),
    sa.UniqueConstraint('request_key', name=op.f('uq_data_requests_request_key'))
    )
    with op.batch_alter_table('data_requests', schema=None) as batch_op:
        batch_op.create_index('ix_data_requests_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_requests_member_id'), ['member_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('data_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_requests_member_id'))
        batch_op.drop_index('ix_data_requests_status_due')
    op.drop_table('data_requests')
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stories_member_id'))
        batch_op.drop_index(batch_op.f('ix_stories_loan_id'))
        batch_op.drop_index('ix_stories_status_created')
    op.drop_table('stories')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('last_tip_week')
        batch_op.drop_column('tips_wanted')
