"""tenants (enabled, next_sync_at) index: Beat's claim reads only the due tenants

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 05:45:00

"""
from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f('ix_tenants_enabled_next_sync_at'), 'tenants', ['enabled', 'next_sync_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_tenants_enabled_next_sync_at'), table_name='tenants')
