"""oauth connections: one row per (tenant, platform) with the encrypted token set

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'oauth_connections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=100), nullable=False),
        sa.Column('platform', sa.String(length=50), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('values', sa.JSON(), nullable=False),
        sa.Column('access_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('refresh_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('consent_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('connected_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_refresh_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('needs_reconnect', sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.Column('version', sa.Integer(), nullable=False, server_default='1'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'platform', name='uq_oauth_connections'),
    )


def downgrade() -> None:
    op.drop_table('oauth_connections')
