"""incremental sync: rows carry their container, runs their kind and plan, tenants a change cursor"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_TABLES = ('resources', 'entitlements', 'grants')


def upgrade() -> None:
    for table in ROW_TABLES:
        op.add_column(table, sa.Column('container', sa.String(length=300), server_default='', nullable=False))
        op.create_index(f'ix_{table}_run_id_container', table, ['run_id', 'container'])
    op.add_column('sync_runs', sa.Column('kind', sa.String(length=16), server_default='full', nullable=False))
    op.add_column('sync_runs', sa.Column('plan', JSON, server_default=sa.text("'{}'"), nullable=False))
    op.create_table(
        'sync_cursors',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('log_after', sa.Text(), nullable=True),
        sa.Column('watermark', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recent_event_ids', JSON, server_default=sa.text("'[]'"), nullable=False),
        sa.Column('options_fingerprint', sa.String(length=64), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sync_cursors_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_sync_cursors')),
    )


def downgrade() -> None:
    op.drop_table('sync_cursors')
    with op.batch_alter_table('sync_runs') as batch:
        batch.drop_column('plan')
        batch.drop_column('kind')
    for table in ROW_TABLES:
        op.drop_index(f'ix_{table}_run_id_container', table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column('container')
