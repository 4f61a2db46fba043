"""Paybill confirmations are stored at the door and recorded behind.

`confirmations` keeps each C2B confirmation as M-Pesa sent it, once per (provider,
TransID), from the moment the hook acknowledges it until a job has recorded it in the
ledger (`recorded_at`, `payment_id`); a partial index finds the ones still unrecorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'confirmations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('trans_id', sa.String(length=64), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('bill_ref', sa.String(length=64), nullable=False),
        sa.Column('phone', sa.String(length=16), nullable=True),
        sa.Column('occurred_at', core.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column('received_at', core.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column('recorded_at', core.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('refusal', sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'],
                                name=op.f('fk_confirmations_payment_id_payments')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_confirmations')),
        sa.UniqueConstraint('provider', 'trans_id', name=op.f('uq_confirmations_provider')),
    )
    op.create_index('ix_confirmations_unrecorded', 'confirmations', ['received_at'],
                    unique=False, postgresql_where=sa.text('recorded_at IS NULL'),
                    sqlite_where=sa.text('recorded_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_confirmations_unrecorded', table_name='confirmations',
                  postgresql_where=sa.text('recorded_at IS NULL'),
                  sqlite_where=sa.text('recorded_at IS NULL'))
    op.drop_table('confirmations')
