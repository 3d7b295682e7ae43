"""revisions and credit notes: document kind, the credited invoice, the source event, pending
corrections and hold reasons; one document per (tenant, job, kind, revision)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# 0001 created the unique constraint without a name: SQLite reflects it unnamed, so batch mode
# needs a naming convention to find it; PostgreSQL named it itself.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OLD_UNIQUE = {"sqlite": "uq_invoices_tenant_job_id_revision",
              "postgresql": "invoices_tenant_job_id_revision_key"}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('invoices', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False,
                                      server_default='invoice'))
        batch_op.add_column(sa.Column('corrects_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('source_event_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('correction', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('correction_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('hold_reasons', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('held_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_invoices_corrects_id', 'invoices', ['corrects_id'],
                                    ['id'])
        batch_op.drop_constraint(OLD_UNIQUE.get(dialect, OLD_UNIQUE['postgresql']),
                                 type_='unique')
        batch_op.create_unique_constraint('uq_invoices_document',
                                          ['tenant', 'job_id', 'kind', 'revision'])


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint('uq_invoices_document', type_='unique')
        batch_op.create_unique_constraint('uq_invoices_tenant_job_id_revision',
                                          ['tenant', 'job_id', 'revision'])
        batch_op.drop_constraint('fk_invoices_corrects_id', type_='foreignkey')
        for column in ('held_at', 'hold_reasons', 'correction_reason', 'correction',
                       'source_event_id', 'corrects_id', 'kind'):
            batch_op.drop_column(column)
