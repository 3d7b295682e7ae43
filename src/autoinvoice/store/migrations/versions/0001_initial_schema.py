"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 23:10:42.246740
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('customer_map',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('platform', sa.String(length=50), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('remote_id', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'platform', 'customer_id')
    )
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('job_id', sa.String(length=200), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'event_id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_job', ['tenant', 'job_id'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('job_id', sa.String(length=200), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('doc_state', sa.String(length=30), nullable=False),
    sa.Column('pay_state', sa.String(length=30), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=True),
    sa.Column('customer_name', sa.String(length=300), nullable=True),
    sa.Column('platform', sa.String(length=50), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('subtotal_minor', sa.BigInteger(), nullable=True),
    sa.Column('tax_minor', sa.BigInteger(), nullable=True),
    sa.Column('total_minor', sa.BigInteger(), nullable=True),
    sa.Column('amount_paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issue_date', sa.String(length=10), nullable=True),
    sa.Column('due_date', sa.String(length=10), nullable=True),
    sa.Column('invoice_json', sa.Text(), nullable=True),
    sa.Column('idempotency_base', sa.String(length=100), nullable=True),
    sa.Column('remote_customer_id', sa.String(length=200), nullable=True),
    sa.Column('remote_id', sa.String(length=200), nullable=True),
    sa.Column('remote_number', sa.String(length=100), nullable=True),
    sa.Column('remote_url', sa.Text(), nullable=True),
    sa.Column('remote_total_minor', sa.BigInteger(), nullable=True),
    sa.Column('create_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('platform_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_via', sa.String(length=30), nullable=True),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('pdf_path', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hold_code', sa.String(length=50), nullable=True),
    sa.Column('hold_message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('signature_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payment_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'job_id', 'revision')
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_due', ['doc_state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_invoices_remote', ['platform', 'remote_id'], unique=False)

    op.create_table('number_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('series', sa.String(length=100), nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'series')
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=50), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'tenant', 'event_id')
    )
    op.create_table('history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=50), nullable=False),
    sa.Column('from_state', sa.String(length=30), nullable=True),
    sa.Column('to_state', sa.String(length=30), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.create_index('ix_history_invoice', ['invoice_id'], unique=False)

    op.create_table('invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=True),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('unit_price', sa.String(length=40), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('tax_rate', sa.String(length=20), nullable=False),
    sa.Column('tax_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id', 'line_no')
    )
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=50), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('amount_paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_id')
    )



def downgrade() -> None:

    op.drop_table('payments')
    op.drop_table('invoice_lines')
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.drop_index('ix_history_invoice')

    op.drop_table('history')
    op.drop_table('webhook_events')
    op.drop_table('number_series')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_remote')
        batch_op.drop_index('ix_invoices_due')

    op.drop_table('invoices')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_job')

    op.drop_table('events')
    op.drop_table('customer_map')

