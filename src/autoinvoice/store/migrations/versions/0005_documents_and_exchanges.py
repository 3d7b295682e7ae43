"""documents (each file as sent, with its hash), platform_exchanges (masked HTTP) and
config_versions (the tenant configuration each invoice was priced with)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 06:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=100), nullable=False),
        sa.Column('format', sa.String(length=20), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('media_type', sa.String(length=100), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('invoice_id', 'format'),
    )
    op.create_table(
        'platform_exchanges',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('step', sa.String(length=30), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('exchanges', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_platform_exchanges_invoice', 'platform_exchanges', ['invoice_id'])
    op.create_table(
        'config_versions',
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('tenant', sa.String(length=100), nullable=False),
        sa.Column('snapshot', sa.Text(), nullable=False),
        sa.Column('first_used_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('sha256'),
    )


def downgrade() -> None:
    op.drop_table('config_versions')
    op.drop_index('ix_platform_exchanges_invoice', table_name='platform_exchanges')
    op.drop_table('platform_exchanges')
    op.drop_table('documents')
