"""audit chain: seq, prev_hash and hash on history; audit_heads; existing entries chained

The chain lives on ``history`` itself (not in a second table) so that no entry can exist
off the chain and every column an auditor reads is the one that is hashed. Entries written
before this migration are chained per tenant in id order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:15:00
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from autoinvoice.store.audit import GENESIS, entry_content, entry_hash
from autoinvoice.store.models import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

history = sa.table(
    'history', sa.column('id', sa.Integer()), sa.column('tenant', sa.String()),
    sa.column('invoice_id', sa.Integer()), sa.column('at', UTCDateTime()),
    sa.column('actor', sa.String()), sa.column('action', sa.String()),
    sa.column('from_state', sa.String()), sa.column('to_state', sa.String()),
    sa.column('detail', sa.JSON()), sa.column('request_id', sa.String()),
    sa.column('seq', sa.Integer()), sa.column('prev_hash', sa.String()),
    sa.column('hash', sa.String()))
invoices = sa.table('invoices', sa.column('id', sa.Integer()), sa.column('job_id', sa.String()),
                    sa.column('revision', sa.Integer()), sa.column('kind', sa.String()))
heads = sa.table('audit_heads', sa.column('tenant', sa.String()),
                 sa.column('last_seq', sa.Integer()), sa.column('last_hash', sa.String()))


def upgrade() -> None:
    op.add_column('history', sa.Column('seq', sa.Integer(), nullable=True))
    op.add_column('history', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('history', sa.Column('hash', sa.String(length=64), nullable=True))
    op.create_table(
        'audit_heads',
        sa.Column('tenant', sa.String(length=100), nullable=False),
        sa.Column('last_seq', sa.Integer(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('tenant'),
    )
    _chain_existing(op.get_bind())
    op.create_index('uq_history_tenant_seq', 'history', ['tenant', 'seq'], unique=True)


def _chain_existing(conn: Any) -> None:
    rows = conn.execute(
        sa.select(history, invoices.c.job_id, invoices.c.revision, invoices.c.kind)
        .select_from(history.outerjoin(invoices, invoices.c.id == history.c.invoice_id))
        .order_by(history.c.id)).all()
    last: dict[str, tuple[int, str]] = {}
    for row in rows:
        seq, prev = last.get(row.tenant, (0, GENESIS))
        content = entry_content(
            entry_id=row.id, seq=seq + 1, tenant=row.tenant, invoice_id=row.invoice_id,
            job_id=row.job_id, revision=row.revision, kind=row.kind, at=row.at,
            actor=row.actor, action=row.action, from_state=row.from_state,
            to_state=row.to_state, detail=row.detail, request_id=row.request_id)
        digest = entry_hash(prev, content)
        conn.execute(history.update().where(history.c.id == row.id)
                     .values(seq=seq + 1, prev_hash=prev, hash=digest))
        last[row.tenant] = (seq + 1, digest)
    if last:
        conn.execute(heads.insert(), [{"tenant": t, "last_seq": s, "last_hash": h}
                                      for t, (s, h) in last.items()])


def downgrade() -> None:
    op.drop_index('uq_history_tenant_seq', table_name='history')
    op.drop_table('audit_heads')
    with op.batch_alter_table('history') as batch:
        batch.drop_column('hash')
        batch.drop_column('prev_hash')
        batch.drop_column('seq')
