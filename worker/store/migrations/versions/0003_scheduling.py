"""scheduling: tenants (enabled, next_sync_at) index, so Beat's claim reads only the due tenants;
sync_runs.due_at, when the run was due (freshness lag is due -> succeeded)"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f('ix_tenants_enabled_next_sync_at'), 'tenants', ['enabled', 'next_sync_at'])
    op.add_column('sync_runs', sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sync_runs') as batch:
        batch.drop_column('due_at')
    op.drop_index(op.f('ix_tenants_enabled_next_sync_at'), table_name='tenants')
