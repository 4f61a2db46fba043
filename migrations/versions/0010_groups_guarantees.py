"""Groups (chamas), guarantees by consent, partial-funding choices, hardship pauses.

New tables: `groups`, `group_members` (a member joins by their own yes),
`guarantees` (a guarantor's cover of a loan, held on their wallet), `pauses` (a
borrower's request to pause their schedule). New loan columns: `guarantee_needed` and
`guaranteed` (a guaranteed first loan above the borrower's own limit waits for its
guarantors before lenders may pledge), `choice_until` and `extended` (the borrower's
choice when a loan is partly funded at its deadline). Existing loans get zeros and
no choice.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None

WHEN = core.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('village', sa.String(length=30), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('officer_id', sa.Integer(), nullable=False),
        sa.Column('request_key', sa.String(length=120), nullable=True),
        sa.Column('created_at', WHEN, nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['members.id'],
                                name=op.f('fk_groups_agent_id_members')),
        sa.ForeignKeyConstraint(['officer_id'], ['members.id'],
                                name=op.f('fk_groups_officer_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_groups')),
        sa.UniqueConstraint('request_key', name=op.f('uq_groups_request_key')))
    op.create_index(op.f('ix_groups_agent_id'), 'groups', ['agent_id'], unique=False)
    op.create_table(
        'group_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('invited_at', WHEN, nullable=False),
        sa.Column('answered_at', WHEN, nullable=True),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                                name=op.f('fk_group_members_group_id_groups')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_group_members_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_group_members')),
        sa.UniqueConstraint('group_id', 'member_id', name=op.f('uq_group_members_group_id')))
    op.create_index('ix_group_members_member_status', 'group_members',
                    ['member_id', 'status'], unique=False)
    op.create_table(
        'guarantees',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('guarantor_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('code', sa.String(length=8), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('hold_id', sa.Integer(), nullable=True),
        sa.Column('held', sa.BigInteger(), nullable=False),
        sa.Column('holds', sa.Integer(), nullable=False),
        sa.Column('called', sa.BigInteger(), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.Column('answered_at', WHEN, nullable=True),
        sa.Column('closed_at', WHEN, nullable=True),
        sa.ForeignKeyConstraint(['guarantor_id'], ['members.id'],
                                name=op.f('fk_guarantees_guarantor_id_members')),
        sa.ForeignKeyConstraint(['hold_id'], ['transfers.id'],
                                name=op.f('fk_guarantees_hold_id_transfers')),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'],
                                name=op.f('fk_guarantees_loan_id_loans')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_guarantees')),
        sa.UniqueConstraint('loan_id', 'guarantor_id', name=op.f('uq_guarantees_loan_id')))
    op.create_index('ix_guarantees_guarantor_status', 'guarantees',
                    ['guarantor_id', 'status'], unique=False)
    op.create_index(op.f('ix_guarantees_loan_id'), 'guarantees', ['loan_id'], unique=False)
    op.create_table(
        'pauses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('weeks', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=12), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('asked_at', WHEN, nullable=False),
        sa.Column('decided_at', WHEN, nullable=True),
        sa.ForeignKeyConstraint(['decided_by'], ['members.id'],
                                name=op.f('fk_pauses_decided_by_members')),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_pauses_loan_id_loans')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pauses')))
    op.create_index(op.f('ix_pauses_loan_id'), 'pauses', ['loan_id'], unique=False)
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guarantee_needed', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('guaranteed', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('choice_until', WHEN, nullable=True))
        batch_op.add_column(sa.Column('extended', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('loans', schema=None) as batch_op:
        for column, type_ in (('guarantee_needed', sa.BigInteger()),
                              ('guaranteed', sa.BigInteger()), ('extended', sa.Boolean())):
            batch_op.alter_column(column, existing_type=type_, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('extended')
        batch_op.drop_column('choice_until')
        batch_op.drop_column('guaranteed')
        batch_op.drop_column('guarantee_needed')
    op.drop_index(op.f('ix_pauses_loan_id'), table_name='pauses')
    op.drop_table('pauses')
    op.drop_index(op.f('ix_guarantees_loan_id'), table_name='guarantees')
    op.drop_index('ix_guarantees_guarantor_status', table_name='guarantees')
    op.drop_table('guarantees')
    op.drop_index('ix_group_members_member_status', table_name='group_members')
    op.drop_table('group_members')
    op.drop_index(op.f('ix_groups_agent_id'), table_name='groups')
    op.drop_table('groups')
