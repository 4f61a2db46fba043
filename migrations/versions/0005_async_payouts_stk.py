"""Payouts leave asynchronously; STK push requests; the providers' float.

A payout is now a hold placed first and settled by the provider's result: the payout
row keeps its state (`status`, `attempts`, `next_attempt_at`), the provider's
conversation id and receipt, and the hold it placed (`hold_id`, was `transfer_id`).
Payouts made before this were paid at once by a single posted transfer: they become
`paid`, their provider reference becomes their receipt, and their transfer's key
becomes `payout:<our key>`, the key every payout's transfer has from now on (a
transfer is otherwise never changed; this renames keys once, for rows written before
the rule).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE transfers SET key = 'payout:' || (SELECT payouts.key FROM payouts "
               "WHERE payouts.transfer_id = transfers.id) "
               "WHERE id IN (SELECT transfer_id FROM payouts)")
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', core.models.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('conversation_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('result_code', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sent_at', core.models.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('settled_at', core.models.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.alter_column('reference', new_column_name='receipt',
                              existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column('transfer_id', new_column_name='hold_id',
                              existing_type=sa.Integer(), existing_nullable=False)
        batch_op.drop_constraint('uq_payouts_provider', type_='unique')
        batch_op.drop_constraint('uq_payouts_transfer_id', type_='unique')
        batch_op.drop_constraint('fk_payouts_transfer_id_transfers', type_='foreignkey')
    op.execute("UPDATE payouts SET status = 'paid', attempts = 1, settled_at = created_at, "
               "sent_at = created_at")
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=8), nullable=False)
        batch_op.alter_column('attempts', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_payouts_provider', ['provider', 'receipt'])
        batch_op.create_unique_constraint('uq_payouts_hold_id', ['hold_id'])
        batch_op.create_foreign_key('fk_payouts_hold_id_transfers', 'transfers', ['hold_id'],
                                    ['id'])
        batch_op.create_index('ix_payouts_status_next', ['status', 'next_attempt_at'],
                              unique=False)
        batch_op.create_index('ix_payouts_loan_id', ['loan_id'], unique=False)

    op.create_table(
        'stk_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=True),
        sa.Column('phone', sa.String(length=16), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('account', sa.String(length=12), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', core.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('checkout_request_id', sa.String(length=64), nullable=True),
        sa.Column('receipt', sa.String(length=64), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.Column('result_code', sa.String(length=20), nullable=True),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.Column('created_at', core.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column('sent_at', core.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('settled_at', core.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'],
                                name=op.f('fk_stk_requests_loan_id_loans')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_stk_requests_member_id_members')),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'],
                                name=op.f('fk_stk_requests_payment_id_payments')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stk_requests')),
        sa.UniqueConstraint('checkout_request_id',
                            name=op.f('uq_stk_requests_checkout_request_id')),
        sa.UniqueConstraint('key', name=op.f('uq_stk_requests_key')),
    )
    with op.batch_alter_table('stk_requests', schema=None) as batch_op:
        batch_op.create_index('ix_stk_requests_member_id', ['member_id'], unique=False)
        batch_op.create_index('ix_stk_requests_status_next', ['status', 'next_attempt_at'],
                              unique=False)
    op.create_table(
        'provider_floats',
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('available', sa.BigInteger(), nullable=False),
        sa.Column('reported_at', core.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('provider', name=op.f('pk_provider_floats')),
    )


def downgrade() -> None:
    op.drop_table('provider_floats')
    with op.batch_alter_table('stk_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_stk_requests_status_next')
        batch_op.drop_index('ix_stk_requests_member_id')
    op.drop_table('stk_requests')
    op.execute("DELETE FROM payouts WHERE status <> 'paid'")
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index('ix_payouts_loan_id')
        batch_op.drop_index('ix_payouts_status_next')
        batch_op.drop_constraint('fk_payouts_hold_id_transfers', type_='foreignkey')
        batch_op.drop_constraint('uq_payouts_hold_id', type_='unique')
        batch_op.drop_constraint('uq_payouts_provider', type_='unique')
        batch_op.alter_column('hold_id', new_column_name='transfer_id',
                              existing_type=sa.Integer(), existing_nullable=False)
        batch_op.alter_column('receipt', new_column_name='reference',
                              existing_type=sa.String(length=64), nullable=False)
        for column in ('settled_at', 'sent_at', 'last_error', 'result_code',
                       'conversation_id', 'next_attempt_at', 'attempts', 'status'):
            batch_op.drop_column(column)
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_payouts_provider', ['provider', 'reference'])
        batch_op.create_unique_constraint('uq_payouts_transfer_id', ['transfer_id'])
        batch_op.create_foreign_key('fk_payouts_transfer_id_transfers', 'transfers',
                                    ['transfer_id'], ['id'])
