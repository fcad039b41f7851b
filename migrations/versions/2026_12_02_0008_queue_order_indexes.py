"""queue order indexes: each check's open items in queue order, so that a claim reads its first candidates from an
index instead of sorting every open item (the old (decided_at, lease_expires_at) indexes led SQLite's planner to
exactly that sort, 9-15 ms per claim with 10,000 items open)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.drop_index('ix_spot_check_item_decided_at_lease_expires_at')
        batch_op.drop_index('ix_spot_check_item_spot_check_id_decided_at')
        batch_op.drop_index('ix_spot_check_item_spot_check_id_second_decided_at')
        batch_op.create_index('ix_spot_check_item_spot_check_id_decided_at_position',
                              ['spot_check_id', 'decided_at', 'position'])
        batch_op.create_index('ix_spot_check_item_spot_check_id_second_decided_at_position',
                              ['spot_check_id', 'second_decided_at', 'position'])
    with op.batch_alter_table('solve_test_item', schema=None) as batch_op:
        batch_op.drop_index('ix_solve_test_item_answered_at_lease_expires_at')
        batch_op.create_index('ix_solve_test_item_solve_test_id_answered_at_position',
                              ['solve_test_id', 'answered_at', 'position'])


def downgrade() -> None:
    with op.batch_alter_table('solve_test_item', schema=None) as batch_op:
        batch_op.drop_index('ix_solve_test_item_solve_test_id_answered_at_position')
        batch_op.create_index('ix_solve_test_item_answered_at_lease_expires_at', ['answered_at', 'lease_expires_at'])
    with op.batch_alter_table('spot_check_item', schema=None) as batch_op:
        batch_op.drop_index('ix_spot_check_item_spot_check_id_second_decided_at_position')
        batch_op.drop_index('ix_spot_check_item_spot_check_id_decided_at_position')
        batch_op.create_index('ix_spot_check_item_spot_check_id_second_decided_at',
                              ['spot_check_id', 'second_decided_at'])
        batch_op.create_index('ix_spot_check_item_spot_check_id_decided_at', ['spot_check_id', 'decided_at'])
        batch_op.create_index('ix_spot_check_item_decided_at_lease_expires_at', ['decided_at', 'lease_expires_at'])
