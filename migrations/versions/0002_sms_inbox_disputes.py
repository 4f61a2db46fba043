"""SMS channel: the inbox of incoming SMS, delivery reports, disputes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:14:04.930514
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_delivery_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_message_id', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('failure_reason', sa.String(length=40), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('received_at', core.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('applied_at', core.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_delivery_reports')),
    sa.UniqueConstraint('provider_message_id', 'status', name=op.f('uq_sms_delivery_reports_provider_message_id'))
    )
    with op.batch_alter_table('sms_delivery_reports', schema=None) as batch_op:
        batch_op.create_index('ix_sms_delivery_reports_pending', ['applied_at'], unique=False)

    op.create_table('sms_inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.String(length=80), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('short_code', sa.String(length=20), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('link_id', sa.String(length=80), nullable=True),
    sa.Column('network_code', sa.String(length=10), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('command', sa.String(length=12), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('received_at', core.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('handled_at', core.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_sms_inbox_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_inbox')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_sms_inbox_provider_id'))
    )
    with op.batch_alter_table('sms_inbox', schema=None) as batch_op:
        batch_op.create_index('ix_sms_inbox_status_received', ['status', 'received_at'], unique=False)

    op.create_table('disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=12), nullable=True),
    sa.Column('request_key', sa.String(length=120), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', core.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', core.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_disputes_loan_id_loans')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_disputes_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('number', name=op.f('uq_disputes_number')),
    sa.UniqueConstraint('request_key', name=op.f('uq_disputes_request_key'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disputes_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_member_id'), ['member_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disputes_member_id'))
        batch_op.drop_index(batch_op.f('ix_disputes_loan_id'))

    op.drop_table('disputes')
    with op.batch_alter_table('sms_inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_inbox_status_received')

    op.drop_table('sms_inbox')
    with op.batch_alter_table('sms_delivery_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_delivery_reports_pending')

    op.drop_table('sms_delivery_reports')
