"""The operator console (#14): operators, the append-only audit log, dispute clocks
and notes, and where a receipt in suspense went.

- `operators`: argon2 password hash, TOTP secret, failed logins and lockout.
- `audit_log`: who, what, when, before, after, reason. On PostgreSQL a trigger refuses
  any UPDATE or DELETE of its rows (TRUNCATE, which tests use to start clean, is a
  table-level statement and stays possible for the owner); on SQLite a trigger refuses
  UPDATE.
- `disputes`: `ack_by` (2 days) and `resolve_by` (7 days) from when it was opened,
  `acknowledged_at`, `outcome`; the status column widened for `acknowledged`.
- `dispute_notes`: each operator step on a case.
- `payments.matched_at`, `payments.refund_marked_at`: a receipt leaves suspense once.
- Indexes the dashboard's filters need: loans by status and disbursement date, members
  by agent and by place, by disbursement date, unpaid installments (a partial
  index), and installments by due date with their amounts (PostgreSQL: INCLUDE), payments in suspense.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_NO_CHANGE_PG = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"""
_NO_CHANGE_SQLITE = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""


def upgrade() -> None:
    op.create_table(
        'operators',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('role', sa.String(length=10), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('totp_secret', sa.String(length=64), nullable=True),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', core.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('last_totp_step', sa.Integer(), nullable=True),
        sa.Column('created_at', core.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column('last_login_at', core.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
        sa.UniqueConstraint('email', name=op.f('uq_operators_email')))
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('operator_email', sa.String(length=254), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.String(length=60), nullable=False),
        sa.Column('before', sa.Text(), nullable=True),
        sa.Column('after', sa.Text(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('created_at', core.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id'],
                                name=op.f('fk_audit_log_operator_id_operators')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')))
    op.create_index('ix_audit_log_created', 'audit_log', ['created_at'])
    op.create_index('ix_audit_log_subject', 'audit_log', ['subject'])
    op.create_index(op.f('ix_audit_log_action'), 'audit_log', ['action'])
    op.create_index(op.f('ix_audit_log_operator_id'), 'audit_log', ['operator_id'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_NO_CHANGE_PG)
    else:
        op.execute(_NO_CHANGE_SQLITE)

    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=10),
                              type_=sa.String(length=12), existing_nullable=False)
        batch_op.add_column(sa.Column('ack_by', core.models.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('resolve_by', core.models.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at',
                                      core.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.Text(), nullable=True))
        batch_op.create_index('ix_disputes_status_resolve_by', ['status', 'resolve_by'])
    # Cases opened before the clocks existed run against the same rule from their opening.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE disputes SET ack_by = created_at + interval '2 days', "
                   "resolve_by = created_at + interval '7 days'")
    else:
        op.execute("UPDATE disputes SET ack_by = datetime(created_at, '+2 days'), "
                   "resolve_by = datetime(created_at, '+7 days')")
    op.create_table(
        'dispute_notes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dispute_id', sa.Integer(), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('step', sa.String(length=12), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('told_member', sa.Boolean(), nullable=False),
        sa.Column('created_at', core.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'],
                                name=op.f('fk_dispute_notes_dispute_id_disputes')),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id'],
                                name=op.f('fk_dispute_notes_operator_id_operators')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_notes')))
    op.create_index(op.f('ix_dispute_notes_dispute_id'), 'dispute_notes', ['dispute_id'])

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('matched_at', core.models.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('refund_marked_at',
                                      core.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_payments_kind', ['kind'])
    op.create_index('ix_loans_disbursed_at', 'loans', ['disbursed_at'])
    if op.get_bind().dialect.name == 'postgresql':  # due and paid read from the index alone
        op.drop_index('ix_installments_due', table_name='installments')
        op.create_index('ix_installments_due', 'installments', ['due_on'],
                        postgresql_include=['amount', 'paid'])
    op.create_index('ix_members_agent_id', 'members', ['agent_id'])
    op.create_index('ix_members_place', 'members', ['place'])
    op.create_index('ix_installments_unpaid', 'installments', ['due_on', 'loan_id'],
                    postgresql_where=sa.text('paid < amount'),
                    sqlite_where=sa.text('paid < amount'))


def downgrade() -> None:
    op.drop_index('ix_installments_unpaid', table_name='installments')
    op.drop_index('ix_members_place', table_name='members')
    op.drop_index('ix_members_agent_id', table_name='members')
    op.drop_index('ix_loans_disbursed_at', table_name='loans')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_installments_due', table_name='installments')
        op.create_index('ix_installments_due', 'installments', ['due_on'])
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_kind')
        batch_op.drop_column('refund_marked_at')
        batch_op.drop_column('matched_at')
    op.drop_index(op.f('ix_dispute_notes_dispute_id'), table_name='dispute_notes')
    op.drop_table('dispute_notes')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_disputes_status_resolve_by')
        batch_op.drop_column('outcome')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('resolve_by')
        batch_op.drop_column('ack_by')
    op.execute("UPDATE disputes SET status = 'open' WHERE status = 'acknowledged'")
    op.execute("UPDATE disputes SET status = 'resolved' WHERE status = 'rejected'")
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=12),
                              type_=sa.String(length=10), existing_nullable=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_index(op.f('ix_audit_log_operator_id'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_action'), table_name='audit_log')
    op.drop_index('ix_audit_log_subject', table_name='audit_log')
    op.drop_index('ix_audit_log_created', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('operators')
