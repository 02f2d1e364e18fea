"""incremental and verify schedules: tenants.incremental_interval/next_incremental_at and
verify_interval/next_verify_at (NULL: off), indexed like next_sync_at so Beat's claim of each kind
reads only the due tenants"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEDULES = (('incremental_interval', 'next_incremental_at'), ('verify_interval', 'next_verify_at'))


def upgrade() -> None:
    for interval, due in SCHEDULES:
        op.add_column('tenants', sa.Column(interval, sa.Integer(), nullable=True))
        op.add_column('tenants', sa.Column(due, sa.DateTime(timezone=True), nullable=True))
        op.create_index(op.f(f'ix_tenants_enabled_{due}'), 'tenants', ['enabled', due])


def downgrade() -> None:
    for interval, due in reversed(SCHEDULES):
        op.drop_index(op.f(f'ix_tenants_enabled_{due}'), table_name='tenants')
        with op.batch_alter_table('tenants') as batch:
            batch.drop_column(due)
            batch.drop_column(interval)
