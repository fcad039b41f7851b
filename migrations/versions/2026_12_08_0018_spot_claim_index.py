"""a spot check's undecided items in queue order, in an index of their own: the claim reads the first of them
and stops, where PostgreSQL sorted every undecided item of the open checks on every claim

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDECIDED = sa.text("decided_at IS NULL")


def upgrade() -> None:
    op.create_index('ix_spot_check_item_undecided_position', 'spot_check_item', ['spot_check_id', 'position'],
                    unique=False, sqlite_where=UNDECIDED, postgresql_where=UNDECIDED)


def downgrade() -> None:
    op.drop_index('ix_spot_check_item_undecided_position', table_name='spot_check_item')
