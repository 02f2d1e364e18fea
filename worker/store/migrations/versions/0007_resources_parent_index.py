"""resources (run_id, parent): the incremental finalize finds a deleted resource's owned resources
(a user's API tokens) by index rather than by reading every resource of the view"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_resources_run_id_parent', 'resources', ['run_id', 'parent'])


def downgrade() -> None:
    op.drop_index('ix_resources_run_id_parent', table_name='resources')
